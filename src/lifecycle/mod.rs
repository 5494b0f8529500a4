//! The process around the gateway: its signals (reload, drain, upgrade, stop), the checks a
//! start depends on, and what `/readyz` says of them.
//!
//! - [`signals`]: `SIGHUP` reloads; `SIGTERM` drains (still serving) for the grace period,
//!   then stops; `SIGQUIT` hands the listening sockets to a new process; `SIGINT` stops now.
//! - [`reload`]: a new file is validated whole, then swapped in for new requests.
//! - [`bound`]: which ports this process really listens on (read from the kernel).
//! - [`preflight`]: what `run` needs before it starts, checked by `check-config` too.

pub mod bound;
pub mod preflight;
pub mod ready;
pub mod reload;
pub mod signals;
pub mod upgrade;

use std::sync::atomic::{AtomicBool, Ordering};

pub use reload::{ReloadError, Reloader};

/// Whether this process is draining: it still serves, but `/readyz` says 503 so load
/// balancers send new clients elsewhere, and answers close their keep-alive connections.
static DRAINING: AtomicBool = AtomicBool::new(false);

pub fn draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}

pub(crate) fn start_draining() {
    DRAINING.store(true, Ordering::Relaxed);
    crate::metrics::METRICS.draining.set(1);
}
