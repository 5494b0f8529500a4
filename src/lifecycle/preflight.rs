//! What `run` depends on beyond a valid file, checked before it starts (and by
//! `check-config`), so a start fails at once with the reason instead of half-way through:
//! overlapping listener addresses, certificates and keys that do not load, a database
//! directory the process cannot write; with `bind`, the addresses themselves.

use std::net::SocketAddr;
use std::path::Path;

use crate::config::{Config, Records, StorageBackend};

/// Every problem found, each naming the setting and the fix.
pub fn check(config: &Config, bind: bool) -> Vec<String> {
    let mut problems = overlaps(&addresses(config));
    for l in &config.listeners {
        if let Some(tls) = &l.tls {
            if let Err(e) = certificate(&tls.cert, &tls.key) {
                problems.push(format!("listener {}: {e}", l.address));
            }
        }
    }
    let sqlite = matches!(config.storage.backend, StorageBackend::Embedded)
        || matches!(config.storage.records, Records::Sqlite);
    if sqlite {
        if let Err(e) = writable(&config.storage.database) {
            problems.push(format!(
                "storage.database = {:?}: {e}: make its directory writable by this user \
                 (the systemd unit's StateDirectory=, the container's volume)",
                config.storage.database
            ));
        }
    }
    if bind {
        // All held at once, as the gateway holds them: two of ours that clash are found too.
        let mut held = Vec::new();
        for (what, addr) in addresses(config) {
            match std::net::TcpListener::bind(addr) {
                Ok(l) => held.push(l),
                Err(e) => problems.push(format!(
                    "{what} {addr}: cannot listen: {e}{}",
                    hint(&e, addr)
                )),
            }
        }
    }
    problems
}

/// The addresses this gateway listens on, with what each is for.
fn addresses(config: &Config) -> Vec<(&'static str, SocketAddr)> {
    let mut v: Vec<_> = config
        .listeners
        .iter()
        .map(|l| ("listener", l.address))
        .collect();
    v.extend(config.admin.map(|a| ("admin.address", a)));
    v
}

/// Two addresses on one port where one is the wildcard (`0.0.0.0:P` beside `127.0.0.1:P`):
/// the second bind fails at run, whatever the order. `[::]` takes IPv4 too (Linux's
/// default, dual-stack sockets), so it clashes with any address on its port.
fn overlaps(addrs: &[(&'static str, SocketAddr)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, (wa, a)) in addrs.iter().enumerate() {
        for (wb, b) in &addrs[i + 1..] {
            let covers = |w: &SocketAddr, o: &SocketAddr| {
                w.ip().is_unspecified() && (w.is_ipv6() || o.is_ipv4())
            };
            let clash = a.port() == b.port() && (a.ip() == b.ip() || covers(a, b) || covers(b, a));
            if clash {
                problems.push(format!(
                    "{wa} {a} and {wb} {b} use the same port: only one of them can listen; \
                     give one another port, or keep only the wildcard address"
                ));
            }
        }
    }
    problems
}

fn hint(e: &std::io::Error, addr: SocketAddr) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another process holds the port: `ss -ltnp` names it; a running Vigie? use \
             `vigie run --upgrade` to replace it without a gap)"
        }
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            " (ports below 1024 need CAP_NET_BIND_SERVICE: AmbientCapabilities= in the unit)"
        }
        std::io::ErrorKind::AddrNotAvailable => " (no interface of this machine has that address)",
        _ => "",
    }
}

/// What a start allows but an operator should fix: certificates browsers will refuse, and a
/// database folder others may write (they could plant the database or its session key).
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = certificate_warnings(config);
    if let Some(dir) = config.storage.database.parent() {
        use std::os::unix::fs::MetadataExt;
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o022 != 0) {
            out.push(format!(
                "the database folder {} is writable by others: someone could put a database or \
                 a session key there before the first start; give the gateway a folder of its own \
                 (mode 0700)",
                dir.display()
            ));
        }
    }
    out
}

/// Certificates that load but that browsers will refuse: expired, or not valid yet. Said,
/// not refused: a gateway that does not start helps nobody, its metrics say the expiry.
pub fn certificate_warnings(config: &Config) -> Vec<String> {
    let now = openssl::asn1::Asn1Time::days_from_now(0).expect("now is a valid time");
    let mut out = Vec::new();
    for l in &config.listeners {
        let Some(tls) = &l.tls else { continue };
        let Ok(pem) = std::fs::read(&tls.cert) else {
            continue;
        };
        let Some(leaf) = openssl::x509::X509::stack_from_pem(&pem)
            .ok()
            .and_then(|c| c.into_iter().next())
        else {
            continue;
        };
        if leaf.not_after() < now {
            out.push(format!(
                "listener {}: certificate {} expired on {}: browsers refuse it",
                l.address,
                tls.cert.display(),
                leaf.not_after()
            ));
        }
        if leaf.not_before() > now {
            out.push(format!(
                "listener {}: certificate {} is valid only from {}",
                l.address,
                tls.cert.display(),
                leaf.not_before()
            ));
        }
    }
    out
}

