//! Vigie: an MFA gateway and exfiltration detector for hospital portals, built on Pingora.
//!
//! Where each concern lives:
//! - [`config`]: the one validated configuration every source becomes;
//! - [`pipeline`]: the request pipeline, one module per stage;
//! - [`listener`]: connection hygiene below it (per-peer cap, request-head deadline);
//! - [`admin`], [`metrics`], [`telemetry`]: what operators watch;
//! - [`sample_portal`]: a stand-in legacy EHR for the demo, tests and benchmarks;
//! - [`server`]: wiring Pingora services together.

pub mod admin;
pub mod alerts;
pub mod audit;
pub mod budget;
pub mod config;
pub mod console;
pub mod detect;
pub mod factors;
pub mod http;
pub mod identity;
pub mod lifecycle;
pub mod listener;
pub mod metrics;
pub mod pages;
pub mod pipeline;
pub mod policy;
#[cfg(test)]
mod props;
pub mod sample_portal;
pub mod server;
pub mod simulate;
pub mod storage;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
