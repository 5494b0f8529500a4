//! The console's pages: templates (MiniJinja, escaped by default), its own catalogue in French
//! and English, times in the hospital's zone to the second, and the evidence charts (inline
//! SVG: no script, no external asset).

use std::sync::LazyLock;

use minijinja::{context, Environment, Value};
use serde::Serialize;

use crate::pages::Lang;

static MESSAGES: LazyLock<toml::Table> = LazyLock::new(|| {
    include_str!("messages.toml")
        .parse()
        .expect("the console's messages.toml is valid TOML (unit-tested)")
});

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    for (name, text) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("login.html", include_str!("templates/login.html")),
        ("passkey.html", include_str!("templates/passkey.html")),
        ("queue.html", include_str!("templates/queue.html")),
        ("alert.html", include_str!("templates/alert.html")),
        ("holds.html", include_str!("templates/holds.html")),
        ("sessions.html", include_str!("templates/sessions.html")),
        (
            "break_glass.html",
            include_str!("templates/break_glass.html"),
        ),
        ("message.html", include_str!("templates/message.html")),
        (
            "reidentified.html",
            include_str!("templates/reidentified.html"),
        ),
    ] {
        env.add_template(name, text)
            .expect("the console's templates are valid (unit-tested)");
    }
    env
});

pub const STYLESHEET: &str = include_str!("console.css");
pub const SCRIPT: &str = include_str!("console.js");

/// One sentence of the catalogue.
pub fn message(lang: Lang, key: &str) -> String {
    MESSAGES[lang.code()]
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or(key)
        .to_string()
}

/// What every page's frame shows: who is signed in, what they may reach, the language link.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Frame {
    pub analyst: Option<String>,
    pub roles: String,
    pub csrf: String,
    pub can: Can,
    pub switch: String,
    pub page: &'static str,
    pub flash: Option<String>,
    pub problem: Option<String>,
    /// The queue's live update script.
    pub live: bool,
    pub script: bool,
}

/// The navigation and forms a role set reaches.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Can {
    pub alerts: bool,
    pub triage: bool,
    pub holds: bool,
    pub sessions: bool,
    pub revoke: bool,
    pub break_glass: bool,
}

pub fn render(template: &str, lang: Lang, frame: &Frame, ctx: Value) -> String {
    let full = minijinja::value::merge_maps([
        context! { t => Value::from_serialize(&MESSAGES[lang.code()]), lang => lang.code() },
        Value::from_serialize(frame),
        ctx,
    ]);
    TEMPLATES
        .get_template(template)
        .and_then(|t| t.render(full))
        .unwrap_or_else(|e| {
            tracing::error!(template, error = %e, "console template failed");
            "<!doctype html><title>Vigie</title><p>Erreur / Error".to_string()
        })
}

/// A time to the second in the hospital's zone (`01/12/2026 17:05:12`, `1 Dec 2026 17:05:12`),
/// and its ISO form for `<time datetime>`.
pub fn when(lang: Lang, zone: &jiff::tz::TimeZone, us: i64) -> (String, String) {
    let Ok(ts) = jiff::Timestamp::from_microsecond(us) else {
        return (String::new(), String::new());
    };
    let z = ts.to_zoned(zone.clone());
    let shown = match lang {
        Lang::Fr => z.strftime("%d/%m/%Y %H:%M:%S"),
        Lang::En => z.strftime("%-d %b %Y %H:%M:%S"),
    };
    (
        shown.to_string(),
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// A number as a reader wants it: integers plain, others to two decimals.
pub fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.2}")
    }
}

/// Three bars (observed, usual, threshold) on one scale, labelled, for one signal. Text
/// alternatives are in the table beside it; the SVG is decorative for screen readers.
pub fn chart(lang: Lang, observed: f64, baseline: Option<f64>, threshold: f64) -> String {
    let top = [observed, baseline.unwrap_or(0.0), threshold]
        .into_iter()
        .fold(1e-9_f64, f64::max);
    let bar = |y: u32, value: f64, fill: &str, label: &str| {
        let w = ((value.max(0.0) / top) * 150.0).round() as u32;
        format!(
            "<rect x=\"70\" y=\"{y}\" width=\"{w}\" height=\"10\" fill=\"{fill}\"/><text x=\"0\" y=\"{}\">{label}</text>",
            y + 9
        )
    };
    let mut svg = String::from("<svg class=\"chart\" width=\"230\" height=\"48\" viewBox=\"0 0 230 48\" aria-hidden=\"true\" focusable=\"false\">");
    svg += &bar(2, observed, "#a01818", &message(lang, "observed"));
    if let Some(b) = baseline {
        svg += &bar(18, b, "#4a5d70", &message(lang, "baseline"));
    }
    svg += &bar(34, threshold, "#0b5cad", &message(lang, "threshold"));
    svg += "</svg>";
    svg
}

