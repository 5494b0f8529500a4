use super::*;

fn same(a: &str, b: &str) -> bool {
    Collation::Utf8mb4GeneralCi.canonical(a) == Collation::Utf8mb4GeneralCi.canonical(b)
}

#[test]
fn parse_knows_mariadb_names() {
    assert_eq!(
        Collation::parse("utf8mb4_general_ci"),
        Some(Collation::Utf8mb4GeneralCi)
    );
    assert_eq!(
        Collation::parse("UTF8MB4_General_CI"),
        Some(Collation::Utf8mb4GeneralCi)
    );
    assert_eq!(Collation::parse("binary"), Some(Collation::Binary));
    assert_eq!(Collation::parse("utf8mb4_bin"), Some(Collation::Utf8mb4Bin));
    assert_eq!(
        Collation::parse("utf8mb4_general_nopad_ci"),
        Some(Collation::Utf8mb4GeneralNopadCi)
    );
    assert_eq!(Collation::parse("utf8mb4_unicode_ci"), None);
    assert_eq!(Collation::parse(""), None);
}

#[test]
fn general_ci_folds_case_and_accents_to_readable_keys() {
    let ci = Collation::Utf8mb4GeneralCi;
    assert_eq!(ci.canonical("Dr.Martin"), "dr.martin");
    assert_eq!(ci.canonical("Élise"), "elise");
    for v in ["é", "É", "e", "E", "ê", "Ë"] {
        assert!(same(v, "e"), "{v}");
    }
    assert!(same("ÉLISE", "elise"));
    assert!(!same("elise", "elisa"));
    assert_eq!(ci.canonical("Ωμέγα"), "ωμεγα");
}

#[test]
fn general_ci_ignores_only_trailing_plain_spaces() {
    assert!(same("elise", "ELISE   "));
    assert!(!same("elise", " elise"));
    assert!(!same("elise", "elise\u{A0}"), "no-break space counts");
    assert!(!same("elise", "elise\t"));
    assert!(!same("eli se", "elise"));
    let nopad = Collation::Utf8mb4GeneralNopadCi;
    assert_ne!(nopad.canonical("elise "), nopad.canonical("elise"));
}

#[test]
fn general_ci_surprises() {
    assert!(same("straße", "STRASE"), "ß weighs one s");
    assert!(!same("straße", "strasse"));
    assert!(!same("ẞ", "ß"));
    assert!(same("ı", "I") && same("İ", "i"));
    assert!(same("µ", "μ"));
    assert!(!same("æ", "ae") && !same("ø", "o"));
    assert!(same("Ａ", "ａ"), "full-width letters fold case");
    assert!(!same("Ａ", "a"), "but not width");
    assert!(!same("\u{212A}", "k"), "Kelvin sign");
    assert!(same("a😀", "a🙂") && same("a😀", "a\u{FFFD}"));
    assert!(!same("a😀", "a"));
}

#[test]
fn other_collations() {
    assert_eq!(Collation::Binary.canonical("Elise "), "Elise ");
    assert_eq!(Collation::Utf8mb4Bin.canonical("Elise  "), "Elise");
    assert_eq!(
        Collation::Utf8mb4GeneralNopadCi.canonical("Élise "),
        "elise "
    );
}

#[test]
fn table_is_sorted_and_its_representatives_are_fixed_points() {
    let table = &general_ci::FOLD;
    assert!(table.windows(2).all(|w| w[0].0 < w[1].0), "sorted, unique");
    for &(from, to) in table {
        assert_ne!(from, to, "U+{from:04X} listed as itself");
        let rep = char::from_u32(to.into()).expect("a character");
        assert_eq!(
            fold_general_ci(rep),
            rep,
            "U+{to:04X} is not its own representative"
        );
    }
}
