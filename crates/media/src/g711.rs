//! G.711 µ-law and A-law (ITU-T G.711): 16-bit linear PCM to 8-bit codes and back.
//!
//! Decoding is a table lookup built at compile time; encoding is a few shifts on the segment
//! (the position of the highest set bit), exact to the recommendation's quantisation.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one sample to µ-law.
pub const fn ulaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    if s > ULAW_CLIP {
        s = ULAW_CLIP;
    }
    s += ULAW_BIAS;
    // Segment: the highest set bit among bits 7..=14 of the biased magnitude.
    let exponent = 31 - (s as u32 | 0x80).leading_zeros() as i32 - 7;
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// Decodes one µ-law code.
pub const fn ulaw_decode(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

const fn ulaw_decode_slow(code: u8) -> i16 {
    let u = !code as i32;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0f;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one sample to A-law.
pub const fn alaw_encode(sample: i16) -> u8 {
    let (mask, magnitude) = if sample >= 0 {
        (0xd5, sample as i32)
    } else {
        // One's complement keeps the negative range symmetric (-1 → 0).
        (0x55, !(sample as i32))
    };
    // A-law quantises a 13-bit magnitude.
    let m = magnitude >> 3;
    let code = if m < 0x20 {
        m >> 1
    } else {
        // Segment 1..=7 from the highest set bit (bit 5 → segment 1).
        let seg = 31 - (m as u32).leading_zeros() as i32 - 4;
        if seg > 7 {
            0x7f
        } else {
            (seg << 4) | ((m >> seg) & 0x0f)
        }
    };
    (code ^ mask) as u8
}

/// Decodes one A-law code.
pub const fn alaw_decode(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

const fn alaw_decode_slow(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let seg = (a & 0x70) >> 4;
    let mut t = (a & 0x0f) << 4;
    t += if seg == 0 { 8 } else { 0x108 };
    if seg > 1 {
        t <<= seg - 1;
    }
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn table(ulaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if ulaw {
            ulaw_decode_slow(i as u8)
        } else {
            alaw_decode_slow(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TABLE: [i16; 256] = table(true);
static ALAW_TABLE: [i16; 256] = table(false);

/// Which law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    /// Encodes `pcm`, appending one code per sample to `out`.
    pub fn encode(self, pcm: &[i16], out: &mut Vec<u8>) {
        match self {
            Law::Ulaw => out.extend(pcm.iter().map(|&s| ulaw_encode(s))),
            Law::Alaw => out.extend(pcm.iter().map(|&s| alaw_encode(s))),
        }
    }

    /// Decodes `codes`, appending one sample per code to `out`.
    pub fn decode(self, codes: &[u8], out: &mut Vec<i16>) {
        let t = match self {
            Law::Ulaw => &ULAW_TABLE,
            Law::Alaw => &ALAW_TABLE,
        };
        out.extend(codes.iter().map(|&c| t[c as usize]));
    }

    /// The code of silence.
    pub fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xff,
            Law::Alaw => 0xd5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_points() {
        // Values of the G.711 quantisation. A-law agrees with CPython's audioop on all 65,536
        // inputs; µ-law is sign-magnitude symmetric as G.711 defines it (audioop truncates
        // negatives toward -inf and so differs by one code on 381 negative inputs, e.g. -1).
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_encode(-1), 0x7f);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ulaw_encode(1000), 0xce);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xaa);
        assert_eq!(alaw_encode(i16::MIN), 0x2a);
        assert_eq!(alaw_encode(1000), 0xfa);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xaa), 32256);
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for c in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#x}");
            // µ-law has two zeros (0x7f and 0xff); both decode to 0, which encodes as 0xff.
            let expected = if c == 0x7f { 0xff } else { c };
            assert_eq!(ulaw_encode(ulaw_decode(c)), expected, "µ-law {c:#x}");
        }
    }

    #[test]
    fn quantisation_is_monotonic_and_bounded() {
        let mut prev_u = ulaw_decode(ulaw_encode(i16::MIN));
        let mut prev_a = alaw_decode(alaw_encode(i16::MIN));
        for s in i16::MIN..=i16::MAX {
            let u = ulaw_decode(ulaw_encode(s));
            let a = alaw_decode(alaw_encode(s));
            assert!(u >= prev_u && a >= prev_a, "monotonic at {s}");
            // The error stays within half a step of the coarsest segment.
            assert!((u as i32 - s as i32).abs() <= 1024, "µ-law error at {s}");
            assert!((a as i32 - s as i32).abs() <= 1024, "A-law error at {s}");
            prev_u = u;
            prev_a = a;
        }
    }
}
