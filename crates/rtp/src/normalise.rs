//! The phone-side stream normaliser: whatever the far end does with SSRCs, timestamps and
//! sequence numbers, the rest of the pipeline sees one continuous 64-bit timeline.
//!
//! PBXs switch media mid-call (transfers, music on hold, a media server taking over): the
//! SSRC changes, or the timestamp base jumps while the SSRC stays, or the sequence restarts.
//! Each of these starts a new *source segment*. A new segment is placed right after the audio
//! already received (never before the playout position), so playout continues without a gap;
//! packets that still trickle in from the source that was left are dropped as stale.

use std::time::{Duration, Instant};

use crate::seq::{SeqExtender, TsExtender};

/// How long after a switch late packets of the old source count as stale rather than as a
/// switch back to it.
const STALE_WINDOW: Duration = Duration::from_secs(2);
/// A sequence jump beyond this (forward) or below `-MAX_MISORDER` (backward) is a restart
/// (the bounds of RFC 3550 Appendix A.1).
const MAX_DROPOUT: i64 = 3000;
const MAX_MISORDER: i64 = 100;
/// A timestamp that disagrees with both the sequence numbers (by more than this many
/// packets) and the wall clock (by more than `TS_WALL_TOLERANCE`) is a jump of the base.
const TS_SEQ_TOLERANCE_PACKETS: i64 = 3;
const TS_WALL_TOLERANCE: Duration = Duration::from_millis(250);

/// Why a segment started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentCause {
    First,
    SsrcSwitch,
    TimestampJump,
    SequenceRestart,
}

/// Counters of what the far end did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NormaliserStats {
    pub ssrc_switches: u64,
    pub timestamp_jumps: u64,
    pub sequence_restarts: u64,
    pub stale: u64,
}

/// A packet placed on the continuous timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// Continuous sequence index.
    pub seq: u64,
    /// Continuous timestamp, in RTP clock units.
    pub ts: u64,
    /// Set on the first packet of a segment.
    pub new_segment: Option<SegmentCause>,
}

#[derive(Debug, Clone)]
struct Segment {
    ssrc: u32,
    seq: SeqExtender,
    ts: TsExtender,
    seq_offset: i64,
    ts_offset: i64,
    last_seq: u64,
    last_ts: u64,
    last_arrival: Instant,
    last_duration: u32,
}

#[derive(Debug, Clone, Copy)]
struct Retired {
    ssrc: u32,
    last_seq: u16,
    at: Instant,
}

/// Maps packets of any number of source segments to one timeline.
#[derive(Debug, Clone)]
pub struct Normaliser {
    clock: u32,
    current: Option<Segment>,
    retired: Vec<Retired>,
    next_ts: u64,
    next_seq: u64,
    stats: NormaliserStats,
}

impl Normaliser {
    pub fn new(clock: u32) -> Self {
        Normaliser {
            clock,
            current: None,
            retired: Vec::new(),
            next_ts: 1 << 32,
            next_seq: 1 << 20,
            stats: NormaliserStats::default(),
        }
    }

    pub fn stats(&self) -> NormaliserStats {
        self.stats
    }

    /// The SSRC of the segment playing now.
    pub fn ssrc(&self) -> Option<u32> {
        self.current.as_ref().map(|s| s.ssrc)
    }

    /// Places a packet. `duration` is its length in clock units; `floor` the earliest
    /// timestamp a new segment may start at (the playout position). `None` for a stale
    /// packet of a source that was switched away from.
    pub fn place(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        ts: u32,
        duration: u32,
        floor: u64,
    ) -> Option<Placed> {
        let cause = match &mut self.current {
            None => Some(SegmentCause::First),
            Some(cur) if cur.ssrc != ssrc => {
                if self.is_stale(now, ssrc, seq) {
                    self.stats.stale += 1;
                    return None;
                }
                self.stats.ssrc_switches += 1;
                Some(SegmentCause::SsrcSwitch)
            }
            Some(cur) => {
                let (seq_ext, ts_ext) = (cur.seq.extend(seq), cur.ts.extend(ts));
                let d_seq = seq_ext as i64 - cur.last_seq as i64;
                let d_ts = ts_ext as i64 - cur.last_ts as i64;
                if !(-MAX_MISORDER..=MAX_DROPOUT).contains(&d_seq) {
                    self.stats.sequence_restarts += 1;
                    Some(SegmentCause::SequenceRestart)
                } else if ts_jumped(cur, now, d_seq, d_ts, self.clock) {
                    self.stats.timestamp_jumps += 1;
                    Some(SegmentCause::TimestampJump)
                } else {
                    let placed = Placed {
                        seq: (seq_ext as i64 + cur.seq_offset) as u64,
                        ts: (ts_ext as i64 + cur.ts_offset) as u64,
                        new_segment: None,
                    };
                    if d_seq > 0 {
                        cur.last_seq = seq_ext;
                        cur.last_ts = ts_ext;
                        cur.last_arrival = now;
                        cur.last_duration = duration;
                    }
                    self.advance(placed, duration);
                    return Some(placed);
                }
            }
        };
        let cause = cause?;
        if let Some(old) = self.current.take() {
            if old.ssrc != ssrc {
                self.retired
                    .retain(|r| r.ssrc != old.ssrc && r.ssrc != ssrc);
                self.retired.push(Retired {
                    ssrc: old.ssrc,
                    last_seq: old.last_seq as u16,
                    at: now,
                });
                if self.retired.len() > 4 {
                    self.retired.remove(0);
                }
            }
        }
        let mut seg = Segment {
            ssrc,
            seq: SeqExtender::default(),
            ts: TsExtender::default(),
            seq_offset: 0,
            ts_offset: 0,
            last_seq: 0,
            last_ts: 0,
            last_arrival: now,
            last_duration: duration,
        };
        let (seq_ext, ts_ext) = (seg.seq.extend(seq), seg.ts.extend(ts));
        let start = self.next_ts.max(floor);
        seg.ts_offset = start as i64 - ts_ext as i64;
        seg.seq_offset = self.next_seq as i64 - seq_ext as i64;
        seg.last_seq = seq_ext;
        seg.last_ts = ts_ext;
        let placed = Placed {
            seq: self.next_seq,
            ts: start,
            new_segment: Some(cause),
        };
        self.current = Some(seg);
        self.advance(placed, duration);
        Some(placed)
    }

