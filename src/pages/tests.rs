use super::*;

/// Every key of a catalogue table, nested tables included (`errors.404`), with the length
/// of array values (`errors.404[2]`), so both languages can be compared shape for shape.
fn key_paths(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let path = format!("{prefix}{k}");
        match v {
            toml::Value::Table(t) => key_paths(t, &format!("{path}."), out),
            toml::Value::Array(a) => out.push(format!("{path}[{}]", a.len())),
            _ => out.push(path),
        }
    }
}

/// Every string of one language, with where it is (`errors.404[1]`).
fn strings(lang: &str) -> Vec<(String, String)> {
    fn walk(v: &toml::Value, path: String, out: &mut Vec<(String, String)>) {
        match v {
            toml::Value::String(s) => out.push((path, s.clone())),
            toml::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v, format!("{path}[{i}]"), out);
                }
            }
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, p, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&MESSAGES[lang], String::new(), &mut out);
    assert!(out.len() > 50, "{lang}: the catalogue is read");
    out
}

#[test]
fn catalogue_has_the_same_keys_in_both_languages() {
    let keys = |l: &str| {
        let mut k = Vec::new();
        key_paths(MESSAGES[l].as_table().unwrap(), "", &mut k);
        k.sort();
        k
    };
    let (fr, en) = (keys("fr"), keys("en"));
    assert!(
        fr.iter().any(|k| k.starts_with("errors.")),
        "nested tables are compared"
    );
    let only_fr: Vec<_> = fr.iter().filter(|k| !en.contains(k)).collect();
    let only_en: Vec<_> = en.iter().filter(|k| !fr.contains(k)).collect();
    assert!(
        only_fr.is_empty() && only_en.is_empty(),
        "only in fr: {only_fr:?}; only in en: {only_en:?}"
    );
    let mut all: Vec<&str> = MESSAGES.keys().map(String::as_str).collect();
    all.sort();
    assert_eq!(all, ["en", "fr"], "one table per language, nothing else");
}

/// The keys the Rust code reads: every `message(…, "key")`, `count(…, "key", …)` and
/// `notice_page(…, "key", …)` in `src/`, found by reading the sources (a hand-kept list
/// would go stale).
fn keys_in_code() -> Vec<String> {
    let call = regex::Regex::new(
        r#"(?:message|count)\(\s*[a-z_.]+\s*,\s*"([a-z0-9_]+)"|notice_page\(\s*[a-z_.]+\s*,\s*"([a-z0-9_]+)"|\(\s*"([a-z_]+_title)"\s*,\s*"([a-z_]+_text)"\s*\)"#,
    )
    .unwrap();
    let mut keys = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // The console has its own catalogue (and its own check).
            if path.is_dir() && !path.ends_with("console") {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.ends_with("pages/tests.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                for c in call.captures_iter(&text) {
                    for m in c.iter().skip(1).flatten() {
                        keys.push(m.as_str().to_string());
                    }
                }
            }
        }
    }
    assert!(keys.len() > 20, "the scan finds the calls: {keys:?}");
    keys
}

#[test]
fn keys_that_pages_read_are_in_the_catalogue() {
    let mut wanted: Vec<String> = keys_in_code()
        .iter()
        .map(|k| format!("{k} (code)"))
        .collect();
    // `t.key` in every template, whichever branch it sits in.
    for (name, template) in TEMPLATES.templates() {
        let src = template.source();
        let bytes = src.as_bytes();
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        for (i, _) in src.match_indices("t.") {
            if i > 0 && (ident(bytes[i - 1]) || bytes[i - 1] == b'.') {
                continue;
            }
            let key: String = src[i + 2..]
                .bytes()
                .take_while(|b| ident(*b))
                .map(char::from)
                .collect();
            if !key.is_empty() {
                wanted.push(format!("{key} ({name})"));
            }
        }
    }
    for lang in ["fr", "en"] {
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|w| {
                let key = w.split(' ').next().unwrap_or_default();
                !MESSAGES[lang].get(key).is_some_and(|v| v.is_str())
            })
            .collect();
        assert!(missing.is_empty(), "{lang}: missing {missing:?}");
    }
}

/// Spans of `s` (byte ranges) where punctuation is not prose: `{placeholders}` and URLs.
fn not_prose(s: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(open) = s[from..].find('{') {
        let open = from + open;
        let close = s[open..].find('}').map_or(s.len(), |c| open + c + 1);
        spans.push(open..close);
        from = close;
    }
    for (i, _) in s.match_indices("://") {
        let start = s[..i].rfind(char::is_whitespace).map_or(0, |w| w + 1);
        let end = s[i..].find(char::is_whitespace).map_or(s.len(), |w| i + w);
        spans.push(start..end);
    }
    spans
}

