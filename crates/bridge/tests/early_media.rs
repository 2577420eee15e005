//! Early media on a call we place: a 183's SDP starts the stream at once; a 200 with the same
//! SDP leaves it untouched; a 200 with another SDP switches cleanly and the old address is
//! ignored from then on. Audio is checked by content.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use phonebridge_bridge::{PhoneAudio, StreamIds};
use phonebridge_media::goertzel::{mean_power, power};
use phonebridge_media::{Law, Tone};
use phonebridge_rtp::RtpPacket;
use phonebridge_sdp::*;

const KEYS: [[u8; KEY_LEN]; 2] = [[1; KEY_LEN], [2; KEY_LEN]];

fn our_offer() -> (SessionDescription, Capabilities) {
    let caps = Capabilities {
        srtp: SrtpPolicy::Off,
        ..Capabilities::default()
    };
    let local = Local {
        ip: "10.0.0.1".parse().unwrap(),
        rtp_port: 20000,
        session_id: 1,
        version: 1,
        direction: Direction::SendRecv,
    };
    (offer(&caps, &local, &KEYS), caps)
}

fn carrier_sdp(port: u16, version: u32) -> SessionDescription {
    SessionDescription::parse(&format!(
        "v=0\r\no=carrier 7 {version} IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
    ))
    .unwrap()
}

/// A media source: one SSRC playing a tone as PCMA, 20 ms per packet.
struct Source {
    from: SocketAddr,
    ssrc: u32,
    seq: u16,
    ts: u32,
    tone: Tone,
}

impl Source {
    fn new(from: &str, ssrc: u32, freq: f64) -> Self {
        Source {
            from: from.parse().unwrap(),
            ssrc,
            seq: ssrc as u16,
            ts: ssrc.wrapping_mul(7),
            tone: Tone::sine(8000, freq, 8000.0),
        }
    }

    fn packet(&mut self) -> Vec<u8> {
        let mut pcm = Vec::new();
        self.tone.fill(160, &mut pcm);
        let mut payload = Vec::new();
        Law::Alaw.encode(&pcm, &mut payload);
        let mut b = Vec::new();
        RtpPacket {
            marker: false,
            pt: 8,
            seq: self.seq,
            ts: self.ts,
            ssrc: self.ssrc,
            payload: &payload,
        }
        .write(&mut b);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        b
    }
}

/// 2 s of early media from the 183's address, then the 200 (with `final_port`); the early
/// source keeps sending for 1 s after the answer, the answered one sends from then on.
/// Returns, per 20 ms frame played, which tone was heard (0: early 500 Hz, 1: 800 Hz).
fn scenario(final_port: u16) -> (Vec<Option<usize>>, PhoneAudio) {
    let (offer, caps) = our_offer();
    let t0 = Instant::now();
    let early = accept_answer(&offer, &carrier_sdp(30000, 1), &caps, &KEYS).unwrap();
    let mut leg = PhoneAudio::new(
        t0,
        &early,
        StreamIds {
            ssrc: 1,
            seq: 1,
            ts: 1,
        },
        "pb",
        None,
    );
    let mut early_src = Source::new("198.51.100.5:30000", 0xaaaa, 500.0);
    let answered_from = format!("198.51.100.5:{final_port}");
    let mut answered_src = Source::new(&answered_from, 0xbbbb, 800.0);
    let mut heard = Vec::new();
    for i in 0..250u64 {
        let now = t0 + Duration::from_millis(20 * i);
        if i == 100 {
            let fin = accept_answer(&offer, &carrier_sdp(final_port, 2), &caps, &KEYS).unwrap();
            leg.update(now, &fin);
        }
        if i < 150 {
            let p = early_src.packet();
            leg.handle_rtp(now, 0, early_src.from, p);
        }
        if i >= 100 && final_port != 30000 {
            let p = answered_src.packet();
            leg.handle_rtp(now, 0, answered_src.from, p);
        }
        let mut frame = Vec::new();
        leg.pull(now, &mut frame);
        let w: Vec<f32> = frame.iter().map(|&s| s as f32).collect();
        let total = mean_power(&w);
        heard.push([500.0, 800.0].iter().position(|&f| {
            let p = power(&w, 8000.0, f);
            p > 8e6 && p > 0.6 * total
        }));
    }
    (heard, leg)
}

fn longest_gap(frames: &[Option<usize>]) -> usize {
    frames
        .split(|f| f.is_some())
        .map(<[_]>::len)
        .max()
        .unwrap_or(0)
}

#[test]
fn early_media_plays_at_once_and_a_200_with_the_same_sdp_keeps_it() {
    let (heard, leg) = scenario(30000);
    // Heard from the first frames on, through the answer, without a gap.
    let first = heard.iter().position(Option::is_some).unwrap();
    assert!(first <= 2, "early media started after {first} frames");
    assert!(heard[first..150].iter().all(|h| *h == Some(0)), "{heard:?}");
    let s = leg.stats();
    assert_eq!(s.transport.ignored_source, 0);
    assert_eq!(s.jitter.source.ssrc_switches, 0);
}

#[test]
fn a_200_with_another_sdp_switches_cleanly_and_ignores_the_old_address() {
    let (heard, leg) = scenario(40000);
    let first = heard.iter().position(Option::is_some).unwrap();
    assert!(first <= 2);
    // Early tone until the answer, then the answered tone only: the early source's 50 late
    // packets never play.
    let switch = heard.iter().position(|h| *h == Some(1)).unwrap();
    assert!((100..=103).contains(&switch), "switched at frame {switch}");
    assert!(
        heard[switch..].iter().all(|h| *h != Some(0)),
        "old source heard after the answer"
    );
    assert!(longest_gap(&heard[first..]) <= 1, "gap: {heard:?}");
    assert_eq!(leg.stats().transport.ignored_source, 50);
}
