//! Log redaction: addresses of peers (and later phone numbers) appear in logs above debug level
//! only through these wrappers, which keep enough to tell peers apart but not to identify them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// An address with its host part masked: `192.0.2.x`, `2001:db8:0:1::/64`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addr(pub(crate) SocketAddr);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.ip() {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                write!(f, "{}.{}.{}.x:{}", o[0], o[1], o[2], self.0.port())
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                write!(
                    f,
                    "[{:x}:{:x}:{:x}:{:x}::/64]:{}",
                    s[0],
                    s[1],
                    s[2],
                    s[3],
                    self.0.port()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_host_part() {
        assert_eq!(
            Addr("203.0.113.77:5060".parse().unwrap()).to_string(),
            "203.0.113.x:5060"
        );
        assert_eq!(
            Addr("[2001:db8:1:2:3:4:5:6]:5061".parse().unwrap()).to_string(),
            "[2001:db8:1:2::/64]:5061"
        );
    }
}
