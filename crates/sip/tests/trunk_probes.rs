//! Probing a trunk with OPTIONS: any final answer is "up" with its round trip, silence is
//! "down" once the transaction gives up, and the next probe follows each outcome by the
//! interval.

mod common;

use std::time::Duration;

use common::*;
use phonebridge_sip::endpoint::{PingHandle, Probe};
use phonebridge_sip::{Event, Uri};

fn start(h: &mut Harness, interval: u64) -> PingHandle {
    let ping = h.ep.keep_pinging(
        h.now,
        Probe {
            target: Uri::parse("sip:trunk.example.com").unwrap(),
            from: Uri::parse("sip:+15550100@trunk.example.com").unwrap(),
            peer: h.peer.clone(),
            interval: Duration::from_secs(interval),
        },
    );
    h.drain();
    ping
}

fn options_times(h: &Harness) -> Vec<f64> {
    h.sent_starting("OPTIONS ")
        .iter()
        .map(|(t, _)| *t)
        .collect()
}

#[test]
fn any_final_answer_is_up_and_the_next_probe_follows_by_the_interval() {
    let mut h = Harness::udp();
    let ping = start(&mut h, 60);
    let first = h.sent_starting("OPTIONS ").pop().unwrap().1;
    assert!(
        first.starts_with("OPTIONS sip:trunk.example.com SIP/2.0"),
        "{first}"
    );
    assert_eq!(header(&first, "CSeq"), Some("1 OPTIONS"));
    assert!(header(&first, "From").unwrap().contains(";tag="));
    h.run_until(0.25);
    // A 100 is no outcome; the 404 (an OPTIONS to a domain it does not serve) is: the peer
    // answered.
    h.recv(&reply(&first, 100, None, "", ""));
    assert_eq!(h.take_events(), []);
    h.run_until(0.5);
    h.recv(&reply(&first, 404, Some("t1"), "", ""));
    assert_eq!(
        h.take_events(),
        [Event::PingAnswered {
            ping,
            status: 404,
            rtt: Duration::from_millis(500),
        }]
    );
    h.run_until(160.0);
    // The retransmissions of the first OPTIONS stopped at its answer; the next probe went
    // out 60 s after it, and (unanswered) the one after 60 s after its failure at 32 s.
    let probes: Vec<f64> = options_times(&h)
        .into_iter()
        .filter(|t| *t == 0.0 || *t >= 1.0)
        .collect();
    assert_eq!(&probes[..2], [0.0, 60.5]);
    let second = h
        .sent_starting("OPTIONS ")
        .into_iter()
        .find(|(t, _)| *t == 60.5)
        .unwrap()
        .1;
    assert_eq!(header(&second, "CSeq"), Some("2 OPTIONS"));
    assert_eq!(
        h.take_events(),
        [Event::PingUnanswered { ping }],
        "the second probe went unanswered"
    );
    assert!(options_times(&h).contains(&(60.5 + 32.0 + 60.0)));
}

#[test]
fn a_stopped_probe_sends_nothing_more() {
    let mut h = Harness::udp();
    let ping = start(&mut h, 10);
    let first = h.sent_starting("OPTIONS ").pop().unwrap().1;
    h.recv(&reply(&first, 200, Some("t1"), "", ""));
    h.ep.stop_pinging(ping);
    h.run_until(100.0);
    assert_eq!(options_times(&h), [0.0]);
}
