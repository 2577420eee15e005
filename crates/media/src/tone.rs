//! Tone generation: sines, dual tones (DTMF digits) and silence, at any rate.

/// The DTMF row frequencies (Hz), low group.
pub(crate) const DTMF_ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// The DTMF column frequencies (Hz), high group.
pub(crate) const DTMF_COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// The keypad: the digit at row `r` and column `c` is `DTMF_KEYS[r][c]`.
pub(crate) const DTMF_KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// The row and column frequencies of a DTMF digit (`0-9`, `*`, `#`, `A-D`).
pub fn dtmf_frequencies(digit: char) -> Option<(f64, f64)> {
    let d = digit.to_ascii_uppercase();
    DTMF_KEYS.iter().enumerate().find_map(|(r, row)| {
        row.iter()
            .position(|&k| k == d)
            .map(|c| (DTMF_ROWS[r], DTMF_COLS[c]))
    })
}

/// A sum of sines with a running phase, so consecutive frames join without clicks.
#[derive(Debug, Clone)]
pub struct Tone {
    rate: f64,
    parts: Vec<(f64, f64)>,
    n: u64,
}

impl Tone {
    /// One sine of `freq` Hz at `amplitude` (linear, full scale 32767).
    pub fn sine(rate: u32, freq: f64, amplitude: f64) -> Self {
        Tone::mix(rate, &[(freq, amplitude)])
    }

    /// Several sines `(freq, amplitude)` summed.
    pub fn mix(rate: u32, parts: &[(f64, f64)]) -> Self {
        Tone {
            rate: rate as f64,
            parts: parts.to_vec(),
            n: 0,
        }
    }

    /// The two tones of a DTMF digit, each at `amplitude`.
    pub fn dtmf(rate: u32, digit: char, amplitude: f64) -> Option<Self> {
        let (lo, hi) = dtmf_frequencies(digit)?;
        Some(Tone::mix(rate, &[(lo, amplitude), (hi, amplitude)]))
    }

    /// Appends `count` samples.
    pub fn fill(&mut self, count: usize, out: &mut Vec<i16>) {
        for _ in 0..count {
            let t = self.n as f64 / self.rate;
            let v: f64 = self
                .parts
                .iter()
                .map(|(f, a)| a * (2.0 * std::f64::consts::PI * f * t).sin())
                .sum();
            out.push(v.round().clamp(-32768.0, 32767.0) as i16);
            self.n += 1;
        }
    }
}
