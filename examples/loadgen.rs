//! Fixed-rate (open-loop) HTTP/1.1 load generator for `benches/load.sh`.
//!
//! wrk measures peak throughput; this measures latency at a chosen request rate. Latency is
//! taken from each request's *scheduled* send time, so a stalled server is charged for the
//! requests it delayed (no coordinated omission). Keep-alive connections, one request in
//! flight per connection. Prints one JSON object.
//!
//! cargo run --release --example loadgen -- --addr 127.0.0.1:8080 --path / --rate 5000 --connections 32 --seconds 10

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Args {
    addr: String,
    path: String,
    host: String,
    headers: Vec<String>,
    rate: f64,
    connections: usize,
    seconds: f64,
}

fn parse_args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:8080".into(),
        path: "/".into(),
        host: "bench".into(),
        headers: vec![],
        rate: 1000.0,
        connections: 32,
        seconds: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = val(),
            "--path" => a.path = val(),
            "--host" => a.host = val(),
            "--header" => a.headers.push(val()),
            "--rate" => a.rate = val().parse().expect("--rate is requests per second"),
            "--connections" => a.connections = val().parse().expect("--connections is a count"),
            "--seconds" => a.seconds = val().parse().expect("--seconds is a duration"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

struct ConnResult {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
}

async fn read_response(
    reader: &mut BufReader<TcpStream>,
    line: &mut String,
) -> std::io::Result<u16> {
    line.clear();
    reader.read_line(line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let mut len = 0usize;
    loop {
        line.clear();
        if reader.read_line(line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await?;
    Ok(status)
}

async fn connection(
    args: std::sync::Arc<Args>,
    index: usize,
    start: Instant,
    end: Instant,
) -> ConnResult {
    let mut res = ConnResult {
        hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        ok: 0,
        errors: 0,
    };
    let interval = Duration::from_secs_f64(args.connections as f64 / args.rate);
    // Spread connections evenly over one interval.
    let mut next = start + interval.mul_f64(index as f64 / args.connections as f64);
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", args.path, args.host);
    for h in &args.headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut line = String::new();
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        if conn.is_none() {
            conn = TcpStream::connect(&args.addr).await.ok().map(|s| {
                let _ = s.set_nodelay(true);
                BufReader::new(s)
            });
        }
        let outcome = match conn.as_mut() {
            Some(c) => match c.get_mut().write_all(request.as_bytes()).await {
                Ok(()) => read_response(c, &mut line).await,
                Err(e) => Err(e),
            },
            None => Err(std::io::ErrorKind::ConnectionRefused.into()),
        };
        match outcome {
            Ok(status) if status < 400 => {
                res.ok += 1;
                let _ = res.hist.record(next.elapsed().as_micros().max(1) as u64);
            }
            Ok(_) => res.errors += 1,
            Err(_) => {
                res.errors += 1;
                conn = None;
            }
        }
        next += interval;
    }
    res
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = std::sync::Arc::new(parse_args());
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(args.seconds);
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| tokio::spawn(connection(args.clone(), i, start, end)))
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let r = t.await.expect("connection task");
        hist.add(&r.hist).expect("same bounds");
        ok += r.ok;
        errors += r.errors;
    }
    println!(
        "{{\"target_rps\":{},\"achieved_rps\":{:.1},\"ok\":{ok},\"errors\":{errors},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}",
        args.rate,
        ok as f64 / args.seconds,
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
}
