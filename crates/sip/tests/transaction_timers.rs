//! Transaction machines under virtual time: exact retransmission schedules and timeouts
//! (RFC 3261 §17, RFC 6026).

// Virtual time needs an arbitrary origin; nothing below reads the clock after that.
#![allow(clippy::disallowed_methods)]
use std::time::{Duration, Instant};

use phonebridge_sip::transaction::{State, TimerConfig, Transaction, TxEvent};
use phonebridge_sip::{parse_datagram, HeaderName, Limits, Message, Request, Response};

const INVITE: &str = "INVITE sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\r\nMax-Forwards: 70\r\nFrom: <sip:alice@192.0.2.1>;tag=a1\r\nTo: <sip:bob@192.0.2.2>\r\nCall-ID: c1@192.0.2.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
const OPTIONS: &str = "OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKopt\r\nMax-Forwards: 70\r\nFrom: <sip:alice@192.0.2.1>;tag=a1\r\nTo: <sip:bob@192.0.2.2>\r\nCall-ID: c2@192.0.2.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

fn req(s: &str) -> Request {
    match parse_datagram(s.as_bytes(), &Limits::default()).unwrap() {
        Message::Request(r) => r,
        _ => unreachable!("test constant is a request"),
    }
}

fn response(req: &Request, status: u16) -> Response {
    let mut r = Response::new(status);
    for n in [
        HeaderName::VIA,
        HeaderName::FROM,
        HeaderName::CALL_ID,
        HeaderName::CSEQ,
    ] {
        r.headers.copy_from(&req.headers, &n);
    }
    r.headers.push(HeaderName::TO, "<sip:bob@192.0.2.2>;tag=b1");
    r
}

/// A server transaction over UDP for `r`, received at `t0`, with the default timers.
fn server_udp(t0: Instant, r: &Request) -> Transaction {
    Transaction::server(
        t0,
        std::sync::Arc::new(r.clone()),
        false,
        TimerConfig::default(),
    )
}

/// Runs the machine on virtual time until it terminates or `limit` passes; returns the
/// offsets (from `t0`) of every transmission and of every event.
fn run(t0: Instant, tx: &mut Transaction, limit: Duration) -> (Vec<f64>, Vec<(f64, TxEvent)>) {
    run_from(t0, t0, tx, limit)
}

/// Like [`run`], starting at `now` but measuring offsets and `limit` from `t0`.
fn run_from(
    t0: Instant,
    now: Instant,
    tx: &mut Transaction,
    limit: Duration,
) -> (Vec<f64>, Vec<(f64, TxEvent)>) {
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut now = now;
    for _ in 0..10_000 {
        while let Some(_b) = tx.poll_transmit() {
            sent.push((now - t0).as_secs_f64());
        }
        while let Some(e) = tx.poll_event() {
            events.push(((now - t0).as_secs_f64(), e));
        }
        match tx.poll_timeout() {
            Some(t) if t - t0 <= limit => {
                now = t;
                tx.handle_timeout(now);
            }
            _ => break,
        }
    }
    (sent, events)
}

/// A UDP client transaction for the request `text`, started at `t0`, its first send taken.
fn sent_udp_client(t0: Instant, text: &str) -> (Request, Transaction) {
    let r = req(text);
    let mut tx = Transaction::client(t0, r.clone(), false, TimerConfig::default());
    let _ = tx.poll_transmit();
    (r, tx)
}

fn gaps(times: &[f64]) -> Vec<f64> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn invite_client_udp_retransmits_doubling_and_times_out_at_32s() {
    let t0 = Instant::now();
    let mut tx = Transaction::client(t0, req(INVITE), false, TimerConfig::default());
    let (sent, events) = run(t0, &mut tx, Duration::from_secs(100));
    assert_eq!(sent, [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]);
    assert_eq!(gaps(&sent), [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]);
    assert_eq!(events[0], (32.0, TxEvent::Timeout));
    assert_eq!(events[1].1, TxEvent::Terminated);
}

#[test]
fn invite_client_tcp_sends_once_and_times_out() {
    let t0 = Instant::now();
    let mut tx = Transaction::client(t0, req(INVITE), true, TimerConfig::default());
    let (sent, events) = run(t0, &mut tx, Duration::from_secs(100));
    assert_eq!(sent, [0.0]);
    assert_eq!(events[0], (32.0, TxEvent::Timeout));
}

#[test]
fn invite_client_provisional_stops_retransmission() {
    let t0 = Instant::now();
    let (r, mut tx) = sent_udp_client(t0, INVITE);
    tx.handle_timeout(t0 + Duration::from_millis(500));
    assert!(tx.poll_transmit().is_some());
    tx.handle_response(t0 + Duration::from_millis(600), response(&r, 180));
    assert_eq!(tx.state(), State::Proceeding);
    let (sent, events) = run_from(
        t0,
        t0 + Duration::from_millis(600),
        &mut tx,
        Duration::from_secs(100),
    );
    assert!(sent.is_empty());
    assert!(matches!(events[0].1, TxEvent::Response(ref r) if r.status == 180));
    // Timer B still bounds the wait for a final answer.
    assert!(events.iter().any(|(_, e)| *e == TxEvent::Timeout));
}

