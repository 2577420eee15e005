//! Opus at a phone's rate: encoding cost and decoded speech for each complexity, with and
//! without in-band FEC, through a lossy channel (a benchmark, not a test). Run through
//! `bench/opus_phone.py`, which scores the decoded speech with PESQ.
//!
//! Usage: `opus_phone <rate> <loss 0..1> <out dir>`. Writes `<out>/ref.raw` (the input) and
//! `<out>/c<complexity>_fec<0|1>.raw` (decoded, aligned to the input; 16-bit LE mono) and
//! prints `complexity<TAB>fec<TAB>µs per frame<TAB>kbit/s` per setting.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::path::Path;
use std::time::Instant;

use phonebridge_media::{wav, Resampler};

const PROMPTS: [&str; 4] = ["enter_code", "wrong_code", "joining", "goodbye"];

/// The English prompts (espeak-ng speech) at `rate`, one after the other.
fn speech(rate: u32) -> Vec<i16> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/prompts/en");
    let mut out = Vec::new();
    for p in PROMPTS {
        let bytes = std::fs::read(dir.join(format!("{p}.wav"))).expect("prompt readable");
        let w = wav::parse(&bytes).expect("prompt is a WAV file");
        match Resampler::new(w.rate, rate) {
            Some(mut r) => r.process(&w.samples, &mut out),
            None => out.extend_from_slice(&w.samples),
        }
    }
    out
}

/// Which packets the channel loses: a seeded uniform draw per packet.
fn losses(n: usize, loss: f64) -> Vec<bool> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 11) as f64 / (1u64 << 53) as f64) < loss
        })
        .collect()
}

/// The lag (in samples, up to 20 ms) at which `out` best matches `input`.
fn delay(input: &[i16], out: &[f32], rate: u32) -> usize {
    let n = input.len().min(out.len());
    let mut best = (f64::MIN, 0);
    for lag in 0..(rate as usize / 50) {
        let (mut dot, mut energy) = (0.0, 1e-9);
        for i in 0..n - lag {
            dot += input[i] as f64 * out[i + lag] as f64;
            energy += (out[i + lag] as f64).powi(2);
        }
        let score = dot / energy.sqrt();
        if score > best.0 {
            best = (score, lag);
        }
    }
    best.1
}

fn write_raw(path: &Path, pcm: impl Iterator<Item = i16>) {
    let bytes: Vec<u8> = pcm.flat_map(i16::to_le_bytes).collect();
    std::fs::write(path, bytes).expect("output writable");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8_000);
    let loss: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.0);
    let out_dir = Path::new(args.get(3).map_or("/tmp/opus_phone", String::as_str)).to_owned();
    std::fs::create_dir_all(&out_dir).expect("output directory");
    let input = speech(rate);
    write_raw(&out_dir.join("ref.raw"), input.iter().copied());
    let frame = rate as usize / 50;
    for complexity in 0..=5 {
        for fec in [false, true] {
            let mut best = f64::MAX;
            let mut packets = Vec::new();
            for _ in 0..3 {
                let mut enc = opus_rs::OpusEncoder::new(rate as i32, 1, opus_rs::Application::Voip)
                    .expect("phone rate");
                enc.bitrate_bps = 24_000;
                enc.complexity = complexity;
                enc.use_inband_fec = fec;
                enc.packet_loss_perc = if fec { 5 } else { 0 };
                let mut buf = vec![0u8; 1500];
                packets.clear();
                let t = Instant::now();
                for f in input.chunks_exact(frame) {
                    let n = enc.encode_i16(f, frame, &mut buf).expect("encodes");
                    packets.push(buf[..n].to_vec());
                }
                best = best.min(t.elapsed().as_secs_f64());
            }
            let lost = losses(packets.len(), loss);
            let mut dec = opus_rs::OpusDecoder::new(rate as i32, 1).expect("phone rate");
            let mut pcm = vec![0f32; frame];
            let mut out = Vec::with_capacity(input.len());
            for (i, p) in packets.iter().enumerate() {
                let next = packets
                    .get(i + 1)
                    .filter(|_| !lost.get(i + 1).copied().unwrap_or(true));
                let n = match (lost[i], next) {
                    (false, _) => dec.decode(p, frame, &mut pcm),
                    (true, Some(next)) if fec => dec.decode_fec(next, frame, &mut pcm),
                    (true, _) => dec.decode(&[], frame, &mut pcm),
                }
                .expect("decodes");
                out.extend(pcm[..n].iter().map(|s| s * 32_768.0));
            }
            let lag = delay(&input, &out, rate);
            let name = format!("c{complexity}_fec{}.raw", u8::from(fec));
            write_raw(
                &out_dir.join(name),
                out[lag..]
                    .iter()
                    .map(|s| s.clamp(-32_768.0, 32_767.0) as i16),
            );
            let bytes: usize = packets.iter().map(Vec::len).sum();
            println!(
                "{complexity}\t{}\t{:.2}\t{:.1}",
                u8::from(fec),
                best * 1e6 / packets.len() as f64,
                bytes as f64 * 8.0 / (packets.len() as f64 * 20.0)
            );
        }
    }
}
