//! RTP/RTCP port pairs from the configured range: even RTP port, RTCP on the next one.
//!
//! A pair whose call ended is kept open ("parked") rather than closed, and handed to a later
//! call once it has rested for [`QUARANTINE`]: the sockets stay registered with the runtime,
//! so a new call costs no socket, bind, close or poller calls. Whatever reached a parked pair
//! (late packets of the call that had it) is read and thrown away before the pair is reused,
//! so it can never be taken for the new call's media.

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

/// How long an ended call's pair rests before another call gets it: far ends stop sending
/// within a packet time or two of the BYE, so anything later than this is not expected.
pub(crate) const QUARANTINE: Duration = Duration::from_secs(1);

/// File descriptors left for everything else (SIP connections, WebRTC, SQLite, HTTP) when
/// sizing how many pairs may stay parked.
const FD_RESERVE: u64 = 1024;

/// A bound RTP/RTCP socket pair, registered with the runtime.
#[derive(Debug)]
pub(crate) struct PortPair {
    pub(crate) port: u16,
    /// The address both sockets are bound to.
    ip: IpAddr,
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: UdpSocket,
}

/// Where a leg hands its pair back when it ends (from its own task).
#[derive(Debug, Clone, Default)]
pub(crate) struct Returns {
    queue: Arc<Mutex<Vec<(Instant, PortPair)>>>,
    /// Pairs handed back and not yet reused or closed.
    resting: Arc<AtomicUsize>,
}

impl Returns {
    pub(crate) fn give(&self, at: Instant, pair: PortPair) {
        if let Ok(mut r) = self.queue.lock() {
            r.push((at, pair));
            self.resting.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Debug)]
pub(crate) struct PortPool {
    lo: u16,
    hi: u16,
    next: u16,
    in_use: HashSet<u16>,
    parked: VecDeque<(Instant, PortPair)>,
    parked_cap: usize,
    returns: Returns,
    /// The runtime new sockets register with: the one the pool was made in.
    runtime: Option<tokio::runtime::Handle>,
}

impl PortPool {
    pub(crate) fn new((lo, hi): (u16, u16)) -> Self {
        let lo = lo + lo % 2;
        // Half the range at most, so fresh ports remain for calls while others rest; and
        // half the pairs the process has descriptors for, the other half being for live calls.
        let openable = open_files_limit().saturating_sub(FD_RESERVE) / 2;
        PortPool {
            lo,
            hi,
            next: lo,
            in_use: HashSet::new(),
            parked: VecDeque::new(),
            parked_cap: (range_pairs(lo, hi) / 2).min(openable as usize / 2),
            returns: Returns::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Where legs give their pairs back.
    pub(crate) fn returns(&self) -> Returns {
        self.returns.clone()
    }

    /// A free pair on `ip`: a rested parked one, or a newly bound one (skipping ports other
    /// programs hold). Must run inside the runtime.
    pub(crate) fn allocate(&mut self, now: Instant, ip: IpAddr) -> std::io::Result<PortPair> {
        self.take_returns();
        if let Some(pair) = self.take_parked(now, ip, QUARANTINE) {
            return Ok(pair);
        }
        if let Some(pair) = self.bind_fresh(ip) {
            return Ok(pair);
        }
        // The range is exhausted but for resting pairs: the oldest is better than a refusal.
        self.take_parked(now, ip, Duration::ZERO).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "no free RTP port pair in the configured range",
            )
        })
    }

    /// The port is no longer the call's. A pair that never went to a leg (`unused`, e.g. a
    /// refused call's) rests from now; a leg's comes back through [`Returns`] when it ends.
    pub(crate) fn release(&mut self, now: Instant, port: u16, unused: Option<PortPair>) {
        self.in_use.remove(&port);
        if let Some(pair) = unused {
            self.returns.give(now, pair);
        }
    }

    fn take_returns(&mut self) {
        let returned = match self.returns.queue.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        for (at, pair) in returned {
            if self.parked_cap == 0 {
                self.left_rest();
                continue;
            }
            if self.parked.len() >= self.parked_cap {
                self.parked.pop_front();
                self.left_rest();
            }
            self.parked.push_back((at, pair));
        }
    }

    /// The oldest parked pair on `ip` if it has rested `rest`, emptied of what reached it.
    fn take_parked(&mut self, now: Instant, ip: IpAddr, rest: Duration) -> Option<PortPair> {
        let (at, _) = self.parked.front()?;
        if now.saturating_duration_since(*at) < rest {
            return None;
        }
        let (_, pair) = self.parked.pop_front()?;
        self.left_rest();
        if pair.ip != ip {
            // Bound elsewhere (the address changed): close it and let a fresh one be bound.
            return None;
        }
        drain(&pair.rtp);
        drain(&pair.rtcp);
        self.in_use.insert(pair.port);
        Some(pair)
    }

