//! In-band DTMF detection at the edges of its thresholds, and silence on speech and music.

use phonebridge_media::{DtmfDetector, Tone};

const RATE: u32 = 8000;

fn ms(n: u32, rate: u32) -> usize {
    (rate * n / 1000) as usize
}

/// A dual tone with independent frequency factors and levels (dBFS per tone).
fn dual(
    rate: u32,
    digit: char,
    len_ms: u32,
    lo_db: f64,
    hi_db: f64,
    lo_f: f64,
    hi_f: f64,
) -> Vec<i16> {
    let (lo, hi) = phonebridge_media::tone::dtmf_frequencies(digit).unwrap();
    let amp = |db: f64| 32767.0 * 10f64.powf(db / 20.0);
    let mut t = Tone::mix(rate, &[(lo * lo_f, amp(lo_db)), (hi * hi_f, amp(hi_db))]);
    let mut out = Vec::new();
    t.fill(ms(len_ms, rate), &mut out);
    out
}

fn silence(rate: u32, len_ms: u32) -> Vec<i16> {
    vec![0; ms(len_ms, rate)]
}

fn detect(rate: u32, audio: &[i16]) -> String {
    let mut d = DtmfDetector::new(rate);
    let mut found = String::new();
    // Feed in 20 ms frames, as the media path does.
    for chunk in audio.chunks(ms(20, rate)) {
        d.push(chunk);
        while let Some(x) = d.poll() {
            found.push(x.digit);
        }
    }
    found
}

fn keyed(rate: u32, digits: &str, on_ms: u32, off_ms: u32, db: f64) -> Vec<i16> {
    let mut a = silence(rate, 30);
    for d in digits.chars() {
        a.extend(dual(rate, d, on_ms, db, db, 1.0, 1.0));
        a.extend(silence(rate, off_ms));
    }
    a
}

#[test]
fn every_key_at_every_rate() {
    let all = "123A456B789C*0#D";
    for rate in [8000, 16000, 48000] {
        assert_eq!(
            detect(rate, &keyed(rate, all, 50, 50, -10.0)),
            all,
            "{rate} Hz"
        );
    }
}

#[test]
fn levels_from_loud_to_the_minimum() {
    for db in [-3.0, -20.0, -35.0, -40.0] {
        assert_eq!(
            detect(RATE, &keyed(RATE, "59#", 60, 60, db)),
            "59#",
            "{db} dBFS"
        );
    }
    assert_eq!(
        detect(RATE, &keyed(RATE, "59#", 60, 60, -48.0)),
        "",
        "too quiet"
    );
}

#[test]
fn duration_edges() {
    assert_eq!(detect(RATE, &keyed(RATE, "1", 40, 60, -10.0)), "1");
    assert_eq!(detect(RATE, &keyed(RATE, "1", 23, 60, -10.0)), "");
    // Two presses of one key need the pause between them; a long press is one digit.
    assert_eq!(detect(RATE, &keyed(RATE, "55", 50, 40, -10.0)), "55");
    assert_eq!(detect(RATE, &keyed(RATE, "5", 2000, 60, -10.0)), "5");
}

#[test]
fn frequency_tolerance_edges() {
    for (f, want) in [(1.015, "8"), (0.985, "8"), (1.035, ""), (0.965, "")] {
        let mut a = silence(RATE, 30);
        a.extend(dual(RATE, '8', 60, -10.0, -10.0, f, 1.0));
        a.extend(silence(RATE, 60));
        a.extend(dual(RATE, '8', 60, -10.0, -10.0, 1.0, f));
        a.extend(silence(RATE, 60));
        let expected = if want.is_empty() { "" } else { "88" };
        assert_eq!(detect(RATE, &a), expected, "frequency factor {f}");
    }
}

#[test]
fn twist_edges() {
    // (low-group dB, high-group dB, detected?)
    for (lo, hi, ok) in [
        (-14.0, -10.5, true),  // normal twist 3.5 dB
        (-15.0, -10.0, false), // normal twist 5 dB
        (-10.0, -17.5, true),  // reverse twist 7.5 dB
        (-10.0, -19.0, false), // reverse twist 9 dB
    ] {
        let mut a = silence(RATE, 30);
        a.extend(dual(RATE, '0', 60, lo, hi, 1.0, 1.0));
        a.extend(silence(RATE, 60));
        assert_eq!(detect(RATE, &a) == "0", ok, "low {lo} dB, high {hi} dB");
    }
}

/// A seeded xorshift for reproducible noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

