//! The phone-leg codecs behind one interface: G.711 µ-law and A-law (in-house tables with
//! waveform-repetition concealment), G.722 (the `audio-codec` crate, with the same
//! concealment) and Opus (the `opus-rs` crate, with its own concealment).
//!
//! Both crates were chosen after checking them against the reference libraries real phones
//! use: `tests/reference_codecs.rs` compares them with spandsp (G.722) and libopus.

use audio_codec::g722::{G722Decoder, G722Encoder};
use audio_codec::{Decoder as _, Encoder as _};

use crate::g711::Law;
use crate::opus_band::SpeechBandDecoder;
use crate::plc::{G711Decoder, Plc};

/// Which codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl CodecKind {
    /// The rate of the audio the codec takes and gives.
    pub fn sample_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8_000,
            CodecKind::G722 => 16_000,
            CodecKind::Opus => 48_000,
        }
    }

    /// The RTP clock (G.722 is clocked at 8 kHz though it samples at 16 kHz).
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Opus => 48_000,
            _ => 8_000,
        }
    }
}

/// Opus settings for the phone leg.
const OPUS_BITRATE: i32 = 24_000;
const OPUS_COMPLEXITY: i32 = 5;
/// Narrowband (telephone audio at 8 kHz) is coded at complexity 1: single-state noise
/// shaping, no warping, at 25-30 µs a frame instead of 61-78. On speech its PESQ stays within
/// 0.2 of complexity 5 with or without loss (`bench/opus_phone.py`); wideband keeps
/// complexity 5, where the cheaper settings lose 0.6-0.9. FEC is added only while receivers
/// report loss ([`AudioEncoder::set_expected_loss`]): on a clean path it takes bits from the
/// speech (PESQ 4.34 without, 3.92 with, at complexity 1).
const OPUS_NARROWBAND_COMPLEXITY: i32 = 1;

/// The number of 48 kHz samples in an Opus packet, from its TOC (RFC 6716 §3.1).
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame_us: u32 = match config {
        0..=11 => [10_000, 20_000, 40_000, 60_000][(config % 4) as usize],
        12..=15 => [10_000, 20_000][(config % 2) as usize],
        _ => [2_500, 5_000, 10_000, 20_000][(config % 4) as usize],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => (*packet.get(1)? & 0x3f) as u32,
    };
    let total = frame_us * frames;
    // RFC 6716 §3.2.5: a packet holds at most 120 ms.
    (frames > 0 && total <= 120_000).then_some(total * 48 / 1000)
}

enum Dec {
    G711(G711Decoder),
    G722(Box<G722Decoder>, Plc),
    /// The decoder, its output buffer, and 2.5 ms in samples at its rate.
    Opus(Box<opus_rs::OpusDecoder>, Vec<f32>, usize),
    /// Opus at 8 or 16 kHz: the SILK layer alone where the packet has one.
    OpusBand(Box<SpeechBandDecoder>),
}

/// Decodes one codec's payloads to 16-bit PCM at [`CodecKind::sample_rate`].
pub struct AudioDecoder {
    kind: CodecKind,
    inner: Dec,
}

impl std::fmt::Debug for AudioDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioDecoder")
            .field("kind", &self.kind)
            .finish()
    }
}

impl AudioDecoder {
    pub fn new(kind: CodecKind) -> Self {
        let inner = match kind {
            CodecKind::Pcmu => Dec::G711(G711Decoder::new(Law::Ulaw)),
            CodecKind::Pcma => Dec::G711(G711Decoder::new(Law::Alaw)),
            CodecKind::G722 => Dec::G722(Box::new(G722Decoder::new()), Plc::new(16_000)),
            CodecKind::Opus => {
                return Self::opus_at(48_000).expect("48 kHz mono is an Opus decoder rate")
            }
        };
        AudioDecoder { kind, inner }
    }

    /// An Opus decoder giving mono PCM at `rate` (8, 12, 16, 24 or 48 kHz); `None` for other
    /// rates. Decoding straight to a phone's rate spares the resampling after it.
    pub fn opus_at(rate: u32) -> Option<Self> {
        let inner = match SpeechBandDecoder::new(rate) {
            Some(d) => Dec::OpusBand(Box::new(d)),
            None => {
                let d = opus_rs::OpusDecoder::new(rate as i32, 1).ok()?;
                Dec::Opus(Box::new(d), vec![0.0; 5760], rate as usize / 400)
            }
        };
        Some(AudioDecoder {
            kind: CodecKind::Opus,
            inner,
        })
    }

    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// The length of a payload in RTP clock units; `None` if it cannot be a payload of
    /// this codec.
    pub fn duration(&self, payload: &[u8]) -> Option<u32> {
        match self.kind {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => {
                (!payload.is_empty()).then_some(payload.len() as u32)
            }
            CodecKind::Opus => opus_packet_samples(payload),
        }
    }

