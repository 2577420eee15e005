//! Calls the endpoint places, against a scripted far end on virtual time: early media,
//! PRACK, digest challenges, CANCEL (also racing the 200), forks, timeouts.

mod common;

use common::*;
use phonebridge_sip::auth::Credentials;
use phonebridge_sip::endpoint::Dial;
use phonebridge_sip::{CallHandle, EndReason, Event, Uri};

fn dial(h: &mut Harness, credentials: Option<(&str, &str)>) -> (CallHandle, String) {
    let call = h.ep.invite(
        h.now,
        Dial {
            uri: Uri::parse("sip:+15550100@192.0.2.10:5062").unwrap(),
            from: "\"Interview\" <sip:phonebridge@127.0.0.1>".into(),
            to: "<sip:+15550100@192.0.2.10>".into(),
            peer: h.peer.clone(),
            body: Some((
                "application/sdp".into(),
                SDP.replace('\n', "\r\n").into_bytes(),
            )),
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
            headers: vec![],
        },
    );
    h.drain();
    let inv = h.sent_starting("INVITE ").pop().expect("INVITE sent").1;
    (call, inv)
}

#[test]
fn early_media_then_answer_then_ack_to_contact() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, None);
    assert!(header(&inv, "Supported").unwrap().contains("100rel"));
    assert!(inv.contains("m=audio 40000"));
    h.recv(&reply(&inv, 100, None, "", ""));
    h.recv(&reply(
        &inv,
        183,
        Some("far1"),
        "",
        "v=0\nm=audio 50000 RTP/AVP 0\n",
    ));
    h.recv(&reply(
        &inv,
        200,
        Some("far1"),
        "",
        "v=0\nm=audio 50000 RTP/AVP 0\n",
    ));
    let ev = h.take_events();
    assert!(
        matches!(&ev[0], Event::Progress { call: c, status: 183, body } if *c == call && body.starts_with(b"v=0"))
    );
    assert!(matches!(&ev[1], Event::Answered { call: c, .. } if *c == call));
    let ack = h.sent_starting("ACK ").pop().unwrap().1;
    assert!(ack.starts_with("ACK sip:callee@192.0.2.10:5062 SIP/2.0"));
    assert_eq!(header(&ack, "CSeq"), Some("1 ACK"));
    assert!(header(&ack, "To").unwrap().ends_with(";tag=far1"));
    // The 200 again (our ACK was lost): the same ACK again, no second Answered.
    h.recv(&reply(
        &inv,
        200,
        Some("far1"),
        "",
        "v=0\nm=audio 50000 RTP/AVP 0\n",
    ));
    assert!(h.take_events().is_empty());
    let acks = h.sent_starting("ACK ");
    assert_eq!(acks.len(), 2);
    assert_eq!(acks[0].1, acks[1].1);
    // Hang up: BYE inside the dialog.
    h.ep.hangup(h.now, call).unwrap();
    h.drain();
    let bye = h.sent_starting("BYE ").pop().unwrap().1;
    assert_eq!(header(&bye, "CSeq"), Some("2 BYE"));
}

#[test]
fn reliable_183_gets_one_prack() {
    let mut h = Harness::udp();
    let (_call, inv) = dial(&mut h, None);
    let rel = "Require: 100rel\nRSeq: 7\n";
    h.recv(&reply(&inv, 183, Some("far1"), rel, "v=0\n"));
    h.recv(&reply(&inv, 183, Some("far1"), rel, "v=0\n"));
    let pracks = h.sent_starting("PRACK ");
    assert_eq!(
        pracks.len(),
        1,
        "a retransmitted reliable 183 is not PRACKed twice"
    );
    assert_eq!(header(&pracks[0].1, "RAck"), Some("7 1 INVITE"));
    assert_eq!(header(&pracks[0].1, "CSeq"), Some("2 PRACK"));
    assert!(pracks[0].1.starts_with("PRACK sip:callee@192.0.2.10:5062"));
    assert_eq!(h.take_events().len(), 1);
}

