//! The speech-band Opus decoder (the SILK layer alone at 8 and 16 kHz) against the full
//! decoder: the same samples for SILK-only, hybrid and CELT-only streams, single- and
//! multi-frame packets; mode switches and concealment stay close to it.

use phonebridge_media::{wav, AudioDecoder, Resampler, Tone};

/// The English prompts (speech) at `rate`.
fn speech(rate: u32) -> Vec<i16> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/prompts/en");
    let mut out = Vec::new();
    for p in ["enter_code", "wrong_code", "joining"] {
        let bytes = std::fs::read(format!("{dir}/{p}.wav")).expect("prompt");
        let w = wav::parse(&bytes).expect("a WAV file");
        match Resampler::new(w.rate, rate) {
            Some(mut r) => r.process(&w.samples, &mut out),
            None => out.extend_from_slice(&w.samples),
        }
    }
    out
}

/// Packets of `pcm` (at `rate`) from libopus-style settings, `frame` samples each.
fn encode(
    pcm: &[i16],
    rate: i32,
    frame: usize,
    bitrate: i32,
    app: opus_rs::Application,
) -> Vec<Vec<u8>> {
    let mut enc = opus_rs::OpusEncoder::new(rate, 1, app).expect("encoder");
    enc.bitrate_bps = bitrate;
    enc.complexity = 5;
    let mut buf = vec![0u8; 1500];
    pcm.chunks_exact(frame)
        .map(|f| {
            let n = enc.encode_i16(f, frame, &mut buf).expect("encodes");
            buf[..n].to_vec()
        })
        .collect()
}

/// Speech as browsers send it: 48 kHz, around 24-32 kbit/s, 20 ms packets (hybrid).
fn browser_speech() -> Vec<Vec<u8>> {
    encode(
        &speech(48_000),
        48_000,
        960,
        24_000,
        opus_rs::Application::Voip,
    )
}

