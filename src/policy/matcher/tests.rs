use super::*;

#[test]
fn globs() {
    let p = PathPattern::glob("/api/*/patients/**", false).unwrap();
    assert!(p.matches("/api/v1/patients/17"));
    assert!(p.matches("/api/v1/patients/17/docs"));
    assert!(
        !p.matches("/api/v1/x/patients/17"),
        "* stays in one segment"
    );
    assert!(!p.matches("/API/v1/patients/17"));
    let ci = PathPattern::glob("/admin/**", true).unwrap();
    assert!(ci.matches("/ADMIN/users"), "case-insensitive portal");
    let dot = PathPattern::glob("/index.php", false).unwrap();
    assert!(!dot.matches("/indexXphp"), "literal dot");
}

#[test]
fn query_read_as_the_portal_reads_it() {
    let q = Some("raw=view&raw=ajax_export_patients_csv");
    assert_eq!(
        param(q, "raw", QueryReading::Last).as_deref(),
        Some("ajax_export_patients_csv")
    );
    assert_eq!(
        param(q, "raw", QueryReading::First).as_deref(),
        Some("view")
    );
    let enc = Some("raw=ajax%5Fexport%5Fpatients%5Fcsv");
    assert_eq!(
        param(enc, "raw", QueryReading::Last).as_deref(),
        Some("ajax_export_patients_csv")
    );
    // PHP reads `m.x` and `m x` as `m_x`; names are case-sensitive.
    assert_eq!(
        param(Some("m.x=1"), "m_x", QueryReading::Last).as_deref(),
        Some("1")
    );
    assert_eq!(
        param(Some("m+x=2"), "m_x", QueryReading::Last).as_deref(),
        Some("2")
    );
    assert_eq!(param(Some("RAW=x"), "raw", QueryReading::Last), None);
    assert_eq!(
        param(Some("+raw=x"), "raw", QueryReading::Last).as_deref(),
        Some("x")
    );
    assert_eq!(
        param(Some("raw%00junk=x"), "raw", QueryReading::Last).as_deref(),
        Some("x")
    );
    assert_eq!(php_name("a[b"), ("a_b".into(), false));
    assert_eq!(php_name("a[]"), ("a".into(), true));
    let export = Matcher {
        path: PathPattern::glob("/index.php", false).unwrap(),
        methods: vec!["GET".into()],
        query: vec![QueryCondition::new("raw", "ajax_export*")],
    };
    for (method, query, want) in [
        ("GET", "raw=ajax_export_patients_csv", true),
        ("HEAD", "raw=ajax_export_patients_csv", true),
        ("POST", "raw=ajax_export_patients_csv", false),
        ("GET", "raw=ajax_export_patients_csv&raw=view", false),
        ("GET", "raw=view&raw=ajax_export_patients_csv", true),
        ("GET", "m=x&raw=ajax%5Fexport_x", true),
        ("GET", "raw[]=ajax_export_patients_csv", false),
    ] {
        assert_eq!(
            export.matches(method, "/index.php", Some(query), QueryReading::Last),
            want,
            "{method} {query}"
        );
    }
}

#[test]
fn containment_is_conservative() {
    let wide = Matcher {
        path: PathPattern::glob("/index.php", false).unwrap(),
        methods: vec![],
        query: vec![],
    };
    let narrow = Matcher {
        path: PathPattern::glob("/index.php", false).unwrap(),
        methods: vec!["GET".into()],
        query: vec![QueryCondition::new("m", "dPpatients")],
    };
    assert!(narrow.within(&wide));
    assert!(!wide.within(&narrow));
    assert!(narrow.within(&Matcher::any()));
    assert!(!Matcher::any().within(&narrow));
    let all = Matcher {
        path: PathPattern::glob("/**", false).unwrap(),
        methods: vec![],
        query: vec![],
    };
    assert!(narrow.within(&all), "`/**` takes everything");
    // Methods and query conditions: within only when each of the wider one's is met.
    let m = |methods: &[&str], query: &[(&str, &str)]| Matcher {
        path: PathPattern::glob("/index.php", false).unwrap(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        query: query
            .iter()
            .map(|(k, v)| QueryCondition::new(k, v))
            .collect(),
    };
    let export = [("raw", "ajax_export*")];
    for (narrow, wider, within) in [
        (m(&["GET"], &[]), m(&["GET", "POST"], &[]), true),
        (m(&["PUT"], &[]), m(&["GET", "POST"], &[]), false),
        (m(&["GET", "PUT"], &[]), m(&["GET", "POST"], &[]), false),
        (m(&[], &[]), m(&["GET"], &[]), false),
        (m(&[], &[("m", "x"), export[0]]), m(&[], &export), true),
        (m(&[], &[("raw", "view")]), m(&[], &export), false),
        (m(&[], &[("other", "ajax_export*")]), m(&[], &export), false),
        (m(&[], &[("raw", "view")]), m(&[], &[("raw", "*")]), true),
        (m(&[], &[]), m(&[], &export), false),
    ] {
        assert_eq!(narrow.within(&wider), within, "{narrow:?} within {wider:?}");
    }
}

#[test]
fn a_view_of_body_and_query_is_read_whole() {
    // A form's names merged with the query's (stage 4's second look) can be more than one
    // query's `max_input_vars`: the routing parameter sorted after a thousand others is read.
    let names: Vec<String> = (0..1200).map(|i| format!("a{i:04}=1")).collect();
    let view = format!("{}&raw=ajax_export_patients_csv", names.join("&"));
    for reading in [QueryReading::Last, QueryReading::First] {
        assert_eq!(
            param(Some(&view), "raw", reading).as_deref(),
            Some("ajax_export_patients_csv")
        );
    }
    // A later `raw[]` makes `raw` an array, as PHP reads it: no value for a rule to match.
    assert_eq!(
        param(Some("raw=x&raw[]=y"), "raw", QueryReading::Last),
        None
    );
}

#[test]
fn a_wildcard_spans_a_line_break() {
    // Red team (issue 21): PHP reads `raw=ajax_export_patients_csv%0A` from a form body.
    let export = QueryCondition::new("raw", "ajax_export*");
    assert!(export.matches(Some("ajax_export_patients_csv\n")));
    assert!(export.matches(Some("ajax_export\nX")));
    assert!(!export.matches(Some("\najax_export")));
}
