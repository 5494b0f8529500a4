//! RFC 5424 syslog over UDP or TCP (RFC 6587 octet counting), carrying ECS JSON or CEF.

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use serde_json::Value;

use super::{cef, ecs::rfc3339_ms, Alert, Sink, SinkError};

/// Vigie's structured-data id; 32473 is the private enterprise number RFC 5612 reserves for examples.
const SD_ID: &str = "vigie@32473";
/// Under the 65,507-byte ceiling of a UDP datagram over IPv4.
const MAX_DATAGRAM: usize = 65_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Facility {
    Auth,
    /// Security messages that only privileged readers should see: the default.
    #[default]
    Authpriv,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "auth" => Self::Auth,
            "authpriv" => Self::Authpriv,
            "local0" => Self::Local0,
            "local1" => Self::Local1,
            "local2" => Self::Local2,
            "local3" => Self::Local3,
            "local4" => Self::Local4,
            "local5" => Self::Local5,
            "local6" => Self::Local6,
            "local7" => Self::Local7,
            _ => return None,
        })
    }

    pub fn code(self) -> u8 {
        match self {
            Self::Auth => 4,
            Self::Authpriv => 10,
            Self::Local0 => 16,
            Self::Local1 => 17,
            Self::Local2 => 18,
            Self::Local3 => 19,
            Self::Local4 => 20,
            Self::Local5 => 21,
            Self::Local6 => 22,
            Self::Local7 => 23,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyslogFormat {
    #[default]
    Json,
    Cef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyslogTransport {
    #[default]
    Udp,
    Tcp,
}

#[derive(Debug, Clone)]
pub struct SyslogSettings {
    /// `host:port` of the collector.
    pub address: String,
    pub transport: SyslogTransport,
    pub facility: Facility,
    pub format: SyslogFormat,
    pub app_name: String,
    /// The HOSTNAME field; the machine's own name when unset.
    pub hostname: Option<String>,
    /// TCP connect and write timeout.
    pub timeout: Duration,
}

impl Default for SyslogSettings {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:514".into(),
            transport: SyslogTransport::Udp,
            facility: Facility::Authpriv,
            format: SyslogFormat::Json,
            app_name: "vigie".into(),
            hostname: None,
            timeout: Duration::from_secs(5),
        }
    }
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

pub struct SyslogSink {
    settings: SyslogSettings,
    hostname: String,
    app_name: String,
    procid: String,
    conn: Option<Conn>,
}

/// RFC 5424 header fields are printable US-ASCII without spaces, bounded in length; `-` if empty.
fn header_field(value: &str, max: usize) -> String {
    let out: String = value
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if out.is_empty() {
        "-".into()
    } else {
        out
    }
}

/// SD-PARAM values escape `"`, `\` and `]` (RFC 5424 section 6.3.3).
fn sd_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn local_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A TCP peer that closed shows as end-of-file here; writing first would lose one message.
fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match stream.peek(&mut [0u8; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    closed || stream.set_nonblocking(false).is_err()
}

impl SyslogSink {
    /// Connects on the first delivery, on the sink's thread: a collector that is down or
    /// unreachable neither fails nor stalls start-up.
    pub fn new(settings: SyslogSettings) -> Self {
        let hostname = settings.hostname.clone().unwrap_or_else(local_hostname);
        Self {
            hostname: header_field(&hostname, 255),
            app_name: header_field(&settings.app_name, 48),
            procid: std::process::id().to_string(),
            settings,
            conn: None,
        }
    }

    /// The RFC 5424 message, without transport framing.
    pub fn message(&self, alert: &Alert, ecs: &Value) -> Result<String, SinkError> {
        let pri = u16::from(self.settings.facility.code()) * 8 + u16::from(alert.severity.syslog());
        let sd = format!(
            "[{SD_ID} id=\"{}\" rule=\"{}\" severity=\"{}\" score=\"{}\" user=\"{}\"]",
            sd_value(&alert.id),
            sd_value(&alert.rule_id),
            alert.severity.as_str(),
            alert.risk_score,
            sd_value(&alert.user),
        );
        let msg = match self.settings.format {
            SyslogFormat::Json => serde_json::to_string(ecs)?,
            SyslogFormat::Cef => cef::line(alert),
        };
        Ok(format!(
            "<{pri}>1 {} {} {} {} {} {sd} {msg}",
            rfc3339_ms(alert.at_us),
            self.hostname,
            self.app_name,
            self.procid,
            header_field(&alert.rule_id, 32),
        ))
    }

    fn connect(&self) -> std::io::Result<Conn> {
        let addrs: Vec<SocketAddr> = self.settings.address.to_socket_addrs()?.collect();
        let mut last = std::io::Error::new(ErrorKind::NotFound, "address resolved to nothing");
        for addr in addrs {
            let attempt = match self.settings.transport {
                SyslogTransport::Udp => {
                    let local: SocketAddr = if addr.is_ipv4() {
                        ([0, 0, 0, 0], 0).into()
                    } else {
                        ([0u16; 8], 0).into()
                    };
                    UdpSocket::bind(local)
                        .and_then(|s| s.connect(addr).map(|()| s))
                        .map(Conn::Udp)
                }
                SyslogTransport::Tcp => TcpStream::connect_timeout(&addr, self.settings.timeout)
                    .and_then(|s| {
                        s.set_write_timeout(Some(self.settings.timeout))?;
                        s.set_nodelay(true)?;
                        Ok(Conn::Tcp(s))
                    }),
            };
            match attempt {
                Ok(conn) => return Ok(conn),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stale = matches!(&self.conn, Some(Conn::Tcp(s)) if peer_closed(s));
        if stale || self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        match self.conn.as_mut() {
            Some(Conn::Udp(s)) => s.send(bytes).map(drop),
            Some(Conn::Tcp(s)) => s.write_all(bytes).and_then(|()| s.flush()),
            None => Err(ErrorKind::NotConnected.into()),
        }
    }
}

impl Sink for SyslogSink {
    fn name(&self) -> &'static str {
        "syslog"
    }

    fn deliver_event(&mut self, ecs: &Value) -> Result<(), SinkError> {
        let level = ecs["log"]["level"].as_str().unwrap_or("info");
        let severity: u16 = match level {
            "error" => 3,
            "warn" => 4,
            _ => 6,
        };
        let pri = u16::from(self.settings.facility.code()) * 8 + severity;
        let action = ecs["event"]["action"].as_str().unwrap_or("-");
        let sd = format!(
            "[{SD_ID} event=\"{}\" user=\"{}\"]",
            sd_value(action),
            sd_value(ecs["user"]["name"].as_str().unwrap_or("-")),
        );
        let msg = match self.settings.format {
            SyslogFormat::Json => serde_json::to_string(ecs)?,
            SyslogFormat::Cef => cef::event_line(ecs),
        };
        let line = format!(
            "<{pri}>1 {} {} {} {} {} {sd} {msg}",
            ecs["@timestamp"].as_str().unwrap_or("-"),
            self.hostname,
            self.app_name,
            self.procid,
            header_field(action, 32),
        );
        self.ship(&line)
    }

    fn deliver(&mut self, alert: &Alert, ecs: &Value) -> Result<(), SinkError> {
        let msg = self.message(alert, ecs)?;
        self.ship(&msg)
    }
}

impl SyslogSink {
    /// Frame and send one message (one reconnection on failure).
    fn ship(&mut self, msg: &str) -> Result<(), SinkError> {
        let bytes = match self.settings.transport {
            SyslogTransport::Udp => truncate_utf8(msg, MAX_DATAGRAM).as_bytes().to_vec(),
            SyslogTransport::Tcp => format!("{} {msg}", msg.len()).into_bytes(),
        };
        // One fresh connection on failure: the collector may have restarted.
        if let Err(e) = self.send(&bytes) {
            tracing::debug!(error = %e, "syslog alert sink reconnecting");
            self.conn = None;
            self.send(&bytes).inspect_err(|_| self.conn = None)?;
        }
        Ok(())
    }
}
