//! Bodies of the fuzz targets in `fuzz/`, compiled with the library (and exercised by its
//! tests) so they never rot. Each panics only when an invariant is broken.

use std::time::{Duration, Instant};

use crate::parse::{parse_datagram, Frame, Limits, StreamFramer};
use crate::validate::{screen, UasPolicy};

/// Parser invariants on arbitrary bytes: no panic; whatever parses prints to bytes that
/// parse to the same message and print identically (print → parse → print is stable).
pub fn parse_message(data: &[u8]) {
    let limits = Limits::default();
    if let Ok(msg) = parse_datagram(data, &limits) {
        let printed = msg.encode();
        // Printing adds Content-Length and expands compact names, so a message at a limit
        // may print a little over it: re-parse without limits.
        let unlimited = Limits {
            max_message: usize::MAX,
            max_headers: usize::MAX,
        };
        let again = parse_datagram(&printed, &unlimited).expect("a printed message parses");
        assert_eq!(again.encode(), printed, "print is stable");
        let _ = screen(Ok(msg), &UasPolicy::default());
    }
    // The same bytes as a stream, cut at an arbitrary point, frame without panicking.
    let mut framer = StreamFramer::new(limits);
    let cut = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    framer.push(&data[..cut]);
    for _ in 0..2 {
        while let Ok(Some(f)) = framer.next_frame() {
            if let Frame::Message(m) = f {
                let _ = screen(*m, &UasPolicy::default());
            }
        }
        framer.push(&data[cut..]);
    }
}

/// The whole endpoint on arbitrary datagrams: no panic, and every timer it arms fires.
pub fn endpoint(data: &[u8], origin: Instant) {
    use crate::endpoint::{Endpoint, EndpointConfig, Peer, TransportKind};
    let mut ep = Endpoint::new(EndpointConfig::default());
    let peer = Peer {
        transport: TransportKind::Udp,
        remote: "127.0.0.2:5060".parse().expect("literal address"),
        local: "127.0.0.1:5060".parse().expect("literal address"),
        conn: None,
    };
    let mut now = origin;
    for chunk in data.split(|b| *b == 0) {
        ep.handle_datagram(now, peer.clone(), chunk);
        while ep.poll_transmit().is_some() {}
        while let Some(ev) = ep.poll_event() {
            if let crate::endpoint::Event::IncomingCall { call, .. } = ev {
                let _ = ep.respond(
                    now,
                    call,
                    200,
                    Some(("application/sdp", b"v=0\r\n".to_vec())),
                );
            }
        }
        now += Duration::from_millis(100);
    }
    for _ in 0..10_000 {
        let Some(t) = ep.poll_timeout() else { break };
        now = now.max(t);
        ep.handle_timeout(now);
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
    }
    assert_eq!(ep.active_transactions(), 0, "every transaction ends");
}