/// A certificate chain (leaf first) and its private key.
pub type Loaded = (
    Vec<openssl::x509::X509>,
    openssl::pkey::PKey<openssl::pkey::Private>,
);

/// The certificate chain and key load, and the key is the certificate's: what a TLS
/// listener serves (`listener::certificates`) and what the checks read, read once.
pub fn certificate(cert: &Path, key: &Path) -> Result<Loaded, String> {
    let read = |p: &Path, what: &str| {
        // Only a regular file: a FIFO would block the start (or a reload) for ever.
        if std::fs::metadata(p).is_ok_and(|m| !m.is_file()) {
            return Err(format!("{what} {}: not a regular file", p.display()));
        }
        std::fs::read(p).map_err(|e| format!("{what} {}: cannot read: {e}", p.display()))
    };
    let pem = read(cert, "certificate")?;
    let chain = openssl::x509::X509::stack_from_pem(&pem)
        .map_err(|_| format!("certificate {}: no PEM certificate in it", cert.display()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| format!("certificate {}: no PEM certificate in it", cert.display()))?;
    let key_pem = read(key, "key")?;
    let pkey = openssl::pkey::PKey::private_key_from_pem(&key_pem)
        .map_err(|_| format!("key {}: not a PEM private key", key.display()))?;
    let public = leaf
        .public_key()
        .map_err(|_| format!("certificate {}: no public key", cert.display()))?;
    if !public.public_eq(&pkey) {
        return Err(format!(
            "key {} is not the key of certificate {}",
            key.display(),
            cert.display()
        ));
    }
    Ok((chain, pkey))
}

/// Whether this process can create files beside `path` (SQLite writes its journal there).
fn writable(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("this is a directory: name the database file in it, e.g. vigie.sqlite".into());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!("directory {} does not exist", dir.display()));
    }
    let probe = dir.join(format!(".vigie-preflight-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> (&'static str, SocketAddr) {
        ("listener", s.parse().unwrap())
    }

    #[test]
    fn a_wildcard_beside_a_loopback_on_one_port_is_named() {
        let found = overlaps(&[a("0.0.0.0:8080"), a("127.0.0.1:8080")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("0.0.0.0:8080") && found[0].contains("127.0.0.1:8080"));
        assert!(overlaps(&[a("0.0.0.0:8080"), a("127.0.0.1:8081")]).is_empty());
        assert!(overlaps(&[a("10.0.0.1:8080"), a("127.0.0.1:8080")]).is_empty());
        assert_eq!(
            overlaps(&[a("127.0.0.1:8080"), a("127.0.0.1:8080")]).len(),
            1
        );
        // Dual-stack: [::] takes IPv4 as well.
        assert_eq!(overlaps(&[a("[::]:8080"), a("127.0.0.1:8080")]).len(), 1);
        assert_eq!(overlaps(&[a("0.0.0.0:8080"), a("[::]:8080")]).len(), 1);
        assert!(overlaps(&[a("0.0.0.0:8080"), a("[::1]:8080")]).is_empty());
    }

    /// A self-signed certificate and its key, written as `NAME.crt` and `NAME.key`.
    fn self_signed(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let now = jiff::Timestamp::now().as_second();
        self_signed_between(dir, name, now, now + 30 * 86_400)
    }

    /// The same, valid between two unix times.
    fn self_signed_between(
        dir: &Path,
        name: &str,
        from: i64,
        until: i64,
    ) -> (std::path::PathBuf, std::path::PathBuf) {
        use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut cn = x509::X509NameBuilder::new().unwrap();
        cn.append_entry_by_text("CN", name).unwrap();
        let cn = cn.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_subject_name(&cn).unwrap();
        b.set_issuer_name(&cn).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(from).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(until).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, b.build().to_pem().unwrap()).unwrap();
        std::fs::write(&k, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (c, k)
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, k1) = self_signed(dir.path(), "one");
        let (_, k2) = self_signed(dir.path(), "two");
        assert!(certificate(&c1, &k1).is_ok());
        let e = certificate(&c1, &k2).unwrap_err();
        assert!(e.contains("is not the key of certificate"), "{e}");
        let e = certificate(&dir.path().join("missing.pem"), &k1).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
        std::fs::write(dir.path().join("junk.pem"), "hello").unwrap();
        let e = certificate(&dir.path().join("junk.pem"), &k1).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
    }

    #[test]
    fn an_expired_certificate_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed_between(dir.path(), "old", 1_577_836_800, 1_609_459_200);
        let text = format!(
            "[[listener]]\naddress = \"127.0.0.1:8443\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n[[portal]]\nname = \"ehr\"\nupstream = \"127.0.0.1:8081\"\n",
            cert.display(),
            key.display()
        );
        let config = Config::demo_from_toml(Path::new("v.toml"), &text).unwrap();
        let said = certificate_warnings(&config);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("expired"), "{said:?}");
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(writable(&dir.path().join("vigie.sqlite")), Ok(()));
        let e = writable(&dir.path().join("nope/vigie.sqlite")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = writable(dir.path()).unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
    }
}
