use super::*;

#[test]
fn identifiers_are_masked() {
    assert_eq!(
        masked_path("/api/dossierpatient/patients/1234"),
        "/api/dossierpatient/patients/:id"
    );
    assert_eq!(masked_path("/index.php"), "/index.php");
    assert_eq!(masked_path("/"), "/");
    assert_eq!(masked_path("/p/ab12cd/x"), "/p/:id/x");
}