#[test]
fn digest_challenge_is_answered_once() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, Some(("1000", "s3cret")));
    h.recv(&reply(
        &inv,
        401,
        Some("x"),
        "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"abc\", qop=\"auth\", algorithm=MD5\n",
        "",
    ));
    let invites = h.sent_starting("INVITE ");
    assert_eq!(invites.len(), 2);
    let second = &invites[1].1;
    assert_eq!(header(second, "CSeq"), Some("2 INVITE"));
    assert_eq!(header(second, "Call-ID"), header(&inv, "Call-ID"));
    let creds = Credentials::parse(header(second, "Authorization").unwrap()).unwrap();
    assert!(creds.verify("INVITE", "s3cret"));
    assert_eq!(creds.uri, "sip:+15550100@192.0.2.10:5062");
    // The 401 was ACKed by its transaction.
    assert!(h
        .sent_starting("ACK ")
        .iter()
        .any(|(_, a)| header(a, "CSeq") == Some("1 ACK")));
    h.recv(&reply(second, 200, Some("far"), "", "v=0\n"));
    assert!(matches!(h.take_events()[..], [Event::Answered { call: c, .. }] if c == call));
    assert_eq!(
        header(&h.sent_starting("ACK ").pop().unwrap().1, "CSeq"),
        Some("2 ACK")
    );
}

#[test]
fn proxy_challenge_uses_proxy_authorization_and_wrong_password_ends_call() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, Some(("1000", "wrong")));
    let ch = "Proxy-Authenticate: Digest realm=\"trunk\", nonce=\"n1\"\n";
    h.recv(&reply(&inv, 407, Some("x"), ch, ""));
    let second = h.sent_starting("INVITE ").pop().unwrap().1;
    assert!(header(&second, "Proxy-Authorization").is_some());
    h.recv(&reply(&second, 407, Some("y"), ch, ""));
    assert_eq!(
        h.sent_starting("INVITE ").len(),
        2,
        "no third attempt with the same credentials"
    );
    assert_eq!(
        h.take_events(),
        [Event::Ended {
            call,
            reason: EndReason::Rejected(407)
        }]
    );
}

#[test]
fn stale_nonce_is_retried() {
    let mut h = Harness::udp();
    let (_call, inv) = dial(&mut h, Some(("1000", "pw")));
    h.recv(&reply(
        &inv,
        401,
        Some("x"),
        "WWW-Authenticate: Digest realm=\"r\", nonce=\"old\"\n",
        "",
    ));
    let second = h.sent_starting("INVITE ").pop().unwrap().1;
    h.recv(&reply(
        &second,
        401,
        Some("y"),
        "WWW-Authenticate: Digest realm=\"r\", nonce=\"new\", stale=TRUE\n",
        "",
    ));
    let third = h.sent_starting("INVITE ").pop().unwrap().1;
    assert_eq!(header(&third, "CSeq"), Some("3 INVITE"));
    assert!(header(&third, "Authorization")
        .unwrap()
        .contains("nonce=\"new\""));
}

#[test]
fn busy_ends_the_call_with_the_status() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, None);
    h.recv(&reply(&inv, 486, Some("b"), "", ""));
    assert_eq!(
        h.take_events(),
        [Event::Ended {
            call,
            reason: EndReason::Rejected(486)
        }]
    );
    assert_eq!(h.sent_starting("ACK ").len(), 1);
}

/// The far end answers our CANCEL with 200 and the INVITE with 487: the call ends as ours.
fn cancel_completes(h: &mut Harness, call: CallHandle, inv: &str, cancel: &str) {
    h.recv(&reply(cancel, 200, Some("r"), "", ""));
    h.recv(&reply(inv, 487, Some("r"), "", ""));
    assert_eq!(
        h.take_events(),
        [Event::Ended {
            call,
            reason: EndReason::LocalHangup
        }]
    );
}

#[test]
fn cancel_waits_for_a_provisional_then_reuses_the_invite_branch() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, None);
    h.ep.hangup(h.now, call).unwrap();
    h.drain();
    assert!(
        h.sent_starting("CANCEL ").is_empty(),
        "no CANCEL before a provisional (RFC 3261 §9.1)"
    );
    h.recv(&reply(&inv, 180, Some("r"), "", ""));
    let cancel = h
        .sent_starting("CANCEL ")
        .pop()
        .expect("CANCEL after 180")
        .1;
    assert_eq!(header(&cancel, "Via"), header(&inv, "Via"));
    assert_eq!(header(&cancel, "CSeq"), Some("1 CANCEL"));
    assert!(h.take_events().is_empty(), "no Progress after hang-up");
    cancel_completes(&mut h, call, &inv, &cancel);
}

#[test]
fn shutdown_cancels_a_ringing_call_we_placed() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, None);
    h.recv(&reply(&inv, 180, Some("r"), "", ""));
    h.take_events();
    h.ep.hangup_all(h.now);
    h.drain();
    assert!(
        h.sent_starting("BYE ").is_empty(),
        "no BYE outside a dialog"
    );
    assert!(
        h.sent_starting("SIP/2.0 ").is_empty(),
        "no response to our own INVITE"
    );
    let cancel = h.sent_starting("CANCEL ").pop().expect("CANCEL").1;
    assert_eq!(h.ep.awaiting_answers(), 2, "the INVITE and the CANCEL");
    cancel_completes(&mut h, call, &inv, &cancel);
}

