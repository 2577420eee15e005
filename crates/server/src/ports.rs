//! RTP/RTCP port pairs from the configured range: even RTP port, RTCP on the next one.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};

#[derive(Debug)]
pub(crate) struct PortPool {
    lo: u16,
    hi: u16,
    next: u16,
    in_use: HashSet<u16>,
}

impl PortPool {
    pub(crate) fn new((lo, hi): (u16, u16)) -> Self {
        let lo = lo + lo % 2;
        PortPool {
            lo,
            hi,
            next: lo,
            in_use: HashSet::new(),
        }
    }

    /// Binds a free pair on `ip`, skipping ports other programs hold.
    pub(crate) fn allocate(&mut self, ip: IpAddr) -> std::io::Result<(u16, UdpSocket, UdpSocket)> {
        let pairs = ((self.hi - self.lo) / 2).max(1);
        for _ in 0..pairs {
            let port = self.next;
            self.next = if port + 3 > self.hi {
                self.lo
            } else {
                port + 2
            };
            if self.in_use.contains(&port) {
                continue;
            }
            let Ok(rtp) = UdpSocket::bind(SocketAddr::new(ip, port)) else {
                continue;
            };
            let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)) else {
                continue;
            };
            self.in_use.insert(port);
            return Ok((port, rtp, rtcp));
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free RTP port pair in the configured range",
        ))
    }

    pub(crate) fn release(&mut self, port: u16) {
        self.in_use.remove(&port);
    }

    #[cfg(test)]
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_reused_after_release() {
        let mut p = PortPool::new((41001, 41010));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (a, _r1, _c1) = p.allocate(ip).unwrap();
        assert_eq!(a % 2, 0);
        let (b, ..) = p.allocate(ip).unwrap();
        assert_ne!(a, b);
        p.release(a);
        assert_eq!(p.in_use(), 1);
    }
}
