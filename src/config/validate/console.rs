//! Validation of `[console]`: its address apart from the others, TLS unless on loopback (it
//! carries analysts' passwords), its relying party and origins, its timeouts and role groups.

use super::*;
use crate::config::file::ConsoleSection;

impl Validator<'_> {
    pub(super) fn console(
        &mut self,
        c: &ConsoleSection,
        listeners: &[ListenerConfig],
        admin: Option<SocketAddr>,
        zone: &jiff::tz::TimeZone,
    ) -> Option<ConsoleConfig> {
        let raw = c
            .address
            .as_deref()
            .filter(|a| !a.is_empty() && *a != "off")?;
        let address = self.socket_addr("console.address", raw)?;
        if listeners.iter().any(|l| l.address == address) || admin == Some(address) {
            self.err(
                "console.address",
                format!("{address} is already the proxy's or the admin listener's"),
                "the console needs an address of its own (e.g. 0.0.0.0:9443 on the SOC network)",
            );
        }
        let tls = match (&c.tls_cert, &c.tls_key) {
            (Some(cert), Some(key)) => {
                let cert = self.readable_file("console.tls_cert", cert);
                let key = self.readable_file("console.tls_key", key);
                cert.zip(key)
            }
            (None, None) => None,
            _ => {
                self.err(
                    "console.tls_cert",
                    "tls_cert and tls_key go together",
                    "set both (the console's certificate and key)",
                );
                None
            }
        };
        if tls.is_none() && !address.ip().is_loopback() && c.tls_cert.is_none() {
            self.err(
                "console.address",
                format!("{address} is reachable from the network over plain HTTP"),
                "the console carries analysts' passwords and patients' re-identification: set console.tls_cert and console.tls_key, or listen on 127.0.0.1 behind a TLS proxy",
            );
        }
        let rp_ok = !c.webauthn_rp_id.is_empty()
            && c.webauthn_rp_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !rp_ok {
            self.err(
                "console.webauthn_rp_id",
                format!("`{}` is not a domain name", c.webauthn_rp_id),
                "use the host name analysts type to reach the console, e.g. \"soc.hopital.example\"",
            );
        }
        let origins = match c.webauthn_origins.is_empty() {
            // The loopback default: the browser on the console's own machine.
            true if address.ip().is_loopback() && c.webauthn_rp_id == "localhost" => {
                vec![format!("http://localhost:{}", address.port())]
            }
            true => {
                self.err(
                    "console.webauthn_origins",
                    "no origin is set for the console's passkeys",
                    "list the console's address as analysts' browsers show it, e.g. [\"https://soc.hopital.example:9443\"]",
                );
                Vec::new()
            }
            false => c.webauthn_origins.clone(),
        };
        for (i, o) in origins.iter().enumerate() {
            if let Err(why) = factors::origin_fits(o, &c.webauthn_rp_id) {
                self.err(
                    &format!("console.webauthn_origins[{i}]"),
                    format!("`{o}` {why}"),
                    "an origin is scheme://host[:port] with the host at or below webauthn_rp_id; http only for localhost",
                );
            }
        }
        if !c.require_passkey {
            self.warnings.push("console.require_passkey = false: a stolen analyst password opens the SOC console (alerts, holds, re-identification); keep passkeys unless an SSO with its own second factor stands before it".into());
        }
        let idle = self.range("console.idle_minutes", c.idle_minutes, 1, 240, "");
        let hours = self.range("console.session_hours", c.session_hours, 1, 24, "");
        for (key, groups) in [
            ("console.soc_groups", &c.soc_groups),
            ("console.dpo_groups", &c.dpo_groups),
            ("console.it_groups", &c.it_groups),
        ] {
            if groups.iter().any(|g| g.trim().is_empty()) {
                self.err(key, "an empty group name", "name the local users' groups");
            }
        }
        Some(ConsoleConfig {
            address,
            tls,
            rp_id: c.webauthn_rp_id.clone(),
            origins,
            require_passkey: c.require_passkey,
            idle: Duration::from_secs(idle * 60),
            lifetime: Duration::from_secs(hours * 3600),
            soc_groups: c.soc_groups.clone(),
            dpo_groups: c.dpo_groups.clone(),
            it_groups: c.it_groups.clone(),
            zone: zone.clone(),
        })
    }
}
