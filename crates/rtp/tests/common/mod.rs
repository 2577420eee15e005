//! A deterministic media harness: a scripted RTP sender, a seeded network emulator (delay,
//! jitter, loss, duplicates, hence reordering), and a receiver that ticks every 20 ms of
//! virtual time, with audio checked by content (Goertzel per 10 ms window).
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use phonebridge_media::goertzel::power;
use phonebridge_media::{G711Decoder, Law, Tone};
use phonebridge_rtp::{Decode, FrameKind, JitterBuffer, JitterStats};

pub const RATE: u32 = 8000;

pub struct Pcma(pub G711Decoder);

impl Decode for Pcma {
    fn duration(&self, payload: &[u8]) -> Option<u32> {
        Some(self.0.duration(payload))
    }
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        self.0.decode(payload, out)
    }
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.0.conceal(samples, out)
    }
}

/// One packet as sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub at: Duration,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub payload: Vec<u8>,
}

/// A phone sending a tone as PCMA; its identifiers can be changed mid-stream.
pub struct Sender {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub ptime_ms: u32,
    tone: Tone,
    pub at: Duration,
    pub out: Vec<Sent>,
}

impl Sender {
    pub fn new(freq: f64, ptime_ms: u32) -> Self {
        Sender {
            ssrc: 0x1111,
            seq: 1000,
            ts: 160_000,
            ptime_ms,
            tone: Tone::sine(RATE, freq, 8000.0),
            at: Duration::ZERO,
            out: Vec::new(),
        }
    }

    pub fn set_tone(&mut self, freq: f64) {
        self.tone = Tone::sine(RATE, freq, 8000.0);
    }

    /// Sends `ms` of tone in packets of `ptime_ms`.
    pub fn talk(&mut self, ms: u32) {
        let per = (RATE * self.ptime_ms / 1000) as usize;
        for _ in 0..ms / self.ptime_ms {
            let mut pcm = Vec::new();
            self.tone.fill(per, &mut pcm);
            let mut payload = Vec::new();
            Law::Alaw.encode(&pcm, &mut payload);
            self.out.push(Sent {
                at: self.at,
                ssrc: self.ssrc,
                seq: self.seq,
                ts: self.ts,
                payload,
            });
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(per as u32);
            self.at += Duration::from_millis(self.ptime_ms as u64);
        }
    }

    /// Sends nothing for `ms` (timestamps advance as a real clock would).
    pub fn pause(&mut self, ms: u32) {
        self.ts = self.ts.wrapping_add(RATE * ms / 1000);
        self.at += Duration::from_millis(ms as u64);
    }
}

/// Network conditions.
#[derive(Debug, Clone, Copy)]
pub struct Net {
    pub seed: u64,
    pub delay_ms: f64,
    pub jitter_ms: f64,
    pub loss: f64,
    pub duplicate: f64,
}

impl Net {
    pub fn clean() -> Self {
        Net {
            seed: 1,
            delay_ms: 30.0,
            jitter_ms: 0.0,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Delivery times after the network; segments of the stream may use different conditions.
pub fn transmit(packets: &[Sent], net: impl Fn(Duration) -> Net) -> Vec<(Duration, Sent)> {
    let mut rng = Rng(net(Duration::ZERO).seed | 1);
    let mut out = Vec::new();
    for p in packets {
        let n = net(p.at);
        if rng.unit() < n.loss {
            continue;
        }
        let copies = if rng.unit() < n.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            let d = n.delay_ms + rng.unit() * n.jitter_ms;
            out.push((p.at + Duration::from_secs_f64(d / 1000.0), p.clone()));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

/// What the receiver played, frame by frame.
pub struct Played {
    pub pcm: Vec<i16>,
    pub kinds: Vec<FrameKind>,
    /// Jitter-buffer figures after each tick.
    pub trace: Vec<JitterStats>,
    pub stats: JitterStats,
}

/// Runs a receiver ticking every 20 ms (first tick at `phase_ms`) until `until`.
pub fn receive(deliveries: &[(Duration, Sent)], until: Duration, phase_ms: u64) -> Played {
    let origin = Instant::now();
    let mut jb = JitterBuffer::new(RATE, RATE, Duration::from_millis(300));
    let mut dec = Pcma(G711Decoder::new(Law::Alaw));
    let mut played = Played {
        pcm: Vec::new(),
        kinds: Vec::new(),
        trace: Vec::new(),
        stats: jb.stats(),
    };
    let mut next = 0;
    let mut tick = Duration::from_millis(phase_ms);
    while tick <= until {
        while next < deliveries.len() && deliveries[next].0 <= tick {
            let (t, p) = &deliveries[next];
            jb.push(origin + *t, p.ssrc, p.seq, p.ts, &p.payload, &dec);
            next += 1;
        }
        let kind = jb.pull(origin + tick, &mut dec, &mut played.pcm);
        played.kinds.push(kind);
        played.trace.push(jb.stats());
        tick += Duration::from_millis(20);
    }
    played.stats = jb.stats();
    played
}

/// Per 10 ms window: which of `freqs` is present (index), if any.
pub fn tones(pcm: &[i16], freqs: &[f64]) -> Vec<Option<usize>> {
    pcm.chunks(80)
        .map(|w| {
            let w: Vec<f32> = w.iter().map(|&s| s as f32).collect();
            let total = phonebridge_media::goertzel::mean_power(&w);
            freqs.iter().position(|&f| {
                let p = power(&w, RATE as f64, f);
                // A tone at 8000 amplitude has power 32e6; require a quarter of it, and
                // most of the window's power.
                p > 8e6 && p > 0.6 * total
            })
        })
        .collect()
}

/// The longest run, in ms, of windows without any of the tones, between the first and the
/// last window that has one.
pub fn longest_gap_ms(windows: &[Option<usize>]) -> u32 {
    let first = windows.iter().position(Option::is_some);
    let last = windows.iter().rposition(Option::is_some);
    let (Some(first), Some(last)) = (first, last) else {
        return u32::MAX;
    };
    let mut longest = 0;
    let mut run = 0;
    for w in &windows[first..=last] {
        if w.is_none() {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest * 10
}

/// Milliseconds from the start of playout until the tone is first heard.
pub fn first_tone_ms(windows: &[Option<usize>]) -> Option<u32> {
    windows
        .iter()
        .position(Option::is_some)
        .map(|i| i as u32 * 10)
}
