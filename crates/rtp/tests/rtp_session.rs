//! One leg's transport: symmetric RTP behind NAT, early media then answer with the same or
//! another address, SRTP, RTCP round trip, and the media timeout paused on hold.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use phonebridge_rtp::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config(remote: &str) -> TransportConfig {
    let r = addr(remote);
    TransportConfig {
        remote_rtp: Some(r),
        remote_rtcp: Some(SocketAddr::new(r.ip(), r.port() + 1)),
        rtcp_mux: false,
        send: true,
        receive: true,
        srtp: None,
        media_timeout: Some(Duration::from_secs(10)),
        clock: 8000,
    }
}

fn packet(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut b = Vec::new();
    RtpPacket {
        marker: false,
        pt: 8,
        seq,
        ts: seq as u32 * 160,
        ssrc,
        payload: &[0xd5; 160],
    }
    .write(&mut b);
    b
}

fn ntp(t0: Instant, now: Instant) -> u64 {
    let d = now.duration_since(t0);
    (3_900_000_000u64 << 32) + ((d.as_nanos() << 32) / 1_000_000_000) as u64
}

fn drain(s: &mut RtpSession) -> Vec<Transmit> {
    std::iter::from_fn(|| s.poll_transmit()).collect()
}

#[test]
fn media_follows_the_source_behind_nat() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(t0, 1, 100, 5000, "pb", config("10.0.0.5:4000"));
    s.send(8, true, 0, &[0xd5; 160]);
    assert_eq!(
        drain(&mut s)[0].to,
        addr("10.0.0.5:4000"),
        "SDP address before any packet"
    );
    let nat = addr("203.0.113.9:61000");
    assert!(s.handle_rtp(t0, 0, nat, &mut packet(7, 1)).is_some());
    s.send(8, false, 160, &[0xd5; 160]);
    assert_eq!(drain(&mut s)[0].to, nat);
    // Another source is refused while the latched one is alive, taken after it went quiet.
    let other = addr("198.51.100.1:5000");
    let t1 = t0 + Duration::from_millis(500);
    assert!(s.handle_rtp(t1, 0, other, &mut packet(8, 1)).is_none());
    let t2 = t0 + Duration::from_millis(1600);
    assert!(s.handle_rtp(t2, 0, other, &mut packet(8, 2)).is_some());
    assert_eq!(s.destination(), Some(other));
    assert_eq!(s.stats().ignored_source, 1);
}

#[test]
fn answer_with_the_same_sdp_keeps_the_stream() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(t0, 1, 100, 5000, "pb", config("10.0.0.5:4000"));
    let src = addr("10.0.0.5:4000");
    assert!(s.handle_rtp(t0, 0, src, &mut packet(7, 1)).is_some());
    s.update(t0, config("10.0.0.5:4000"));
    assert!(s.handle_rtp(t0, 0, src, &mut packet(7, 2)).is_some());
    assert_eq!(s.stats().ignored_source, 0);
}

#[test]
fn answer_with_another_sdp_switches_and_ignores_the_early_media_source() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(t0, 1, 100, 5000, "pb", config("10.0.0.5:4000"));
    let early = addr("10.0.0.5:4000");
    assert!(s.handle_rtp(t0, 0, early, &mut packet(7, 1)).is_some());
    s.update(t0, config("10.0.0.9:6000"));
    s.send(8, false, 0, &[0xd5; 160]);
    assert_eq!(drain(&mut s)[0].to, addr("10.0.0.9:6000"));
    // Late early-media packets, even seconds later, never come back.
    let later = t0 + Duration::from_secs(3);
    assert!(s.handle_rtp(later, 0, early, &mut packet(7, 2)).is_none());
    assert!(s
        .handle_rtp(later, 0, addr("10.0.0.9:6000"), &mut packet(9, 1))
        .is_some());
    assert_eq!(s.stats().ignored_source, 1);
}

#[test]
fn srtp_both_ways_and_forged_packets_are_not_latched() {
    let t0 = Instant::now();
    let (ka, kb) = ([1u8; 30], [2u8; 30]);
    let setup = |local, remote| SrtpSetup {
        profile: SrtpProfile::AesCm128HmacSha1_80,
        local,
        remote,
    };
    let mut a = RtpSession::new(
        t0,
        1,
        10,
        0,
        "a",
        TransportConfig {
            srtp: Some(setup(ka, kb)),
            ..config("10.0.0.2:2000")
        },
    );
    let mut b = RtpSession::new(
        t0,
        2,
        20,
        0,
        "b",
        TransportConfig {
            srtp: Some(setup(kb, ka)),
            ..config("10.0.0.1:1000")
        },
    );
    a.send(8, true, 0, &[0x11; 160]);
    let mut wire = drain(&mut a).remove(0).bytes;
    assert_eq!(wire.len(), 12 + 160 + 10);
    let p = b
        .handle_rtp(t0, 0, addr("10.0.0.1:1000"), &mut wire)
        .unwrap();
    assert_eq!(p.payload, &[0x11; 160]);
    // A forged plain packet from elsewhere is dropped and does not move the latch.
    assert!(b
        .handle_rtp(
            t0 + Duration::from_secs(2),
            0,
            addr("192.0.2.66:9"),
            &mut packet(1, 2)
        )
        .is_none());
    assert_eq!(b.stats().srtp_failures, 1);
    assert_eq!(b.destination(), Some(addr("10.0.0.1:1000")));
}

