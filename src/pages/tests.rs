use super::*;

#[test]
fn catalogue_has_the_same_keys_in_both_languages() {
    let keys = |l: &str| {
        let mut k: Vec<String> = MESSAGES[l].as_table().unwrap().keys().cloned().collect();
        k.extend(
            MESSAGES[l]["errors"]
                .as_table()
                .unwrap()
                .keys()
                .map(|e| format!("errors.{e}")),
        );
        k.sort();
        k
    };
    assert_eq!(keys("fr"), keys("en"));
}

#[test]
fn every_template_renders_in_both_languages() {
    for lang in [Lang::Fr, Lang::En] {
        for name in TEMPLATES.templates().map(|(n, _)| n) {
            let ctx = context! {
                status => 400, codes => vec!["a"], return_to => "/", return_q => "%2F",
                title => "t", text => "t", other_title => "t", other_text => "t", reference => "00",
                qr => "<svg></svg>", secret => "ABCD", otpauth => "otpauth://totp/x", codes_left => 3, fresh_minutes => 5,
                passkeys => vec![context! { id => "x", name => "n", created => "2026-01-01" }],
                minutes => 30,
                has_passkey => true, has_totp => true, user => "u",
            };
            let html = render(name, lang, Some("/x?lang=en"), &Brand::neutral(), ctx);
            assert!(html.starts_with("<!doctype html>"), "{name}: {html}");
            assert!(html.contains(&format!("lang=\"{}\"", lang.code())));
            assert!(
                !html.contains("Erreur / Error"),
                "{name}: {lang:?}: render failed"
            );
        }
    }
}

#[test]
fn error_page_is_bilingual_and_carries_reference() {
    let page = error_page(502, "00ab", Lang::Fr, None, &Brand::neutral());
    assert!(page.contains("Portail indisponible") && page.contains("Portal unavailable"));
    assert!(page.contains("00ab"));
    assert!(!page.contains("<script"));
    let en = error_page(502, "00ab", Lang::En, None, &Brand::neutral());
    assert!(en.find("Portal unavailable") < en.find("Portail indisponible"));
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
    };
    let page = error_page(404, "00ab", Lang::Fr, None, &brand);
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