    /// Decodes a payload, appending its samples.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match &mut self.inner {
            Dec::G711(d) => d.decode(payload, out),
            Dec::G722(d, plc) => {
                let start = out.len();
                out.resize(start + payload.len() * 2, 0);
                let n = d.decode_into(payload, &mut out[start..]).unwrap_or(0);
                out.truncate(start + n);
                plc.good(&mut out[start..]);
            }
            Dec::Opus(d, buf, step) => {
                // The packet's length at 48 kHz, in 2.5 ms steps at the decoder's rate.
                let samples = opus_packet_samples(payload).unwrap_or(960) as usize / 120 * *step;
                match d.decode(payload, samples, buf) {
                    Ok(n) => out.extend(buf[..n].iter().map(|&x| to_i16(x))),
                    Err(e) => {
                        tracing::trace!(error = e, "opus packet not decodable");
                        conceal_opus(d, buf, *step, samples, out);
                    }
                }
            }
            Dec::OpusBand(d) => {
                let start = out.len();
                if let Err(e) = d.decode(payload, out) {
                    tracing::trace!(error = e, "opus packet not decodable");
                    out.truncate(start);
                    let samples = opus_packet_samples(payload).unwrap_or(960) as usize
                        * d.sample_rate() as usize
                        / 48_000;
                    d.conceal(samples, out);
                }
            }
        }
    }

    /// Appends `samples` of concealment for missing audio.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        match &mut self.inner {
            Dec::G711(d) => d.conceal(samples, out),
            Dec::G722(_, plc) => plc.conceal(samples, out),
            Dec::Opus(d, buf, step) => conceal_opus(d, buf, *step, samples, out),
            Dec::OpusBand(d) => d.conceal(samples, out),
        }
    }
}

pub(crate) fn conceal_opus(
    d: &mut opus_rs::OpusDecoder,
    buf: &mut [f32],
    step: usize,
    samples: usize,
    out: &mut Vec<i16>,
) {
    // Opus conceals in multiples of 2.5 ms (`step` samples); ask for what covers the gap.
    let mut left = samples;
    while left > 0 {
        let chunk = left.div_ceil(step).clamp(1, 48) * step;
        let n = d.decode(&[], chunk, buf).unwrap_or(0);
        if n == 0 {
            out.extend(std::iter::repeat_n(0, left));
            return;
        }
        let take = n.min(left);
        out.extend(buf[..take].iter().map(|&x| to_i16(x)));
        left -= take;
    }
}

pub(crate) fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

enum Enc {
    G711(Law),
    G722(Box<G722Encoder>),
    Opus(Box<opus_rs::OpusEncoder>),
}

/// Encodes 16-bit PCM at [`CodecKind::sample_rate`] into payloads.
pub struct AudioEncoder {
    kind: CodecKind,
    inner: Enc,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for AudioEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioEncoder")
            .field("kind", &self.kind)
            .finish()
    }
}

impl AudioEncoder {
    pub fn new(kind: CodecKind) -> Self {
        let inner = match kind {
            CodecKind::Pcmu => Enc::G711(Law::Ulaw),
            CodecKind::Pcma => Enc::G711(Law::Alaw),
            CodecKind::G722 => Enc::G722(Box::new(G722Encoder::new())),
            CodecKind::Opus => {
                return Self::opus_at(48_000).expect("48 kHz mono is an Opus encoder rate")
            }
        };
        AudioEncoder {
            kind,
            inner,
            scratch: vec![0; 1500],
        }
    }

    /// An Opus encoder taking mono PCM at `rate` (8, 12, 16, 24 or 48 kHz); `None` for other
    /// rates. The stream is Opus as any decoder plays it (RTP clock 48 kHz); at 8 and 16 kHz
    /// the encoder codes the band the input has (SILK, narrow- or wideband), which costs a
    /// fraction of the 48 kHz hybrid mode and needs no resampling of telephone audio first.
    pub fn opus_at(rate: u32) -> Option<Self> {
        let mut e = opus_rs::OpusEncoder::new(rate as i32, 1, opus_rs::Application::Voip).ok()?;
        e.bitrate_bps = OPUS_BITRATE;
        e.complexity = if rate <= 8_000 {
            OPUS_NARROWBAND_COMPLEXITY
        } else {
            OPUS_COMPLEXITY
        };
        Some(AudioEncoder {
            kind: CodecKind::Opus,
            inner: Enc::Opus(Box::new(e)),
            scratch: vec![0; 1500],
        })
    }

    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// The loss (percent) the receivers see: Opus adds in-band FEC (RFC 6716 §2.1.7) sized
    /// for it when above zero, none at zero (the default). Other codecs have no FEC.
    pub fn set_expected_loss(&mut self, percent: u8) {
        if let Enc::Opus(e) = &mut self.inner {
            e.use_inband_fec = percent > 0;
            e.packet_loss_perc = i32::from(percent.min(100));
        }
    }

