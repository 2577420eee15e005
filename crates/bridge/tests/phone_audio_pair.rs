//! Two phone-audio pipelines talking over an emulated network after a real SDP offer/answer:
//! a "phone" and the echo user. Audio is checked by content, digits by value.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use phonebridge_bridge::{PhoneAudio, PhoneEvent, StreamIds};
use phonebridge_media::goertzel::{mean_power, power};
use phonebridge_media::Tone;
use phonebridge_rtp::DigitSource;
use phonebridge_sdp::*;

const PHONE: &str = "10.1.1.1:4000";
const GATEWAY: &str = "10.9.9.9:20000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn local(a: &str, id: u64) -> Local {
    let a = addr(a);
    Local {
        ip: a.ip(),
        rtp_port: a.port(),
        session_id: id,
        version: 1,
        direction: Direction::SendRecv,
    }
}

/// Runs offer/answer: the phone offers `phone_caps`, the gateway answers with defaults.
fn negotiate(phone_caps: &Capabilities) -> (AudioSession, AudioSession) {
    let keys = [[1; KEY_LEN], [2; KEY_LEN]];
    let offer = offer(phone_caps, &local(PHONE, 1), &keys);
    let parsed = SessionDescription::parse(&offer.to_string()).unwrap();
    let (ans, gw) = answer(
        &parsed,
        &Capabilities::default(),
        &local(GATEWAY, 2),
        [3; KEY_LEN],
    )
    .unwrap();
    let parsed = SessionDescription::parse(&ans.to_string()).unwrap();
    let phone = accept_answer(&offer, &parsed, phone_caps, &keys).unwrap();
    (phone, gw)
}

struct Run {
    phone_heard: Vec<i16>,
    gateway_digits: Vec<(char, DigitSource)>,
    rate: u32,
}

/// The phone and the echo user with the network between them; packets take 20 ms.
struct Pair {
    t0: Instant,
    phone: PhoneAudio,
    gw: PhoneAudio,
    in_flight: Vec<(Instant, bool, Vec<u8>)>,
    tick: u64,
    digits: Vec<(char, DigitSource)>,
}