#[test]
fn invite_client_non2xx_acks_each_retransmission_then_timer_d() {
    let t0 = Instant::now();
    let (r, mut tx) = sent_udp_client(t0, INVITE);
    tx.handle_response(t0, response(&r, 486));
    let ack = tx.poll_transmit().expect("ACK");
    let ack = String::from_utf8(ack).unwrap();
    assert!(ack.starts_with("ACK sip:bob@192.0.2.2 SIP/2.0\r\n"));
    assert!(ack.contains("CSeq: 1 ACK"));
    assert!(ack.contains(";tag=b1"));
    assert!(ack.contains("branch=z9hG4bKabc"));
    assert!(matches!(tx.poll_event(), Some(TxEvent::Response(ref r)) if r.status == 486));
    // The 486 is retransmitted (our ACK was lost): ACK again, no new event.
    tx.handle_response(t0 + Duration::from_secs(1), response(&r, 486));
    assert!(tx.poll_transmit().is_some());
    assert!(tx.poll_event().is_none());
    let (_, events) = run_from(
        t0,
        t0 + Duration::from_secs(1),
        &mut tx,
        Duration::from_secs(100),
    );
    assert_eq!(events, [(32.0, TxEvent::Terminated)]);
}

#[test]
fn invite_client_accepted_passes_2xx_retransmissions_for_64t1() {
    let t0 = Instant::now();
    let (r, mut tx) = sent_udp_client(t0, INVITE);
    tx.handle_response(t0, response(&r, 200));
    assert_eq!(tx.state(), State::Accepted);
    assert!(
        tx.poll_transmit().is_none(),
        "the TU, not the transaction, ACKs a 2xx"
    );
    assert!(matches!(tx.poll_event(), Some(TxEvent::Response(_))));
    tx.handle_response(t0 + Duration::from_secs(1), response(&r, 200));
    assert!(matches!(tx.poll_event(), Some(TxEvent::Response(_))));
    let (_, events) = run_from(
        t0,
        t0 + Duration::from_secs(1),
        &mut tx,
        Duration::from_secs(100),
    );
    assert_eq!(events, [(32.0, TxEvent::Terminated)]);
}

