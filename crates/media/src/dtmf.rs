//! In-band DTMF detection: a Goertzel filter per DTMF frequency on blocks of 13.125 ms,
//! with checks in the spirit of ITU-T Q.24 so that digits typed on any phone are found and
//! speech or music never produce one:
//!
//! - level: each tone at least [`MIN_TONE_DBFS`];
//! - twist: the high-group tone at most 4 dB above the low-group one (normal twist), the
//!   low-group tone at most 8 dB above the high-group one (reverse twist);
//! - frequency: each tone within about ±1.75 % of nominal (probes at ±3.5 % must read less
//!   than the nominal filter: ±1.5 % is accepted, ±3.5 % rejected);
//! - purity: the strongest tone of each group 6 dB above the others of its group, and the two
//!   tones together at least 75 % of the block's power (speech and music spread theirs);
//! - timing: two consecutive valid blocks start a digit (every tone of 40 ms or more is
//!   found; nothing under 26 ms is); two invalid blocks end it (a pause of 40 ms separates
//!   two presses of the same key); one bad block inside a tone is tolerated.

use crate::goertzel::{mean_power, power};
use crate::tone::{DTMF_COLS as COLS, DTMF_KEYS as KEYS, DTMF_ROWS as ROWS};

/// Weakest tone accepted, in dB relative to a full-scale sine.
pub const MIN_TONE_DBFS: f64 = -42.0;
const NORMAL_TWIST: f64 = 2.512; // 4 dB
const REVERSE_TWIST: f64 = 6.310; // 8 dB
const GROUP_DOMINANCE: f64 = 3.981; // 6 dB
const MIN_FRACTION: f64 = 0.75;
const PROBE_OFFSET: f64 = 0.035;

/// A digit found in the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    pub digit: char,
    /// Index (at the detector's rate) of the first sample of the block where it started.
    pub start: u64,
}

/// Finds DTMF digits in a stream of samples. Push audio, then drain [`Self::poll`].
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    rate: f64,
    block_len: usize,
    block: Vec<f32>,
    /// Samples consumed before the current block.
    offset: u64,
    candidate: Option<(char, u64)>,
    current: Option<char>,
    misses: u8,
    found: std::collections::VecDeque<Detected>,
}

impl DtmfDetector {
    /// A detector for audio at `rate` Hz (8000 or more).
    pub fn new(rate: u32) -> Self {
        // 105 samples at 8 kHz: 76 Hz bins, so neighbouring row tones fall near a null.
        let block_len = (rate as usize * 105).div_ceil(8000);
        DtmfDetector {
            rate: rate as f64,
            block_len,
            block: Vec::with_capacity(block_len),
            offset: 0,
            candidate: None,
            current: None,
            misses: 0,
            found: Default::default(),
        }
    }

    /// Feeds samples.
    pub fn push(&mut self, samples: &[i16]) {
        for &s in samples {
            self.block.push(s as f32);
            if self.block.len() == self.block_len {
                let digit = self.classify();
                self.step(digit);
                self.offset += self.block_len as u64;
                self.block.clear();
            }
        }
    }

    /// The next digit found, if any.
    #[must_use]
    pub fn poll(&mut self) -> Option<Detected> {
        self.found.pop_front()
    }

    /// Whether a digit is sounding right now (its tone has not ended yet).
    pub fn in_digit(&self) -> bool {
        self.current.is_some()
    }

    fn step(&mut self, digit: Option<char>) {
        match digit {
            Some(d) if Some(d) == self.current => self.misses = 0,
            Some(d) => {
                if self.current.is_some() {
                    self.miss();
                }
                match self.candidate {
                    Some((c, start)) if c == d && self.current.is_none() => {
                        self.current = Some(d);
                        self.misses = 0;
                        self.candidate = None;
                        self.found.push_back(Detected { digit: d, start });
                    }
                    Some((c, _)) if c == d => {}
                    _ => self.candidate = Some((d, self.offset)),
                }
            }
            None => {
                self.candidate = None;
                if self.current.is_some() {
                    self.miss();
                }
            }
        }
    }

    fn miss(&mut self) {
        self.misses += 1;
        if self.misses >= 2 {
            self.current = None;
            self.misses = 0;
        }
    }

    /// The digit this block holds, if it passes every check.
    fn classify(&self) -> Option<char> {
        let b = &self.block;
        let total = mean_power(b);
        let min_power = {
            let amp = 32767.0 * 10f64.powf(MIN_TONE_DBFS / 20.0);
            amp * amp / 2.0
        };
        if total < 2.0 * min_power {
            return None;
        }
        let rows: Vec<f64> = ROWS.iter().map(|&f| power(b, self.rate, f)).collect();
        let cols: Vec<f64> = COLS.iter().map(|&f| power(b, self.rate, f)).collect();
        let (r, pr) = strongest(&rows);
        let (c, pc) = strongest(&cols);
        if pr < min_power || pc < min_power {
            return None;
        }
        if pc > pr * NORMAL_TWIST || pr > pc * REVERSE_TWIST {
            return None;
        }
        let dominant = |list: &[f64], i: usize, p: f64| {
            list.iter()
                .enumerate()
                .all(|(j, &q)| j == i || q * GROUP_DOMINANCE <= p)
        };
        if !dominant(&rows, r, pr) || !dominant(&cols, c, pc) {
            return None;
        }
        if (pr + pc) < MIN_FRACTION * total {
            return None;
        }
        let in_tolerance = |f: f64, p: f64| {
            power(b, self.rate, f * (1.0 - PROBE_OFFSET)) < p
                && power(b, self.rate, f * (1.0 + PROBE_OFFSET)) < p
        };
        if !in_tolerance(ROWS[r], pr) || !in_tolerance(COLS[c], pc) {
            return None;
        }
        let digit = KEYS[r][c];
        Some(digit)
    }
}

fn strongest(list: &[f64]) -> (usize, f64) {
    list.iter().copied().enumerate().fold(
        (0, f64::MIN),
        |best, (i, p)| if p > best.1 { (i, p) } else { best },
    )
}