#[test]
fn digits_survive_noise_at_20_db_snr() {
    let mut a = keyed(RATE, "2580", 60, 60, -12.0);
    let mut n = Noise(7);
    // Tone power per tone is (A²/2); white noise of peak P has power P²/3.
    let tone_amp = 32767.0 * 10f64.powf(-12.0 / 20.0);
    let noise_peak = (2.0 * tone_amp * tone_amp / 2.0 / 100.0 * 3.0).sqrt();
    for s in &mut a {
        *s = (*s as f64 + noise_peak * n.next()).round() as i16;
    }
    assert_eq!(detect(RATE, &a), "2580");
}

/// Voiced speech: a glottal-like harmonic series whose pitch glides between 85 and 300 Hz,
/// shaped by moving formants, with unvoiced noise bursts and pauses.
fn speech_like(seconds: u32, seed: u64) -> Vec<i16> {
    let mut n = Noise(seed);
    let mut out = Vec::new();
    let mut phase = 0.0f64;
    let total = RATE * seconds;
    let mut t = 0u32;
    while t < total {
        let syllable = ms(120 + (n.next().abs() * 180.0) as u32, RATE);
        let voiced = n.next() > -0.6;
        let f0_start = 85.0 + n.next().abs() * 215.0;
        let f0_end = 85.0 + n.next().abs() * 215.0;
        let formants = [
            300.0 + n.next().abs() * 600.0,
            900.0 + n.next().abs() * 1500.0,
            2200.0 + n.next().abs() * 800.0,
        ];
        for i in 0..syllable {
            let x = i as f64 / syllable as f64;
            let env = (std::f64::consts::PI * x).sin();
            let v = if voiced {
                let f0 = f0_start + (f0_end - f0_start) * x;
                phase += 2.0 * std::f64::consts::PI * f0 / RATE as f64;
                let mut s = 0.0;
                let mut h = 1;
                while f0 * h as f64 <= 3800.0 {
                    let fh = f0 * h as f64;
                    let gain: f64 = formants
                        .iter()
                        .map(|&fm| 1.0 / (1.0 + ((fh - fm) / 120.0).powi(2)))
                        .sum();
                    s += gain / h as f64 * (phase * h as f64).sin();
                    h += 1;
                }
                s * 6000.0
            } else {
                n.next() * 2500.0
            };
            out.push((v * env).round().clamp(-32768.0, 32767.0) as i16);
        }
        out.extend(silence(RATE, (n.next().abs() * 150.0) as u32));
        t += syllable as u32;
    }
    out
}

/// Music: notes of the equal-tempered scale (including those next to DTMF frequencies)
/// with harmonics and decay, two or three at a time.
fn music_like(seconds: u32, seed: u64) -> Vec<i16> {
    let mut n = Noise(seed);
    let mut out = Vec::new();
    let note = |k: i32| 440.0 * 2f64.powf(k as f64 / 12.0);
    for _ in 0..seconds * 4 {
        let len = ms(250, RATE);
        let chord: Vec<f64> = (0..2 + (n.next().abs() * 1.5) as usize)
            .map(|_| note((n.next() * 14.0).round() as i32 + 5))
            .collect();
        for i in 0..len {
            let t = i as f64 / RATE as f64;
            let env = (-t * 6.0).exp();
            let mut s = 0.0;
            for &f in &chord {
                for (h, g) in [(1.0, 1.0), (2.0, 0.5), (3.0, 0.3), (4.0, 0.15)] {
                    if f * h < 3900.0 {
                        s += g * (2.0 * std::f64::consts::PI * f * h * t).sin();
                    }
                }
            }
            out.push((s * 5000.0 * env).round().clamp(-32768.0, 32767.0) as i16);
        }
    }
    out
}

#[test]
fn speech_gives_no_digit() {
    for seed in 1..=5 {
        assert_eq!(detect(RATE, &speech_like(20, seed)), "", "seed {seed}");
    }
}

#[test]
fn music_gives_no_digit() {
    for seed in 1..=5 {
        assert_eq!(detect(RATE, &music_like(20, seed)), "", "seed {seed}");
    }
}

#[test]
fn digits_over_music_are_still_found_when_they_dominate() {
    let mut a = music_like(2, 3);
    let digits = keyed(RATE, "47", 80, 80, -6.0);
    for (i, s) in digits.iter().enumerate() {
        a[i] = (a[i] as i32 / 8 + *s as i32).clamp(-32768, 32767) as i16;
    }
    assert_eq!(detect(RATE, &a), "47");
}
