//! Bridge benchmark client (not a test; run through `bench/bridge_mix.py`).
//!
//! K sessions, each with two publishing participants (str0m peer connections sending Opus):
//! A sends a 1 kHz tone burst of 200 ms every second, B a quiet 500 Hz tone. Then one call
//! per session is placed through the REST API to a SIPp callee that echoes its RTP: the phone
//! hears the N-1 mix (A + B), sends it back, and phonebridge publishes it as the phone's
//! stream, to which A subscribes. A measures when each of its bursts comes back: the round
//! trip session → phone → session, through the mixer, the phone leg's jitter buffer and
//! codecs twice. The reference, in the same run: a subscriber of A's stream in the first
//! session, the same detection over the SFU path alone.
//!
//! Usage: bridge_bench <http://host:port> <secret> <calls> <seconds> <callee host:port>
//! Prints JSON lines: {"phase": …} at each phase boundary (the script samples CPU there),
//! then the results.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::io::Write;
use std::time::{Duration, Instant};

use phonebridge_media::{AudioDecoder, AudioEncoder, CodecKind};
use serde_json::{json, Value};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::rtp::RtpWrite;

#[path = "common/webrtc.rs"]
mod webrtc;
use webrtc::{connect_until, http, Client, Signal};

const RATE: usize = 48_000;
const FRAME: usize = 960;
/// A's burst: 1 kHz for 200 ms at the start of every second.
const BURST_HZ: f64 = 1000.0;
const BURST_FRAMES: usize = 10;
const CYCLE_FRAMES: usize = 50;

fn phase(name: &str) {
    println!("{}", json!({"phase": name}));
    std::io::stdout().flush().unwrap();
}