    fn bind_fresh(&mut self, ip: IpAddr) -> Option<PortPair> {
        for _ in 0..range_pairs(self.lo, self.hi) {
            let port = self.next;
            self.next = if port + 3 > self.hi {
                self.lo
            } else {
                port + 2
            };
            if self.in_use.contains(&port) {
                continue;
            }
            // The sockets belong to the runtime the media legs run on (the pool's), not to
            // the SIP driver's, which allocates from its own thread.
            let _runtime = self.runtime.as_ref().map(tokio::runtime::Handle::enter);
            let Some(rtp) = bind(SocketAddr::new(ip, port)) else {
                continue;
            };
            let Some(rtcp) = bind(SocketAddr::new(ip, port + 1)) else {
                continue;
            };
            self.in_use.insert(port);
            return Some(PortPair {
                port,
                ip,
                rtp,
                rtcp,
            });
        }
        None
    }

    /// The live count of pairs kept open for reuse, for metrics.
    pub(crate) fn resting_gauge(&self) -> Arc<AtomicUsize> {
        self.returns.resting.clone()
    }

    /// A resting pair was reused or closed.
    fn left_rest(&self) {
        self.returns.resting.fetch_sub(1, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.len()
    }
}

/// How many pairs the range from even port `lo` to `hi` holds (at least one).
fn range_pairs(lo: u16, hi: u16) -> usize {
    usize::from(hi.saturating_sub(lo) / 2).max(1)
}

fn bind(addr: SocketAddr) -> Option<UdpSocket> {
    let s = std::net::UdpSocket::bind(addr).ok()?;
    s.set_nonblocking(true).ok()?;
    UdpSocket::from_std(s).ok()
}

/// Reads and discards every datagram waiting on `socket`.
fn drain(socket: &UdpSocket) {
    let mut buf = [0u8; 2048];
    while socket.try_recv_from(&mut buf).is_ok() {}
}

/// The soft limit on open files of this process.
fn open_files_limit() -> u64 {
    // /proc/self/limits: "Max open files  <soft>  <hard>  files".
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn pairs_are_even_and_reused_after_release() {
        let mut p = PortPool::new((41001, 41010));
        let t = crate::sip_driver::now();
        let a = p.allocate(t, LOOPBACK).unwrap();
        assert_eq!(a.port % 2, 0);
        assert_eq!(a.rtcp.local_addr().unwrap().port(), a.port + 1);
        let b = p.allocate(t, LOOPBACK).unwrap();
        assert_ne!(a.port, b.port);
        p.release(t, a.port, None);
        assert_eq!(p.in_use(), 1);
    }

    #[tokio::test]
    async fn an_ended_pair_rests_before_reuse_and_comes_back_empty() {
        let mut p = PortPool::new((41101, 41199));
        let t0 = crate::sip_driver::now();
        let a = p.allocate(t0, LOOPBACK).unwrap();
        let port = a.port;
        let addr = a.rtp.local_addr().unwrap();
        p.release(t0, port, None);
        p.returns().give(t0, a);
        let resting = p.resting_gauge();
        assert_eq!(resting.load(Ordering::Relaxed), 1);
        // A late packet of the ended call reaches the resting pair.
        let far = std::net::UdpSocket::bind((LOOPBACK, 0)).unwrap();
        far.send_to(b"late packet of the old call", addr).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;

        // While it rests, calls get fresh pairs.
        let b = p.allocate(t0 + QUARANTINE / 2, LOOPBACK).unwrap();
        assert_ne!(b.port, port);
        // Rested: the same sockets again, with the late packet gone.
        let c = p.allocate(t0 + QUARANTINE, LOOPBACK).unwrap();
        assert_eq!(c.port, port);
        assert_eq!(c.rtp.local_addr().unwrap(), addr);
        assert_eq!(resting.load(Ordering::Relaxed), 0, "no longer resting");
        let mut buf = [0u8; 64];
        assert!(c.rtp.try_recv_from(&mut buf).is_err(), "old packet left");
        // New media reaches it as before.
        far.send_to(b"new", addr).unwrap();
        let (n, _) = c.rtp.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"new");
    }

    #[tokio::test]
    async fn a_full_range_hands_out_the_oldest_resting_pair() {
        // One pair in the range: after it ends, the next call gets it even mid-rest.
        let mut p = PortPool::new((41201, 41202));
        p.parked_cap = 1;
        let t0 = crate::sip_driver::now();
        let a = p.allocate(t0, LOOPBACK).unwrap();
        assert!(p.allocate(t0, LOOPBACK).is_err(), "the only pair is taken");
        let port = a.port;
        p.release(t0, port, Some(a));
        let b = p.allocate(t0, LOOPBACK).unwrap();
        assert_eq!(b.port, port);
    }
}
