//! The commands that start, check and steer a gateway process: `run`, `check-config`,
//! `health` (for container healthchecks) and `reload`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use vigie::config::Config;
use vigie::lifecycle::{preflight, signals};

/// `run`: the checks the start depends on, then the gateway until a signal stops it. Any
/// failure to start (a port taken, a certificate unreadable) exits non-zero: a process that
/// stays up without its listeners would keep answering health checks.
/// With `upgrade`, the listening sockets come from the gateway this one replaces (see
/// [`vigie::server::build`]), so they are not bound here.
pub fn run(config: Config, sample_portal: Option<SocketAddr>, upgrade: bool) -> ExitCode {
    vigie::telemetry::init(&config.log);
    let mut problems = preflight::check(&config, !upgrade);
    let socket_dir = config.server.upgrade_socket.parent().map(Path::to_path_buf);
    if let Some(Err(e)) = socket_dir
        .as_deref()
        .map(vigie::lifecycle::upgrade::safe_directory)
    {
        // A new gateway opens the socket to anyone who can reach it: refuse then.
        match upgrade {
            true => problems.push(e),
            false => tracing::warn!("{e} (an upgrade would be refused)"),
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        eprintln!("the gateway did not start: {} problem(s)", problems.len());
        return ExitCode::from(1);
    }
    exit_if_listeners_fail();
    if upgrade {
        tracing::info!(socket = %config.server.upgrade_socket.display(), "waiting for the running gateway's sockets: send it SIGQUIT");
    }
    let (mut server, reloader) = match vigie::server::build(&config, upgrade) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    if let Some(addr) = sample_portal {
        vigie::server::add_sample_portal(
            &mut server,
            &addr.to_string(),
            vigie::sample_portal::SamplePortal::new(vigie::sample_portal::DEFAULT_PATIENTS),
            1,
        );
    }
    for w in config.warnings.iter().chain(&preflight::warnings(&config)) {
        tracing::warn!("config: {w}");
    }
    tracing::info!(listeners = ?config.listeners.iter().map(|l| l.address).collect::<Vec<_>>(), admin = ?config.admin, "vigie starting");
    server.run(pingora::server::RunArgs {
        shutdown_signal: Box::new(signals::Signals {
            reloader: Some(reloader),
            grace: config.server.grace_period,
            upgrade_socket: config.server.upgrade_socket.clone(),
        }),
    });
    tracing::info!("vigie stopped");
    ExitCode::SUCCESS
}

/// Pingora binds each service's listeners in that service's own thread and panics there when
/// it cannot; the process would live on, its admin port answering. Bound before the start
/// (see [`preflight`]), a listener can still be lost to a race: then the whole process ends.
pub fn exit_if_listeners_fail() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("Failed to build listeners") {
            eprintln!("error: a listener could not be bound: {text}; stopping");
            std::process::exit(1);
        }
        default(info);
    }));
}

/// `check-config`: the file, then what the start depends on; with `preflight`, the
/// addresses are bound too (before a start, not beside a running gateway).
pub fn check_config(path: &Path, bind: bool) -> ExitCode {
    let c = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("\n{} problem(s) in {}", errors.0.len(), path.display());
            return ExitCode::from(2);
        }
    };
    let problems = preflight::check(&c, bind);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        eprintln!(
            "\n{} problem(s) the start would meet ({} is valid)",
            problems.len(),
            path.display()
        );
        return ExitCode::from(2);
    }
    println!(
        "{}: valid ({} listener(s), {} portal(s), admin {}){}",
        path.display(),
        c.listeners.len(),
        c.portals.len(),
        c.admin.map_or("off".to_string(), |a| a.to_string()),
        if bind {
            "; every address can be bound"
        } else {
            ""
        }
    );
    for w in c.warnings.iter().chain(&preflight::warnings(&c)) {
        println!("warning: {w}");
    }
    if let Some(dir) = c.server.upgrade_socket.parent() {
        if let Err(e) = vigie::lifecycle::upgrade::safe_directory(dir) {
            println!("warning: {e} (an upgrade would be refused)");
        }
    }
    ExitCode::SUCCESS
}

/// `health`: 0 when the admin listener answers `/readyz` (or `/healthz`) with 200, 1
/// otherwise. No shell features, so a container's `HEALTHCHECK` runs it under any `sh`.
pub fn health(admin: SocketAddr, live: bool) -> ExitCode {
    let path = if live { "/healthz" } else { "/readyz" };
    match crate::admin_call(admin, "GET", path, b"") {
        Ok((200, _)) => ExitCode::SUCCESS,
        Ok((status, body)) => {
            eprintln!("{path}: {status} {}", body.trim_end());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{path}: no answer from {admin}: {e}");
            ExitCode::from(1)
        }
    }
}