    fn advance(&mut self, p: Placed, duration: u32) {
        self.next_ts = self.next_ts.max(p.ts + duration as u64);
        self.next_seq = self.next_seq.max(p.seq + 1);
    }

    fn is_stale(&self, now: Instant, ssrc: u32, seq: u16) -> bool {
        self.retired.iter().any(|r| {
            r.ssrc == ssrc
                && now.duration_since(r.at) < STALE_WINDOW
                && (seq.wrapping_sub(r.last_seq) as i16) <= TS_SEQ_TOLERANCE_PACKETS as i16
        })
    }
}

fn ts_jumped(cur: &Segment, now: Instant, d_seq: i64, d_ts: i64, clock: u32) -> bool {
    let per_packet = cur.last_duration.max(1) as i64;
    let by_seq = (d_ts - d_seq * per_packet).abs();
    if by_seq <= TS_SEQ_TOLERANCE_PACKETS * per_packet {
        return false;
    }
    // Silence suppression advances the timestamp with the wall clock, not the sequence.
    let wall = now
        .saturating_duration_since(cur.last_arrival)
        .as_secs_f64()
        * clock as f64;
    let tolerance = TS_WALL_TOLERANCE.as_secs_f64() * clock as f64;
    (d_ts as f64 - wall).abs() > tolerance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time
    fn origin() -> Instant {
        Instant::now()
    }

    fn feed(
        n: &mut Normaliser,
        t0: Instant,
        i: u64,
        ssrc: u32,
        seq: u16,
        ts: u32,
    ) -> Option<Placed> {
        n.place(t0 + Duration::from_millis(20 * i), ssrc, seq, ts, 160, 0)
    }

    #[test]
    fn continuous_stream_maps_one_to_one() {
        let t0 = origin();
        let mut n = Normaliser::new(8000);
        let a = feed(&mut n, t0, 0, 1, 65535, u32::MAX - 159).unwrap();
        let b = feed(&mut n, t0, 1, 1, 0, 0).unwrap();
        assert_eq!(a.new_segment, Some(SegmentCause::First));
        assert_eq!((b.seq - a.seq, b.ts - a.ts), (1, 160));
        assert_eq!(b.new_segment, None);
    }

    #[test]
    fn ssrc_switch_continues_the_timeline_and_drops_stale_packets() {
        let t0 = origin();
        let mut n = Normaliser::new(8000);
        let a = feed(&mut n, t0, 0, 1, 100, 5000).unwrap();
        let b = feed(&mut n, t0, 1, 2, 7, 999_999).unwrap();
        assert_eq!(b.new_segment, Some(SegmentCause::SsrcSwitch));
        assert_eq!(b.ts, a.ts + 160);
        assert_eq!(feed(&mut n, t0, 2, 1, 100, 5000), None, "stale");
        let c = feed(&mut n, t0, 2, 2, 8, 1_000_159).unwrap();
        assert_eq!(c.ts, b.ts + 160);
        assert_eq!(n.stats().stale, 1);
        // Long after, the old source coming back is a switch, not stale.
        let back = feed(&mut n, t0, 500, 1, 101, 5160).unwrap();
        assert_eq!(back.new_segment, Some(SegmentCause::SsrcSwitch));
    }

    #[test]
    fn timestamp_jump_with_same_ssrc_is_a_new_segment_but_dtx_is_not() {
        let t0 = origin();
        let mut n = Normaliser::new(8000);
        let a = feed(&mut n, t0, 0, 1, 1, 1000).unwrap();
        let b = feed(&mut n, t0, 1, 1, 2, 80_000_000).unwrap();
        assert_eq!(b.new_segment, Some(SegmentCause::TimestampJump));
        assert_eq!(b.ts, a.ts + 160);
        // Silence suppression: 2 s of wall clock, timestamp advances 2 s, sequence by one.
        let c = feed(&mut n, t0, 101, 1, 3, 80_000_000 + 16_000).unwrap();
        assert_eq!(c.new_segment, None);
        assert_eq!(c.ts, b.ts + 16_000);
    }

    #[test]
    fn sequence_restart_is_a_new_segment() {
        let t0 = origin();
        let mut n = Normaliser::new(8000);
        feed(&mut n, t0, 0, 1, 30_000, 1000).unwrap();
        let b = feed(&mut n, t0, 1, 1, 5, 1160).unwrap();
        assert_eq!(b.new_segment, Some(SegmentCause::SequenceRestart));
        assert_eq!(n.stats().sequence_restarts, 1);
    }

    #[test]
    fn new_segment_never_starts_before_the_playout_floor() {
        let t0 = origin();
        let mut n = Normaliser::new(8000);
        let a = feed(&mut n, t0, 0, 1, 1, 1000).unwrap();
        let b = n.place(t0, 2, 1, 1, 160, a.ts + 8000).unwrap();
        assert_eq!(b.ts, a.ts + 8000);
    }
}
