//! The loss a phone's subscribers see: a str0m subscriber receives a local publisher's audio
//! through the SFU over a channel that loses a share of the packets, in virtual time, and its
//! receiver reports come back as the figure that sizes the phone's Opus FEC.
#![allow(clippy::disallowed_methods)] // an arbitrary origin for the peer connections' time

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use phonebridge_rooms::rpc::MediaHandler;
use phonebridge_rooms::sfu::Sfu;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

const SFU: &str = "127.0.0.1:50000";
const CLIENT: &str = "127.0.0.1:50001";
const PHONE: &str = "phone";
const STREAM: &str = "str_MIC_abcd_phone";

/// An SFU with the local publisher `phone`, and a browser-like peer subscribed to it.
fn subscribed(start: Instant) -> (Sfu, Rtc) {
    let sfu_addr: SocketAddr = SFU.parse().unwrap();
    let mut sfu = Sfu::new(start, vec![(sfu_addr, sfu_addr)]);
    sfu.add_local_publisher(PHONE);
    let mut client = Rtc::builder().build(start);
    client.add_local_candidate(Candidate::host(CLIENT.parse().unwrap(), "udp").unwrap());
    let mut api = client.sdp_api();
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().expect("an offer");
    let answer = sfu
        .subscribe("session", "viewer", STREAM, &offer.to_sdp_string())
        .expect("the SFU answers");
    client
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .expect("the answer is accepted");
    (sfu, client)
}

/// Runs both sides for `secs` of virtual time, the phone sending a packet every 20 ms; the
/// channel from the SFU to the subscriber drops one RTP packet in `drop_every` (0: none). Returns the packets the subscriber got.
fn run(sfu: &mut Sfu, client: &mut Rtc, start: Instant, secs: u64, drop_every: usize) -> usize {
    let (sfu_addr, client_addr): (SocketAddr, SocketAddr) =
        (SFU.parse().unwrap(), CLIENT.parse().unwrap());
    let mut now = start;
    let (mut sent_media, mut forwarded, mut received) = (0u32, 0usize, 0usize);
    let mut next_packet = start;
    let end = start + Duration::from_secs(secs);
    while now < end {
        if now >= next_packet {
            sent_media += 1;
            sfu.write_local_audio(now, PHONE, sent_media * 960, &[0xf8, 0xff, 0xfe]);
            next_packet += Duration::from_millis(20);
        }
        sfu.handle_timeout(now);
        while let Some(d) = sfu.poll_datagram() {
            // RTP (version 2, not an RTCP packet type) is lost at the given rate; the
            // handshake and RTCP are not.
            let rtp = (128..192).contains(&d.bytes[0]) && !(192..224).contains(&d.bytes[1]);
            if rtp {
                forwarded += 1;
                if drop_every > 0 && forwarded % drop_every == 0 {
                    continue;
                }
            }
            let r = Receive::new(Protocol::Udp, sfu_addr, client_addr, &d.bytes).unwrap();
            client.handle_input(Input::Receive(now, r)).unwrap();
        }
        client.handle_input(Input::Timeout(now)).unwrap();
        loop {
            match client.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => sfu.handle_datagram(now, sfu_addr, client_addr, &t.contents),
                Output::Event(Event::MediaData(_)) => received += 1,
                Output::Event(_) => {}
            }
        }
        now += Duration::from_millis(5);
    }
    received
}

#[test]
fn subscribers_loss_reaches_the_phone_and_fades_when_the_path_clears() {
    let start = Instant::now();
    let (mut sfu, mut client) = subscribed(start);
    assert_eq!(sfu.local_loss_percent(PHONE), 0, "no reports yet");

    // A clean path: media arrives, the reported loss stays at zero.
    let got = run(&mut sfu, &mut client, start, 6, 0);
    assert!(got > 200, "the subscriber hears the phone ({got} packets)");
    assert_eq!(sfu.local_loss_percent(PHONE), 0);

    // One packet in ten lost: the figure rises to about 10 %.
    let t = start + Duration::from_secs(6);
    run(&mut sfu, &mut client, t, 8, 10);
    let lossy = sfu.local_loss_percent(PHONE);
    assert!((6..=15).contains(&lossy), "reported loss {lossy} %");

    // The path clears: the figure holds until the next report, then decays to zero.
    let t = start + Duration::from_secs(14);
    run(&mut sfu, &mut client, t, 2, 0);
    assert_eq!(sfu.local_loss_percent(PHONE), lossy, "held between reports");
    let t = start + Duration::from_secs(16);
    run(&mut sfu, &mut client, t, 30, 0);
    let after = sfu.local_loss_percent(PHONE);
    assert!(after <= 1, "loss held at {after} % after 30 clean seconds");
}

#[test]
fn a_publisher_without_subscribers_reports_no_loss() {
    let sfu_addr: SocketAddr = SFU.parse().unwrap();
    let mut sfu = Sfu::new(Instant::now(), vec![(sfu_addr, sfu_addr)]);
    sfu.add_local_publisher(PHONE);
    assert_eq!(sfu.local_loss_percent(PHONE), 0);
    assert_eq!(sfu.local_loss_percent("nobody"), 0);
}