#[test]
fn answer_racing_cancel_is_acked_and_hung_up() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, None);
    h.recv(&reply(&inv, 180, Some("r"), "", ""));
    h.take_events();
    h.ep.hangup(h.now, call).unwrap();
    h.drain();
    h.recv(&reply(&inv, 200, Some("r"), "", "v=0\n"));
    assert_eq!(h.sent_starting("ACK ").len(), 1);
    let bye = h.sent_starting("BYE ").pop().expect("BYE").1;
    assert!(header(&bye, "To").unwrap().contains("tag=r"));
    assert_eq!(
        h.take_events(),
        [Event::Ended {
            call,
            reason: EndReason::LocalHangup
        }]
    );
}

#[test]
fn unanswered_invite_times_out_at_64_t1() {
    let mut h = Harness::udp();
    let (call, _inv) = dial(&mut h, None);
    h.run_until(40.0);
    let times: Vec<f64> = h.sent_starting("INVITE ").iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]);
    assert_eq!(
        h.events,
        [(
            32.0,
            Event::Ended {
                call,
                reason: EndReason::Timeout
            }
        )]
    );
}

#[test]
fn second_2xx_from_a_fork_is_acked_and_released() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, None);
    h.recv(&reply(&inv, 200, Some("a"), "", "v=0\n"));
    h.recv(&reply(&inv, 200, Some("b"), "", "v=0\n"));
    let acks = h.sent_starting("ACK ");
    assert_eq!(acks.len(), 2);
    let bye = h.sent_starting("BYE ").pop().expect("BYE to the fork").1;
    assert!(header(&bye, "To").unwrap().ends_with("tag=b"));
    assert_eq!(
        h.take_events().len(),
        1,
        "one Answered, and the call stays up"
    );
    assert_eq!(h.ep.active_calls(), 1);
    let _ = call;
}

#[test]
fn bye_from_callee_ends_placed_call() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, None);
    h.recv(&reply(&inv, 200, Some("far"), "", "v=0\n"));
    h.take_events();
    let from_tag = header(&inv, "From")
        .unwrap()
        .split("tag=")
        .nth(1)
        .unwrap()
        .to_owned();
    let call_id = header(&inv, "Call-ID").unwrap().to_owned();
    let bye = format!(
        "BYE sip:phonebridge@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKbb\nMax-Forwards: 70\nFrom: <sip:+15550100@192.0.2.10>;tag=far\nTo: \"Interview\" <sip:phonebridge@127.0.0.1>;tag={from_tag}\nCall-ID: {call_id}\nCSeq: 1 BYE\nContent-Length: 0\n\n"
    );
    h.recv(&bye);
    assert!(h.sent_starting("SIP/2.0 200").len() == 1);
    assert_eq!(
        h.take_events(),
        [Event::Ended {
            call,
            reason: EndReason::RemoteBye
        }]
    );
}

#[test]
fn session_interval_too_small_is_retried_with_min_se_and_we_refresh() {
    let mut h = Harness::udp();
    let (call, inv) = dial(&mut h, None);
    assert_eq!(header(&inv, "Session-Expires"), Some("1800"));
    h.recv(&reply(&inv, 422, Some("x"), "Min-SE: 3600\n", ""));
    let second = h.sent_starting("INVITE ").pop().unwrap().1;
    assert_eq!(header(&second, "Session-Expires"), Some("3600"));
    assert_eq!(header(&second, "Min-SE"), Some("3600"));
    assert_eq!(header(&second, "CSeq"), Some("2 INVITE"));
    h.recv(&reply(
        &second,
        200,
        Some("far"),
        "Session-Expires: 3600;refresher=uac\nAllow: INVITE, ACK, BYE, UPDATE\n",
        "v=0\n",
    ));
    assert!(matches!(h.take_events()[..], [Event::Answered { call: c, .. }] if c == call));
    h.run_until(1799.0);
    assert!(h.sent_starting("UPDATE ").is_empty());
    h.run_until(1800.0);
    let upd = h
        .sent_starting("UPDATE ")
        .pop()
        .expect("we are the refresher")
        .1;
    assert_eq!(header(&upd, "Session-Expires"), Some("3600;refresher=uac"));
}
