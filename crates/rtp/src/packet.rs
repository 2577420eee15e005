//! RTP packets (RFC 3550 §5.1): a borrowed view for reading and a writer for sending.

/// A parsed RTP packet borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    /// The payload, without padding, CSRCs or header extension.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses a packet; `None` for anything that is not well-formed RTP version 2.
    pub fn parse(buf: &'a [u8]) -> Option<Self> {
        if buf.len() < 12 || buf[0] >> 6 != 2 {
            return None;
        }
        let padding = buf[0] & 0x20 != 0;
        let extension = buf[0] & 0x10 != 0;
        let csrc_count = (buf[0] & 0x0f) as usize;
        let mut start = 12 + 4 * csrc_count;
        if extension {
            let ext = buf.get(start..start + 4)?;
            let words = u16::from_be_bytes([ext[2], ext[3]]) as usize;
            start += 4 + 4 * words;
        }
        let mut end = buf.len();
        if padding {
            let pad = *buf.last()? as usize;
            if pad == 0 {
                return None;
            }
            end = end.checked_sub(pad)?;
        }
        if start > end {
            return None;
        }
        Some(RtpPacket {
            marker: buf[1] & 0x80 != 0,
            pt: buf[1] & 0x7f,
            seq: u16::from_be_bytes([buf[2], buf[3]]),
            ts: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            payload: &buf[start..end],
        })
    }

    /// Writes the packet (no CSRCs, extension or padding) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.reserve(12 + self.payload.len());
        out.push(0x80);
        out.push(((self.marker as u8) << 7) | (self.pt & 0x7f));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(self.payload);
    }
}

/// Whether a datagram on an RTP port is RTCP rather than RTP (RFC 5761 §4: payload types
/// 64–95 with the marker bit are RTCP packet types 192–223).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = RtpPacket {
            marker: true,
            pt: 8,
            seq: 65535,
            ts: 0xdead_beef,
            ssrc: 0x1234_5678,
            payload: &[1, 2, 3],
        };
        let mut b = Vec::new();
        p.write(&mut b);
        assert_eq!(RtpPacket::parse(&b), Some(p));
        assert!(!is_rtcp(&b));
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        let mut b = vec![0x80 | 0x20 | 0x10 | 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        b.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one-word extension
        b.extend_from_slice(&[0xaa, 0xbb]); // payload
        b.extend_from_slice(&[0, 0, 3]); // padding of 3
        let p = RtpPacket::parse(&b).unwrap();
        assert_eq!(p.payload, &[0xaa, 0xbb]);
        assert_eq!((p.seq, p.ts, p.ssrc), (1, 2, 3));
    }

    #[test]
    fn malformed_is_none() {
        assert!(RtpPacket::parse(&[0x80; 11]).is_none());
        assert!(RtpPacket::parse(&[0x40; 12]).is_none(), "version 1");
        let mut b = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 200];
        assert!(
            RtpPacket::parse(&b).is_none(),
            "padding longer than the packet"
        );
        b[0] = 0x8f;
        assert!(RtpPacket::parse(&b).is_none(), "CSRCs beyond the end");
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
    }
}
