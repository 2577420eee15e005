//! RTCP (RFC 3550 §6): sender and receiver reports with their report blocks, SDES CNAME,
//! BYE; reception statistics (loss, interarrival jitter) for our reports and round-trip time
//! from the peer's.

use std::time::{Duration, Instant};

use crate::seq::SeqExtender;

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;

/// One reception report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from `ssrc`.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// A parsed RTCP packet of a compound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rtcp {
    SenderReport {
        ssrc: u32,
        ntp: u64,
        rtp_ts: u32,
        packets: u32,
        octets: u32,
        blocks: Vec<ReportBlock>,
    },
    ReceiverReport {
        ssrc: u32,
        blocks: Vec<ReportBlock>,
    },
    Bye {
        ssrcs: Vec<u32>,
    },
    /// SDES, APP, feedback…: recognised, not interpreted.
    Other {
        packet_type: u8,
    },
}

/// Parses a compound packet; `None` when it is not well-formed RTCP.
pub fn parse(mut buf: &[u8]) -> Option<Vec<Rtcp>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        if buf.len() < 4 || buf[0] >> 6 != 2 {
            return None;
        }
        let count = (buf[0] & 0x1f) as usize;
        let pt = buf[1];
        let len = (u16::from_be_bytes([buf[2], buf[3]]) as usize + 1) * 4;
        let pkt = buf.get(..len)?;
        buf = &buf[len..];
        let u32_at = |i: usize| {
            pkt.get(i..i + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let blocks = |start: usize| -> Option<Vec<ReportBlock>> {
            (0..count)
                .map(|i| {
                    let b = start + 24 * i;
                    let lost = u32_at(b + 4)?;
                    let cumulative = ((lost & 0x00ff_ffff) << 8) as i32 >> 8;
                    Some(ReportBlock {
                        ssrc: u32_at(b)?,
                        fraction_lost: (lost >> 24) as u8,
                        cumulative_lost: cumulative,
                        highest_seq: u32_at(b + 8)?,
                        jitter: u32_at(b + 12)?,
                        last_sr: u32_at(b + 16)?,
                        delay_since_last_sr: u32_at(b + 20)?,
                    })
                })
                .collect()
        };
        out.push(match pt {
            SR => Rtcp::SenderReport {
                ssrc: u32_at(4)?,
                ntp: ((u32_at(8)? as u64) << 32) | u32_at(12)? as u64,
                rtp_ts: u32_at(16)?,
                packets: u32_at(20)?,
                octets: u32_at(24)?,
                blocks: blocks(28)?,
            },
            RR => Rtcp::ReceiverReport {
                ssrc: u32_at(4)?,
                blocks: blocks(8)?,
            },
            BYE => Rtcp::Bye {
                ssrcs: (0..count)
                    .map(|i| u32_at(4 + 4 * i))
                    .collect::<Option<_>>()?,
            },
            other => Rtcp::Other { packet_type: other },
        });
    }
    Some(out)
}

/// What we sent, for the sender-info part of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub rtp_ts: u32,
    pub packets: u32,
    pub octets: u32,
}

/// Writes a compound report: SR (when we send) or RR, then SDES with our CNAME.
pub fn write_report(
    ssrc: u32,
    ntp: u64,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &str,
    out: &mut Vec<u8>,
) {
    let count = block.is_some() as u8;
    let start = out.len();
    out.push(0x80 | count);
    out.push(if sender.is_some() { SR } else { RR });
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_ts.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = ((b.fraction_lost as u32) << 24) | (b.cumulative_lost as u32 & 0x00ff_ffff);
        out.extend_from_slice(&lost.to_be_bytes());
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.last_sr.to_be_bytes());
        out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
    }
    set_length(out, start);
    // SDES with one chunk: our SSRC and CNAME, null-terminated, padded to 32 bits.
    let start = out.len();
    out.extend_from_slice(&[0x81, SDES, 0, 0]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    let name = &cname.as_bytes()[..cname.len().min(255)];
    out.push(1);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.push(0);
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    set_length(out, start);
}

/// Appends a BYE for `ssrc`.
pub fn write_bye(ssrc: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x81, BYE, 0, 1]);
    out.extend_from_slice(&ssrc.to_be_bytes());
}