#[test]
fn rtcp_reports_give_round_trip_time() {
    let t0 = Instant::now();
    let mut a = RtpSession::new(t0, 1, 10, 0, "a", config("10.0.0.2:2000"));
    let mut b = RtpSession::new(t0, 2, 20, 0, "b", config("10.0.0.1:1000"));
    let one_way = Duration::from_millis(40);
    let mut now = t0;
    let mut seq = 0u16;
    while now < t0 + Duration::from_secs(30) {
        // 20 ms of audio both ways.
        a.send(8, false, seq as u64 * 160, &[0; 160]);
        b.send(8, false, seq as u64 * 160, &[0; 160]);
        seq += 1;
        now += Duration::from_millis(20);
        a.handle_timeout(now, ntp(t0, now));
        b.handle_timeout(now, ntp(t0, now));
        let at = now + one_way;
        for t in drain(&mut a) {
            let mut bytes = t.bytes;
            let from = addr(if t.rtcp_socket {
                "10.0.0.1:1001"
            } else {
                "10.0.0.1:1000"
            });
            if t.rtcp_socket {
                assert_eq!(t.to, addr("10.0.0.2:2001"));
                b.handle_rtcp(at, ntp(t0, at), from, &mut bytes);
            } else {
                let _ = b.handle_rtp(at, ntp(t0, at), from, &mut bytes);
            }
        }
        for t in drain(&mut b) {
            let mut bytes = t.bytes;
            let from = addr(if t.rtcp_socket {
                "10.0.0.2:2001"
            } else {
                "10.0.0.2:2000"
            });
            if t.rtcp_socket {
                a.handle_rtcp(at, ntp(t0, at), from, &mut bytes);
            } else {
                let _ = a.handle_rtp(at, ntp(t0, at), from, &mut bytes);
            }
        }
    }
    let rtt = a.stats().rtt_ms.expect("round trip measured");
    assert!((rtt - 80.0).abs() < 2.0, "rtt {rtt:.1} ms");
    assert!(a.stats().rtcp_sent >= 4 && b.stats().rtcp_received >= 4);
    assert_eq!(a.stats().remote_loss_pct, 0.0);
}

#[test]
fn media_timeout_fires_and_is_paused_on_hold() {
    let t0 = Instant::now();
    let mut s = RtpSession::new(t0, 1, 10, 0, "a", config("10.0.0.2:2000"));
    let src = addr("10.0.0.2:2000");
    let _ = s.handle_rtp(t0, 0, src, &mut packet(3, 1));
    // On hold from 5 s to 60 s: no timeout though nothing arrives.
    let hold = t0 + Duration::from_secs(5);
    s.update(
        hold,
        TransportConfig {
            receive: false,
            ..config("10.0.0.2:2000")
        },
    );
    let mut now = hold;
    while now < t0 + Duration::from_secs(60) {
        now += Duration::from_secs(1);
        s.handle_timeout(now, 0);
        assert_eq!(s.poll_event(), None, "no timeout on hold at {:?}", now - t0);
    }
    s.update(now, config("10.0.0.2:2000"));
    let resumed = now;
    let mut fired = None;
    while now < resumed + Duration::from_secs(20) {
        now += Duration::from_millis(500);
        s.handle_timeout(now, 0);
        if s.poll_event() == Some(SessionEvent::MediaTimeout) {
            fired = Some(now - resumed);
            break;
        }
    }
    assert_eq!(fired, Some(Duration::from_secs(10)));
}

#[test]
fn bye_only_from_a_member_that_sent_something() {
    // RFC 3550 §6.3.7: a member that never sent RTP or RTCP sends no BYE when it leaves.
    let t0 = Instant::now();
    let mut silent = RtpSession::new(t0, 1, 100, 5000, "pb", config("10.0.0.5:4000"));
    silent.close(t0, ntp(t0, t0));
    assert!(drain(&mut silent).is_empty(), "nothing sent, no BYE");

    let mut talker = RtpSession::new(t0, 2, 100, 5000, "pb", config("10.0.0.5:4000"));
    talker.send(8, true, 0, &[0xd5; 160]);
    drain(&mut talker);
    talker.close(t0, ntp(t0, t0));
    let out = drain(&mut talker);
    assert_eq!(out.len(), 1);
    assert!(out[0].rtcp_socket);
    assert_eq!(out[0].to, addr("10.0.0.5:4001"));
    // The compound packet ends with the BYE (packet type 203).
    assert!(
        out[0]
            .bytes
            .windows(2)
            .any(|w| w[0] & 0xc0 == 0x80 && w[1] == 203),
        "{:?}",
        out[0].bytes
    );
}
