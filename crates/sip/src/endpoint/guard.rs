//! Protection against floods and scanners: a token bucket per source address, exempt
//! sources, and User-Agent patterns whose requests are dropped without an answer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// An address block such as `127.0.0.0/8` or `::1/128` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                masked(u32::from(a) as u128, self.prefix, 32)
                    == masked(u32::from(b) as u128, self.prefix, 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                masked(u128::from(a), self.prefix, 128) == masked(u128::from(b), self.prefix, 128)
            }
            (IpAddr::V4(a), IpAddr::V6(b)) => b.to_ipv4_mapped().is_some_and(|b| {
                Cidr {
                    addr: IpAddr::V4(a),
                    prefix: self.prefix,
                }
                .contains(IpAddr::V4(b))
            }),
            _ => false,
        }
    }
}

impl From<IpAddr> for Cidr {
    /// The block holding exactly this address.
    fn from(addr: IpAddr) -> Self {
        Cidr {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("'{s}' is not an address or CIDR block"))?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("'{s}' has a bad prefix length"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

/// Flood-limit settings.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Sustained requests per second allowed from one source address.
    pub rate: f64,
    /// Requests a source may send in a burst above the sustained rate.
    pub burst: f64,
    /// Sources exempt from the limit (a local proxy, trunks, a load generator).
    pub trusted: Vec<Cidr>,
    /// Case-insensitive substrings of User-Agent values whose requests are dropped silently.
    pub ignore_user_agents: Vec<String>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            rate: 20.0,
            burst: 60.0,
            trusted: vec![
                Cidr {
                    addr: IpAddr::from([127, 0, 0, 0]),
                    prefix: 8,
                },
                Cidr {
                    addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                    prefix: 128,
                },
            ],
            ignore_user_agents: vec![
                "friendly-scanner".into(),
                "sipvicious".into(),
                "sipcli".into(),
                "sip-scan".into(),
                "pplsip".into(),
            ],
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Guard {
    buckets: HashMap<IpAddr, Bucket>,
    last_sweep: Option<Instant>,
}

impl Guard {
    pub(crate) fn is_trusted(cfg: &GuardConfig, ip: IpAddr) -> bool {
        cfg.trusted.iter().any(|c| c.contains(ip))
    }

    /// Takes a token for `ip`; false means drop the message.
    pub(crate) fn admit(&mut self, cfg: &GuardConfig, now: Instant, ip: IpAddr) -> bool {
        if Self::is_trusted(cfg, ip) {
            return true;
        }
        self.sweep(cfg, now);
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: cfg.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * cfg.rate).min(cfg.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets buckets that have refilled, so memory follows the active sources only.
    fn sweep(&mut self, cfg: &GuardConfig, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(10))
        {
            return;
        }
        self.last_sweep = Some(now);
        let full = Duration::from_secs_f64(cfg.burst / cfg.rate.max(0.001));
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last) < full);
    }

    pub(crate) fn ignored_agent(cfg: &GuardConfig, user_agent: &str) -> bool {
        let ua = user_agent.to_ascii_lowercase();
        cfg.ignore_user_agents
            .iter()
            .any(|p| !p.is_empty() && ua.contains(&p.to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        let c: Cidr = "::1".parse().unwrap();
        assert!(c.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time
    fn bucket_limits_untrusted_sources_only() {
        let cfg = GuardConfig {
            rate: 10.0,
            burst: 5.0,
            ..GuardConfig::default()
        };
        let mut g = Guard::default();
        let t0 = Instant::now();
        let bad: IpAddr = "192.0.2.9".parse().unwrap();
        let admitted = (0..20).filter(|_| g.admit(&cfg, t0, bad)).count();
        assert_eq!(admitted, 5);
        // 100 ms later one more token has accrued.
        assert!(g.admit(&cfg, t0 + Duration::from_millis(100), bad));
        assert!(!g.admit(&cfg, t0 + Duration::from_millis(100), bad));
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!((0..1000).all(|_| g.admit(&cfg, t0, local)));
    }

    #[test]
    fn scanner_user_agents() {
        let cfg = GuardConfig::default();
        assert!(Guard::ignored_agent(&cfg, "friendly-scanner"));
        assert!(Guard::ignored_agent(&cfg, "SIPVicious 0.3"));
        assert!(!Guard::ignored_agent(&cfg, "baresip v3"));
    }
}
