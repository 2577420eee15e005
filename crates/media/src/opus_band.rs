//! Opus for a listener at 8 or 16 kHz: the SILK layer by itself.
//!
//! Browsers send speech as hybrid packets: a SILK layer carries the band up to 8 kHz and a
//! CELT layer the band above (RFC 6716 §2). A decoder giving 8 or 16 kHz plays nothing of the
//! CELT band, which lies above its Nyquist frequency (the full decoder's output at these
//! rates is the same with or without it), yet decoding that layer costs more than half of the
//! packet. [`SpeechBandDecoder`] decodes the SILK layer of SILK-only and hybrid packets alone
//! and hands CELT-only packets to the full decoder. Its output is the full decoder's, sample
//! for sample (`tests/opus_band.rs`); at mode switches it resets what the reference decoder
//! resets (SILK after CELT, CELT after SILK), without the 5 ms cross-fade of a switch.

use opus_rs::range_coder::RangeCoder;
use opus_rs::silk::dec_api::SilkDecoder;
use opus_rs::silk::decode_frame::{FLAG_DECODE_NORMAL, FLAG_PACKET_LOST};
use opus_rs::silk::resampler::SilkResampler;

/// The frames of an Opus packet (RFC 6716 §3.2) after its TOC byte; `None` if the packet is
/// malformed.
pub fn opus_frames(packet: &[u8]) -> Option<Vec<&[u8]>> {
    let toc = *packet.first()?;
    let data = &packet[1..];
    // A frame length: one byte below 252, else two (§3.2.1).
    let length = |d: &[u8]| -> Option<(usize, usize)> {
        let b0 = *d.first()? as usize;
        if b0 < 252 {
            Some((b0, 1))
        } else {
            Some((*d.get(1)? as usize * 4 + b0, 2))
        }
    };
    let frames = match toc & 3 {
        0 => vec![data],
        1 => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let (a, b) = data.split_at(data.len() / 2);
            vec![a, b]
        }
        2 => {
            let (n, used) = length(data)?;
            let rest = &data[used..];
            if n > rest.len() {
                return None;
            }
            let (a, b) = rest.split_at(n);
            vec![a, b]
        }
        _ => {
            let info = *data.first()?;
            let (vbr, padded, count) = (info & 0x80 != 0, info & 0x40 != 0, (info & 0x3f) as usize);
            if count == 0 {
                return None;
            }
            let mut pos = 1;
            let mut padding = 0usize;
            if padded {
                loop {
                    let p = *data.get(pos)? as usize;
                    pos += 1;
                    padding += if p == 255 { 254 } else { p };
                    if p != 255 {
                        break;
                    }
                }
            }
            let end = data.len().checked_sub(padding)?;
            let mut frames = Vec::with_capacity(count);
            if vbr {
                let mut lengths = Vec::with_capacity(count);
                for _ in 0..count - 1 {
                    let (n, used) = length(data.get(pos..end)?)?;
                    pos += used;
                    lengths.push(n);
                }
                for n in lengths {
                    frames.push(data.get(pos..pos + n).filter(|_| pos + n <= end)?);
                    pos += n;
                }
                frames.push(data.get(pos..end)?);
            } else {
                let body = data.get(pos..end)?;
                if !body.len().is_multiple_of(count) {
                    return None;
                }
                let size = body.len() / count;
                frames.extend((0..count).map(|i| &body[i * size..(i + 1) * size]));
            }
            frames
        }
    };
    // §3.4 [R2]: no frame is longer than 1275 bytes.
    frames.iter().all(|f| f.len() <= 1275).then_some(frames)
}

/// Which decoder handled the last packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Silk,
    Celt,
}

/// Opus to 16-bit PCM at 8 or 16 kHz, skipping the CELT layer of hybrid packets.
pub struct SpeechBandDecoder {
    rate: i32,
    silk: Box<SilkDecoder>,
    resampler: SilkResampler,
    /// The SILK rate the resampler converts from (0: not yet set).
    internal_rate: i32,
    full: Box<opus_rs::OpusDecoder>,
    last: Option<Layer>,
    /// The last SILK frame's length in ms (what concealment repeats).
    frame_ms: i32,
    channels: i32,
    pcm: Vec<i16>,
    resampled: Vec<i16>,
    float: Vec<f32>,
}

impl SpeechBandDecoder {
    /// A decoder giving mono PCM at `rate` (8 or 16 kHz); `None` for other rates.
    pub fn new(rate: u32) -> Option<Self> {
        if rate != 8_000 && rate != 16_000 {
            return None;
        }
        let rate = rate as i32;
        let mut silk = Box::new(SilkDecoder::new());
        silk.init(rate, 1);
        Some(SpeechBandDecoder {
            rate,
            silk,
            resampler: SilkResampler::default(),
            internal_rate: 0,
            full: Box::new(opus_rs::OpusDecoder::new(rate, 1).ok()?),
            last: None,
            frame_ms: 20,
            channels: 1,
            pcm: vec![0; 960],
            resampled: vec![0; 960],
            float: vec![0.0; 5760],
        })
    }

    /// The rate of the PCM it gives.
    pub fn sample_rate(&self) -> u32 {
        self.rate as u32
    }

