//! Open connections per direct peer address (threat model 41): one address holding thousands of
//! idle sockets exhausted the process's file descriptors and locked everyone else out.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;

/// Why a connection was refused; the label is the metric's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The peer holds `max_connections_per_peer` connections already.
    PeerCap,
    /// The peer holds 90% of the process's descriptors already (trusted proxies included).
    FdReserve,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::PeerCap => "peer_cap",
            Refusal::FdReserve => "fd_reserve",
        }
    }
}

/// The count of open connections by peer address. Accepting is far rarer than reading, so one
/// mutex held for a map lookup is cheap enough; an address leaves the map with its last
/// connection, so the map holds only peers connected now.
#[derive(Debug)]
pub struct Peers {
    open: Mutex<HashMap<IpAddr, usize>>,
    per_peer: usize,
    fd_share: usize,
    trusted: Vec<IpNet>,
}

impl Peers {
    /// `per_peer` for each address except `trusted` ones, and at most `fd_share` for any.
    ///
    /// Trusted proxies are exempt from `per_peer`: all their users arrive through them. Their
    /// users would be capped per resolved client address, but that address is only known per
    /// request (`X-Forwarded-For`) and a proxy multiplexes many users over its pooled
    /// connections, so a connection belongs to no one user; per-user limits behind a proxy are
    /// the budgets' (`[budgets.source]`) and the proxy's own. The descriptor reserve still
    /// applies to them.
    pub fn new(per_peer: usize, fd_share: usize, trusted: Vec<IpNet>) -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            per_peer,
            fd_share: fd_share.max(1),
            trusted,
        }
    }

    fn open(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // Nothing panics while holding the lock; the counts stay right even if something did.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one more connection from `ip`, or say why not. The permit uncounts it when dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let exempt = self.trusted.iter().any(|n| n.contains(&ip));
        let mut open = self.open();
        let held = open.get(&ip).copied().unwrap_or(0);
        if !exempt && held >= self.per_peer {
            return Err(Refusal::PeerCap);
        }
        if held >= self.fd_share {
            return Err(Refusal::FdReserve);
        }
        open.insert(ip, held + 1);
        Ok(Permit {
            peers: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn held(&self, ip: IpAddr) -> usize {
        self.open().get(&ip).copied().unwrap_or(0)
    }
}

/// One counted connection, for as long as it lives.
#[derive(Debug)]
pub struct Permit {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Entry::Occupied(mut held) = self.peers.open().entry(self.ip) {
            *held.get_mut() -= 1;
            if *held.get() == 0 {
                held.remove();
            }
        }
    }
}

/// What one source may hold: 90% of the soft open-file limit, so others can still connect.
/// Each connection is counted as one descriptor; the portal connection a request in flight
/// also holds comes out of the remaining 10% and of other peers' share. `None`: no limit.
pub fn fd_share() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(limit.rlim_cur / 10 * 9).ok()
}

#[cfg(test)]
mod tests;
