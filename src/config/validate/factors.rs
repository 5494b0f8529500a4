//! Validation of `[second_factor]` and of portals' `[[portal.step_up]]` rules.

use super::*;
use crate::config::file::SecondFactorSection;
use crate::factors::crypto::KeyRing;
use crate::factors::totp::Hash;

impl Validator<'_> {
    pub(super) fn second_factor(
        &mut self,
        s: &SecondFactorSection,
        portals: &[PortalConfig],
    ) -> SecondFactorConfig {
        let needed = portals.iter().any(|p| p.holds_sessions());
        let keys = self.factor_keys(s, needed);
        let enrollment = match s.enrollment.as_str() {
            "invitation" => EnrollmentProof::Invitation,
            "trusted-networks" => EnrollmentProof::TrustedNetworks,
            "open" => {
                self.warnings.push("second_factor.enrollment = \"open\": anyone holding a user's password can bind their own factor to that account; use \"invitation\" or \"trusted-networks\" outside a demo".into());
                EnrollmentProof::Open
            }
            other => {
                self.err(
                    "second_factor.enrollment",
                    format!("unknown enrollment proof `{other}`"),
                    "use \"invitation\" (a code IT hands over), \"trusted-networks\" (CIDR list) or \"open\" (demo only)",
                );
                EnrollmentProof::Invitation
            }
        };
        let trusted_networks = self.networks("second_factor.trusted_networks", &s.trusted_networks);
        if enrollment == EnrollmentProof::TrustedNetworks && trusted_networks.is_empty() {
            self.err(
                "second_factor.trusted_networks",
                "enrollment = \"trusted-networks\" but no network is listed",
                "list the networks enrollment may happen from, e.g. [\"10.20.0.0/16\"]",
            );
        }
        if !s.required && portals.iter().any(|p| p.holds_sessions()) {
            self.warnings.push("second_factor.required = false: a stolen password alone opens the portal; keep this only for a staged rollout".into());
        }
        let totp_hash = Hash::parse(&s.totp_algorithm).unwrap_or_else(|| {
            self.err(
                "second_factor.totp_algorithm",
                format!("unknown TOTP algorithm `{}`", s.totp_algorithm),
                "use \"SHA1\" (every authenticator app), \"SHA256\" or \"SHA512\"",
            );
            Hash::Sha1
        });
        let max_failures = self.range(
            "second_factor.max_failures",
            s.max_failures,
            3,
            100,
            " (NIST 800-63B: at most 100 consecutive failures before a lock)",
        ) as u32;
        let minutes = |v: &mut Self, key: &str, raw: i64, hi: i64| {
            Duration::from_secs(v.range(key, raw, 1, hi, "") * 60)
        };
        let invitation_ttl = Duration::from_secs(
            self.range(
                "second_factor.invitation_ttl_hours",
                s.invitation_ttl_hours,
                1,
                24 * 30,
                "",
            ) * 3600,
        );
        let enrollment_window = minutes(
            self,
            "second_factor.enrollment_window_minutes",
            s.enrollment_window_minutes,
            120,
        );
        let fresh_window = minutes(self, "second_factor.fresh_minutes", s.fresh_minutes, 60);
        let rp_ok = !s.webauthn_rp_id.is_empty()
            && s.webauthn_rp_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !rp_ok {
            self.err(
                "second_factor.webauthn_rp_id",
                format!("`{}` is not a domain name", s.webauthn_rp_id),
                "use the portal's host name (or a parent domain), e.g. \"ehr.chu-exemple.fr\"",
            );
        }
        for (i, o) in s.webauthn_origins.iter().enumerate() {
            if let Err(why) = origin_fits(o, &s.webauthn_rp_id) {
                self.err(
                    &format!("second_factor.webauthn_origins[{i}]"),
                    format!("`{o}` {why}"),
                    "write the exact address users type, e.g. \"https://ehr.chu-exemple.fr\": https (http only for localhost), no path, its host the RP id or below it",
                );
            }
        }
        if needed && s.webauthn_origins.is_empty() && !self.demo {
            self.err(
                "second_factor.webauthn_origins",
                "no origin is listed, so passkeys cannot be used",
                "list the address users type, e.g. [\"https://ehr.chu-exemple.fr\"]",
            );
        }
        SecondFactorConfig {
            required: s.required,
            keys,
            enrollment,
            trusted_networks,
            privileged_groups: s.privileged_groups.clone(),
            invitation_ttl,
            enrollment_window,
            fresh_window,
            max_failures,
            totp_hash,
            issuer: s.issuer.clone(),
            rp_id: s.webauthn_rp_id.clone(),
            rp_name: s.webauthn_rp_name.clone(),
            origins: s.webauthn_origins.clone(),
        }
    }

    /// The key ring, from a file or an environment variable. Without one, only the demo runs.
    fn factor_keys(
        &mut self,
        s: &SecondFactorSection,
        needed: bool,
    ) -> Option<std::sync::Arc<crate::factors::crypto::KeyRing>> {
        let (key, text) = match (&s.key_file, &s.key_env) {
            (Some(_), Some(_)) => {
                self.err(
                    "second_factor.key_env",
                    "both key_file and key_env are set",
                    "keep one source for the key ring",
                );
                return None;
            }
            (Some(file), None) => {
                let path = self.base.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(t) => ("second_factor.key_file", t),
                    Err(e) => {
                        self.err(
                            "second_factor.key_file",
                            format!("cannot read `{}`: {e}", path.display()),
                            "create it with `vigie keys factor-key > FILE` (mode 0600)",
                        );
                        return None;
                    }
                }
            }
            (None, Some(var)) => match std::env::var(var) {
                Ok(t) => ("second_factor.key_env", t),
                Err(_) => {
                    self.err(
                        "second_factor.key_env",
                        format!("environment variable `{var}` is not set"),
                        "set it to the output of `vigie keys factor-key`",
                    );
                    return None;
                }
            },
            (None, None) => {
                if needed && !self.demo {
                    self.err(
                        "second_factor",
                        "no key encrypts second-factor secrets at rest",
                        "set key_file (or key_env) to a key ring made with `vigie keys factor-key`",
                    );
                }
                return None;
            }
        };
        match KeyRing::parse(&text) {
            Ok(ring) => Some(std::sync::Arc::new(ring)),
            Err(e) => {
                self.err(
                    key,
                    format!("the key ring is invalid: {e}"),
                    "each line is ID:BASE64 of 32 random bytes; `vigie keys factor-key` prints one",
                );
                None
            }
        }
    }
}

/// Whether `origin` is a bare origin (scheme, host, port) whose host is `rp_id` or below it.
pub(super) fn origin_fits(origin: &str, rp_id: &str) -> Result<(), &'static str> {
    let url = webauthn_rs::prelude::Url::parse(origin).map_err(|_| "is not a URL")?;
    let host = url.host_str().ok_or("has no host")?;
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err("is not a bare origin");
    }
    match url.scheme() {
        "https" => {}
        "http" if host == "localhost" => {}
        _ => return Err("is not https (http is only for localhost)"),
    }
    if host == rp_id || host.ends_with(&format!(".{rp_id}")) {
        Ok(())
    } else {
        Err("is not an origin under webauthn_rp_id")
    }
}

#[cfg(test)]
mod tests;
