//! A TLS listener's certificate and key, served to each new handshake from what was loaded
//! last: a reload reads the files again and swaps them in, so a renewed certificate reaches
//! new connections without a restart (connections already open keep theirs).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use openssl::pkey::{PKey, Private};
use openssl::ssl::SslRef;
use openssl::x509::X509;
use pingora::listeners::TlsAccept;

/// One listener's files and what was read from them.
pub struct Certificates {
    pub listener: String,
    cert: PathBuf,
    key: PathBuf,
    loaded: ArcSwap<Loaded>,
}

struct Loaded {
    chain: Vec<X509>,
    key: PKey<Private>,
}

impl Certificates {
    /// Read the files now; an error names the file (the start then fails).
    pub fn load(listener: String, cert: &Path, key: &Path) -> Result<Arc<Self>, String> {
        let loaded = read(cert, key)?;
        let c = Self {
            listener,
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            loaded: ArcSwap::from_pointee(loaded),
        };
        c.note_expiry();
        Ok(Arc::new(c))
    }

    /// Read the files again, without serving them yet: [`Prepared::install`] does, once
    /// every listener's files have loaded (a reload is all or nothing).
    pub fn prepare(self: &Arc<Self>) -> Result<Prepared, String> {
        Ok(Prepared(self.clone(), read(&self.cert, &self.key)?))
    }

    fn note_expiry(&self) {
        let loaded = self.loaded.load();
        let Some(leaf) = loaded.chain.first() else {
            return;
        };
        let epoch = openssl::asn1::Asn1Time::from_unix(0).expect("the epoch is a valid time");
        if let Ok(diff) = epoch.diff(leaf.not_after()) {
            let secs = diff.days as i64 * 86_400 + diff.secs as i64;
            crate::metrics::METRICS
                .certificate_expiry
                .with_label_values(&[&self.listener])
                .set(secs);
        }
    }
}

/// Files read by [`Certificates::prepare`], waiting to be served.
pub struct Prepared(Arc<Certificates>, Loaded);

impl Prepared {
    pub fn install(self) {
        self.0.loaded.store(Arc::new(self.1));
        self.0.note_expiry();
    }
}

fn read(cert: &Path, key: &Path) -> Result<Loaded, String> {
    let (chain, key) = crate::lifecycle::preflight::certificate(cert, key)?;
    Ok(Loaded { chain, key })
}

/// Pingora asks this during each handshake.
pub struct Serve(pub Arc<Certificates>);

#[async_trait]
impl TlsAccept for Serve {
    async fn certificate_callback(&self, ssl: &mut SslRef) {
        let loaded = self.0.loaded.load();
        let Some((leaf, rest)) = loaded.chain.split_first() else {
            return;
        };
        // A failure here leaves the handshake without a certificate: it fails, closed.
        if ssl.set_certificate(leaf).is_err() || ssl.set_private_key(&loaded.key).is_err() {
            tracing::error!(listener = %self.0.listener, "TLS: the certificate could not be set");
            return;
        }
        for c in rest {
            let _ = ssl.add_chain_cert(c.clone());
        }
    }
}
