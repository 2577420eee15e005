//! SFU forwarding benchmark client (not a test; run through `bench/sfu_forward.py`).
//!
//! One publisher sends audio (50 packets/s of 100 bytes) and video (30 frames/s of five
//! 1,100-byte packets, about 1.3 Mbit/s) to a phonebridge session; N subscribers receive it
//! through the SFU. Every payload starts with its send time, so each subscriber measures the
//! one-way delay. With `direct`, one client sends straight to another (no SFU) over the same
//! client stack: the reference the added forwarding delay is taken against.
//!
//! Usage: sfu_bench <http://host:port> <secret> <subscribers> <seconds>
//!        sfu_bench direct <seconds>
//! Prints one JSON line: packets received, delay percentiles (µs), seconds measured.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;
use str0m::media::{Direction, Mid};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Rtc};

#[path = "common/webrtc.rs"]
mod webrtc;
use webrtc::{connect_until, http, Client, Signal};

/// Sends the publisher's schedule for `seconds` while driving everyone; returns delays (µs).
fn run(
    start: Instant,
    publisher: &mut Client,
    a: Mid,
    v: Mid,
    subscribers: &mut [Client],
    seconds: f64,
) -> (Vec<u64>, f64) {
    let mut video = 0u64;
    let mut got = Vec::new();
    let mut delays = Vec::new();
    let mut seq_a = 0u64;
    let mut seq_v = 0u64;
    let (mut next_a, mut next_v) = (Instant::now(), Instant::now());
    let warmup = Instant::now() + Duration::from_secs(2);
    let end = warmup + Duration::from_secs_f64(seconds);
    let payload = |size: usize| {
        let mut p = vec![0u8; size];
        p[..8].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_be_bytes());
        p
    };
    let pt_of =
        |rtc: &mut Rtc, mid: Mid| rtc.media(mid).and_then(|m| m.remote_pts().first().copied());
    let (pt_a, pt_v) = (pt_of(&mut publisher.rtc, a), pt_of(&mut publisher.rtc, v));
    while Instant::now() < end {
        let now = Instant::now();
        if publisher.rtc.is_connected() {
            if now >= next_a {
                if let (Some(pt), Some(tx)) =
                    (pt_a, publisher.rtc.direct_api().stream_tx_by_mid(a, None))
                {
                    tx.write_rtp(RtpWrite::new(
                        pt,
                        seq_a.into(),
                        (seq_a * 960) as u32,
                        now,
                        payload(100),
                    ));
                }
                seq_a += 1;
                next_a += Duration::from_millis(20);
            }
            if now >= next_v {
                for i in 0..5 {
                    if let (Some(pt), Some(tx)) =
                        (pt_v, publisher.rtc.direct_api().stream_tx_by_mid(v, None))
                    {
                        tx.write_rtp(
                            RtpWrite::new(
                                pt,
                                seq_v.into(),
                                ((seq_v / 5) * 3000) as u32,
                                now,
                                payload(1100),
                            )
                            .marker(i == 4)
                            .nackable(true),
                        );
                    }
                    seq_v += 1;
                }
                next_v += Duration::from_micros(33_333);
            }
        }
        publisher.drive(now, &mut got);
        for s in subscribers.iter_mut() {
            got.clear();
            s.drive(now, &mut got);
            if now >= warmup {
                for (at, p) in &got {
                    if p.len() >= 1000 {
                        video += 1;
                    }
                    if p.len() >= 8 {
                        let sent = u64::from_be_bytes(p[..8].try_into().unwrap());
                        let arrived = at.duration_since(start).as_nanos() as u64;
                        delays.push(arrived.saturating_sub(sent) / 1000);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    eprintln!("video packets {video}, all {}", delays.len());
    (delays, seconds)
}

fn report(mut delays: Vec<u64>, seconds: f64) {
    delays.sort_unstable();
    let pct = |q: f64| {
        delays
            .get(((delays.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{}",
        json!({"packets": delays.len(), "p50_us": pct(0.5), "p90_us": pct(0.9), "p99_us": pct(0.99), "seconds": seconds})
    );
}

fn main() {
    str0m::crypto::from_feature_flags().install_process_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let start = Instant::now();
    if args[0] == "direct" {
        let seconds: f64 = args[1].parse().unwrap();
        let mut publisher = Client::new(start);
        let mut receiver = Client::new(start);
        let (offer, pending, a, v) = publisher.offer(Direction::SendOnly);
        let answer = receiver.rtc.sdp_api().accept_offer(offer).unwrap();
        publisher.accept(pending, &answer.to_sdp_string());
        publisher
            .rtc
            .add_remote_candidate(Candidate::host(receiver.local, "udp").unwrap());
        receiver
            .rtc
            .add_remote_candidate(Candidate::host(publisher.local, "udp").unwrap());
        connect_until(&mut [&mut publisher, &mut receiver], "the direct pair");
        let (d, s) = run(
            start,
            &mut publisher,
            a,
            v,
            std::slice::from_mut(&mut receiver),
            seconds,
        );
        report(d, s);
        return;
    }
    let (base, secret) = (&args[0], &args[1]);
    let n: usize = args[2].parse().unwrap();
    let seconds: f64 = args[3].parse().unwrap();
    let session = format!("bench{n}");
    http(
        base,
        secret,
        "POST",
        "/openvidu/api/sessions",
        &json!({"customSessionId": session}),
    );
    let mut pub_sig = Signal::join(base, secret, &session, "PUBLISHER", 5000);
    let mut publisher = Client::new(start);
    let (offer, pending, a, v) = publisher.offer(Direction::SendOnly);
    let r = pub_sig.call("publishVideo", json!({"sdpOffer": offer.to_sdp_string(), "doLoopback": false, "hasAudio": true, "hasVideo": true, "audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": "{\"width\":640,\"height\":480}"}));
    publisher.accept(pending, r["sdpAnswer"].as_str().unwrap());
    let stream = r["id"].as_str().unwrap().to_owned();
    let mut subs = Vec::new();
    let mut sigs = Vec::new();
    for _ in 0..n {
        let mut sig = Signal::join(base, secret, &session, "SUBSCRIBER", 5000);
        let mut c = Client::new(start);
        let (offer, pending, _, _) = c.offer(Direction::RecvOnly);
        let r = sig.call(
            "receiveVideoFrom",
            json!({"sender": stream, "sdpOffer": offer.to_sdp_string()}),
        );
        c.accept(pending, r["sdpAnswer"].as_str().unwrap());
        subs.push(c);
        sigs.push(sig);
    }
    {
        let mut all: Vec<&mut Client> = std::iter::once(&mut publisher)
            .chain(subs.iter_mut())
            .collect();
        connect_until(&mut all, "the SFU clients");
    }
    println!("{}", json!({"ready": true}));
    std::io::stdout().flush().unwrap();
    let (d, s) = run(start, &mut publisher, a, v, &mut subs, seconds);
    report(d, s);
    drop(sigs);
}
