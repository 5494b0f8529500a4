use super::*;

#[test]
fn role_labels_are_decoded() {
    assert_eq!(decode_entities("M&eacute;decin"), "Médecin");
    assert_eq!(decode_entities("Infirmier&#183;&#xE8;re"), "Infirmier·ère");
    assert_eq!(decode_entities("R&D & co &bogus;"), "R&D & co &bogus;");
}
