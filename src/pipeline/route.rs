//! Which portal a request is for, chosen by host name.

use std::collections::HashMap;
use std::sync::Arc;

use pingora::upstreams::peer::HttpPeer;

use crate::config::PortalConfig;

/// A portal ready to receive traffic: its settings and a prepared upstream peer.
#[derive(Debug)]
pub struct Portal {
    pub config: PortalConfig,
    /// Cloned per request; building it once keeps option parsing off the hot path.
    pub peer: HttpPeer,
}

impl Portal {
    pub fn new(config: PortalConfig) -> Self {
        let tls = config.upstream_tls.is_some();
        let sni = config.upstream_tls.clone().unwrap_or_default();
        let mut peer = HttpPeer::new(config.upstream, tls, sni);
        let o = &mut peer.options;
        o.connection_timeout = Some(config.connect_timeout);
        o.read_timeout = Some(config.read_timeout);
        o.write_timeout = Some(config.write_timeout);
        o.idle_timeout = Some(config.idle_timeout);
        Self { config, peer }
    }
}

/// Host name -> portal, with an optional catch-all.
#[derive(Debug, Default)]
pub struct Router {
    by_host: HashMap<String, Arc<Portal>>,
    fallback: Option<Arc<Portal>>,
}

impl Router {
    pub fn new(portals: &[PortalConfig]) -> Self {
        let mut router = Router::default();
        for p in portals {
            let portal = Arc::new(Portal::new(p.clone()));
            for host in &p.hosts {
                if host == "*" {
                    router.fallback = Some(portal.clone());
                } else {
                    router.by_host.insert(host.clone(), portal.clone());
                }
            }
        }
        router
    }

    /// `host` is already lower-case and without port.
    pub fn select(&self, host: &str) -> Option<&Arc<Portal>> {
        self.by_host.get(host).or(self.fallback.as_ref())
    }
}

#[cfg(test)]
mod tests;
