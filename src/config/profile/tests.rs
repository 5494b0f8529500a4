use super::*;

use crate::testing::shipped_profile as shipped;

#[test]
fn shipped_profiles_are_valid() {
    let sample = shipped("sample-portal.toml");
    assert_eq!(sample.login.session_cookies, vec!["mediboard_session"]);
    assert_eq!(
        sample.logout.unwrap().query,
        Some(("logout".into(), "-1".into()))
    );
    let mediboard = shipped("mediboard.toml");
    for p in ["login", "token", "ldap_guid"] {
        assert!(mediboard.block.query_params.contains(&p.to_string()), "{p}");
    }
    shipped("generic-form.toml");
}

#[test]
fn classes_follow_the_portal_s_path_case() {
    let sample = shipped("sample-portal.toml");
    let export = |p: &PortalProfile, path: &str| {
        p.classes.iter().any(|c| {
            c.name == "export"
                && c.matcher.matches(
                    "GET",
                    path,
                    Some("raw=ajax_export_patients_csv"),
                    p.query_reading,
                )
        })
    };
    assert!(export(&sample, "/index.php"));
    assert!(!export(&sample, "/INDEX.PHP"));
    assert!(export(&sample.clone().ignoring_path_case(), "/INDEX.PHP"));
}

#[test]
fn bad_profiles_name_the_key() {
    let text = "name = \"x\"\n[login]\npath = \"/a/../login\"\nusername_field = \"u\"\npassword_field = \"\"\n[login.success]\nstatus = [500]\nsession_cookies = []\n";
    let errs = parse(Path::new("p.toml"), text).unwrap_err().0;
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "login.path",
            "login.password_field",
            "login.success.status[0]",
            "login.success.session_cookies",
            "prelogin"
        ]
    );
    assert_eq!(errs[0].position.map(|p| p.0), Some(3));
}

#[test]
fn the_reference_profile_is_a_valid_profile() {
    // config/profiles/reference.toml documents every key a profile may hold, each once:
    // through the real loader, it must stay valid as the keys change.
    let p = shipped("reference.toml");
    assert!(p.role.is_some() && p.login.confirm.is_some());
    let logout = p.logout.as_ref().expect("[logout]");
    assert_eq!(logout.method, crate::identity::logout::Method::Post);
    assert!(logout.token.is_some() && logout.confirm);
    assert_eq!((p.classes.len(), p.reading.patients.len()), (1, 1));
    assert_eq!(p.reading.records.len(), 1);
}
