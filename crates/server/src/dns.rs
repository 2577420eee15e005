//! Locating SIP servers (RFC 3263 §4.2): a host name without a port is looked up as the SRV
//! service of its transport (`_sip._udp`, `_sip._tcp`, `_sips._tcp`) first, taking the best
//! target whose address resolves, then as a plain host on the default port. A port or an IP
//! address in the configuration skips SRV. The queries go over UDP to `dns-server` (default:
//! the first `nameserver` of /etc/resolv.conf); the targets resolve through the system.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use phonebridge_sip::dns::{parse_srv_answer, service_name, srv_query, DnsError, Srv};
use phonebridge_sip::TransportKind;

/// How long one SRV query may take, and how often it is sent.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
const QUERY_TRIES: usize = 2;

/// The port SIP over `transport` uses when none is given (RFC 3261 §19.1.2).
fn default_port(transport: TransportKind) -> u16 {
    if transport == TransportKind::Tls {
        5061
    } else {
        5060
    }
}

/// `host` as an IP address, when it is one (an IPv6 reference with or without brackets).
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Where to send SIP over `transport` for `host` and `port`, when `host` is an IP address
/// (no lookup needed).
pub(crate) fn literal_address(
    host: &str,
    port: Option<u16>,
    transport: TransportKind,
) -> Option<SocketAddr> {
    let ip = ip_literal(host)?;
    Some(SocketAddr::new(ip, port.unwrap_or(default_port(transport))))
}

/// Where SRV queries go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolver {
    server: Option<SocketAddr>,
}

impl Resolver {
    /// Queries `server`, or the system's first name server when `None`.
    pub(crate) fn new(server: Option<SocketAddr>) -> Self {
        Resolver {
            server: server.or_else(system_nameserver),
        }
    }

    /// The address to send SIP to for `host` (`port` if given) over `transport`.
    pub(crate) async fn locate(
        &self,
        host: &str,
        port: Option<u16>,
        transport: TransportKind,
    ) -> Option<SocketAddr> {
        if let Some(a) = literal_address(host, port, transport) {
            return Some(a);
        }
        let default_port = default_port(transport);
        if let Some(port) = port {
            return lookup(host, port).await;
        }
        let kind = match transport {
            TransportKind::Udp => "udp",
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
        };
        let records = self.srv(&service_name(host, kind)).await;
        if records.is_empty() {
            return lookup(host, default_port).await;
        }
        for r in records.iter().filter(|r| !r.target.is_empty()) {
            if let Some(a) = lookup(&r.target, r.port).await {
                tracing::debug!(%host, target = %r.target, port = r.port, "located by SRV");
                return Some(a);
            }
        }
        None
    }

    /// The SRV records of `name`, best first; none when there are none or no server answers.
    async fn srv(&self, name: &str) -> Vec<Srv> {
        let Some(server) = self.server else {
            return Vec::new();
        };
        // A fresh random id per query (RFC 5452: answers must match it).
        let id = crate::rand_seed() as u16;
        let Some(query) = srv_query(id, name) else {
            return Vec::new();
        };
        let local: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(socket) = tokio::net::UdpSocket::bind(local).await else {
            return Vec::new();
        };
        let mut buf = vec![0u8; 4096];
        for _ in 0..QUERY_TRIES {
            if socket.send_to(&query, server).await.is_err() {
                return Vec::new();
            }
            let answer = tokio::time::timeout(QUERY_TIMEOUT, async {
                loop {
                    let (n, from) = socket.recv_from(&mut buf).await.ok()?;
                    if from != server {
                        continue;
                    }
                    match parse_srv_answer(id, &buf[..n]) {
                        Err(DnsError::NotOurs) => continue,
                        other => return Some(other),
                    }
                }
            })
            .await;
            match answer {
                Ok(Some(Ok(records))) => return records,
                Ok(Some(Err(e))) => {
                    tracing::debug!(%name, error = %e, "no usable SRV answer");
                    return Vec::new();
                }
                Ok(None) => return Vec::new(),
                Err(_) => tracing::debug!(%name, %server, "SRV query timed out"),
            }
        }
        Vec::new()
    }
}

/// The first address `host` resolves to (A/AAAA, through the system), with `port`.
async fn lookup(host: &str, port: u16) -> Option<SocketAddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, port))
        .await
        .ok()
        .and_then(|mut a| a.next())
}

/// The first `nameserver` of /etc/resolv.conf, on port 53.
fn system_nameserver() -> Option<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    nameserver_in(&text)
}

fn nameserver_in(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next()?.parse::<IpAddr>().ok())
            .flatten()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_nameserver_is_used() {
        let conf = "# generated\nsearch example\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n";
        assert_eq!(nameserver_in(conf), Some("10.0.0.53:53".parse().unwrap()));
        assert_eq!(
            nameserver_in("nameserver 2001:db8::53\n"),
            Some("[2001:db8::53]:53".parse().unwrap())
        );
        assert_eq!(nameserver_in("nameserver bogus\n"), None);
        assert_eq!(nameserver_in(""), None);
    }
}
