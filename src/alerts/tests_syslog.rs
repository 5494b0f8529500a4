//! The syslog sink against real UDP and TCP sockets on 127.0.0.1.

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::thread;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;

use super::tests::{accept_within, sample, WAIT};
use super::*;

/// `(pri, timestamp, hostname, app, procid, msgid, sd, msg)` of an RFC 5424 message.
fn parse_5424(line: &str) -> [String; 8] {
    let re = Regex::new(
        r#"(?s)^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[vigie@32473(?: [a-z]+="(?:[^"\\\]]|\\["\\\]])*")+\]) (.*)$"#,
    )
    .unwrap();
    let c = re
        .captures(line)
        .unwrap_or_else(|| panic!("not RFC 5424: {line}"));
    std::array::from_fn(|i| c[i + 1].to_string())
}

/// The unescaped value of one SD-PARAM.
fn sd_param(sd: &str, name: &str) -> String {
    let re = Regex::new(&format!(r#" {name}="((?:[^"\\\]]|\\["\\\]])*)""#)).unwrap();
    let raw = &re.captures(sd).expect("param present")[1];
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().unwrap() } else { c });
    }
    out
}

/// One RFC 6587 octet-counted frame.
fn read_frame(stream: &mut impl Read) -> String {
    let mut len = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        stream.read_exact(&mut byte).unwrap();
        if byte[0] == b' ' {
            break;
        }
        len.push(byte[0]);
    }
    let len: usize = std::str::from_utf8(&len).unwrap().parse().unwrap();
    let mut msg = vec![0u8; len];
    stream.read_exact(&mut msg).unwrap();
    String::from_utf8(msg).unwrap()
}

fn tricky_user() -> Alert {
    let mut alert = sample("VIGIE-EXF-003");
    alert.user = r#"dr "x"] \y"#.into();
    alert
}

#[test]
fn syslog_udp_carries_rfc5424_with_ecs_json() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(WAIT)).unwrap();
    let mut sink = SyslogSink::new(SyslogSettings {
        address: rx.local_addr().unwrap().to_string(),
        hostname: Some("gw-1".into()),
        ..SyslogSettings::default()
    });
    let alert = tricky_user();
    sink.deliver(&alert, &alert.to_ecs()).unwrap();

    let mut buf = vec![0u8; 65_536];
    let n = rx.recv(&mut buf).unwrap();
    let [pri, ts, host, app, procid, msgid, sd, msg] =
        parse_5424(std::str::from_utf8(&buf[..n]).unwrap());
    assert_eq!(pri, "83"); // authpriv (10) * 8 + error (3)
    assert_eq!(ts, "2023-11-14T22:13:20.123Z");
    assert_eq!(host, "gw-1");
    assert_eq!(app, "vigie");
    assert_eq!(procid, std::process::id().to_string());
    assert_eq!(msgid, "VIGIE-EXF-003");
    assert!(sd.contains(r#"user="dr \"x\"\] \\y""#), "{sd}");
    assert_eq!(sd_param(&sd, "user"), alert.user);
    assert_eq!(sd_param(&sd, "score"), "87");
    assert_eq!(sd_param(&sd, "rule"), "VIGIE-EXF-003");
    let doc: Value = serde_json::from_str(&msg).unwrap();
    assert_eq!(doc["event"]["id"], alert.id.as_str());
    assert_eq!(doc["user"]["name"], alert.user.as_str());
}

#[test]
fn syslog_tcp_frames_by_octet_count_through_the_dispatcher() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let alerts = Alerts::start(SinkSettings {
        syslog: Some(SyslogSettings {
            address: listener.local_addr().unwrap().to_string(),
            transport: SyslogTransport::Tcp,
            facility: Facility::from_name("local4").unwrap(),
            ..SyslogSettings::default()
        }),
        ..SinkSettings::default()
    })
    .unwrap();
    let first = tricky_user();
    let mut second = sample("VIGIE-EXF-007");
    second.severity = Severity::Critical;
    let ids = [first.id.clone(), second.id.clone()];
    alerts.raise(first);
    alerts.raise(second);
    assert!(alerts.flush(WAIT));

    let mut stream = accept_within(&listener, WAIT).expect("the sink connects");
    for (id, (pri, rule)) in ids
        .iter()
        .zip([("163", "VIGIE-EXF-003"), ("162", "VIGIE-EXF-007")])
    {
        let [p, _, _, _, _, msgid, sd, msg] = parse_5424(&read_frame(&mut stream));
        assert_eq!(p, pri); // local4 (20) * 8 + error (3) or critical (2)
        assert_eq!(msgid, rule);
        assert_eq!(sd_param(&sd, "id"), *id);
        let doc: Value = serde_json::from_str(&msg).unwrap();
        assert_eq!(doc["event"]["id"], id.as_str());
    }
}

