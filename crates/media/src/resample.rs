//! Sample-rate conversion between the telephone rates (8, 16 and 48 kHz) by polyphase
//! FIR filtering: a Kaiser-windowed sinc designed at the higher rate, linear phase, so the
//! added delay is a fixed half filter length (1.6 ms or less for every pair; see
//! [`Resampler::delay_ms`]). Streams of any chunk size; state carries across calls.

/// Stop-band attenuation of the anti-alias / anti-image filter, in dB.
const ATTENUATION_DB: f64 = 60.0;

/// Converts one stream from one rate to another.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    up: usize,
    down: usize,
    /// `phases[p][k]` is tap `p + k·up` of the prototype filter.
    phases: Vec<Vec<f32>>,
    taps_per_phase: usize,
    /// Input history followed by the samples not consumed yet.
    buf: Vec<f32>,
    /// Position of the next output, in high-rate samples from `buf[0]`.
    t: usize,
    delay_samples: f64,
}

impl Resampler {
    /// A converter between two of 8000, 16000 and 48000 Hz (or a pass-through for equal
    /// rates). `None` for other rates.
    pub fn new(from: u32, to: u32) -> Option<Self> {
        const RATES: [u32; 3] = [8_000, 16_000, 48_000];
        if !RATES.contains(&from) || !RATES.contains(&to) {
            return None;
        }
        let high = from.max(to);
        let (up, down) = ((high / from) as usize, (high / to) as usize);
        // Cut at the lower rate's Nyquist; the transition band leaves telephone speech
        // (to 3.4 kHz) and wideband speech (to 7 kHz) untouched.
        let low = from.min(to) as f64;
        let (cutoff, transition) = if low <= 8_000.0 {
            (4_000.0, 1_200.0)
        } else {
            (8_000.0, 2_000.0)
        };
        let (phases, taps_per_phase, delay_samples) = if up == down {
            (vec![vec![1.0]], 1, 0.0)
        } else {
            design(high as f64, cutoff, transition, up)
        };
        Some(Resampler {
            from,
            to,
            up,
            down,
            taps_per_phase,
            buf: vec![0.0; taps_per_phase - 1],
            t: (taps_per_phase - 1) * up,
            phases,
            delay_samples: delay_samples / high as f64,
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.from
    }

    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// The group delay the filter adds, in milliseconds.
    pub fn delay_ms(&self) -> f64 {
        self.delay_samples * 1_000.0
    }

    /// Converts `input`, appending the output to `out`. A chunk of `n` input samples yields
    /// `n · to / from` samples once `n` is a multiple of `from / gcd`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.up == self.down {
            out.extend_from_slice(input);
            return;
        }
        self.buf.extend(input.iter().map(|&s| s as f32));
        let k = self.taps_per_phase;
        loop {
            let i = self.t / self.up;
            if i >= self.buf.len() {
                break;
            }
            let phase = &self.phases[self.t % self.up];
            // y = Σ h[p + j·up] · x[i − j]
            let window = &self.buf[i + 1 - k..=i];
            let acc: f32 = phase
                .iter()
                .zip(window.iter().rev())
                .map(|(h, x)| h * x)
                .sum();
            out.push(acc.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16);
            self.t += self.down;
        }
        let consumed = (self.t / self.up).saturating_sub(k - 1).min(self.buf.len());
        self.buf.drain(..consumed);
        self.t -= consumed * self.up;
    }

    /// Forgets the history (after a gap or a source switch the old samples do not belong).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.buf.resize(self.taps_per_phase - 1, 0.0);
        self.t = (self.taps_per_phase - 1) * self.up;
    }
}

/// A Kaiser-windowed low-pass at `rate` split into `up` phases; returns the phases, the
/// taps per phase and the group delay in samples at `rate`.
fn design(rate: f64, cutoff: f64, transition: f64, up: usize) -> (Vec<Vec<f32>>, usize, f64) {
    let a = ATTENUATION_DB;
    let beta = 0.1102 * (a - 8.7);
    let dw = 2.0 * std::f64::consts::PI * transition / rate;
    let min_len = ((a - 8.0) / (2.285 * dw)).ceil() as usize + 1;
    let taps_per_phase = min_len.div_ceil(up);
    let n = taps_per_phase * up;
    let center = (n - 1) as f64 / 2.0;
    let fc = cutoff / rate;
    let i0_beta = bessel_i0(beta);
    let proto: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 - center;
            let sinc = if x == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * x).sin() / (std::f64::consts::PI * x)
            };
            let r = x / center;
            let w = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
            // Gain `up` restores the level lost to zero-stuffing.
            sinc * w * up as f64
        })
        .collect();
    let phases = (0..up)
        .map(|p| {
            (0..taps_per_phase)
                .map(|k| proto[p + k * up] as f32)
                .collect()
        })
        .collect();
    (phases, taps_per_phase, center)
}

/// The zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..50 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}
