//! Digest authentication as a server (RFC 3261 §22.4) for trunks that must prove who they
//! are: a new INVITE from a listed source gets 401 with a challenge unless it carries a valid
//! answer. Nonces are stateless: the issue time and a keyed hash over it and the source
//! address, valid for five minutes (then answered with `stale=TRUE`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::guard::Cidr;
use crate::auth::{Algorithm, Challenge, Credentials};
use crate::header::HeaderName;
use crate::message::Request;

/// Who must authenticate, and with what.
#[derive(Debug, Clone)]
pub struct InboundAuth {
    /// Sources whose INVITEs must authenticate (the trunk's addresses).
    pub sources: Vec<Cidr>,
    pub realm: String,
    pub username: String,
    pub password: String,
}

const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// The outcome of checking a request against the rules.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No rule covers the source, or the answer is valid.
    Pass,
    /// Answer 401 with this WWW-Authenticate value.
    Challenge(String),
}

#[derive(Debug)]
pub(crate) struct NonceKey {
    secret: [u8; 32],
    epoch: Instant,
}

impl NonceKey {
    pub(crate) fn new(secret: [u8; 32], epoch: Instant) -> Self {
        NonceKey { secret, epoch }
    }

    fn mac(&self, issued: u64, ip: IpAddr) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        h.update(ip.to_string().as_bytes());
        h.finalize()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn issue(&self, now: Instant, ip: IpAddr) -> String {
        let issued = now.saturating_duration_since(self.epoch).as_secs();
        format!("{issued:x}.{}", self.mac(issued, ip))
    }

    /// `Some(true)` ours and fresh, `Some(false)` ours but expired, `None` not ours.
    fn check(&self, now: Instant, ip: IpAddr, nonce: &str) -> Option<bool> {
        let (issued, mac) = nonce.split_once('.')?;
        let issued = u64::from_str_radix(issued, 16).ok()?;
        if self.mac(issued, ip) != mac {
            return None;
        }
        let age = now
            .saturating_duration_since(self.epoch)
            .as_secs()
            .saturating_sub(issued);
        Some(Duration::from_secs(age) <= NONCE_LIFETIME)
    }
}

/// Checks `req` from `ip` against `rules`.
pub(crate) fn check(
    rules: &[InboundAuth],
    key: &NonceKey,
    now: Instant,
    ip: IpAddr,
    req: &Request,
) -> Verdict {
    let Some(rule) = rules
        .iter()
        .find(|r| r.sources.iter().any(|c| c.contains(ip)))
    else {
        return Verdict::Pass;
    };
    let mut stale = false;
    for v in req.headers.get_all(&HeaderName::AUTHORIZATION) {
        let Some(c) = Credentials::parse(v) else {
            continue;
        };
        if c.realm != rule.realm || c.username != rule.username {
            continue;
        }
        match key.check(now, ip, &c.nonce) {
            Some(true) if c.verify(req.method.as_str(), &rule.password) => return Verdict::Pass,
            // A right answer to an old nonce: ask again without counting it as a failure.
            Some(false) if c.verify(req.method.as_str(), &rule.password) => stale = true,
            _ => {}
        }
    }
    let ch = Challenge {
        realm: rule.realm.clone(),
        nonce: key.issue(now, ip),
        opaque: None,
        algorithm: Algorithm::Md5,
        qop_auth: true,
        stale,
    };
    Verdict::Challenge(ch.to_header())
}