impl Pair {
    fn new(phone_caps: &Capabilities) -> Self {
        let (p_neg, g_neg) = negotiate(phone_caps);
        let t0 = Instant::now();
        Pair {
            t0,
            phone: PhoneAudio::new(
                t0,
                &p_neg,
                StreamIds {
                    ssrc: 11,
                    seq: 100,
                    ts: 5000,
                },
                "phone",
                None,
            ),
            gw: PhoneAudio::new(
                t0,
                &g_neg,
                StreamIds {
                    ssrc: 22,
                    seq: 200,
                    ts: 9000,
                },
                "gw",
                Some(Duration::from_secs(5)),
            ),
            in_flight: Vec::new(),
            tick: 0,
            digits: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        self.t0 + Duration::from_millis(20 * self.tick)
    }

    /// One 20 ms tick: the phone plays `pcm`, the echo user plays back what it hears, and
    /// what the phone hears is appended to `heard`.
    fn step(&mut self, pcm: &[i16], heard: &mut Vec<i16>) {
        let now = self.now();
        self.in_flight.sort_by_key(|(t, _, _)| *t);
        while self.in_flight.first().is_some_and(|(t, _, _)| *t <= now) {
            let (t, to_gw, bytes) = self.in_flight.remove(0);
            if to_gw {
                self.gw.handle_rtp(t, 0, addr(PHONE), bytes);
            } else {
                self.phone.handle_rtp(t, 0, addr(GATEWAY), bytes);
            }
        }
        self.phone.push(pcm);
        let mut echo = Vec::new();
        self.gw.pull(now, &mut echo);
        self.gw.push(&echo);
        self.phone.pull(now, heard);
        for (p, to_gw) in [(&mut self.phone, true), (&mut self.gw, false)] {
            while let Some(t) = p.poll_transmit() {
                if !t.rtcp_socket {
                    assert_eq!(t.to, addr(if to_gw { GATEWAY } else { PHONE }));
                    self.in_flight
                        .push((now + Duration::from_millis(20), to_gw, t.bytes));
                }
            }
        }
        while let Some(e) = self.gw.poll_event() {
            if let PhoneEvent::Digit { digit, source } = e {
                self.digits.push((digit, source));
            }
        }
        self.tick += 1;
    }
}

/// The phone plays `input(frame_index)`; the gateway echoes what it hears.
fn run(
    phone_caps: &Capabilities,
    seconds: u32,
    mut input: impl FnMut(usize, u32, &mut Vec<i16>),
    digits: Option<&str>,
) -> Run {
    let mut pair = Pair::new(phone_caps);
    if let Some(d) = digits {
        pair.phone.send_digits(d).unwrap();
    }
    let rate = pair.phone.sample_rate();
    let mut heard = Vec::new();
    for i in 0..(seconds * 50) as usize {
        let mut pcm = Vec::new();
        input(i, rate, &mut pcm);
        pair.step(&pcm, &mut heard);
    }
    Run {
        phone_heard: heard,
        gateway_digits: pair.digits,
        rate,
    }
}

fn tone_share(pcm: &[i16], rate: u32, f: f64) -> f64 {
    let windows: Vec<bool> = pcm
        .chunks((rate / 50) as usize)
        .map(|w| {
            let w: Vec<f32> = w.iter().map(|&s| s as f32).collect();
            let p = power(&w, rate as f64, f);
            p > 4e6 && p > 0.5 * mean_power(&w)
        })
        .collect();
    windows.iter().filter(|x| **x).count() as f64 / windows.len() as f64
}

fn tone_input(f: f64) -> impl FnMut(usize, u32, &mut Vec<i16>) {
    let mut tone = None;
    move |_, rate, out| {
        tone.get_or_insert_with(|| Tone::sine(rate, f, 8000.0))
            .fill((rate / 50) as usize, out);
    }
}

#[test]
fn the_echo_user_returns_the_tone_in_every_codec() {
    for codec in [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus] {
        let caps = Capabilities {
            codecs: vec![codec],
            srtp: SrtpPolicy::Off,
            ..Capabilities::default()
        };
        let r = run(&caps, 3, tone_input(700.0), None);
        let share = tone_share(&r.phone_heard, r.rate, 700.0);
        // After the round trip's start-up (under 0.2 s), the tone is heard throughout.
        assert!(
            share > 0.9,
            "{codec:?}: tone in {:.0} % of frames",
            share * 100.0
        );
    }
}

#[test]
fn the_echo_works_over_srtp() {
    let caps = Capabilities {
        codecs: vec![Codec::Pcma],
        srtp: SrtpPolicy::Require,
        ..Capabilities::default()
    };
    let r = run(&caps, 3, tone_input(500.0), None);
    assert!(tone_share(&r.phone_heard, r.rate, 500.0) > 0.9);
}

#[test]
fn rfc4733_digits_reach_the_gateway_once_each() {
    let caps = Capabilities {
        codecs: vec![Codec::Pcmu],
        srtp: SrtpPolicy::Off,
        ..Capabilities::default()
    };
    let r = run(&caps, 4, tone_input(300.0), Some("482913#"));
    let digits: String = r.gateway_digits.iter().map(|(d, _)| *d).collect();
    assert_eq!(digits, "482913#");
    assert!(r
        .gateway_digits
        .iter()
        .all(|(_, s)| *s == DigitSource::Rfc4733));
}

#[test]
fn in_band_digits_are_detected_in_every_codec() {
    for codec in [Codec::Pcma, Codec::G722, Codec::Opus] {
        let caps = Capabilities {
            codecs: vec![codec],
            srtp: SrtpPolicy::Off,
            ..Capabilities::default()
        };
        // 100 ms per key, 100 ms apart, starting at 0.5 s.
        let keys: Vec<char> = "159#".chars().collect();
        let mut tones: Vec<Option<Tone>> = Vec::new();
        let input = |i: usize, rate: u32, out: &mut Vec<i16>| {
            let n = (rate / 50) as usize;
            let slot = i.checked_sub(25).map(|k| (k / 5, k % 5));
            match slot {
                Some((key, phase)) if key < keys.len() && phase < 3 => {
                    if tones.len() <= key {
                        tones.push(Tone::dtmf(rate, keys[key], 6000.0));
                    }
                    tones[key].as_mut().unwrap().fill(n, out);
                }
                _ => out.extend(std::iter::repeat_n(0, n)),
            }
        };
        let r = run(&caps, 3, input, None);
        let digits: String = r.gateway_digits.iter().map(|(d, _)| *d).collect();
        assert_eq!(digits, "159#", "{codec:?}");
        assert!(r
            .gateway_digits
            .iter()
            .all(|(_, s)| *s == DigitSource::InBand));
    }
}

#[test]
fn hold_and_resume_stop_and_restart_what_the_phone_hears() {
    let caps = Capabilities {
        codecs: vec![Codec::Pcmu],
        srtp: SrtpPolicy::Off,
        ..Capabilities::default()
    };
    let mut pair = Pair::new(&caps);
    let mut tone = Tone::sine(8000, 700.0, 8000.0);
    let mut heard = Vec::new();
    // The phone re-offers with `direction`; the gateway answers; both apply the outcome.
    let renegotiate = |pair: &mut Pair, direction: Direction, version: u64| {
        let keys = [[1; KEY_LEN], [2; KEY_LEN]];
        let mut l = local(PHONE, 1);
        l.direction = direction;
        l.version = version;
        let offer = offer(&caps, &l, &keys);
        let mut g = local(GATEWAY, 2);
        g.version = version;
        let (ans, gw_neg) = answer(&offer, &Capabilities::default(), &g, [3; KEY_LEN]).unwrap();
        assert_eq!(gw_neg.direction, direction.reversed());
        let phone_neg = accept_answer(&offer, &ans, &caps, &keys).unwrap();
        let now = pair.now();
        pair.gw.update(now, &gw_neg);
        pair.phone.update(now, &phone_neg);
    };
    for i in 0..150 {
        if i == 50 {
            // Hold: the phone only sends (music on hold); the echo user must stop sending.
            renegotiate(&mut pair, Direction::SendOnly, 2);
        }
        if i == 100 {
            renegotiate(&mut pair, Direction::SendRecv, 3);
        }
        let mut pcm = Vec::new();
        tone.fill(160, &mut pcm);
        pair.step(&pcm, &mut heard);
    }
    let share = |from: usize, to: usize| tone_share(&heard[from * 160..to * 160], 8000, 700.0);
    assert!(share(15, 50) > 0.9, "before hold: {:.2}", share(15, 50));
    assert!(
        share(60, 100) < 0.05,
        "on hold the echo must stop: {:.2}",
        share(60, 100)
    );
    assert!(
        share(115, 150) > 0.9,
        "after resume: {:.2}",
        share(115, 150)
    );
    // On hold the gateway still received the phone's audio: no media timeout.
    assert!(std::iter::from_fn(|| pair.gw.poll_event()).all(|e| e != PhoneEvent::MediaTimeout));
}

fn caps(codec: Codec) -> Capabilities {
    Capabilities {
        codecs: vec![codec],
        srtp: SrtpPolicy::Off,
        ..Capabilities::default()
    }
}

#[test]
fn an_opus_phone_passes_through_in_order_once_with_its_holes() {
    let mut pair = Pair::new(&caps(Codec::Opus));
    assert!(pair.gw.set_pass_through(true));
    let mut input = tone_input(700.0);
    let (mut sent, mut passed, mut heard) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..100 {
        let mut pcm = Vec::new();
        input(i, pair.phone.sample_rate(), &mut pcm);
        let arrives = pair.now() + Duration::from_millis(20);
        pair.step(&pcm, &mut heard);
        // The packet the phone just sent (plain RTP: a 12-byte header).
        let new: Vec<usize> = (0..pair.in_flight.len())
            .filter(|&k| pair.in_flight[k].1 && pair.in_flight[k].0 == arrives)
            .collect();
        for &k in &new {
            sent.push(pair.in_flight[k].2[12..].to_vec());
        }
        let k = *new.last().expect("the phone sends every 20 ms");
        match i {
            20 => {
                pair.in_flight.remove(k);
                sent.pop();
            }
            30 => {
                let copy = pair.in_flight[k].clone();
                pair.in_flight.push(copy);
            }
            // Overtaken by the next packet: past its turn on this clean path (one packet of
            // buffering), so dropped as late.
            40 => pair.in_flight[k].0 += Duration::from_millis(25),
            _ => {}
        }
        while let Some(p) = pair.gw.poll_passed() {
            passed.push(p);
        }
    }
    assert!(passed.len() > 90, "{} packets passed", passed.len());
    // Each passed packet is the one sent at its place (compared by index, to keep a failure
    // readable).
    let order: Vec<Option<usize>> = passed
        .iter()
        .map(|p| sent.iter().position(|s| *s == p.payload))
        .collect();
    let late = 39; // the packet of tick 40, after the lost one
    let expected: Vec<Option<usize>> = (0..=passed.len())
        .filter(|i| *i != late)
        .map(Some)
        .collect();
    assert_eq!(order, expected, "every packet as sent, in order, once");
    assert!(passed.iter().all(|p| p.duration == 960));
    let gaps: Vec<(usize, u32)> = passed
        .iter()
        .enumerate()
        .filter(|(_, p)| p.gap > 0)
        .map(|(i, p)| (i, p.gap))
        .collect();
    assert_eq!(
        gaps,
        vec![(20, 960), (late, 960)],
        "a 20 ms hole where a packet was lost, and where one came too late"
    );
    assert_eq!(pair.gw.stats().jitter.late, 1);
    // Nothing was decoded meanwhile: the echo played silence back.
    assert!(tone_share(&heard, 48_000, 700.0) < 0.05);

    // Passing stops: the phone's audio is decoded again.
    assert!(!pair.gw.set_pass_through(false));
    heard.clear();
    for i in 0..25 {
        let mut pcm = Vec::new();
        input(i, pair.phone.sample_rate(), &mut pcm);
        pair.step(&pcm, &mut heard);
    }
    assert!(pair.gw.poll_passed().is_none());
    assert!(tone_share(&heard[heard.len() / 2..], 48_000, 700.0) > 0.9);
}

#[test]
fn only_an_opus_phone_passes_through() {
    for codec in [Codec::Pcmu, Codec::Pcma, Codec::G722] {
        let mut pair = Pair::new(&caps(codec));
        assert!(!pair.gw.set_pass_through(true), "{codec:?}");
    }
}
