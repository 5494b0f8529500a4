//! Which TCP ports this process listens on, as the kernel sees them: `/readyz` reports a
//! listener as bound only when a socket of this process is in LISTEN on its address (another
//! process holding the port does not count, as a connect test would).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The addresses this process listens on; `None` where `/proc` cannot be read.
pub fn listening() -> Option<HashSet<SocketAddr>> {
    let mut inodes = HashSet::new();
    for fd in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut found = HashSet::new();
    for (file, v6) in [("/proc/self/net/tcp", false), ("/proc/self/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        found.extend(parse(&text, v6, &inodes));
    }
    Some(found)
}

/// Rows of `/proc/net/tcp{,6}` in LISTEN (`0A`) whose inode is one of `inodes`.
fn parse(text: &str, v6: bool, inodes: &HashSet<String>) -> Vec<SocketAddr> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.get(3) != Some(&"0A") || !inodes.contains(*cols.get(9)?) {
                return None;
            }
            let (ip, port) = cols.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some(SocketAddr::new(address(ip, v6)?, port))
        })
        .collect()
}

/// The kernel writes addresses as 32-bit words in host (little-endian) order.
fn address(hex: &str, v6: bool) -> Option<IpAddr> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    match (v6, bytes.len()) {
        (false, 4) => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        (true, 16) => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Whether `want` is served by one of `bound` (an unspecified address serves every one of
/// its family on that port; `[::]` serves IPv4 too unless the socket is v6-only).
pub fn covers(bound: &HashSet<SocketAddr>, want: SocketAddr) -> bool {
    bound.iter().any(|b| {
        b.port() == want.port()
            && (b.ip() == want.ip() || (b.ip().is_unspecified() && (b.is_ipv6() || want.is_ipv4())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_of_this_process_is_seen_and_a_closed_one_is_not() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(covers(&listening().unwrap(), addr), "{addr} not seen");
        drop(l);
        assert!(!covers(&listening().unwrap(), addr), "{addr} still seen");
        let six = std::net::TcpListener::bind("[::1]:0").unwrap();
        assert!(covers(&listening().unwrap(), six.local_addr().unwrap()));
    }

    #[test]
    fn a_connected_socket_is_not_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let local = c.local_addr().unwrap();
        assert!(!covers(&listening().unwrap(), local));
    }

    #[test]
    fn an_unspecified_address_covers_its_port_only() {
        let bound: HashSet<SocketAddr> = ["0.0.0.0:8080".parse().unwrap()].into();
        assert!(covers(&bound, "127.0.0.1:8080".parse().unwrap()));
        assert!(!covers(&bound, "127.0.0.1:8081".parse().unwrap()));
        assert!(!covers(&bound, "[::1]:8080".parse().unwrap()));
    }
}