#[test]
fn syslog_tcp_reconnects_after_the_collector_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sink = SyslogSink::new(SyslogSettings {
        address: listener.local_addr().unwrap().to_string(),
        transport: SyslogTransport::Tcp,
        ..SyslogSettings::default()
    });
    let first = sample("VIGIE-EXF-003");
    sink.deliver(&first, &first.to_ecs()).unwrap();
    let mut conn = accept_within(&listener, WAIT).unwrap();
    assert!(read_frame(&mut conn).contains(&first.id));
    drop(conn);
    thread::sleep(Duration::from_millis(50));

    let second = sample("VIGIE-EXF-003");
    sink.deliver(&second, &second.to_ecs()).unwrap();
    let mut conn = accept_within(&listener, WAIT).expect("a new connection");
    assert!(read_frame(&mut conn).contains(&second.id));
}

/// Splits a CEF line on unescaped `|` into its 7 header fields (unescaped) and the extension.
fn cef_fields(line: &str) -> (Vec<String>, String) {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let in_header = fields.len() <= 7;
        match c {
            '|' if in_header => fields.push(String::new()),
            '\\' if in_header => fields.last_mut().unwrap().push(chars.next().unwrap()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    let ext = fields.pop().unwrap();
    (fields, ext)
}

#[test]
fn syslog_cef_escapes_header_and_extension() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(WAIT)).unwrap();
    let mut sink = SyslogSink::new(SyslogSettings {
        address: rx.local_addr().unwrap().to_string(),
        format: SyslogFormat::Cef,
        facility: Facility::Local4,
        ..SyslogSettings::default()
    });
    let mut alert = sample("VIGIE-EXF-009");
    alert.rule_name = r"Bulk | export \ night".into();
    alert.user = "dr=evil".into();
    alert.severity = Severity::Critical;
    sink.deliver(&alert, &alert.to_ecs()).unwrap();

    let mut buf = vec![0u8; 65_536];
    let n = rx.recv(&mut buf).unwrap();
    let [pri, _, _, _, _, msgid, _, msg] = parse_5424(std::str::from_utf8(&buf[..n]).unwrap());
    assert_eq!(pri, "162");
    assert_eq!(msgid, "VIGIE-EXF-009");
    let version = env!("CARGO_PKG_VERSION");
    assert!(msg.starts_with(&format!(
        r"CEF:0|Vigie|Vigie|{version}|VIGIE-EXF-009|Bulk \| export \\ night|10|"
    )));
    let (header, ext) = cef_fields(&msg);
    assert_eq!(
        header,
        [
            "CEF:0",
            "Vigie",
            "Vigie",
            version,
            "VIGIE-EXF-009",
            r"Bulk | export \ night",
            "10"
        ]
    );
    for pair in [
        r"suser=dr\=evil",
        "rt=1700000000123",
        "src=192.0.2.10",
        "request=/patients/{id}/record",
        "requestMethod=GET",
        "cs1Label=riskScore cs1=87",
        "cn1Label=distinctPatients cn1=42",
        "act=step_up",
    ] {
        assert!(ext.contains(pair), "{pair} missing from {ext}");
    }
}