#[test]
fn non_invite_client_retransmits_capped_at_t2() {
    let t0 = Instant::now();
    let mut tx = Transaction::client(t0, req(OPTIONS), false, TimerConfig::default());
    let (sent, events) = run(t0, &mut tx, Duration::from_secs(100));
    assert_eq!(
        gaps(&sent),
        [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    );
    assert_eq!(events[0], (32.0, TxEvent::Timeout));
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let t0 = Instant::now();
    let (r, mut tx) = sent_udp_client(t0, OPTIONS);
    tx.handle_response(t0 + Duration::from_millis(100), response(&r, 100));
    let (sent, _) = run_from(
        t0,
        t0 + Duration::from_millis(100),
        &mut tx,
        Duration::from_secs(10),
    );
    // Timer E was armed at 0.5 s before the 1xx; after it, the interval is T2.
    assert_eq!(sent, [0.5, 4.5, 8.5]);
}

#[test]
fn non_invite_client_completed_waits_t4_on_udp_only() {
    let t0 = Instant::now();
    let (r, mut tx) = sent_udp_client(t0, OPTIONS);
    tx.handle_response(t0, response(&r, 200));
    let (_, events) = run(t0, &mut tx, Duration::from_secs(100));
    assert_eq!(events.last().unwrap(), &(5.0, TxEvent::Terminated));
    let mut tx = Transaction::client(t0, r.clone(), true, TimerConfig::default());
    tx.handle_response(t0, response(&r, 200));
    assert!(tx.is_terminated());
}

#[test]
fn configurable_t1_t2_scale_the_schedule() {
    let t0 = Instant::now();
    let cfg = TimerConfig {
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(400),
        t4: Duration::from_secs(1),
    };
    let mut tx = Transaction::client(t0, req(OPTIONS), false, cfg);
    let (sent, events) = run(t0, &mut tx, Duration::from_secs(100));
    let g: Vec<u64> = gaps(&sent)
        .iter()
        .map(|g| (g * 1000.0).round() as u64)
        .collect();
    assert_eq!(&g[..4], [100, 200, 400, 400]);
    assert_eq!(events[0].0, 6.4);
}

#[test]
fn invite_server_non2xx_retransmits_until_ack_then_timer_i() {
    let t0 = Instant::now();
    let r = req(INVITE);
    let mut tx = server_udp(t0, &r);
    tx.send_response(t0, &response(&r, 100));
    tx.send_response(t0, &response(&r, 486));
    assert_eq!(tx.state(), State::Completed);
    let (sent, _) = run(t0, &mut tx, Duration::from_millis(7600));
    assert_eq!(sent, [0.0, 0.0, 0.5, 1.5, 3.5, 7.5]);
    tx.handle_retransmitted_request(t0 + Duration::from_secs(8), &phonebridge_sip::Method::Ack);
    assert_eq!(tx.state(), State::Confirmed);
    let (sent, events) = run_from(
        t0,
        t0 + Duration::from_secs(8),
        &mut tx,
        Duration::from_secs(100),
    );
    assert!(sent.is_empty());
    assert_eq!(events, [(13.0, TxEvent::Terminated)]);
}

#[test]
fn invite_server_without_ack_times_out_at_64t1() {
    let t0 = Instant::now();
    let r = req(INVITE);
    let mut tx = server_udp(t0, &r);
    tx.send_response(t0, &response(&r, 404));
    let (sent, events) = run(t0, &mut tx, Duration::from_secs(100));
    assert_eq!(gaps(&sent)[..5], [0.5, 1.0, 2.0, 4.0, 4.0]);
    assert_eq!(events[0], (32.0, TxEvent::Timeout));
}

#[test]
fn invite_server_absorbs_retransmitted_invite_with_last_response() {
    let t0 = Instant::now();
    let r = req(INVITE);
    let mut tx = server_udp(t0, &r);
    tx.send_response(t0, &response(&r, 180));
    let first = tx.poll_transmit().unwrap();
    tx.handle_retransmitted_request(t0, &phonebridge_sip::Method::Invite);
    assert_eq!(tx.poll_transmit().unwrap(), first);
    tx.send_response(t0, &response(&r, 200));
    assert_eq!(tx.state(), State::Accepted);
    let _ = tx.poll_transmit();
    // RFC 6026: in Accepted, a retransmitted INVITE is absorbed (the dialog resends the 2xx).
    tx.handle_retransmitted_request(t0, &phonebridge_sip::Method::Invite);
    assert!(tx.poll_transmit().is_none());
    let (_, events) = run(t0, &mut tx, Duration::from_secs(100));
    assert_eq!(events, [(32.0, TxEvent::Terminated)]);
}

#[test]
fn an_invite_answered_at_once_keeps_only_its_wind_down_timer() {
    let t0 = Instant::now();
    let r = req(INVITE);
    let mut tx = server_udp(t0, &r);
    // Before the answer: the 100 Trying is due at 200 ms.
    assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_millis(200)));
    assert!(!tx.winding_down());
    tx.send_response(t0 + Duration::from_millis(5), &response(&r, 200));
    // Answered: no 100 Trying any more, only Timer L (64*T1) that ends the transaction.
    assert_eq!(
        tx.poll_timeout(),
        Some(t0 + Duration::from_millis(5) + Duration::from_secs(32))
    );
    assert!(tx.winding_down());
    // A non-2xx final keeps retransmitting until the ACK: not winding down.
    let mut rejected = server_udp(t0, &r);
    rejected.send_response(t0, &response(&r, 486));
    assert!(!rejected.winding_down());
    rejected.handle_retransmitted_request(t0, &phonebridge_sip::Method::Ack);
    assert!(rejected.winding_down(), "Confirmed: only Timer I is left");
}

#[test]
fn non_invite_server_answers_retransmissions_then_timer_j() {
    let t0 = Instant::now();
    let r = req(OPTIONS);
    let mut tx = server_udp(t0, &r);
    // Before any response a retransmission is absorbed silently.
    tx.handle_retransmitted_request(t0, &phonebridge_sip::Method::Options);
    assert!(tx.poll_transmit().is_none());
    tx.send_response(t0, &response(&r, 200));
    let first = tx.poll_transmit().unwrap();
    tx.handle_retransmitted_request(
        t0 + Duration::from_secs(1),
        &phonebridge_sip::Method::Options,
    );
    assert_eq!(tx.poll_transmit().unwrap(), first);
    let (_, events) = run(t0, &mut tx, Duration::from_secs(100));
    assert_eq!(events, [(32.0, TxEvent::Terminated)]);
}

#[test]
fn transport_error_terminates_with_event() {
    let t0 = Instant::now();
    let mut tx = Transaction::client(t0, req(OPTIONS), true, TimerConfig::default());
    tx.handle_transport_error();
    assert_eq!(tx.poll_event(), Some(TxEvent::TransportError));
    assert_eq!(tx.poll_event(), Some(TxEvent::Terminated));
    assert!(tx.poll_timeout().is_none());
}
