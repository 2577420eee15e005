//! What the sans-IO endpoint costs per answered call, without sockets or a runtime.
//!
//! Feeds the endpoint the messages of a SIPp `uac` call (INVITE with SDP, ACK, BYE) at a
//! virtual call rate, answers each INVITE with a 200 carrying SDP, and prints the wall time
//! per call. Transactions wait out their timers on the virtual clock, so the tables reach the
//! size they have at that rate. Run: `cargo run --release -p phonebridge-sip --example
//! endpoint_cost -- [calls] [calls-per-second]`.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use phonebridge_sip::{Endpoint, EndpointConfig, Event, Peer, TransportKind};

/// The allocator the server runs with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

const ANSWER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

fn invite(n: u64) -> String {
    format!(
        "INVITE sip:echo@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-{n}-0\r\n\
         From: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag00{n}\r\n\
         To: echo <sip:echo@127.0.0.1:5060>\r\n\
         Call-ID: {n}-4242@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: sip:sipp@127.0.0.1:5061\r\n\
         Max-Forwards: 70\r\n\
         Subject: Performance Test\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
}

fn in_dialog(n: u64, method: &str, cseq: u32, branch: u32, to_tag: &str) -> String {
    format!(
        "{method} sip:echo@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4242-{n}-{branch}\r\n\
         From: sipp <sip:sipp@127.0.0.1:5061>;tag=4242SIPpTag00{n}\r\n\
         To: echo <sip:echo@127.0.0.1:5060>;tag={to_tag}\r\n\
         Call-ID: {n}-4242@127.0.0.1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: sip:sipp@127.0.0.1:5061\r\n\
         Max-Forwards: 70\r\n\
         Subject: Performance Test\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The To tag of the last 200 sent.
fn to_tag(sent: &[u8]) -> String {
    let text = String::from_utf8_lossy(sent);
    let to = text
        .lines()
        .find(|l| l.starts_with("To:"))
        .expect("To header");
    let tag = to.split("tag=").nth(1).expect("tag");
    tag.split([';', '\r']).next().unwrap_or(tag).to_owned()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let calls: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1200);
    let mut cfg = EndpointConfig {
        max_calls: 1_000_000,
        ..EndpointConfig::default()
    };
    cfg.guard.trusted.push("127.0.0.0/8".parse().expect("net"));
    let mut ep = Endpoint::new(cfg);
    let peer = Peer {
        transport: TransportKind::Udp,
        remote: "127.0.0.1:5061".parse().expect("addr"),
        local: "127.0.0.1:5060".parse().expect("addr"),
        conn: None,
    };
    let origin = Instant::now();
    let step = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut now = origin;
    // Messages are built before the clock starts: the figure is the endpoint's alone.
    let invites: Vec<String> = (0..calls).map(invite).collect();
    let mut sent = 0usize;
    let mut last = Vec::new();
    let started = Instant::now();
    for (n, inv) in (0..calls).zip(&invites) {
        now += step;
        ep.handle_timeout(now);
        ep.handle_datagram(now, peer.clone(), inv.as_bytes());
        let mut call = None;
        while let Some(ev) = ep.poll_event() {
            if let Event::IncomingCall { call: c, .. } = ev {
                call = Some(c);
            }
        }
        let call = call.expect("incoming call");
        ep.respond(now, call, 200, Some(("application/sdp", ANSWER.to_vec())))
            .expect("answer");
        while let Some((_, bytes)) = ep.poll_transmit() {
            sent += 1;
            last = bytes;
        }
        let tag = to_tag(&last);
        let ack = in_dialog(n, "ACK", 1, 1, &tag);
        ep.handle_datagram(now, peer.clone(), ack.as_bytes());
        let bye = in_dialog(n, "BYE", 2, 2, &tag);
        ep.handle_datagram(now, peer.clone(), bye.as_bytes());
        while ep.poll_event().is_some() {}
        while ep.poll_transmit().is_some() {
            sent += 1;
        }
    }
    let spent = started.elapsed();
    println!(
        "{calls} calls at {rate}/s virtual: {:.2} us per call ({sent} messages sent, {} transactions left)",
        spent.as_secs_f64() * 1e6 / calls as f64,
        ep.active_transactions()
    );
}
