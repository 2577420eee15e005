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
    // The sources a phone at 8 or 16 kHz hears: 48 kHz Opus (hybrid for speech) decoded
    // straight to the phone's rate, by the full decoder and by the SILK layer alone.
    let mut enc = AudioEncoder::new(CodecKind::Opus);
    let packets: Vec<Vec<u8>> = signal(48_000)
        .chunks_exact(960)
        .map(|f| {
            let mut p = Vec::new();
            enc.encode(f, &mut p);
            p
        })
        .collect();
    for rate in [8_000u32, 16_000] {
        let frame = rate as usize / 50;
        let (mut best_full, mut best_band) = (f64::MAX, f64::MAX);
        for _ in 0..rounds {
            let mut full = opus_rs::OpusDecoder::new(rate as i32, 1).expect("rate");
            let mut buf = vec![0f32; 5760];
            let t = Instant::now();
            for p in &packets {
                let _ = full.decode(black_box(p), frame, &mut buf);
            }
            best_full = best_full.min(t.elapsed().as_secs_f64());
            let mut band = AudioDecoder::opus_at(rate).expect("rate");
            let mut out = Vec::with_capacity(frame);
            let t = Instant::now();
            for p in &packets {
                out.clear();
                band.decode(black_box(p), &mut out);
            }
            best_band = best_band.min(t.elapsed().as_secs_f64());
        }
        report(
            &format!("opus_decode_{}k_full", rate / 1000),
            packets.len(),
            best_full,
        );
        report(
            &format!("opus_decode_{}k", rate / 1000),
            packets.len(),
            best_band,
        );
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
