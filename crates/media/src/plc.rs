//! Packet-loss concealment for codecs without their own (G.711, G.722): the last pitch
//! period is repeated with a fade-out, and the first real audio after a loss is cross-faded
//! in, so a lost packet sounds like a short sustain rather than a click or a hole.

/// Conceals missing audio from the history of what was played.
#[derive(Debug, Clone)]
pub struct Plc {
    rate: usize,
    history: Vec<i16>,
    pitch: usize,
    /// Samples concealed in the current loss (0 when not in a loss).
    lost: usize,
}

impl Plc {
    pub fn new(rate: u32) -> Self {
        Plc {
            rate: rate as usize,
            history: Vec::new(),
            pitch: 0,
            lost: 0,
        }
    }

    fn history_len(&self) -> usize {
        self.rate * 30 / 1000
    }

    fn fade_len(&self) -> usize {
        self.rate * 60 / 1000
    }

    /// Records good audio (after it was appended to `out` at `start..`), cross-fading its
    /// beginning when it ends a loss.
    pub fn good(&mut self, out: &mut [i16]) {
        if self.lost > 0 && !out.is_empty() {
            let n = (self.rate / 250).min(out.len()); // 4 ms
            let mut synth = Vec::with_capacity(n);
            self.synthesise(n, &mut synth);
            for (i, (o, s)) in out.iter_mut().zip(synth).enumerate() {
                let w = (i + 1) as f32 / (n + 1) as f32;
                *o = (*o as f32 * w + s as f32 * (1.0 - w)).round() as i16;
            }
        }
        self.lost = 0;
        self.history.extend_from_slice(out);
        let keep = self.history_len();
        if self.history.len() > keep {
            self.history.drain(..self.history.len() - keep);
        }
    }

    /// Appends `n` samples of concealment.
    pub fn conceal(&mut self, n: usize, out: &mut Vec<i16>) {
        if self.lost == 0 {
            self.pitch = self.estimate_pitch();
        }
        self.synthesise(n, out);
    }

    fn synthesise(&mut self, n: usize, out: &mut Vec<i16>) {
        let fade = self.fade_len();
        let h = &self.history;
        if h.len() < self.pitch || self.pitch == 0 {
            out.extend(std::iter::repeat_n(0, n));
            self.lost += n;
            return;
        }
        let base = h.len() - self.pitch;
        for _ in 0..n {
            let gain = 1.0 - (self.lost as f32 / fade as f32).min(1.0);
            let v = h[base + self.lost % self.pitch] as f32 * gain;
            out.push(v.round() as i16);
            self.lost += 1;
        }
    }

    /// The period (2.5–15 ms) that best repeats the recent history.
    fn estimate_pitch(&self) -> usize {
        let h = &self.history;
        let (min, max) = (self.rate / 400, self.rate * 15 / 1000);
        if h.len() < max + min {
            return h.len().min(max).max(min.min(h.len()));
        }
        let window = h.len() - max;
        let tail = &h[h.len() - window..];
        let mut best = (max, f64::MIN);
        for p in min..=max {
            let lagged = &h[h.len() - window - p..h.len() - p];
            let (mut xy, mut yy) = (0.0f64, 0.0f64);
            for (&x, &y) in tail.iter().zip(lagged) {
                xy += x as f64 * y as f64;
                yy += y as f64 * y as f64;
            }
            let score = if yy > 0.0 { xy / yy.sqrt() } else { 0.0 };
            if score > best.1 {
                best = (p, score);
            }
        }
        best.0
    }
}

/// A G.711 decoder with waveform-repetition concealment.
#[derive(Debug, Clone)]
pub struct G711Decoder {
    law: crate::g711::Law,
    plc: Plc,
}

impl G711Decoder {
    pub fn new(law: crate::g711::Law) -> Self {
        G711Decoder {
            law,
            plc: Plc::new(8000),
        }
    }

    /// Samples (= clock units) in a payload.
    pub fn duration(&self, payload: &[u8]) -> u32 {
        payload.len() as u32
    }

    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        let start = out.len();
        self.law.decode(payload, out);
        self.plc.good(&mut out[start..]);
    }

    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        self.plc.conceal(samples, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::Law;
    use crate::Tone;

    #[test]
    fn a_lost_frame_of_a_tone_is_replaced_by_the_tone_then_fades() {
        let mut pcm = Vec::new();
        Tone::sine(8000, 440.0, 8000.0).fill(8000, &mut pcm);
        let mut codes = Vec::new();
        Law::Alaw.encode(&pcm, &mut codes);
        let mut d = G711Decoder::new(Law::Alaw);
        let mut out = Vec::new();
        for c in codes[..1600].chunks(160) {
            d.decode(c, &mut out);
        }
        let mut concealed = Vec::new();
        d.conceal(160, &mut concealed);
        // The concealed frame continues the tone: it matches the real next frame closely.
        let real: Vec<i16> = {
            let mut v = Vec::new();
            Law::Alaw.decode(&codes[1600..1760], &mut v);
            v
        };
        let err: f64 = concealed
            .iter()
            .zip(&real)
            .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
            .sum::<f64>()
            / 160.0;
        let sig: f64 = real.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / 160.0;
        assert!(
            err < sig * 0.5,
            "concealment error {err:.0} vs signal {sig:.0}"
        );
        // A long loss fades to silence.
        let mut more = Vec::new();
        d.conceal(800, &mut more);
        assert!(more[more.len() - 100..].iter().all(|&x| x == 0));
    }
}
