//! Integration tests: the built `vigie` binary and its sample portal as real processes on
//! free loopback ports, spoken to over real sockets.

mod audit;
mod body_reading;
mod branding;
mod browser;
mod cdp;
mod cli;
mod collation;
mod common;
mod connections;
mod console;
mod console_browser;
mod detection;
mod django;
mod exposure;
mod factors;
mod framing;
mod gateway_login;
mod hygiene;
mod journey;
mod login_reading;
mod lost_factor;
mod mfa;
mod operations;
mod passthrough;
mod paths;
mod php_params;
mod policy;
mod portal_logout;
mod postgres;
#[path = "../../src/testing/postgres.rs"]
mod postgres_db;
mod prelogin;
mod prelogin_found;
mod redis_cluster;
mod redis_tls;
mod replicas;
mod sessions;
mod shared_state;
mod siem;
mod step_up;
mod story;
mod tokens;
mod triage;
mod upgrade;
mod upstream;
