//! Extension of 16-bit sequence numbers and 32-bit timestamps to 64 bits, so no other layer
//! ever sees a wrap-around.

/// Extends 16-bit sequence numbers: each value is placed in the 64-bit cycle nearest the
/// highest one seen so far (RFC 3550 Appendix A.1's idea without its probation).
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqExtender {
    highest: Option<u64>,
}

impl SeqExtender {
    pub fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.highest {
            None => (1 << 16) + seq as u64,
            Some(h) => nearest(h, seq as u64, 1 << 16),
        };
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        ext
    }
}

/// Extends 32-bit timestamps the same way.
#[derive(Debug, Clone, Copy, Default)]
pub struct TsExtender {
    highest: Option<u64>,
}

impl TsExtender {
    pub fn extend(&mut self, ts: u32) -> u64 {
        let ext = match self.highest {
            None => (1 << 32) + ts as u64,
            Some(h) => nearest(h, ts as u64, 1 << 32),
        };
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        ext
    }
}

/// The value `≡ v (mod m)` nearest to `reference`. Starting every stream one cycle up keeps
/// values slightly before the first one representable.
fn nearest(reference: u64, v: u64, m: u64) -> u64 {
    let base = reference - reference % m;
    let candidates = [base.wrapping_sub(m), base, base + m];
    candidates
        .into_iter()
        .filter(|c| *c <= u64::MAX - m)
        .map(|c| c + v)
        .min_by_key(|c| c.abs_diff(reference))
        .unwrap_or(base + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_forward_and_reorders_back() {
        let mut e = SeqExtender::default();
        let a = e.extend(65534);
        assert_eq!(e.extend(65535), a + 1);
        assert_eq!(e.extend(0), a + 2);
        assert_eq!(e.extend(65535), a + 1, "a late packet from before the wrap");
        assert_eq!(e.extend(1), a + 3);
        assert_eq!(e.extend(3), a + 5);
    }

    #[test]
    fn timestamps_wrap() {
        let mut e = TsExtender::default();
        let a = e.extend(u32::MAX - 159);
        assert_eq!(e.extend(0), a + 160);
        assert_eq!(e.extend(160), a + 320);
        assert_eq!(e.extend(u32::MAX - 159), a);
    }
}