    /// Decodes one packet, appending its samples; `Err` if it cannot be decoded.
    pub fn decode(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<(), &'static str> {
        let toc = *packet.first().ok_or("empty packet")?;
        let config = toc >> 3;
        if config >= 16 {
            return self.decode_celt(packet, out);
        }
        let frames = opus_frames(packet).ok_or("malformed packet")?;
        if self.last == Some(Layer::Celt) {
            // As the reference decoder: SILK starts afresh after CELT.
            self.silk.reset();
            self.internal_rate = 0;
        }
        self.last = Some(Layer::Silk);
        let internal = if config >= 12 {
            16_000
        } else {
            [8_000, 12_000, 16_000][(config / 4) as usize]
        };
        self.frame_ms = if config >= 12 {
            [10, 20][(config % 2) as usize]
        } else {
            [10, 20, 40, 60][(config % 4) as usize]
        };
        self.channels = if toc & 4 != 0 { 2 } else { 1 };
        for frame in frames {
            let flag = if frame.is_empty() {
                FLAG_PACKET_LOST
            } else {
                FLAG_DECODE_NORMAL
            };
            self.silk_frame(frame, flag, internal, out)?;
        }
        Ok(())
    }

    /// Appends `samples` of concealment, in the mode of the last packet.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        if self.last != Some(Layer::Silk) {
            crate::codec::conceal_opus(
                &mut self.full,
                &mut self.float,
                self.rate as usize / 400,
                samples,
                out,
            );
            return;
        }
        let internal = self.internal_rate.max(8_000);
        let start = out.len();
        while out.len() - start < samples {
            if self
                .silk_frame(&[], FLAG_PACKET_LOST, internal, out)
                .is_err()
            {
                break;
            }
        }
        out.resize(start + samples, 0);
    }

    fn decode_celt(&mut self, packet: &[u8], out: &mut Vec<i16>) -> Result<(), &'static str> {
        if self.last == Some(Layer::Silk) {
            // As the reference decoder: CELT starts afresh after SILK.
            *self.full = opus_rs::OpusDecoder::new(self.rate, 1)?;
        }
        self.last = Some(Layer::Celt);
        let samples = crate::codec::opus_packet_samples(packet).unwrap_or(960) as usize
            * self.rate as usize
            / 48_000;
        let n = self.full.decode(packet, samples, &mut self.float)?;
        out.extend(self.float[..n].iter().map(|&x| crate::codec::to_i16(x)));
        Ok(())
    }

    /// One Opus frame's SILK layer (one to three SILK frames), resampled to the output rate.
    fn silk_frame(
        &mut self,
        frame: &[u8],
        flag: i32,
        internal: i32,
        out: &mut Vec<i16>,
    ) -> Result<(), &'static str> {
        if internal != self.internal_rate {
            self.resampler.init(internal, self.rate);
            self.internal_rate = internal;
        }
        let total = (self.frame_ms * internal / 1000) as usize;
        let mut rc = RangeCoder::new_decoder(frame);
        let (mut done, mut new_packet) = (0usize, true);
        while done < total {
            let n = self.silk.decode_with_channels(
                &mut rc,
                &mut self.pcm[..total - done],
                flag,
                new_packet,
                self.frame_ms,
                internal,
                self.channels,
            );
            if n <= 0 {
                return Err("SILK frame not decodable");
            }
            let n = (n as usize).min(total - done);
            let m = n * self.rate as usize / internal as usize;
            self.resampler
                .process(&mut self.resampled[..m], &self.pcm[..n], n as i32);
            out.extend_from_slice(&self.resampled[..m]);
            done += n;
            new_packet = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_every_code() {
        // Code 0: one frame.
        assert_eq!(
            opus_frames(&[0x08, 1, 2, 3]).unwrap(),
            vec![&[1u8, 2, 3][..]]
        );
        // Code 1: two of equal size; an odd body is malformed.
        assert_eq!(
            opus_frames(&[0x09, 1, 2, 3, 4]).unwrap(),
            vec![&[1u8, 2][..], &[3, 4][..]]
        );
        assert!(opus_frames(&[0x09, 1, 2, 3]).is_none());
        // Code 2: the first length coded, the second the rest.
        assert_eq!(
            opus_frames(&[0x0a, 1, 9, 7, 7]).unwrap(),
            vec![&[9u8][..], &[7, 7][..]]
        );
        assert!(opus_frames(&[0x0a, 5, 1]).is_none());
        // Two-byte length: 252 + 4 * 1 = 256.
        let mut p = vec![0x0a, 252, 1];
        p.extend(std::iter::repeat_n(1, 256));
        p.extend([2, 2]);
        let f = opus_frames(&p).unwrap();
        assert_eq!((f[0].len(), f[1].len()), (256, 2));
        // Code 3, CBR: three frames of two bytes.
        assert_eq!(opus_frames(&[0x0b, 3, 1, 1, 2, 2, 3, 3]).unwrap().len(), 3);
        assert!(opus_frames(&[0x0b, 3, 1, 1, 2, 2, 3]).is_none());
        // Code 3, VBR with padding: lengths 1 and 2, then the last, then 2 bytes of padding.
        let f = opus_frames(&[0x0b, 0x80 | 0x40 | 3, 2, 1, 2, 9, 8, 8, 7, 7, 7, 0, 0]).unwrap();
        assert_eq!(f, vec![&[9u8][..], &[8, 8][..], &[7, 7, 7][..]]);
        // Code 3 with no frames, or padding longer than the packet.
        assert!(opus_frames(&[0x0b, 0]).is_none());
        assert!(opus_frames(&[0x0b, 0x40 | 1, 200]).is_none());
        assert!(opus_frames(&[]).is_none());
    }
}
