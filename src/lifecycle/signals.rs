//! The signals a running gateway obeys, in place of Pingora's default watcher (which lets
//! `SIGHUP` kill the process and stops accepting the moment `SIGTERM` arrives).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use tokio::signal::unix::{signal, SignalKind};

use super::Reloader;

pub struct Signals {
    pub reloader: Option<Arc<Reloader>>,
    /// How long the gateway keeps accepting after `SIGTERM` (`server.grace_period_seconds`).
    pub grace: Duration,
    /// Where a new gateway waits for the listening sockets (`server.upgrade_socket`).
    pub upgrade_socket: std::path::PathBuf,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let mut hangup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut quit = signal(SignalKind::quit()).expect("SIGQUIT handler");
        let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
        if HANGUP_DURING_START.swap(false, Ordering::Relaxed) {
            if let Some(r) = self.reloader.clone() {
                tracing::info!("SIGHUP came during the start: reloading now");
                let rt = tokio::runtime::Handle::current();
                std::thread::spawn(move || {
                    let _in_rt = rt.enter();
                    r.reload("SIGHUP during start")
                });
            }
        }
        loop {
            tokio::select! {
                _ = hangup.recv() => match &self.reloader {
                    Some(r) => {
                        // A reload reads files: off this runtime, and not waited for, so a
                        // file that never answers cannot hold up SIGTERM.
                        let r = r.clone();
                        // A thread of its own: one stuck on a file must not keep the
                        // runtime (and so the process) from ending at SIGTERM.
                        let rt = tokio::runtime::Handle::current();
                        std::thread::spawn(move || {
                            let _in_rt = rt.enter();
                            r.reload("SIGHUP")
                        });
                    }
                    None => tracing::warn!("SIGHUP: this gateway cannot reload (the demo)"),
                },
                _ = terminate.recv() => {
                    super::start_draining();
                    tracing::info!(
                        grace_s = self.grace.as_secs(),
                        "SIGTERM: draining: still serving, /readyz answers 503, then stopping"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(self.grace) => {}
                        _ = interrupt.recv() => return ShutdownSignal::FastShutdown,
                    }
                    tracing::info!("grace period over: no new connections; finishing requests in flight");
                    return ShutdownSignal::GracefulTerminate;
                }
                _ = quit.recv() => match super::upgrade::check_handover(&self.upgrade_socket) {
                    Ok(()) => {
                        super::start_draining();
                        tracing::info!("SIGQUIT: handing the listening sockets to the new process");
                        return ShutdownSignal::GracefulUpgrade;
                    }
                    // Keep serving: the ports go to nobody, and nobody is cut off.
                    Err(e) => tracing::error!(target: "vigie::alert", severity = "high", event = "upgrade_refused", "SIGQUIT: upgrade refused, still serving: {e}"),
                },
                _ = interrupt.recv() => return ShutdownSignal::FastShutdown,
            }
        }
    }
}

/// A `SIGHUP` that came during the start, before [`Signals`] listens.
static HANGUP_DURING_START: AtomicBool = AtomicBool::new(false);

extern "C" fn note_hangup(_: libc::c_int) {
    // Only an atomic store: what a signal handler may do.
    HANGUP_DURING_START.store(true, Ordering::Relaxed);
}

/// Note `SIGHUP` until [`Signals`] takes it: one sent during the start must neither kill the
/// process (its default action), as a `systemctl reload` racing a restart would, nor be lost
/// (the file may have changed after it was read): it is acted on once the gateway runs.
pub fn hold_hangup() {
    let handler = note_hangup as extern "C" fn(libc::c_int);
    // SAFETY: the handler only stores to an atomic (async-signal-safe); installed once,
    // before any thread of ours waits on signals.
    unsafe {
        libc::signal(libc::SIGHUP, handler as libc::sighandler_t);
    }
}
