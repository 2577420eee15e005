//! The jitter buffer: packets in, one steady 20 ms frame of audio out per tick.
//!
//! Packets are placed on the normaliser's continuous timeline, kept in timestamp order
//! (reordered packets find their place, duplicates and packets that come after their turn
//! are dropped and counted), and decoded in order when their audio is due. Holes are
//! concealed by the decoder (Opus PLC, G.711 waveform repetition). The playout delay adapts:
//!
//! - the *target* is one packet plus the spread of the packets' transit times over the last
//!   two seconds, so a clean network plays with one packet of delay;
//! - an underrun (nothing to play) conceals without moving the playout position: the delay
//!   grows by one frame, exactly when the network shows it is needed;
//! - when the buffer has held more than the target plus a frame for a whole second, one frame
//!   is dropped: the delay shrinks back once the jitter is gone; three frames or more over
//!   for 100 ms drop a frame each time (a backlog after a stall goes within half a second).
//!
//! After an underrun the next packet that arrives is played next, whatever its timestamp
//! (silence suppression and paused streams do not turn into long concealment).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::normalise::{Normaliser, NormaliserStats, SegmentCause};

/// Frames are 20 ms.
pub const FRAME: Duration = Duration::from_millis(20);
const TRANSIT_WINDOW: Duration = Duration::from_secs(2);
const LEVEL_WINDOW_FRAMES: usize = 50;
const FAST_LEVEL_WINDOW_FRAMES: usize = 5;
const MAX_PACKETS: usize = 500;

/// A codec's decoder as the jitter buffer drives it.
pub trait Decode {
    /// Length of a payload in RTP clock units; `None` when it cannot be decoded.
    fn duration(&self, payload: &[u8]) -> Option<u32>;
    /// Decodes one payload, appending samples at the codec's sample rate.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>);
    /// Appends `samples` of concealment for audio that is missing.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>);
}

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Decoded audio (possibly with some concealment at a hole).
    Audio,
    /// Entirely concealed: the audio for this frame was missing.
    Concealed,
    /// Nothing received yet, or the stream paused long enough for concealment to fade out.
    Silence,
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    Duplicate,
    Late,
    Stale,
    Undecodable,
}

/// Counters and current figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub duplicates: u64,
    pub late: u64,
    pub lost: u64,
    pub undecodable: u64,
    pub underruns: u64,
    pub shrinks: u64,
    pub overflows: u64,
    /// The playout delay aimed at, in ms.
    pub target_ms: u32,
    /// Audio buffered at the last tick, in ms.
    pub buffered_ms: u32,
    pub source: NormaliserStats,
}

#[derive(Debug, Clone)]
struct Entry {
    duration: u32,
    payload: Vec<u8>,
}

/// See the module documentation. Drain rule: call [`JitterBuffer::push`] for every packet of
/// the stream's codec and [`JitterBuffer::pull`] once per 20 ms tick.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    clock: u32,
    rate: u32,
    frame_samples: usize,
    max_delay_ms: u32,
    norm: Normaliser,
    packets: BTreeMap<u64, Entry>,
    /// Timeline position of the next audio to decode; `None` until playout starts.
    fetch: Option<u64>,
    pcm: VecDeque<i16>,
    starving: bool,
    silent_for: Duration,
    origin: Option<Instant>,
    transits: VecDeque<(Instant, f64)>,
    levels: VecDeque<u32>,
    packet_ms: u32,
    stats: JitterStats,
    scratch: Vec<i16>,
}