/// What the full decoder gives at `rate` (16-bit, rounded as the gateway rounds).
fn full(rate: u32, packets: &[Vec<u8>]) -> Vec<i16> {
    let mut d = opus_rs::OpusDecoder::new(rate as i32, 1).unwrap();
    let mut buf = vec![0f32; 5760];
    let mut out = Vec::new();
    for p in packets {
        let samples = phonebridge_media::codec::opus_packet_samples(p).unwrap() as usize
            * rate as usize
            / 48_000;
        let n = d.decode(p, samples, &mut buf).unwrap();
        out.extend(
            buf[..n]
                .iter()
                .map(|x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
        );
    }
    out
}

/// What the gateway's decoder for a phone at `rate` gives.
fn band(rate: u32, packets: &[Vec<u8>]) -> Vec<i16> {
    let mut d = AudioDecoder::opus_at(rate).unwrap();
    let mut out = Vec::new();
    for p in packets {
        d.decode(p, &mut out);
    }
    out
}

/// Which Opus modes (SILK-only, hybrid, CELT-only) and frame-count codes the packets use.
fn modes(packets: &[Vec<u8>]) -> ([usize; 3], [usize; 4]) {
    let (mut m, mut c) = ([0; 3], [0; 4]);
    for p in packets {
        let config = p[0] >> 3;
        m[if config < 12 {
            0
        } else if config < 16 {
            1
        } else {
            2
        }] += 1;
        c[(p[0] & 3) as usize] += 1;
    }
    (m, c)
}

fn snr_db(reference: &[i16], x: &[i16]) -> f64 {
    let (mut s, mut n) = (1e-9, 1e-9);
    for (a, b) in reference.iter().zip(x) {
        s += (*a as f64).powi(2);
        n += (*a as f64 - *b as f64).powi(2);
    }
    10.0 * (s / n).log10()
}

#[test]
fn hybrid_speech_decodes_to_the_full_decoders_samples() {
    let packets = browser_speech();
    let (m, _) = modes(&packets);
    assert!(m[1] > packets.len() * 9 / 10, "mostly hybrid: {m:?}");
    for rate in [8_000, 16_000] {
        let (a, b) = (full(rate, &packets), band(rate, &packets));
        assert_eq!(a.len(), b.len(), "{rate}");
        assert!(a == b, "{rate} Hz: SNR {:.1} dB", snr_db(&a, &b));
    }
}

#[test]
fn silk_only_streams_and_long_frames_decode_to_the_same_samples() {
    for (rate, frame) in [(8_000, 160), (16_000, 320), (16_000, 640), (16_000, 960)] {
        let packets = encode(
            &speech(rate as u32),
            rate,
            frame,
            20_000,
            opus_rs::Application::Voip,
        );
        let (m, _) = modes(&packets);
        assert_eq!(
            m[0],
            packets.len(),
            "SILK only at {rate} Hz, {frame}: {m:?}"
        );
        for out in [8_000, 16_000] {
            let (a, b) = (full(out, &packets), band(out, &packets));
            assert!(
                a == b,
                "{rate}/{frame} to {out}: SNR {:.1} dB",
                snr_db(&a, &b)
            );
        }
    }
}

#[test]
fn multi_frame_packets_decode_to_the_same_samples() {
    // 40 and 60 ms at 48 kHz: hybrid frames of 20 ms, several to a packet.
    for frame in [1920, 2880] {
        let packets = encode(
            &speech(48_000),
            48_000,
            frame,
            24_000,
            opus_rs::Application::Voip,
        );
        let (m, codes) = modes(&packets);
        assert!(
            m[1] > 0 && codes[0] == 0,
            "{frame}: modes {m:?}, codes {codes:?}"
        );
        for rate in [8_000, 16_000] {
            let (a, b) = (full(rate, &packets), band(rate, &packets));
            assert!(a == b, "{frame} at {rate} Hz: SNR {:.1} dB", snr_db(&a, &b));
        }
    }
}

#[test]
fn celt_only_streams_go_to_the_full_decoder() {
    let mut music = Vec::new();
    Tone::mix(
        48_000,
        &[(440.0, 6000.0), (2500.0, 4000.0), (9000.0, 3000.0)],
    )
    .fill(48_000 * 2, &mut music);
    let packets = encode(&music, 48_000, 960, 64_000, opus_rs::Application::Audio);
    let (m, _) = modes(&packets);
    assert_eq!(m[2], packets.len(), "CELT only: {m:?}");
    for rate in [8_000, 16_000] {
        assert!(full(rate, &packets) == band(rate, &packets), "{rate}");
    }
}

#[test]
fn switching_between_hybrid_and_celt_stays_close_to_the_full_decoder() {
    let voice = speech(48_000);
    let mut packets = encode(
        &voice[..48_000 * 2],
        48_000,
        960,
        24_000,
        opus_rs::Application::Voip,
    );
    let middle = encode(
        &voice[48_000 * 2..48_000 * 4],
        48_000,
        960,
        96_000,
        opus_rs::Application::Audio,
    );
    let (m, _) = modes(&middle);
    assert!(m[2] > middle.len() / 2, "the middle is mostly CELT: {m:?}");
    packets.extend(middle);
    packets.extend(encode(
        &voice[48_000 * 4..48_000 * 6],
        48_000,
        960,
        24_000,
        opus_rs::Application::Voip,
    ));
    for rate in [8_000, 16_000] {
        let (a, b) = (full(rate, &packets), band(rate, &packets));
        assert_eq!(a.len(), b.len());
        let snr = snr_db(&a, &b);
        assert!(
            snr > 15.0,
            "{rate} Hz: SNR {snr:.1} dB across mode switches"
        );
    }
}

#[test]
fn concealment_continues_the_speech_as_the_full_decoder_does() {
    let packets = browser_speech();
    for rate in [8_000u32, 16_000] {
        let frame = rate as usize / 50;
        let mut full_dec = opus_rs::OpusDecoder::new(rate as i32, 1).unwrap();
        let mut band_dec = AudioDecoder::opus_at(rate).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut buf = vec![0f32; 5760];
        for (i, p) in packets.iter().enumerate() {
            // Every tenth packet is lost.
            let lost = i % 10 == 5;
            let n = full_dec
                .decode(if lost { &[] } else { p }, frame, &mut buf)
                .unwrap();
            a.extend(buf[..n].iter().map(|x| (x * 32768.0).round() as i16));
            if lost {
                band_dec.conceal(frame, &mut b);
            } else {
                band_dec.decode(p, &mut b);
            }
        }
        assert_eq!(a.len(), b.len());
        let snr = snr_db(&a, &b);
        assert!(snr > 30.0, "{rate} Hz: SNR {snr:.1} dB with 10 % loss");
    }
}
