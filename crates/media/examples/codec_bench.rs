//! Cost of the phone-leg codecs and resamplers per 20 ms frame (a benchmark, not a test).
//! Prints one line per measurement: `name<TAB>µs per frame<TAB>frames`. Run through
//! `bench/codec_cost.py`, which also measures libopus and spandsp in the same run.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::hint::black_box;
use std::time::Instant;

use phonebridge_media::{AudioDecoder, AudioEncoder, CodecKind, Resampler, Tone};

/// Ten seconds of speech-band signal: three tones and deterministic noise.
fn signal(rate: u32) -> Vec<i16> {
    let mut pcm = Vec::new();
    Tone::mix(rate, &[(300.0, 4000.0), (700.0, 6000.0), (2300.0, 2000.0)])
        .fill(rate as usize * 10, &mut pcm);
    let mut x = 12345u32;
    for s in &mut pcm {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *s = s.saturating_add(((x >> 16) as i16) >> 7);
    }
    pcm
}

fn report(name: &str, frames: usize, secs: f64) {
    println!("{name}\t{:.2}\t{frames}", secs * 1e6 / frames as f64);
}

fn main() {
    let rounds = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5usize);
    for (name, kind) in [
        ("pcmu", CodecKind::Pcmu),
        ("pcma", CodecKind::Pcma),
        ("g722", CodecKind::G722),
        ("opus", CodecKind::Opus),
    ] {
        let rate = kind.sample_rate();
        let frame = (rate / 50) as usize;
        let pcm = signal(rate);
        let mut best_enc = f64::MAX;
        let mut best_dec = f64::MAX;
        let mut frames = 0;
        for _ in 0..rounds {
            let mut enc = AudioEncoder::new(kind);
            let mut packets = Vec::new();
            let t = Instant::now();
            for f in pcm.chunks_exact(frame) {
                let mut p = Vec::with_capacity(400);
                enc.encode(black_box(f), &mut p);
                packets.push(p);
            }
            best_enc = best_enc.min(t.elapsed().as_secs_f64());
            let mut dec = AudioDecoder::new(kind);
            let mut out = Vec::with_capacity(frame);
            let t = Instant::now();
            for p in &packets {
                out.clear();
                dec.decode(black_box(p), &mut out);
            }
            best_dec = best_dec.min(t.elapsed().as_secs_f64());
            frames = packets.len();
        }
        report(&format!("{name}_encode"), frames, best_enc);
        report(&format!("{name}_decode"), frames, best_dec);
    }
    for (from, to) in [
        (8000, 16000),
        (16000, 8000),
        (8000, 48000),
        (48000, 8000),
        (16000, 48000),
        (48000, 16000),
    ] {
        let pcm = signal(from);
        let frame = (from / 50) as usize;
        let mut best = f64::MAX;
        let mut frames = 0;
        for _ in 0..rounds {
            let mut r = Resampler::new(from, to).expect("supported pair");
            let mut out = Vec::with_capacity(960);
            let t = Instant::now();
            for f in pcm.chunks_exact(frame) {
                out.clear();
                r.process(black_box(f), &mut out);
            }
            best = best.min(t.elapsed().as_secs_f64());
            frames = pcm.len() / frame;
        }
        let delay = Resampler::new(from, to).map_or(0.0, |r| r.delay_ms());
        report(
            &format!("resample_{from}_{to} (delay {delay:.2} ms)"),
            frames,
            best,
        );
    }
}
