//! Reading 16-bit PCM WAV files (the voice menu's prompts): any RIFF layout with a `fmt `
//! and a `data` chunk, mono or interleaved channels (the first channel is kept).

/// Why a file is not a usable WAV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWav,
    #[error("only 16-bit PCM is supported")]
    Unsupported,
    #[error("no fmt or data chunk")]
    Incomplete,
}

/// A decoded file: sample rate and the samples of its first channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    pub rate: u32,
    pub samples: Vec<i16>,
}

pub fn parse(b: &[u8]) -> Result<Wav, WavError> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut i = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        if id == b"fmt " {
            if body.len() < 16 {
                return Err(WavError::Incomplete);
            }
            let u16_at = |o: usize| u16::from_le_bytes([body[o], body[o + 1]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            fmt = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or(WavError::Incomplete)?;
            // 1 = PCM; 0xFFFE = WAVE_FORMAT_EXTENSIBLE (sox writes it for some layouts).
            if !(format == 1 || format == 0xfffe) || bits != 16 || channels == 0 {
                return Err(WavError::Unsupported);
            }
            let samples = body
                .chunks_exact(2 * channels as usize)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return Ok(Wav { rate, samples });
        }
        i += 8 + len + len % 2;
    }
    Err(WavError::Incomplete)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut w = b"RIFF".to_vec();
        w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes());
        w.extend_from_slice(&1u16.to_le_bytes());
        w.extend_from_slice(&channels.to_le_bytes());
        w.extend_from_slice(&rate.to_le_bytes());
        w.extend_from_slice(&(rate * 2 * channels as u32).to_le_bytes());
        w.extend_from_slice(&(2 * channels).to_le_bytes());
        w.extend_from_slice(&16u16.to_le_bytes());
        w.extend_from_slice(b"data");
        w.extend_from_slice(&(data.len() as u32).to_le_bytes());
        w.extend_from_slice(&data);
        w
    }

    #[test]
    fn mono_and_stereo_and_errors() {
        let w = parse(&wav(16000, 1, &[1, -2, 3])).unwrap();
        assert_eq!((w.rate, w.samples), (16000, vec![1, -2, 3]));
        let w = parse(&wav(8000, 2, &[1, 9, 2, 9])).unwrap();
        assert_eq!(w.samples, [1, 2]);
        assert_eq!(parse(b"RIFFxxxxWAVX"), Err(WavError::NotWav));
        assert_eq!(parse(&wav(8000, 1, &[])[..36]), Err(WavError::Incomplete));
    }
}