/// The identity's 15-minute count at each request of the timeline, against its usual pace
/// (dashed) and the detector's threshold (solid). Decorative: the table below has the values.
pub fn pace_chart(
    lang: Lang,
    steps: &[crate::alerts::Step],
    pace: Option<crate::alerts::Pace>,
) -> String {
    const W: f64 = 560.0;
    const H: f64 = 90.0;
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return String::new();
    };
    let lines = pace.map_or(0.0, |p| p.expected.max(p.threshold));
    let top = steps
        .iter()
        .map(|s| s.window as f64)
        .fold(lines, f64::max)
        .max(1.0)
        * 1.1;
    let span = (last.at_us - first.at_us).max(1) as f64;
    let x = |at: i64| 4.0 + (at - first.at_us) as f64 / span * (W - 8.0);
    let y = |v: f64| H - 4.0 - v / top * (H - 8.0);
    let points: Vec<String> = steps
        .iter()
        .map(|s| format!("{:.1},{:.1}", x(s.at_us), y(s.window as f64)))
        .collect();
    let mut svg = format!("<svg class=\"pace\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" aria-hidden=\"true\" focusable=\"false\"><rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#f6f8fa\"/>");
    if let Some(p) = pace {
        let line = |v: f64, dash: &str, colour: &str| {
            format!("<line x1=\"0\" x2=\"{W}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"{colour}\" stroke-width=\"1.5\"{dash}/>", y(v))
        };
        svg += &line(p.expected, " stroke-dasharray=\"4 3\"", "#4a5d70");
        svg += &line(p.threshold, "", "#0b5cad");
    }
    svg += &format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#a01818\" stroke-width=\"2\"/><text x=\"6\" y=\"14\">{}</text></svg>",
        points.join(" "),
        message(lang, "window_patients")
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogues_have_the_same_keys_and_every_template_renders() {
        let keys = |l: &str| {
            let mut k: Vec<&String> = MESSAGES[l].as_table().unwrap().keys().collect();
            k.sort();
            k
        };
        assert_eq!(keys("fr"), keys("en"));
        let frame = Frame {
            analyst: Some("ana.soc".into()),
            ..Frame::default()
        };
        let html = render(
            "message.html",
            Lang::En,
            &frame,
            context! { title => "T<", text => "x" },
        );
        assert!(
            html.contains("T&lt;") && html.contains("SOC console"),
            "{html}"
        );
        for name in TEMPLATES.templates() {
            assert!(TEMPLATES.get_template(name.0).is_ok());
        }
    }

    /// Every key the console's code and templates read is in both catalogues: a missing one
    /// would show its key instead of a sentence.
    #[test]
    fn keys_the_console_reads_are_in_its_catalogue() {
        let call = regex::Regex::new(r#"message\(\s*[a-z_.]+\s*,\s*"([a-z0-9_]+)"\s*\)"#).unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/console");
        let mut wanted = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                wanted.extend(call.captures_iter(&text).map(|c| c[1].to_string()));
            }
        }
        let t = regex::Regex::new(r"\bt\.([a-z0-9_]+)").unwrap();
        for (_, template) in TEMPLATES.templates() {
            wanted.extend(t.captures_iter(template.source()).map(|c| c[1].to_string()));
        }
        assert!(wanted.len() > 50, "the scan finds the keys: {wanted:?}");
        for lang in ["fr", "en"] {
            let missing: Vec<&String> = wanted
                .iter()
                .filter(|k| MESSAGES[lang].get(k.as_str()).is_none())
                .collect();
            assert!(missing.is_empty(), "{lang}: missing {missing:?}");
        }
    }

    #[test]
    fn a_chart_scales_its_bars_to_the_largest_value() {
        let svg = chart(Lang::En, 300.0, Some(30.0), 150.0);
        assert!(
            svg.contains("width=\"150\"")
                && svg.contains("width=\"15\"")
                && svg.contains("width=\"75\""),
            "{svg}"
        );
        assert!(!chart(Lang::Fr, 0.0, None, 0.0).contains("NaN"));
        assert_eq!(number(12.0), "12");
        assert_eq!(number(0.256), "0.26");
    }
}
