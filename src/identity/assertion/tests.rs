use super::*;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> AssertionClaims {
    let t = now();
    AssertionClaims {
        iss: "vigie".into(),
        aud: "ehr".into(),
        sub: "alice".into(),
        groups: vec!["clinicians".into()],
        iat: t,
        nbf: t,
        exp: t + 60,
        jti: "j1".into(),
        acr: "password".into(),
        sid: "abc".into(),
    }
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn valid_assertions_verify_and_every_forgery_is_refused() {
    let keys = AssertionKeys::ephemeral();
    let published = keys.public_keys();
    let good = keys.sign(&claims());
    assert_eq!(
        verify(&good, &published, "vigie", "ehr").unwrap().sub,
        "alice"
    );

    let (head, rest) = good.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let kid = &published[0].0;
    // alg=none, unsigned.
    let none = format!(
        "{}.{payload}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid}))
    );
    assert!(verify(&none, &published, "vigie", "ehr").is_err());
    // HS256 keyed with the public key (algorithm confusion).
    let hs = jsonwebtoken::encode(
        &Header {
            alg: Algorithm::HS256,
            kid: Some(kid.clone()),
            ..Header::default()
        },
        &claims(),
        &EncodingKey::from_secret(published[0].1.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        verify(&hs, &published, "vigie", "ehr"),
        Err(VerifyError::Algorithm)
    );
    // Unknown kid, wrong issuer or audience, truncated signature, tampered payload.
    let other = AssertionKeys::ephemeral().sign(&claims());
    assert_eq!(
        verify(&other, &published, "vigie", "ehr"),
        Err(VerifyError::UnknownKey)
    );
    assert!(verify(&good, &published, "other", "ehr").is_err());
    assert!(verify(&good, &published, "vigie", "lab").is_err());
    assert!(verify(
        &format!("{head}.{payload}.{}", &sig[..sig.len() - 4]),
        &published,
        "vigie",
        "ehr"
    )
    .is_err());
    let mut forged = claims();
    forged.sub = "admin".into();
    let forged = format!(
        "{head}.{}.{sig}",
        b64(&serde_json::to_value(&forged).unwrap())
    );
    assert!(verify(&forged, &published, "vigie", "ehr").is_err());
    // Expired and not yet valid.
    let mut old = claims();
    old.exp = now() - 1;
    assert!(verify(&keys.sign(&old), &published, "vigie", "ehr").is_err());
    let mut future = claims();
    future.nbf = now() + 120;
    future.exp = now() + 180;
    assert!(verify(&keys.sign(&future), &published, "vigie", "ehr").is_err());
    assert_eq!(
        verify("garbage", &published, "vigie", "ehr"),
        Err(VerifyError::Malformed)
    );
}

#[test]
fn rotation_keeps_older_keys_published() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("2026-01.pem"), generate_pem()).unwrap();
    let before = AssertionKeys::load_dir(dir.path()).unwrap();
    let old_token = before.sign(&claims());
    std::fs::write(dir.path().join("2026-02.pem"), generate_pem()).unwrap();
    let after = AssertionKeys::load_dir(dir.path()).unwrap();
    let new_token = after.sign(&claims());
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .as_deref(),
        Some("2026-02")
    );
    for t in [&old_token, &new_token] {
        assert!(verify(t, &after.public_keys(), "vigie", "ehr").is_ok());
    }
    assert!(after.jwks_json().contains("\"kid\":\"2026-01\""));
    // What a log or a panic shows of the keys: their names, oldest first, never a key.
    assert_eq!(
        format!("{after:?}"),
        r#"AssertionKeys(["2026-01", "2026-02"])"#
    );
    assert!(matches!(
        AssertionKeys::load_dir(tempfile::tempdir().unwrap().path()),
        Err(KeyError::Empty(_))
    ));
}
