//! Bodies of the fuzz targets in `fuzz/`, compiled with the library (and exercised by its
//! tests) so they never rot. Each panics only when an invariant is broken.

use std::time::{Duration, Instant};

use crate::events::{EventPayload, EventReceiver};
use crate::jitter::{Decode, JitterBuffer};
use crate::packet::RtpPacket;
use crate::rtcp;
use crate::srtp::{SrtpContext, SrtpProfile};

/// A decoder for raw 8-bit samples: one sample per byte.
struct Bytes;

impl Decode for Bytes {
    fn duration(&self, payload: &[u8]) -> Option<u32> {
        (!payload.is_empty()).then_some(payload.len() as u32)
    }
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.extend(payload.iter().map(|&b| b as i16));
    }
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        out.extend(std::iter::repeat_n(0, samples));
    }
}

/// Arbitrary datagrams through every parser of the crate, then as a packet stream through
/// the normaliser and jitter buffer: no panic, printed packets parse back, and every tick
/// yields exactly one frame.
pub fn packets(data: &[u8], origin: Instant) {
    if let Some(p) = RtpPacket::parse(data) {
        let mut out = Vec::new();
        RtpPacket { ..p }.write(&mut out);
        let again = RtpPacket::parse(&out).expect("a written packet parses");
        assert_eq!(
            (again.seq, again.ts, again.ssrc, again.payload),
            (p.seq, p.ts, p.ssrc, p.payload)
        );
    }
    let _ = rtcp::parse(data);
    let _ = EventPayload::parse(data);
    let mut events = EventReceiver::default();
    for (i, chunk) in data.chunks(8).enumerate() {
        let _ = events.push(
            i as u32 % 3,
            chunk.first().copied().unwrap_or(0) as u32,
            chunk,
        );
    }
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
    ] {
        let mut ctx = SrtpContext::new(profile, &[7; 30]);
        let _ = ctx.unprotect_rtp(&mut data.to_vec());
        let _ = ctx.unprotect_rtcp(&mut data.to_vec());
    }
    // Each 8-byte record is a packet: ssrc selector, seq, ts delta, arrival delta, length.
    let mut jb = JitterBuffer::new(8000, 8000, Duration::from_millis(300));
    let mut dec = Bytes;
    let mut now = origin;
    let mut ts = 0u32;
    let mut out = Vec::new();
    for rec in data.chunks_exact(8) {
        let ssrc = (rec[0] % 3) as u32;
        let seq = u16::from_be_bytes([rec[1], rec[2]]);
        ts = ts.wrapping_add(u16::from_be_bytes([rec[3], rec[4]]) as u32);
        now += Duration::from_millis(rec[5] as u64);
        let payload = vec![1u8; rec[6] as usize % 241];
        let _ = jb.push(now, ssrc, seq, ts, &payload, &dec);
        if rec[7] & 1 == 1 {
            let before = out.len();
            jb.pull(now, &mut dec, &mut out);
            assert_eq!(out.len() - before, jb.frame_samples(), "one frame per tick");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[allow(clippy::disallowed_methods)] // an arbitrary origin
    fn runs_on_samples() {
        let t0 = std::time::Instant::now();
        super::packets(&[0x80, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 0xd5, 0xd5], t0);
        let stream: Vec<u8> = (0..400u32)
            .flat_map(|i| [i as u8, 0, i as u8, 0, 160, 20, 160, 1])
            .collect();
        super::packets(&stream, t0);
        super::packets(&[], t0);
    }
}