impl JitterBuffer {
    /// A buffer for a stream clocked at `clock` Hz whose decoder yields `sample_rate` Hz,
    /// never holding more than `max_delay`.
    pub fn new(clock: u32, sample_rate: u32, max_delay: Duration) -> Self {
        JitterBuffer {
            clock,
            rate: sample_rate,
            frame_samples: (sample_rate / 50) as usize,
            max_delay_ms: max_delay.as_millis() as u32,
            norm: Normaliser::new(clock),
            packets: BTreeMap::new(),
            fetch: None,
            pcm: VecDeque::new(),
            starving: false,
            silent_for: Duration::ZERO,
            origin: None,
            transits: VecDeque::new(),
            levels: VecDeque::new(),
            packet_ms: 20,
            stats: JitterStats {
                target_ms: 20,
                ..JitterStats::default()
            },
            scratch: Vec::new(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        JitterStats {
            source: self.norm.stats(),
            ..self.stats
        }
    }

    /// Samples per 20 ms frame.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Takes a packet of the stream.
    pub fn push(
        &mut self,
        now: Instant,
        ssrc: u32,
        seq: u16,
        ts: u32,
        payload: &[u8],
        decoder: &impl Decode,
    ) -> Pushed {
        self.stats.received += 1;
        let Some(duration) = decoder.duration(payload).filter(|d| *d > 0) else {
            self.stats.undecodable += 1;
            return Pushed::Undecodable;
        };
        let floor = self.fetch.unwrap_or(0);
        let Some(placed) = self.norm.place(now, ssrc, seq, ts, duration, floor) else {
            return Pushed::Stale;
        };
        if placed.new_segment.is_some_and(|c| c != SegmentCause::First) {
            // A new source: its transit has nothing to do with the old one's.
            self.transits.clear();
        }
        if self.fetch.is_some_and(|f| placed.ts < f) {
            self.stats.late += 1;
            return Pushed::Late;
        }
        if self.packets.contains_key(&placed.ts) {
            self.stats.duplicates += 1;
            return Pushed::Duplicate;
        }
        if self.packets.len() >= MAX_PACKETS {
            self.stats.overflows += 1;
            self.packets.pop_first();
        }
        self.packet_ms = (duration as u64 * 1000 / self.clock as u64) as u32;
        self.packets.insert(
            placed.ts,
            Entry {
                duration,
                payload: payload.to_vec(),
            },
        );
        self.note_transit(now, placed.ts);
        Pushed::Queued
    }

    /// One 20 ms frame at the decoder's sample rate, appended to `out`.
    pub fn pull(
        &mut self,
        now: Instant,
        decoder: &mut impl Decode,
        out: &mut Vec<i16>,
    ) -> FrameKind {
        let _ = now;
        let need = self.frame_samples;
        let buffered = self.buffered_ms();
        self.stats.buffered_ms = buffered;
        let fetch = match self.fetch {
            Some(f) => f,
            None => {
                let Some((&first, _)) = self.packets.first_key_value() else {
                    return self.silence(out);
                };
                if buffered < self.stats.target_ms {
                    return self.silence(out);
                }
                self.fetch = Some(first);
                first
            }
        };
        let mut fetch = fetch;
        let mut decoded_any = false;
        let mut concealed_all = true;
        self.scratch.clear();
        while self.pcm.len() < need {
            match self.packets.first_key_value().map(|(k, _)| *k) {
                Some(ts) if ts <= fetch || self.starving => {
                    let entry = self.packets.pop_first().map(|(_, e)| e);
                    let Some(entry) = entry else { break };
                    if ts + (entry.duration as u64) <= fetch && !self.starving {
                        continue;
                    }
                    if self.starving && ts > fetch {
                        // Resuming after an underrun skips what never came: a short hole is
                        // loss, a long one a pause in the stream.
                        let per_packet = (self.packet_ms as u64 * self.clock as u64 / 1000).max(1);
                        let skipped = (ts - fetch) / per_packet;
                        if skipped <= 10 {
                            self.stats.lost += skipped;
                        }
                    }
                    self.starving = false;
                    self.scratch.clear();
                    decoder.decode(&entry.payload, &mut self.scratch);
                    self.pcm.extend(self.scratch.drain(..));
                    fetch = ts.max(fetch) + entry.duration as u64;
                    decoded_any = true;
                    concealed_all = false;
                }
                Some(ts) => {
                    // A hole before the next packet: lost (or too late to wait for).
                    let missing_ts = ts - fetch;
                    let want_samples = need - self.pcm.len();
                    let want_ts = self.samples_to_ts(want_samples);
                    let gap_ts = missing_ts.min(want_ts.max(1));
                    let samples = self.ts_to_samples(gap_ts).max(1);
                    self.scratch.clear();
                    decoder.conceal(samples, &mut self.scratch);
                    self.pcm.extend(self.scratch.drain(..));
                    if gap_ts == missing_ts {
                        // The whole hole is now covered: count the packets it held.
                        let per_packet = (self.packet_ms as u64 * self.clock as u64 / 1000).max(1);
                        self.stats.lost += missing_ts.div_ceil(per_packet);
                    }
                    fetch += gap_ts;
                }
                None => {
                    // Underrun: conceal, keep the position; the delay grows by this much.
                    let missing = need - self.pcm.len();
                    self.scratch.clear();
                    decoder.conceal(missing, &mut self.scratch);
                    self.pcm.extend(self.scratch.drain(..));
                    if !self.starving {
                        self.stats.underruns += 1;
                    }
                    self.starving = true;
                }
            }
        }
        self.fetch = Some(fetch);
        out.extend(self.pcm.drain(..need));
        self.track_level(buffered);
        if self.starving && !decoded_any {
            self.silent_for += FRAME;
        } else {
            self.silent_for = Duration::ZERO;
        }
        if self.silent_for > Duration::from_millis(100) {
            FrameKind::Silence
        } else if concealed_all {
            FrameKind::Concealed
        } else {
            FrameKind::Audio
        }
    }

    fn silence(&mut self, out: &mut Vec<i16>) -> FrameKind {
        out.extend(std::iter::repeat_n(0, self.frame_samples));
        FrameKind::Silence
    }

    /// Audio held now: packets after the playout position plus decoded samples, in ms.
    fn buffered_ms(&self) -> u32 {
        let Some((&last, e)) = self.packets.last_key_value() else {
            return self.samples_ms(self.pcm.len());
        };
        let end = last + e.duration as u64;
        let start = match self.fetch {
            Some(f) => f,
            None => *self
                .packets
                .first_key_value()
                .map(|(k, _)| k)
                .unwrap_or(&last),
        };
        let ts_ms = (end.saturating_sub(start) * 1000 / self.clock as u64) as u32;
        ts_ms + self.samples_ms(self.pcm.len())
    }

    fn samples_ms(&self, n: usize) -> u32 {
        (n as u64 * 1000 / self.rate as u64) as u32
    }

    fn samples_to_ts(&self, n: usize) -> u64 {
        (n as u64 * self.clock as u64).div_ceil(self.rate as u64)
    }

    fn ts_to_samples(&self, ts: u64) -> usize {
        (ts * self.rate as u64 / self.clock as u64) as usize
    }

    /// Records a packet's transit (arrival minus media time) and recomputes the target.
    fn note_transit(&mut self, now: Instant, ts: u64) {
        let origin = *self.origin.get_or_insert(now);
        let media_s = ts as f64 / self.clock as f64;
        let transit = now.duration_since(origin).as_secs_f64() - media_s;
        self.transits.push_back((now, transit));
        while let Some(&(t, _)) = self.transits.front() {
            if now.duration_since(t) > TRANSIT_WINDOW {
                self.transits.pop_front();
            } else {
                break;
            }
        }
        let (lo, hi) = self
            .transits
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &(_, x)| {
                (lo.min(x), hi.max(x))
            });
        let spread_ms = ((hi - lo) * 1000.0).max(0.0) as u32;
        self.stats.target_ms = (self.packet_ms + spread_ms)
            .clamp(self.packet_ms, self.max_delay_ms.max(self.packet_ms));
    }

    /// Shrinks the delay when the buffer stayed above target plus one frame for a second.
    fn track_level(&mut self, buffered: u32) {
        self.levels.push_back(buffered);
        if self.levels.len() > LEVEL_WINDOW_FRAMES {
            self.levels.pop_front();
        }
        let min = self.levels.iter().copied().min().unwrap_or(0);
        let excess = self.stats.target_ms + FRAME.as_millis() as u32;
        // The further the buffer stays over, the sooner a frame goes: after a second when it
        // is just over, after 100 ms when it is three frames or more over (a burst after a
        // stall), so that such a backlog is gone in about half a second, not in seconds.
        let far_over = min >= excess + 3 * FRAME.as_millis() as u32;
        let window = if far_over {
            FAST_LEVEL_WINDOW_FRAMES
        } else {
            LEVEL_WINDOW_FRAMES
        };
        let full = self.levels.len() >= window;
        if full && min > excess || buffered > self.max_delay_ms + excess {
            self.drop_frame();
            self.levels.clear();
        }
    }

    /// Discards one frame's worth of audio: decoded samples if a frame is held, else the
    /// next packet.
    fn drop_frame(&mut self) {
        if self.pcm.len() >= self.frame_samples {
            self.pcm.drain(..self.frame_samples);
        } else if let Some((ts, e)) = self.packets.pop_first() {
            self.fetch = Some(ts + e.duration as u64);
        }
        self.stats.shrinks += 1;
    }
}