    /// Encodes one packet's worth of samples (for Opus: 10, 20, 40 or 60 ms), appending the
    /// payload to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        match &mut self.inner {
            Enc::G711(law) => law.encode(pcm, out),
            Enc::G722(e) => {
                let start = out.len();
                out.resize(start + pcm.len() / 2 + 1, 0);
                let n = e.encode_into(pcm, &mut out[start..]).unwrap_or(0);
                out.truncate(start + n);
            }
            Enc::Opus(e) => match e.encode_i16(pcm, pcm.len(), &mut self.scratch) {
                Ok(n) => out.extend_from_slice(&self.scratch[..n]),
                Err(err) => tracing::debug!(error = err, "opus encode failed"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::goertzel::{mean_power, power};
    use crate::Tone;

    #[test]
    fn opus_toc_durations() {
        assert_eq!(
            opus_packet_samples(&[(1 << 3) | 1]),
            Some(1920),
            "SILK 20 ms, 2 frames"
        );
        assert_eq!(
            opus_packet_samples(&[(31 << 3), 0]),
            Some(960),
            "CELT 20 ms"
        );
        assert_eq!(
            opus_packet_samples(&[(16 << 3) | 3, 4]),
            Some(480),
            "4 × 2.5 ms"
        );
        assert_eq!(
            opus_packet_samples(&[(3 << 3) | 3, 3]),
            None,
            "3 × 60 ms is too long"
        );
        assert_eq!(opus_packet_samples(&[]), None);
    }

    #[test]
    fn opus_fec_follows_the_expected_loss() {
        // RFC 6716 §4.2.3: a mono SILK-only packet opens with its VAD flag, then its LBRR
        // flag (in-band FEC for the frame before), each a range-coded bit of probability 1/2.
        fn carries_fec(packet: &[u8]) -> bool {
            assert!(packet[0] >> 3 < 12, "a SILK-only packet");
            let mut rc = opus_rs::range_coder::RangeCoder::new_decoder(&packet[1..]);
            rc.decode_bit_logp(1);
            rc.decode_bit_logp(1)
        }
        // Speech (a prompt): SILK codes LBRR for frames of active speech, not for pauses.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../assets/prompts/en/enter_code.wav"
        );
        let wav = crate::wav::parse(&std::fs::read(path).expect("prompt")).expect("a WAV file");
        let mut pcm = Vec::new();
        crate::Resampler::new(wav.rate, 8_000)
            .expect("16 to 8 kHz")
            .process(&wav.samples, &mut pcm);
        let mut enc = AudioEncoder::opus_at(8_000).expect("narrowband Opus");
        let with_fec = |enc: &mut AudioEncoder, frames: &[i16]| {
            frames
                .chunks_exact(160)
                .filter(|f| {
                    let mut out = Vec::new();
                    enc.encode(f, &mut out);
                    carries_fec(&out)
                })
                .count()
        };
        let third = pcm.len() / 3;
        assert_eq!(with_fec(&mut enc, &pcm[..third]), 0, "no FEC by default");
        enc.set_expected_loss(10);
        let (fec, packets) = (with_fec(&mut enc, &pcm[third..2 * third]), third / 160);
        assert!(
            fec > packets / 2,
            "FEC in {fec} of {packets} packets at 10 % loss"
        );
        enc.set_expected_loss(0);
        assert_eq!(with_fec(&mut enc, &pcm[2 * third..]), 0, "FEC off again");
    }

    #[test]
    fn every_codec_carries_a_tone_through_encode_and_decode() {
        for kind in [
            CodecKind::Pcmu,
            CodecKind::Pcma,
            CodecKind::G722,
            CodecKind::Opus,
        ] {
            let rate = kind.sample_rate();
            let frame = (rate / 50) as usize;
            let mut enc = AudioEncoder::new(kind);
            let mut dec = AudioDecoder::new(kind);
            let mut tone = Tone::sine(rate, 700.0, 8000.0);
            let mut out = Vec::new();
            for _ in 0..50 {
                let mut pcm = Vec::new();
                tone.fill(frame, &mut pcm);
                let mut payload = Vec::new();
                enc.encode(&pcm, &mut payload);
                assert_eq!(
                    dec.duration(&payload),
                    Some(kind.clock_rate() / 50),
                    "{kind:?}"
                );
                dec.decode(&payload, &mut out);
            }
            assert_eq!(out.len(), frame * 50, "{kind:?}");
            let tail: Vec<f32> = out[out.len() / 2..].iter().map(|&s| s as f32).collect();
            let p = power(&tail, rate as f64, 700.0);
            assert!(
                p > 0.8 * mean_power(&tail) && p > 0.5 * 32e6,
                "{kind:?}: tone lost"
            );
            // Concealment continues the stream at the right length.
            let before = out.len();
            dec.conceal(frame, &mut out);
            assert_eq!(out.len() - before, frame, "{kind:?}");
        }
    }
}
