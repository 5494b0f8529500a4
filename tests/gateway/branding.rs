//! The portal's name and logo on the gateway's own pages (issue 18): a clinician who expects
//! the hospital's portal must not meet an unknown product name and suspect phishing.

use crate::common::*;

/// The smallest valid PNG: one transparent pixel.
const PIXEL: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

#[test]
fn every_gateway_page_carries_the_portals_name_and_logo() {
    let portal = start_portal();
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, PIXEL).unwrap();
    let profile =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/sample-portal.toml");
    let gw = start_gateway_with(
        &format!(
            "[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:{}\"\nprofile = \"{}\"\ndisplay_name = \"Mediboard — CHU Exemple\"\nlogo_file = \"{}\"\n",
            portal.port,
            profile.display(),
            logo.display()
        ),
        "",
    );
    let page = get(gw.port, "/.vigie/no-such-page", "");
    assert_eq!(page.status, 404);
    let html = page.text();
    assert!(html.contains("Mediboard — CHU Exemple"), "{html}");
    assert!(html.contains("src=\"/.vigie/logo\""), "{html}");
    assert!(!html.contains("· Vigie</title>"), "{html}");
    let image = get(gw.port, "/.vigie/logo", "");
    assert_eq!(image.status, 200);
    assert_eq!(image.header("content-type"), Some("image/png"));
    assert_eq!(image.body, PIXEL);
}

#[test]
fn a_logo_that_is_not_an_image_is_refused_by_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("logo.svg");
    std::fs::write(
        &svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
    )
    .unwrap();
    let config = dir.path().join("vigie.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\naddress = \"127.0.0.1:1\"\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:2\"\nlogo_file = \"{}\"\n",
            svg.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(VIGIE)
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("logo_file"), "{err}");
    assert!(err.contains("not a PNG, JPEG, GIF or WebP"), "{err}");
}