/// One second of Opus packets, looped: a tone of `freq` at `amplitude` for the first
/// `frames` frames (all of them when `frames` is the cycle), silence after.
fn opus_cycle(freq: f64, amplitude: f64, frames: usize) -> Vec<Vec<u8>> {
    let mut enc = AudioEncoder::new(CodecKind::Opus);
    (0..CYCLE_FRAMES)
        .map(|f| {
            let pcm: Vec<i16> = (0..FRAME)
                .map(|n| {
                    if f >= frames {
                        return 0;
                    }
                    let t = (f * FRAME + n) as f64 / RATE as f64;
                    (amplitude * 32767.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
                })
                .collect();
            let mut out = Vec::new();
            enc.encode(&pcm, &mut out);
            out
        })
        .collect()
}

/// A publisher: its peer connection, audio section and payload cycle.
struct Publisher {
    client: Client,
    mid: Mid,
    cycle: Vec<Vec<u8>>,
    seq: u64,
    _signal: Signal,
}

/// A listener of one stream: decodes it and finds A's bursts in it.
struct Listener {
    client: Client,
    decoder: AudioDecoder,
    /// The burst is on (hysteresis) and since when it was off.
    on: bool,
    pcm: Vec<i16>,
    _signal: Signal,
}

impl Listener {
    /// Feeds received payloads; returns the arrival times of burst onsets.
    fn feed(&mut self, got: &[(Instant, Vec<u8>)], onsets: &mut Vec<Instant>) {
        for (at, p) in got {
            self.pcm.clear();
            self.decoder.decode(p, &mut self.pcm);
            // 5 ms blocks: the first block where 1 kHz dominates marks the onset.
            for (i, block) in self.pcm.chunks(240).enumerate() {
                let x: Vec<f32> = block.iter().map(|s| f32::from(*s) / 32768.0).collect();
                let p = phonebridge_media::goertzel::power(&x, RATE as f64, BURST_HZ);
                let e: f64 = x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>()
                    / x.len().max(1) as f64;
                let tone = e > 1e-3 && p > 0.5 * e;
                if tone && !self.on {
                    onsets.push(*at + Duration::from_micros(5_000 * i as u64));
                }
                if tone {
                    self.on = true;
                } else if e < 1e-4 || p < 0.1 * e {
                    self.on = false;
                }
            }
        }
    }
}

/// Joins `session` as a publisher, with pings due only every minute: the clients send none
/// while they send media.
fn join(base: &str, secret: &str, session: &str) -> Signal {
    Signal::join(base, secret, session, "PUBLISHER", 60_000)
}

fn publish(base: &str, secret: &str, session: &str, cycle: Vec<Vec<u8>>) -> (Publisher, String) {
    let mut signal = join(base, secret, session);
    let mut client = Client::new(Instant::now());
    let mut api = client.rtc.sdp_api();
    let mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let r = signal.call("publishVideo", json!({"sdpOffer": offer.to_sdp_string(), "doLoopback": false, "hasAudio": true, "hasVideo": false, "audioActive": true, "videoActive": false, "typeOfVideo": "CAMERA", "frameRate": 30}));
    client.accept(pending, r["sdpAnswer"].as_str().unwrap());
    let stream = r["id"].as_str().unwrap().to_owned();
    (
        Publisher {
            client,
            mid,
            cycle,
            seq: 0,
            _signal: signal,
        },
        stream,
    )
}

fn listen(base: &str, secret: &str, session: &str, stream: &str) -> Listener {
    let mut signal = join(base, secret, session);
    let mut client = Client::new(Instant::now());
    let mut api = client.rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let r = signal.call(
        "receiveVideoFrom",
        json!({"sender": stream, "sdpOffer": offer.to_sdp_string()}),
    );
    client.accept(pending, r["sdpAnswer"].as_str().unwrap());
    Listener {
        client,
        decoder: AudioDecoder::new(CodecKind::Opus),
        on: false,
        pcm: Vec::new(),
        _signal: signal,
    }
}

/// Sends every publisher's next frame each 20 ms and drives everyone for `seconds`; returns
/// (burst send times per session, onsets per listener). The sessions send at phases spread
/// evenly over the 20 ms period, as publishers in different browsers do (each browser's
/// clock is its own); the two publishers of a session send together.
fn run(
    pubs: &mut [Publisher],
    listeners: &mut [(usize, Listener)],
    seconds: f64,
) -> (Vec<Vec<Instant>>, Vec<Vec<Instant>>) {
    let sessions = pubs.len() / 2;
    let mut bursts = vec![Vec::new(); sessions];
    let mut onsets = vec![Vec::new(); listeners.len()];
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let period = Duration::from_millis(20);
    let mut next: Vec<Instant> = (0..sessions)
        .map(|s| start + period * s as u32 / sessions.max(1) as u32)
        .collect();
    let mut got = Vec::new();
    while Instant::now() < end {
        let now = Instant::now();
        for (i, p) in pubs.iter_mut().enumerate() {
            if now < next[i / 2] {
                continue;
            }
            let frame = (p.seq % CYCLE_FRAMES as u64) as usize;
            if i % 2 == 0 && frame == 0 {
                bursts[i / 2].push(now);
            }
            let pt = p
                .client
                .rtc
                .media(p.mid)
                .and_then(|m| m.remote_pts().first().copied());
            if let (Some(pt), Some(tx)) =
                (pt, p.client.rtc.direct_api().stream_tx_by_mid(p.mid, None))
            {
                tx.write_rtp(RtpWrite::new(
                    pt,
                    p.seq.into(),
                    (p.seq * FRAME as u64) as u32,
                    now,
                    p.cycle[frame].clone(),
                ));
            }
            p.seq += 1;
            if i % 2 == 1 {
                next[i / 2] += period;
            }
        }
        for p in pubs.iter_mut() {
            got.clear();
            p.client.drive(now, &mut got);
        }
        for (k, (_, l)) in listeners.iter_mut().enumerate() {
            got.clear();
            l.client.drive(now, &mut got);
            l.feed(&got, &mut onsets[k]);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    (bursts, onsets)
}

/// Delays (ms) from each burst to the first onset after it within 500 ms.
fn delays(bursts: &[Instant], onsets: &[Instant]) -> (Vec<f64>, usize) {
    let mut out = Vec::new();
    for b in bursts {
        if let Some(o) = onsets
            .iter()
            .find(|o| **o >= *b && o.duration_since(*b) < Duration::from_millis(500))
        {
            out.push(o.duration_since(*b).as_secs_f64() * 1000.0);
        }
    }
    (out, bursts.len())
}

fn percentiles(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    let pct = |q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    json!({"n": v.len(), "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99)})
}

fn main() {
    str0m::crypto::from_feature_flags().install_process_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, secret) = (&args[0], &args[1]);
    let k: usize = args[2].parse().unwrap();
    let seconds: f64 = args[3].parse().unwrap();
    let callee = &args[4];
    let burst = opus_cycle(BURST_HZ, 0.5, BURST_FRAMES);
    let hum = opus_cycle(500.0, 0.05, CYCLE_FRAMES);
    let mut pubs = Vec::new();
    let mut a_streams = Vec::new();
    for i in 0..k {
        let session = format!("bridge{i}");
        http(
            base,
            secret,
            "POST",
            "/openvidu/api/sessions",
            &json!({"customSessionId": session}),
        );
        let (a, a_stream) = publish(base, secret, &session, burst.clone());
        let (b, _) = publish(base, secret, &session, hum.clone());
        pubs.push(a);
        pubs.push(b);
        a_streams.push(a_stream);
    }
    // The reference: A's stream in the first session, over the SFU alone.
    let mut reference = vec![(0, listen(base, secret, "bridge0", &a_streams[0]))];
    {
        let mut all: Vec<&mut Client> = pubs.iter_mut().map(|p| &mut p.client).collect();
        all.push(&mut reference[0].1.client);
        connect_until(&mut all, "the publishers");
    }
    // Publishers only: the CPU reference and the SFU delay reference.
    run(&mut pubs, &mut reference, 2.0);
    phase("reference-start");
    let (bursts, onsets) = run(&mut pubs, &mut reference, seconds);
    phase("reference-end");
    let (ref_delays, ref_bursts) = delays(&bursts[0], &onsets[0]);
    drop(reference);
    // One call per session to the echoing callee.
    let mut calls = Vec::new();
    for i in 0..k {
        let r = http(
            base,
            secret,
            "POST",
            &format!("/openvidu/api/sessions/bridge{i}/calls"),
            &json!({"to": format!("sip:echo{i}@{callee}")}),
        );
        calls.push(r["id"].as_str().expect("a call id").to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut phone_streams = vec![None; k];
    while phone_streams.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "calls not answered in time");
        // Keep the publishers' media flowing while the calls come up.
        run(&mut pubs, &mut [], 0.2);
        for (i, slot) in phone_streams.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let c = http(
                base,
                secret,
                "GET",
                &format!("/openvidu/api/calls/{}", calls[i]),
                &Value::Null,
            );
            if c["status"] == "ended" {
                panic!("call {i} ended: {c}");
            }
            if c["status"] != "answered" {
                continue;
            }
            let s = http(
                base,
                secret,
                "GET",
                &format!("/openvidu/api/sessions/bridge{i}"),
                &Value::Null,
            );
            *slot = s["connections"]["content"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "SIP"))
                .and_then(|c| c["publishers"][0]["streamId"].as_str())
                .map(str::to_owned);
        }
    }
    let mut listeners: Vec<(usize, Listener)> = phone_streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                i,
                listen(base, secret, &format!("bridge{i}"), s.as_deref().unwrap()),
            )
        })
        .collect();
    {
        let mut all: Vec<&mut Client> = pubs.iter_mut().map(|p| &mut p.client).collect();
        all.extend(listeners.iter_mut().map(|(_, l)| &mut l.client));
        connect_until(&mut all, "the listeners");
    }
    run(&mut pubs, &mut listeners, 2.0);
    phase("calls-start");
    let (bursts, onsets) = run(&mut pubs, &mut listeners, seconds);
    phase("calls-end");
    let mut rt = Vec::new();
    let (mut sent, mut heard) = (0, 0);
    // One call's round trips in order: how the delay moves over the phase.
    let mut first = Vec::new();
    for (k, (i, _)) in listeners.iter().enumerate() {
        let (d, n) = delays(&bursts[*i], &onsets[k]);
        if k == 0 {
            first = d.clone();
        }
        sent += n;
        heard += d.len();
        rt.extend(d);
    }
    for id in &calls {
        http(
            base,
            secret,
            "DELETE",
            &format!("/openvidu/api/calls/{id}"),
            &Value::Null,
        );
    }
    println!(
        "{}",
        json!({
            "calls": k,
            "reference": percentiles(ref_delays),
            "reference_bursts": ref_bursts,
            "round_trip": percentiles(rt),
            "bursts_sent": sent,
            "bursts_heard": heard,
            "first_call_round_trips": first,
        })
    );
}