const NNBSP: char = '\u{202F}';

#[test]
fn french_has_a_narrow_no_break_space_before_high_punctuation_and_inside_guillemets() {
    let mut wrong = Vec::new();
    for (key, s) in strings("fr") {
        let skip = not_prose(&s);
        let chars: Vec<(usize, char)> = s.char_indices().collect();
        for (n, &(i, c)) in chars.iter().enumerate() {
            if skip.iter().any(|r| r.contains(&i)) {
                continue;
            }
            let before = n.checked_sub(1).map(|p| chars[p].1);
            let after = chars.get(n + 1).map(|&(_, c)| c);
            let ok = match c {
                // A time (14:30) is not prose punctuation.
                ':' if before.is_some_and(|b| b.is_ascii_digit())
                    && after.is_some_and(|a| a.is_ascii_digit()) =>
                {
                    true
                }
                ':' | ';' | '?' | '!' | '»' => before == Some(NNBSP),
                '«' => after == Some(NNBSP),
                // No ordinary space doubling the narrow one.
                NNBSP => {
                    !before.is_some_and(char::is_whitespace)
                        && !after.is_some_and(|a| a.is_whitespace() && a != '\n')
                }
                _ => true,
            };
            if !ok {
                let around: String = chars[n.saturating_sub(12)..(n + 6).min(chars.len())]
                    .iter()
                    .map(|&(_, c)| c)
                    .collect();
                wrong.push(format!("{key}: {around:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "French typography (U+202F) wrong in:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn english_has_no_space_before_a_colon() {
    let wrong: Vec<_> = strings("en")
        .into_iter()
        .filter(|(_, s)| {
            s.char_indices().any(|(i, c)| {
                matches!(c, ':' | ';' | '?' | '!') && s[..i].ends_with(char::is_whitespace)
            })
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "space before punctuation in English: {wrong:?}"
    );
}

fn placeholders(s: &str) -> Vec<&str> {
    let mut found: Vec<&str> = s
        .match_indices('{')
        .filter_map(|(i, _)| s[i..].find('}').map(|j| &s[i..i + j + 1]))
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn counted_messages_have_a_singular_with_the_same_placeholders() {
    for lang in ["fr", "en"] {
        let table = MESSAGES[lang].as_table().unwrap();
        for (key, value) in table {
            let Some(text) = value.as_str() else { continue };
            if let Some(plural) = key.strip_suffix("_one") {
                let other = table.get(plural).and_then(|v| v.as_str());
                let other = other.unwrap_or_else(|| panic!("{lang}: `{key}` without `{plural}`"));
                assert_eq!(
                    placeholders(text),
                    placeholders(other),
                    "{lang}: `{key}` and `{plural}`"
                );
                assert_ne!(text, other, "{lang}: `{key}` is the plural again");
            } else if text.contains("{n}") {
                assert!(
                    table.contains_key(&format!("{key}_one")),
                    "{lang}: `{key}` counts {{n}} but has no `{key}_one`"
                );
            }
        }
    }
}

#[test]
fn no_string_leaves_the_plural_to_the_reader() {
    for lang in ["fr", "en"] {
        for (key, s) in strings(lang) {
            assert!(
                !s.contains("(s)"),
                "{lang}: `{key}` still says \"(s)\": {s}"
            );
        }
    }
}

#[test]
fn rendered_pages_keep_each_languages_punctuation() {
    // The catalogue is right only if templates do not add their own " : ".
    let strip_tags = |html: &str| {
        let mut text = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    text.push(' ');
                }
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        text
    };
    for lang in [Lang::Fr, Lang::En] {
        let mut pages: Vec<(String, String)> = TEMPLATES
            .templates()
            .map(|(n, _)| {
                (
                    n.to_string(),
                    render(
                        n,
                        lang,
                        Some("/x?lang=en"),
                        &Brand::neutral(),
                        sample_context(),
                    ),
                )
            })
            .collect();
        pages.push((
            "error_page".into(),
            error_page(
                502,
                "00ab",
                lang,
                &WayOut {
                    wait: Some(5),
                    next: Some("n".into()),
                    retry: Some("/r".into()),
                    signed_in: true,
                },
                &Brand::neutral(),
            ),
        ));
        pages.push((
            "notice_page".into(),
            notice_page(
                lang,
                "held_title",
                "t".into(),
                None,
                "00ab",
                &WayOut::default(),
                &Brand::neutral(),
            ),
        ));
        for (name, html) in pages {
            let text = strip_tags(&html);
            for line in text.lines() {
                let bad = match lang {
                    // (An English page may quote French, with its U+202F: only look for
                    // the spaces a template would add.)
                    Lang::En => line.contains(" :") || line.contains("\u{A0}:"),
                    Lang::Fr => [" :", " ;", " ?", " !", "\u{A0}:"]
                        .iter()
                        .any(|p| line.contains(p)),
                };
                assert!(!bad, "{name} ({lang:?}): {:?}", line.trim());
            }
        }
    }
}

fn sample_context() -> Value {
    context! {
        status => 400, codes => vec!["a"], return_to => "/", return_q => "%2F",
        title => "t", text => "t", other_title => "t", other_text => "t", reference => "00",
        qr => "<svg></svg>", secret => "ABCD", otpauth => "otpauth://totp/x", codes_left => 3, fresh_minutes => 5,
        passkeys => vec![context! { id => "x", name => "n", created => "2026-01-01" }],
        minutes => 30, intro => "i",
        has_passkey => true, has_totp => true, user => "u",
    }
}

#[test]
fn every_template_renders_in_both_languages() {
    for lang in [Lang::Fr, Lang::En] {
        // `_name.html`: a part other pages include, not a page.
        for name in TEMPLATES
            .templates()
            .map(|(n, _)| n)
            .filter(|n| !n.starts_with('_'))
        {
            let ctx = sample_context();
            let html = render(name, lang, Some("/x?lang=en"), &Brand::neutral(), ctx);
            assert!(html.starts_with("<!doctype html>"), "{name}: {html}");
            assert!(
                html.contains(&format!("lang=\"{}\"", lang.code())),
                "{name}: {html}"
            );
            assert!(
                !html.contains("Erreur / Error"),
                "{name}: {lang:?}: render failed"
            );
        }
    }
}

#[test]
fn error_page_is_bilingual_and_carries_reference() {
    let page = error_page(502, "00ab", Lang::Fr, &WayOut::default(), &Brand::neutral());
    assert!(page.contains("Portail indisponible") && page.contains("Portal unavailable"));
    assert!(page.contains("00ab"));
    assert!(!page.contains("<script"));
    let en = error_page(502, "00ab", Lang::En, &WayOut::default(), &Brand::neutral());
    // English first: both are there (a missing one is not "before" anything).
    let (english, french) = (
        en.find("Portal unavailable").expect("the English text"),
        en.find("Portail indisponible").expect("the French text"),
    );
    assert!(english < french);
}

#[test]
fn values_are_escaped() {
    let page = login_page(
        Lang::Fr,
        false,
        "/\"><script>alert(1)</script>",
        "/.vigie/login?lang=en",
        &Brand::neutral(),
    );
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("&lt;script&gt;") || page.contains("&#x3c;script"));
}

#[test]
fn a_portals_name_is_escaped_like_any_value() {
    let brand = Brand {
        name: "CHU <b>Nord</b>".into(),
        logo: None,
        help_desk: Some("poste <4455>".into()),
        zone: jiff::tz::TimeZone::UTC,
    };
    let page = error_page(404, "00ab", Lang::Fr, &WayOut::default(), &brand);
    assert!(
        page.contains("CHU &lt;b&gt;Nord") || page.contains("CHU &#x3c;b"),
        "{page}"
    );
    assert!(!page.contains("<b>Nord"));
    assert!(!page.contains("/.vigie/logo"), "no logo, no image");
}

#[test]
fn language_choice() {
    assert_eq!(
        Lang::choose(Some("lang=en"), &["vigie_lang=fr"], Some("fr")),
        Lang::En
    );
    assert_eq!(
        Lang::choose(None, &["a=b; vigie_lang=en"], Some("fr")),
        Lang::En
    );
    assert_eq!(
        Lang::choose(None, &[], Some("de-DE,en-GB;q=0.8,fr;q=0.5")),
        Lang::En
    );
    assert_eq!(Lang::choose(None, &[], Some("en;q=0, fr")), Lang::Fr);
    assert_eq!(Lang::choose(None, &[], Some("de")), Lang::Fr);
    assert_eq!(Lang::choose(Some("lang=xx"), &[], None), Lang::Fr);
    assert_eq!(
        switch_url("/.vigie/factor", Some("return=%2Fa&lang=fr"), Lang::Fr),
        "/.vigie/factor?return=%2Fa&lang=en"
    );
}
