//! The one place Redis connections are made from the configuration: one server, or a Redis
//! Cluster, plain or over TLS with the configured CA and client certificate. Every user of
//! Redis (sessions, locks, factors, budgets, the detector's sharing, the shared-state checks)
//! gets its connections from [`Redis`], and never asks which kind it got.
//!
//! With a cluster, every Vigie key carries one hash tag (the prefix, braced at validation):
//! all of them live in one slot, so every script and transaction, which read a session with
//! its user's set, a lock, a tombstone and the generation together, runs as on one server.
//! The cluster gives failover; Vigie's few commands per request need no sharding (see
//! benches/README.md). Keyless commands that read the data (SCAN, CONFIG GET) go to the
//! slot's master; pub/sub goes through any node, since a cluster carries PUBLISH to all.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::config::RedisTls;

pub mod budgets;
pub mod factors;
pub mod locks;
pub mod scripts;
pub mod sessions;

/// A client for `url` (`redis://`, `rediss://` or `unix://`); nothing is contacted yet.
pub fn client(url: &str, tls: &RedisTls) -> RedisResult<redis::Client> {
    if !url.starts_with("rediss://") {
        return redis::Client::open(url);
    }
    redis::Client::build_with_tls(url, certificates(tls))
}

fn certificates(tls: &RedisTls) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: tls
            .client
            .as_ref()
            .map(|(cert, key)| redis::ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.0.clone(),
            }),
        root_cert: tls.ca.clone(),
    }
}

/// Where Vigie's Redis is. Cheap to clone; nothing is contacted until a connection is asked.
#[derive(Clone)]
pub enum Redis {
    One(redis::Client),
    Cluster {
        client: Box<ClusterClient>,
        /// A client per seed node, for pub/sub (tried in turn when one is down).
        seeds: Vec<redis::Client>,
        /// A key of Vigie's: its slot is where every key of Vigie's lives.
        probe: String,
    },
}

impl Redis {
    /// One server at `url`.
    pub fn one(url: &str, tls: &RedisTls) -> RedisResult<Self> {
        client(url, tls).map(Self::One)
    }

    /// A cluster known by `seeds`, whose keys all start with `prefix` (with its hash tag).
    pub fn cluster(seeds: &[String], tls: &RedisTls, prefix: &str) -> RedisResult<Self> {
        // Over rediss://, the cluster's certificates are checked against the system's roots
        // (validation refuses a CA file or client certificate with a cluster).
        let client = ClusterClient::builder(seeds.iter().map(String::as_str))
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self::Cluster {
            client: Box::new(client),
            seeds: seeds
                .iter()
                .map(|s| self::client(s, tls))
                .collect::<RedisResult<_>>()?,
            probe: format!("{prefix}probe"),
        })
    }

    /// A connection shared by a store's callers, reconnecting by itself: a connection manager
    /// on one server, the cluster's own connection otherwise. Lazy on one server (the first
    /// command connects); a cluster is asked its slots now.
    pub async fn shared(&self, timeout: Duration) -> RedisResult<Conn> {
        match self {
            Self::One(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                client
                    .get_connection_manager_lazy(config)
                    .map(Conn::Managed)
            }
            Self::Cluster { .. } => self.connect().await,
        }
    }

    /// A new connection now, failing if the server (or the cluster's slot) cannot be reached.
    pub async fn connect(&self) -> RedisResult<Conn> {
        match self {
            Self::One(client) => client
                .get_multiplexed_async_connection()
                .await
                .map(Conn::Multiplexed),
            Self::Cluster { client, probe, .. } => {
                let mut conn = client.get_async_connection().await?;
                let slot: u16 = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(probe)
                    .query_async(&mut conn)
                    .await?;
                Ok(Conn::Cluster(conn, slot))
            }
        }
    }

    /// A blocking connection, for threads outside the runtimes (the detector's sync).
    pub fn blocking(&self, timeout: Duration) -> RedisResult<BlockingConn> {
        match self {
            Self::One(client) => client
                .get_connection_with_timeout(timeout)
                .map(BlockingConn::One),
            Self::Cluster { client, .. } => client
                .get_connection()
                .map(|c| BlockingConn::Cluster(Box::new(c))),
        }
    }

    /// Clients to subscribe with, in the order to try them.
    pub fn subscribers(&self) -> Vec<redis::Client> {
        match self {
            Self::One(client) => vec![client.clone()],
            Self::Cluster { seeds, .. } => seeds.clone(),
        }
    }
}

/// An async connection of either kind; every command and script runs on it unchanged.
#[derive(Clone)]
pub enum Conn {
    Managed(ConnectionManager),
    Multiplexed(redis::aio::MultiplexedConnection),
    /// The cluster's connection, and the slot of Vigie's keys.
    Cluster(redis::cluster_async::ClusterConnection, u16),
}

/// Commands without a key that read what is stored: on a cluster, sent where the keys are.
fn keyless_read(cmd: &Cmd) -> bool {
    cmd.args_iter().next().is_some_and(|a| match a {
        redis::Arg::Simple(name) => {
            name.eq_ignore_ascii_case(b"SCAN") || name.eq_ignore_ascii_case(b"CONFIG")
        }
        _ => false,
    })
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Managed(c) => c.req_packed_command(cmd),
            Self::Multiplexed(c) => c.req_packed_command(cmd),
            Self::Cluster(c, slot) => match keyless_read(cmd) {
                true => {
                    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                        Route::new(*slot, SlotAddr::Master),
                    ));
                    let cmd = cmd.clone();
                    Box::pin(async move { c.route_command(cmd, route).await })
                }
                false => c.req_packed_command(cmd),
            },
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Managed(c) => c.req_packed_commands(cmd, offset, count),
            Self::Multiplexed(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c, _) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(c) => c.get_db(),
            Self::Multiplexed(c) => c.get_db(),
            Self::Cluster(c, _) => c.get_db(),
        }
    }
}

/// A blocking connection of either kind.
pub enum BlockingConn {
    One(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl redis::ConnectionLike for BlockingConn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Self::One(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Self::One(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::One(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Self::One(c) => c.check_connection(),
            Self::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Self::One(c) => c.is_open(),
            Self::Cluster(c) => c.is_open(),
        }
    }
}
