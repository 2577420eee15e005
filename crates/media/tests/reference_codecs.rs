//! Cross-checks of the codec crates phonebridge uses against the reference libraries real
//! phones use: spandsp's G.722 and libopus, driven through `support/reference_codec.py`.

use std::io::Write;
use std::process::{Command, Stdio};

use phonebridge_media::goertzel::{mean_power, power};
use phonebridge_media::{AudioDecoder, AudioEncoder, CodecKind, Tone};

fn reference(mode: &str, input: &[u8]) -> Vec<u8> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/reference_codec.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "reference codec {mode} failed (is baresip-core installed?)"
    );
    out.stdout
}

fn s16(pcm: &[i16]) -> Vec<u8> {
    pcm.iter().flat_map(|s| s.to_le_bytes()).collect()
}

fn from_s16(b: &[u8]) -> Vec<i16> {
    b.chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Speech-band test signal: three tones and a little deterministic noise.
fn signal(rate: u32, seconds: u32) -> Vec<i16> {
    let mut pcm = Vec::new();
    Tone::mix(rate, &[(300.0, 4000.0), (700.0, 6000.0), (2300.0, 2000.0)])
        .fill((rate * seconds) as usize, &mut pcm);
    let mut x = 12345u32;
    for s in &mut pcm {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *s = s.saturating_add(((x >> 16) as i16) >> 7);
    }
    pcm
}

/// Signal-to-difference ratio in dB between two equally long signals.
fn snr_db(reference: &[i16], test: &[i16]) -> f64 {
    let n = reference.len().min(test.len());
    let (mut sig, mut err) = (0f64, 0f64);
    for i in 0..n {
        sig += (reference[i] as f64).powi(2);
        err += (reference[i] as f64 - test[i] as f64).powi(2);
    }
    if err == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (sig / err).log10()
    }
}

#[test]
fn g722_matches_spandsp() {
    let pcm = signal(16000, 2);
    let theirs = reference("g722-encode", &s16(&pcm));
    // Decoders: from the same bytes, the same samples, bit for bit.
    let mut dec = AudioDecoder::new(CodecKind::G722);
    let mut decoded = Vec::new();
    for frame in theirs.chunks(160) {
        dec.decode(frame, &mut decoded);
    }
    let reference_pcm = from_s16(&reference("g722-decode", &theirs));
    let differ = decoded
        .iter()
        .zip(&reference_pcm)
        .filter(|(a, b)| a != b)
        .count();
    eprintln!(
        "G.722 decoding spandsp's bytes: {differ} of {} samples differ, agreement {:.1} dB",
        decoded.len(),
        snr_db(&reference_pcm, &decoded)
    );
    // Encoders: what spandsp decodes from our bytes is as close to the input as what it
    // decodes from its own.
    let mut enc = AudioEncoder::new(CodecKind::G722);
    let mut ours = Vec::new();
    for frame in pcm.chunks(320) {
        enc.encode(frame, &mut ours);
    }
    let same = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    let from_ours = from_s16(&reference("g722-decode", &ours));
    let delay = 22; // the QMF pair's delay at 16 kHz
    let q_ours = snr_db(&pcm[..pcm.len() - delay], &from_ours[delay..]);
    let q_theirs = snr_db(&pcm[..pcm.len() - delay], &reference_pcm[delay..]);
    eprintln!("G.722 encoders: {same} of {} bytes identical; round-trip SNR ours {q_ours:.1} dB, spandsp {q_theirs:.1} dB", ours.len());
    // Not bit-exact (the QMF rounds differently in the last bit), but far below hearing.
    let agreement = snr_db(&reference_pcm, &decoded);
    assert!(
        agreement > 45.0,
        "G.722 decoder {agreement:.1} dB away from spandsp"
    );
    assert!(
        q_ours > q_theirs - 1.0,
        "our G.722 encoder is worse than spandsp's"
    );
}

fn framed(packets: &[Vec<u8>]) -> Vec<u8> {
    packets
        .iter()
        .flat_map(|p| {
            (p.len() as u16)
                .to_le_bytes()
                .into_iter()
                .chain(p.iter().copied())
        })
        .collect()
}

fn unframe(b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 <= b.len() {
        let n = u16::from_le_bytes([b[i], b[i + 1]]) as usize;
        out.push(b[i + 2..i + 2 + n].to_vec());
        i += 2 + n;
    }
    out
}

fn tone_ok(pcm: &[i16], f: f64) -> bool {
    let tail: Vec<f32> = pcm[pcm.len() / 2..].iter().map(|&s| s as f32).collect();
    power(&tail, 48000.0, f) > 0.3 * mean_power(&tail)
}

#[test]
fn opus_rs_and_libopus_understand_each_other() {
    let pcm = signal(48000, 3);
    // opus-rs encodes, libopus decodes: the tones survive.
    let mut enc = AudioEncoder::new(CodecKind::Opus);
    let packets: Vec<Vec<u8>> = pcm
        .chunks(960)
        .map(|f| {
            let mut p = Vec::new();
            enc.encode(f, &mut p);
            p
        })
        .collect();
    let by_libopus = from_s16(&reference("opus-decode", &framed(&packets)));
    assert_eq!(by_libopus.len(), pcm.len());
    assert!(
        tone_ok(&by_libopus, 700.0),
        "libopus cannot hear what opus-rs encoded"
    );
    // libopus encodes, both decode: opus-rs's output is what libopus's is.
    let lib_packets = unframe(&reference("opus-encode", &s16(&pcm)));
    let lib_decoded = from_s16(&reference("opus-decode", &framed(&lib_packets)));
    let mut dec = AudioDecoder::new(CodecKind::Opus);
    let mut ours = Vec::new();
    for p in &lib_packets {
        dec.decode(p, &mut ours);
    }
    assert_eq!(ours.len(), lib_decoded.len());
    let agreement = snr_db(&lib_decoded, &ours);
    eprintln!("opus-rs vs libopus decoding the same packets: {agreement:.1} dB");
    assert!(
        agreement > 40.0,
        "opus-rs decodes libopus packets {agreement:.1} dB away from libopus"
    );
    // Quality: opus-rs's round trip is as close to the input as libopus's own.
    let mut dec = AudioDecoder::new(CodecKind::Opus);
    let mut rs_round = Vec::new();
    for p in &packets {
        dec.decode(p, &mut rs_round);
    }
    let delay = 312; // Opus's algorithmic delay at 48 kHz (6.5 ms)
    let q_rs = snr_db(&pcm[..pcm.len() - delay], &rs_round[delay..]);
    let q_lib = snr_db(&pcm[..pcm.len() - delay], &lib_decoded[delay..]);
    eprintln!("round-trip SNR: opus-rs {q_rs:.1} dB, libopus {q_lib:.1} dB");
    assert!(
        q_rs > q_lib - 3.0,
        "opus-rs round trip {q_rs:.1} dB vs libopus {q_lib:.1} dB"
    );
}
