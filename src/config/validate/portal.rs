//! Validation of portals: names, hosts, upstreams, timeouts, login mode and profile.

use super::*;

impl Validator<'_> {
    pub(super) fn portals(
        &mut self,
        sections: &[PortalSection],
        zone: &jiff::tz::TimeZone,
    ) -> Vec<PortalConfig> {
        if sections.is_empty() {
            self.err(
                "portal",
                "no [[portal]] is configured, so there is nothing to protect",
                "add a table such as:\n    [[portal]]\n    name = \"ehr\"\n    upstream = \"127.0.0.1:8081\"",
            );
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut hosts: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, p) in sections.iter().enumerate() {
            let key = format!("portal[{i}]");
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                self.err(
                    &format!("{key}.name"),
                    format!("`{}` is not a valid portal name", p.name),
                    "use letters, digits, `-` and `_` (it appears in metrics labels)",
                );
            } else if let Some(prev) = names.insert(&p.name, i) {
                self.err(
                    &format!("{key}.name"),
                    format!("portal name `{}` is already used by portal[{prev}]", p.name),
                    "give each portal a unique name",
                );
            }
            if p.hosts.is_empty() {
                self.err(
                    &format!("{key}.hosts"),
                    "the host list is empty, so no request can reach this portal",
                    "list the host names clients use, or \"*\" for any host",
                );
            }
            let mut portal_hosts = Vec::new();
            for (j, h) in p.hosts.iter().enumerate() {
                let h = h.to_ascii_lowercase();
                let hkey = format!("{key}.hosts[{j}]");
                if h != "*" && !valid_host(&h) {
                    self.err(&hkey, format!("`{h}` is not a host name"), "write a host without scheme or port, e.g. \"ehr.hospital.local\", or \"*\"");
                    continue;
                }
                if let Some(prev) = hosts.insert(h.clone(), i) {
                    self.err(
                        &hkey,
                        format!("host `{h}` is already served by portal[{prev}]"),
                        "each host name (and the \"*\" catch-all) belongs to one portal",
                    );
                }
                portal_hosts.push(h);
            }
            let upstream = self.upstream(&format!("{key}.upstream"), &p.upstream);
            let upstream_tls = if p.upstream_tls {
                let sni = p.upstream_sni.clone().or_else(|| {
                    let host = p
                        .upstream
                        .rsplit_once(':')
                        .map_or(p.upstream.as_str(), |(h, _)| h);
                    (host.parse::<std::net::IpAddr>().is_err()).then(|| host.to_string())
                });
                if sni.is_none() {
                    self.err(
                        &format!("{key}.upstream_sni"),
                        "the portal speaks TLS but no certificate name is known",
                        "set upstream_sni to the name on the portal's certificate",
                    );
                }
                sni
            } else {
                if p.upstream_sni.is_some() {
                    self.err(
                        &format!("{key}.upstream_sni"),
                        "upstream_sni is set but upstream_tls is false",
                        "set upstream_tls = true, or remove upstream_sni",
                    );
                }
                None
            };
            let ms = |v: &mut Self, k: &str, val: i64, hi: i64| {
                Duration::from_millis(v.range(&format!("{key}.{k}"), val, 1, hi, " milliseconds"))
            };
            let connect_timeout = ms(self, "connect_timeout_ms", p.connect_timeout_ms, 60_000);
            let read_timeout = ms(self, "read_timeout_ms", p.read_timeout_ms, 3_600_000);
            let write_timeout = ms(self, "write_timeout_ms", p.write_timeout_ms, 3_600_000);
            let idle_timeout = secs(self.range(
                &format!("{key}.idle_timeout_seconds"),
                p.idle_timeout_seconds,
                0,
                3600,
                "",
            ));
            let profile = p.profile.as_ref().and_then(|raw| {
                let path = self.base.join(raw);
                let loaded = match raw.strip_prefix("builtin:") {
                    Some(name) => super::profile::load_builtin(name).unwrap_or_else(|| {
                        Err(ConfigErrors(vec![self.loc.error(
                            &format!("{key}.profile"),
                            format!("no embedded profile `{name}`"),
                            Some(format!(
                                "embedded profiles: {}",
                                super::profile::builtin_names().join(", ")
                            )),
                        )]))
                    }),
                    None => super::profile::load(&path),
                };
                match loaded {
                    Ok(profile) if p.case_insensitive_paths => {
                        Some(std::sync::Arc::new(profile.ignoring_path_case()))
                    }
                    Ok(profile) => Some(std::sync::Arc::new(profile)),
                    Err(errors) => {
                        // The profile's own errors name its file; say which portal uses it too.
                        let key = format!("{key}.profile");
                        let msg = format!(
                            "the portal profile `{}` is invalid (see below)",
                            path.display()
                        );
                        self.errors.push(self.loc.error(&key, msg, None));
                        self.errors.extend(errors.0);
                        None
                    }
                }
            });
            if let Some(pr) = profile.as_ref().filter(|pr| pr.login.confirm.is_none()) {
                self.warnings.push(format!(
                    "{key}: profile `{}` has no [login.confirm]: the gateway cannot ask the portal who signed in, so identity binding after a login, the check of a rotated portal session and the screen of pages served before login are off; name the page that shows the signed-in user",
                    pr.name
                ));
            }
            let login = match p.login.as_str() {
                "portal" => LoginMode::Portal,
                "gateway" => {
                    for (k, v) in [
                        ("identity_header_user", &p.identity_header_user),
                        ("identity_header_groups", &p.identity_header_groups),
                    ] {
                        if !valid_header_name(v) {
                            self.err(
                                &format!("{key}.{k}"),
                                format!("`{v}` is not a header name"),
                                "e.g. \"X-Remote-User\"",
                            );
                        }
                    }
                    if p.profile.is_some() {
                        self.err(&format!("{key}.login"), "a portal either logs people in itself (profile) or trusts the gateway's login, not both", "remove `profile`, or set login = \"portal\"");
                    }
                    LoginMode::Gateway {
                        user_header: p.identity_header_user.clone(),
                        groups_header: p.identity_header_groups.clone(),
                    }
                }
                other => {
                    self.err(&format!("{key}.login"), format!("unknown login mode `{other}`"), "use \"portal\" (the portal's own form, with a profile) or \"gateway\" (local users, identity headers)");
                    LoginMode::Portal
                }
            };
            let brand = self.brand(&key, p, zone);
            if let Some(upstream) = upstream {
                out.push(PortalConfig {
                    brand,
                    name: p.name.clone(),
                    hosts: portal_hosts,
                    upstream,
                    upstream_tls,
                    connect_timeout,
                    read_timeout,
                    write_timeout,
                    idle_timeout,
                    case_insensitive_paths: p.case_insensitive_paths,
                    profile,
                    login,
                });
            }
        }
        out
    }

    /// The portal's name and logo for the gateway's pages.
    fn brand(
        &mut self,
        key: &str,
        p: &PortalSection,
        zone: &jiff::tz::TimeZone,
    ) -> std::sync::Arc<crate::pages::Brand> {
        use crate::pages::brand::{image_type, Brand, Logo, MAX_LOGO_BYTES};
        let name = p.display_name.clone().unwrap_or_else(|| p.name.clone());
        if name.trim().is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control)
        {
            self.err(
                &format!("{key}.display_name"),
                "a display name is 1 to 80 characters, without control characters",
                "e.g. \"Mediboard — CHU de Lille\"",
            );
        }
        let logo = p.logo_file.as_ref().and_then(|raw| {
            let path = self.base.join(raw);
            let lkey = format!("{key}.logo_file");
            let meta = std::fs::metadata(&path).ok();
            if meta
                .as_ref()
                .is_some_and(|m| !m.is_file() || m.len() > MAX_LOGO_BYTES as u64)
            {
                self.err(
                    &lkey,
                    format!(
                        "`{}` is not a regular file of at most {MAX_LOGO_BYTES} bytes",
                        path.display()
                    ),
                    "give an image file (a logo 32 pixels high is shown)",
                );
                return None;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    self.err(
                        &lkey,
                        format!("cannot read `{}`: {e}", path.display()),
                        "give a readable image; relative paths start from the config file's folder",
                    );
                    return None;
                }
            };
            if bytes.len() > MAX_LOGO_BYTES {
                self.err(
                    &lkey,
                    format!(
                        "`{}` is {} bytes, over {MAX_LOGO_BYTES}",
                        path.display(),
                        bytes.len()
                    ),
                    "use a smaller image (a logo 32 pixels high is shown)",
                );
                return None;
            }
            let Some(content_type) = image_type(&bytes) else {
                self.err(
                    &lkey,
                    format!("`{}` is not a PNG, JPEG, GIF or WebP image", path.display()),
                    "convert it (SVG is refused: it can carry script)",
                );
                return None;
            };
            Some(Logo {
                content_type,
                bytes: bytes.into(),
            })
        });
        let help_desk = p.help_desk.clone();
        if help_desk.as_ref().is_some_and(|h| {
            h.trim().is_empty() || h.chars().count() > 120 || h.chars().any(char::is_control)
        }) {
            self.err(
                &format!("{key}.help_desk"),
                "the help desk line is 1 to 120 characters, without control characters",
                "e.g. \"poste 4455, 24 h/24\" or \"+33 3 20 44 55 66\"",
            );
        }
        std::sync::Arc::new(Brand {
            name,
            logo,
            help_desk,
            zone: zone.clone(),
        })
    }

    pub(super) fn upstream(&mut self, key: &str, raw: &str) -> Option<SocketAddr> {
        if let Ok(a) = raw.parse::<SocketAddr>() {
            return Some(a);
        }
        if !raw.contains(':') {
            self.err(
                key,
                format!("`{raw}` has no port"),
                "write HOST:PORT, e.g. \"10.1.2.3:80\" or \"ehr.internal:8443\"",
            );
            return None;
        }
        match raw.to_socket_addrs().map(|mut it| it.next()) {
            Ok(Some(a)) => Some(a),
            _ => {
                self.err(
                    key,
                    format!("`{raw}` does not resolve to an address"),
                    "check the host name, or write the portal's IP:PORT",
                );
                None
            }
        }
    }
}