fn set_length(out: &mut [u8], start: usize) {
    let words = ((out.len() - start) / 4 - 1) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

/// Reception statistics of the stream we receive (RFC 3550 Appendix A.3 and A.8).
#[derive(Debug, Clone)]
pub struct ReceptionStats {
    clock: u32,
    ssrc: Option<u32>,
    seq: SeqExtender,
    base_seq: u64,
    max_seq: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Jitter estimate in timestamp units, scaled by 16 as in A.8.
    jitter_x16: u64,
    last_transit: Option<i64>,
    origin: Option<Instant>,
    last_sr: Option<(u32, Instant)>,
}

impl ReceptionStats {
    pub fn new(clock: u32) -> Self {
        ReceptionStats {
            clock,
            ssrc: None,
            seq: SeqExtender::default(),
            base_seq: 0,
            max_seq: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_x16: 0,
            last_transit: None,
            origin: None,
            last_sr: None,
        }
    }

    /// Counts a received packet. A new SSRC restarts the statistics.
    pub fn on_packet(&mut self, now: Instant, ssrc: u32, seq: u16, ts: u32) {
        if self.ssrc != Some(ssrc) {
            let origin = self.origin;
            *self = ReceptionStats::new(self.clock);
            self.origin = origin;
            self.ssrc = Some(ssrc);
            let s = self.seq.extend(seq);
            self.base_seq = s;
            self.max_seq = s;
        } else {
            let s = self.seq.extend(seq);
            self.max_seq = self.max_seq.max(s);
        }
        self.received += 1;
        let origin = *self.origin.get_or_insert(now);
        let arrival = (now.duration_since(origin).as_secs_f64() * self.clock as f64) as i64;
        let transit = arrival - ts as i64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter_x16 = self.jitter_x16 + d - (self.jitter_x16 + 8) / 16;
        }
        self.last_transit = Some(transit);
    }

    /// Notes an SR from the peer (for LSR/DLSR in our next report).
    pub fn on_sender_report(&mut self, now: Instant, ntp: u64) {
        self.last_sr = Some(((ntp >> 16) as u32, now));
    }

    /// Packets expected minus received since the stream began (may be negative with duplicates).
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    fn expected(&self) -> u64 {
        if self.ssrc.is_none() {
            0
        } else {
            self.max_seq - self.base_seq + 1
        }
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_x16 as f64 / 16.0 * 1000.0 / self.clock as f64
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// The report block for our next SR/RR, and the interval's fraction lost.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let expected = self.expected();
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (last_sr, dlsr) = match self.last_sr {
            Some((lsr, at)) => (lsr, (now.duration_since(at).as_secs_f64() * 65536.0) as u32),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost: fraction,
            cumulative_lost: self.cumulative_lost().clamp(-(1 << 23), (1 << 23) - 1) as i32,
            // The extender counts from cycle 1 so early reordering stays representable.
            highest_seq: self.max_seq.saturating_sub(1 << 16) as u32,
            jitter: (self.jitter_x16 / 16) as u32,
            last_sr,
            delay_since_last_sr: dlsr,
        })
    }
}

/// Round-trip time from a report block about our stream, given the NTP time it arrived.
pub fn round_trip(block: &ReportBlock, arrival_ntp: u64) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let now_mid = (arrival_ntp >> 16) as u32;
    let rtt = now_mid
        .wrapping_sub(block.last_sr)
        .wrapping_sub(block.delay_since_last_sr);
    // More than a minute means the fields are inconsistent.
    (rtt < 60 << 16).then(|| Duration::from_secs_f64(rtt as f64 / 65536.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn report_round_trip_and_sdes() {
        let block = ReportBlock {
            ssrc: 9,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_seq: 70_000,
            jitter: 80,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        };
        let mut b = Vec::new();
        let info = SenderInfo {
            rtp_ts: 160,
            packets: 50,
            octets: 8000,
        };
        write_report(
            1,
            0xaabb_ccdd_0011_2233,
            Some(info),
            Some(block),
            "pb@host",
            &mut b,
        );
        write_bye(1, &mut b);
        assert_eq!(b.len() % 4, 0);
        assert!(crate::packet::is_rtcp(&b));
        let parsed = parse(&b).unwrap();
        assert_eq!(
            parsed[0],
            Rtcp::SenderReport {
                ssrc: 1,
                ntp: 0xaabb_ccdd_0011_2233,
                rtp_ts: 160,
                packets: 50,
                octets: 8000,
                blocks: vec![block]
            }
        );
        assert_eq!(parsed[1], Rtcp::Other { packet_type: SDES });
        assert_eq!(parsed[2], Rtcp::Bye { ssrcs: vec![1] });
        let mut rr = Vec::new();
        write_report(2, 0, None, None, "x", &mut rr);
        assert_eq!(
            parse(&rr).unwrap()[0],
            Rtcp::ReceiverReport {
                ssrc: 2,
                blocks: vec![]
            }
        );
        assert!(parse(&b[..b.len() - 2]).is_none());
    }

    #[test]
    fn loss_jitter_and_round_trip() {
        let t0 = origin();
        let mut s = ReceptionStats::new(8000);
        // 100 packets every 20 ms, every tenth lost, arrivals alternating ±2 ms.
        for i in 0..100u32 {
            if i % 10 == 5 {
                continue;
            }
            let wobble = if i % 2 == 0 { 2 } else { 0 };
            let at = t0 + Duration::from_millis(20 * i as u64 + wobble);
            s.on_packet(at, 7, 65500u16.wrapping_add(i as u16), 1000 + 160 * i);
        }
        assert_eq!(s.cumulative_lost(), 10);
        let b = s.report_block(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(b.fraction_lost, (10 * 256 / 100) as u8);
        assert_eq!(b.highest_seq, (1 << 16) + 63, "extended across the wrap");
        let j = s.jitter_ms();
        assert!((1.0..=2.5).contains(&j), "jitter {j:.2} ms");
        // RTT: the peer reports our SR sent at NTP T, held 0.25 s; it comes back at T + 0.3 s.
        let sent = 1000u64 << 32;
        let block = ReportBlock {
            last_sr: (sent >> 16) as u32,
            delay_since_last_sr: 65536 / 4,
            ..ReportBlock::default()
        };
        let rtt = round_trip(&block, sent + (3u64 << 32) / 10).unwrap();
        assert!((rtt.as_secs_f64() - 0.05).abs() < 0.001, "{rtt:?}");
    }
}
