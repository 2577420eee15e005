//! Resampling between 8, 16 and 48 kHz: tones keep their level, aliases and images are
//! suppressed, the added delay is what the filter says, and chunking does not matter.

use phonebridge_media::goertzel::{mean_power, power};
use phonebridge_media::{Resampler, Tone};

const PAIRS: [(u32, u32); 6] = [
    (8000, 16000),
    (16000, 8000),
    (8000, 48000),
    (48000, 8000),
    (16000, 48000),
    (48000, 16000),
];

fn run(r: &mut Resampler, input: &[i16], chunk: usize) -> Vec<i16> {
    let mut out = Vec::new();
    for c in input.chunks(chunk) {
        r.process(c, &mut out);
    }
    out
}

fn sine(rate: u32, f: f64, amp: f64, n: usize) -> Vec<i16> {
    let mut v = Vec::new();
    Tone::sine(rate, f, amp).fill(n, &mut v);
    v
}

fn db(x: f64) -> f64 {
    10.0 * x.log10()
}

#[test]
fn passband_tones_keep_their_level_and_frequency() {
    for (from, to) in PAIRS {
        let mut r = Resampler::new(from, to).unwrap();
        let top = if from.min(to) == 8000 { 3400.0 } else { 7000.0 };
        for f in [300.0, 1000.0, top] {
            r.reset();
            let out = run(
                &mut r,
                &sine(from, f, 10000.0, from as usize / 2),
                from as usize / 50,
            );
            assert_eq!(out.len(), to as usize / 2, "{from}->{to}");
            // Skip the filter's start-up.
            let tail: Vec<f32> = out[out.len() / 2..].iter().map(|&s| s as f32).collect();
            let p = power(&tail, to as f64, f);
            let gain_db = db(p / 50_000_000.0);
            assert!(
                gain_db.abs() < 0.5,
                "{from}->{to} at {f} Hz: {gain_db:.2} dB"
            );
            assert!(
                p > 0.95 * mean_power(&tail),
                "{from}->{to} at {f} Hz: not a clean tone"
            );
        }
    }
}

#[test]
fn aliases_and_images_are_suppressed() {
    // Down: a tone above the new Nyquist must not fold back into the band.
    for (from, to, f) in [
        (16000, 8000, 5000.0),
        (48000, 8000, 6000.0),
        (48000, 16000, 10000.0),
    ] {
        let mut r = Resampler::new(from, to).unwrap();
        let out = run(&mut r, &sine(from, f, 10000.0, from as usize / 2), 960);
        let tail: Vec<f32> = out[out.len() / 2..].iter().map(|&s| s as f32).collect();
        let level = db(mean_power(&tail).max(1e-9) / 50_000_000.0);
        assert!(
            level < -45.0,
            "{from}->{to}: {f} Hz aliased at {level:.1} dB"
        );
    }
    // Up: the images of an in-band tone must not appear above the old Nyquist.
    for (from, to, f, image) in [
        (8000, 16000, 1000.0, 7000.0),
        (8000, 48000, 1000.0, 7000.0),
        (16000, 48000, 2000.0, 14000.0),
    ] {
        let mut r = Resampler::new(from, to).unwrap();
        let out = run(&mut r, &sine(from, f, 10000.0, from as usize / 2), 160);
        let tail: Vec<f32> = out[out.len() / 2..].iter().map(|&s| s as f32).collect();
        let level = db(power(&tail, to as f64, image).max(1e-9) / 50_000_000.0);
        assert!(
            level < -45.0,
            "{from}->{to}: image at {image} Hz is {level:.1} dB"
        );
    }
}

#[test]
fn delay_is_low_and_matches_the_filter() {
    for (from, to) in PAIRS {
        let r = Resampler::new(from, to).unwrap();
        let d = r.delay_ms();
        assert!(d > 0.0 && d <= 2.0, "{from}->{to}: {d:.3} ms");
        // Measure it: an impulse's peak comes out `delay` later.
        let mut r = r;
        let mut input = vec![0i16; from as usize / 10];
        input[from as usize / 100] = 30000;
        let out = run(&mut r, &input, 80);
        let peak = out
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.unsigned_abs())
            .map(|(i, _)| i)
            .unwrap();
        let measured = peak as f64 / to as f64 * 1000.0 - 10.0;
        assert!(
            (measured - d).abs() <= 1000.0 / from.min(to) as f64,
            "{from}->{to}: filter says {d:.3} ms, impulse shows {measured:.3} ms"
        );
    }
    let same = Resampler::new(8000, 8000).unwrap();
    assert_eq!(same.delay_ms(), 0.0);
    assert!(Resampler::new(8000, 44100).is_none());
}

#[test]
fn chunk_size_does_not_change_the_output() {
    for (from, to) in PAIRS {
        let input = sine(from, 440.0, 8000.0, from as usize / 5);
        let a = run(&mut Resampler::new(from, to).unwrap(), &input, input.len());
        let b = run(&mut Resampler::new(from, to).unwrap(), &input, 7);
        assert_eq!(a, b, "{from}->{to}");
    }
}
