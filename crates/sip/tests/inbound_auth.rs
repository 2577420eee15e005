//! Digest authentication required from a trunk's INVITEs (the endpoint as digest server).

mod common;

use common::*;
use phonebridge_sip::auth::Challenge;
use phonebridge_sip::endpoint::InboundAuth;
use phonebridge_sip::{EndpointConfig, Event};

fn harness() -> Harness {
    let mut cfg = EndpointConfig::default();
    cfg.guard.trusted.push("192.0.2.0/24".parse().unwrap());
    cfg.inbound_auth.push(InboundAuth {
        sources: vec!["192.0.2.10".parse().unwrap()],
        realm: "phonebridge".into(),
        username: "carrier".into(),
        password: "s3cret".into(),
    });
    Harness::new(cfg)
}

/// The INVITE again (new branch, next CSeq) answering the challenge in `r401`.
fn answered(r401: &str, password: &str, cseq: u32) -> String {
    let ch = Challenge::parse(header(r401, "WWW-Authenticate").unwrap()).unwrap();
    let auth = ch.answer(
        "INVITE",
        "sip:echo@127.0.0.1",
        "carrier",
        password,
        "c0ffee",
        1,
    );
    invite("c1", &format!("z9hG4bKinv{cseq}"), cseq, SDP).replace(
        "Max-Forwards: 70\n",
        &format!("Max-Forwards: 70\nAuthorization: {auth}\n"),
    )
}

#[test]
fn trunk_invite_is_challenged_then_accepted_with_the_right_answer() {
    let mut h = harness();
    h.recv(&invite("c1", "z9hG4bKinv1", 1, SDP));
    assert!(h.take_events().is_empty());
    let r401 = h.sent_starting("SIP/2.0 401").pop().expect("challenge").1;
    let www = header(&r401, "WWW-Authenticate").unwrap();
    assert!(
        www.contains("realm=\"phonebridge\"") && www.contains("qop=\"auth\""),
        "{www}"
    );
    h.recv(&answered(&r401, "s3cret", 2));
    assert!(matches!(h.take_events()[..], [Event::IncomingCall { .. }]));
    assert_eq!(h.ep.stats().auth_challenges, 1);
}

#[test]
fn wrong_password_is_challenged_again() {
    let mut h = harness();
    h.recv(&invite("c1", "z9hG4bKinv1", 1, SDP));
    let r401 = h.sent_starting("SIP/2.0 401").pop().unwrap().1;
    h.recv(&answered(&r401, "guess", 2));
    assert!(h.take_events().is_empty());
    let again = h.sent_starting("SIP/2.0 401").pop().unwrap().1;
    assert!(!header(&again, "WWW-Authenticate")
        .unwrap()
        .contains("stale"));
}

#[test]
fn a_nonce_is_bound_to_the_source_it_was_issued_to() {
    // A trunk with two addresses; the second answers with the first address's nonce.
    let mut cfg = EndpointConfig::default();
    cfg.guard.trusted.push("192.0.2.0/24".parse().unwrap());
    cfg.inbound_auth.push(InboundAuth {
        sources: vec!["192.0.2.10".parse().unwrap(), "192.0.2.11".parse().unwrap()],
        realm: "phonebridge".into(),
        username: "carrier".into(),
        password: "s3cret".into(),
    });
    let mut two = Harness::new(cfg);
    two.recv(&invite("c0", "z9hG4bKinv0", 1, SDP));
    let issued_to_10 = two.sent_starting("SIP/2.0 401").pop().unwrap().1;
    two.recv_from(
        "192.0.2.11:5060".parse().unwrap(),
        &answered(&issued_to_10, "s3cret", 2),
    );
    assert!(
        two.take_events().is_empty(),
        "a nonce issued to .10 does not verify from .11"
    );
    two.recv(&answered(&issued_to_10, "s3cret", 3));
    assert!(
        matches!(two.take_events()[..], [Event::IncomingCall { .. }]),
        "but it does from .10"
    );
}

#[test]
fn an_old_nonce_gets_a_stale_challenge() {
    let mut h = harness();
    h.recv(&invite("c1", "z9hG4bKinv1", 1, SDP));
    let r401 = h.sent_starting("SIP/2.0 401").pop().unwrap().1;
    h.run_until(301.0);
    h.recv(&answered(&r401, "s3cret", 2));
    assert!(h.take_events().is_empty());
    let again = h.sent_starting("SIP/2.0 401").pop().unwrap().1;
    assert!(header(&again, "WWW-Authenticate")
        .unwrap()
        .contains("stale=TRUE"));
}

#[test]
fn other_sources_need_no_credentials() {
    let mut h = harness();
    h.recv_from(
        "192.0.2.77:5060".parse().unwrap(),
        &invite("c1", "z9hG4bKinv1", 1, SDP),
    );
    assert!(matches!(h.take_events()[..], [Event::IncomingCall { .. }]));
}
