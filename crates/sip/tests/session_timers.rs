//! Session timers (RFC 4028), reliable provisionals (RFC 3262) and re-INVITE glare, on
//! virtual time with a scripted peer.

mod common;

use common::*;
use phonebridge_sip::{EndReason, Event};

fn invite_with(extra: &str) -> String {
    invite("c1", "z9hG4bKinv1", 1, SDP)
        .replace("Max-Forwards: 70\n", &format!("Max-Forwards: 70\n{extra}"))
}

#[test]
fn caller_refreshes_and_silence_ends_the_session() {
    let mut h = Harness::udp();
    let (call, _tag, ok) = answered_call(
        &mut h,
        "Supported: timer\nSession-Expires: 120;refresher=uac\n",
    );
    assert_eq!(header(&ok, "Session-Expires"), Some("120;refresher=uac"));
    assert_eq!(header(&ok, "Require"), Some("timer"));
    h.run_until(87.0);
    assert!(h.sent_starting("BYE ").is_empty());
    h.run_until(89.0);
    // 120 - min(32, 120/3) = 88 s without a refresh.
    assert_eq!(h.sent_starting("BYE ")[0].0, 88.0);
    assert_eq!(
        h.take_events(),
        [Event::Ended {
            call,
            reason: EndReason::SessionExpired
        }]
    );
}

#[test]
fn peer_update_refresh_restarts_the_timer() {
    let mut h = Harness::udp();
    let (call, tag, _) = answered_call(
        &mut h,
        "Supported: timer\nSession-Expires: 120;refresher=uac\n",
    );
    h.run_until(60.0);
    h.recv(
        &in_dialog("UPDATE", "c1", &tag, "z9hG4bKup", 2, "UPDATE", "").replace(
            "Max-Forwards: 70\n",
            "Max-Forwards: 70\nSupported: timer\nSession-Expires: 120;refresher=uac\n",
        ),
    );
    assert!(matches!(h.take_events()[..], [Event::Offer { .. }]));
    h.ep.answer_offer(h.now, call, 200, None).unwrap();
    h.drain();
    let ok = h.sent_starting("SIP/2.0 200").pop().unwrap().1;
    assert_eq!(header(&ok, "Session-Expires"), Some("120;refresher=uac"));
    h.run_until(147.0);
    assert!(
        h.sent_starting("BYE ").is_empty(),
        "the refresh at 60 s moved expiry to 148 s"
    );
    h.run_until(149.0);
    assert_eq!(h.sent_starting("BYE ")[0].0, 148.0);
}

#[test]
fn we_refresh_with_reinvite_when_the_caller_lacks_timer_and_update() {
    let mut h = Harness::udp();
    let (call, tag, ok) = answered_call(&mut h, "");
    assert_eq!(header(&ok, "Session-Expires"), Some("1800;refresher=uas"));
    assert_eq!(
        header(&ok, "Require"),
        None,
        "the caller did not say it supports timer"
    );
    h.run_until(899.0);
    assert!(h.sent_starting("INVITE ").is_empty());
    h.run_until(900.0);
    let reinvite = h
        .sent_starting("INVITE ")
        .pop()
        .expect("refresh at half the interval")
        .1;
    assert!(reinvite.starts_with("INVITE sip:alice@192.0.2.10:5062 SIP/2.0"));
    assert_eq!(
        header(&reinvite, "Session-Expires"),
        Some("1800;refresher=uac")
    );
    assert!(
        reinvite.ends_with("v=0\r\no=pb\r\n"),
        "our last SDP goes again"
    );
    assert!(header(&reinvite, "From").unwrap().contains(&tag));
    let resp = format!(
        "SIP/2.0 200 OK\nVia: {}\nFrom: {}\nTo: {}\nCall-ID: c1\nCSeq: {}\nContact: <sip:alice@192.0.2.10:5062>\nSession-Expires: 1800;refresher=uac\nContent-Type: application/sdp\nContent-Length: 5\n\nv=0\r\n",
        header(&reinvite, "Via").unwrap(),
        header(&reinvite, "From").unwrap(),
        header(&reinvite, "To").unwrap(),
        header(&reinvite, "CSeq").unwrap()
    );
    h.recv(&resp);
    let ack = h
        .sent_starting("ACK ")
        .pop()
        .expect("ACK for the refresh")
        .1;
    assert_eq!(header(&ack, "CSeq"), Some("1 ACK"));
    h.recv(&resp);
    assert_eq!(
        h.sent_starting("ACK ").len(),
        2,
        "a retransmitted 2xx is ACKed again"
    );
    h.run_until(1799.0);
    assert_eq!(h.sent_starting("INVITE ").len(), 1);
    h.run_until(1800.0);
    assert_eq!(
        h.sent_starting("INVITE ").len(),
        2,
        "next refresh half an interval later"
    );
    assert_eq!(h.ep.active_calls(), 1);
    let _ = call;
}

#[test]
fn we_refresh_with_update_when_allowed() {
    let mut h = Harness::udp();
    answered_call(&mut h, "Allow: INVITE, ACK, BYE, CANCEL, UPDATE\n");
    h.run_until(900.0);
    let upd = h.sent_starting("UPDATE ").pop().expect("UPDATE refresh").1;
    assert_eq!(header(&upd, "Content-Length"), Some("0"));
    assert!(h.sent_starting("INVITE ").is_empty());
}

#[test]
fn too_small_session_interval_gets_422_with_min_se() {
    let mut h = Harness::udp();
    h.recv(&invite_with("Supported: timer\nSession-Expires: 30\n"));
    let r = h.take_sent().pop().unwrap();
    assert!(r.starts_with("SIP/2.0 422"), "{r}");
    assert_eq!(header(&r, "Min-SE"), Some("90"));
    assert!(h.take_events().is_empty());
}

#[test]
fn glare_with_our_refresh_gets_491_and_we_retry() {
    let mut h = Harness::udp();
    let (_call, tag, _) = answered_call(&mut h, "");
    h.run_until(900.0);
    let ours = h.sent_starting("INVITE ").pop().unwrap().1;
    // The peer's own re-INVITE crosses ours.
    h.recv(&in_dialog(
        "INVITE",
        "c1",
        &tag,
        "z9hG4bKglare",
        2,
        "INVITE",
        SDP,
    ));
    assert!(h.sent_starting("SIP/2.0 491").len() == 1);
    assert!(h.take_events().is_empty());
    // Ours gets 491 too: retry within 0–2 s (we do not own the Call-ID).
    let resp = format!(
        "SIP/2.0 491 Request Pending\nVia: {}\nFrom: {}\nTo: {}\nCall-ID: c1\nCSeq: {}\nContent-Length: 0\n\n",
        header(&ours, "Via").unwrap(),
        header(&ours, "From").unwrap(),
        header(&ours, "To").unwrap(),
        header(&ours, "CSeq").unwrap()
    );
    h.recv(&resp);
    h.run_until(902.1);
    let invites = h.sent_starting("INVITE ");
    assert_eq!(invites.len(), 2, "one retry");
    assert!(invites[1].0 > 900.0 && invites[1].0 <= 902.0);
    assert_eq!(header(&invites[1].1, "CSeq"), Some("2 INVITE"));
}

#[test]
fn reliable_183_holds_the_200_until_prack() {
    let mut h = Harness::udp();
    h.recv(&invite_with("Supported: 100rel, timer\n"));
    let call = incoming_call(&mut h);
    h.ep.respond(
        h.now,
        call,
        183,
        Some(("application/sdp", b"v=0\r\n".to_vec())),
    )
    .unwrap();
    h.drain();
    let p = h.sent_starting("SIP/2.0 183").pop().unwrap().1;
    assert_eq!(header(&p, "Require"), Some("100rel"));
    assert_eq!(header(&p, "RSeq"), Some("1"));
    let tag = to_tag(&p);
    h.run_until(1.6);
    let times: Vec<f64> = h
        .sent_starting("SIP/2.0 183")
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(times, [0.0, 0.5, 1.5]);
    h.ep.respond(
        h.now,
        call,
        200,
        Some(("application/sdp", b"v=0\r\n".to_vec())),
    )
    .unwrap();
    h.drain();
    assert!(
        h.sent_starting("SIP/2.0 200").is_empty(),
        "no 2xx before the PRACK"
    );
    let prack = in_dialog("PRACK", "c1", &tag, "z9hG4bKpr", 2, "PRACK", "")
        .replace("Max-Forwards: 70\n", "Max-Forwards: 70\nRAck: 1 1 INVITE\n");
    h.recv(&prack);
    let oks = h.sent_starting("SIP/2.0 200");
    assert_eq!(oks.len(), 2);
    assert_eq!(header(&oks[0].1, "CSeq"), Some("2 PRACK"));
    assert_eq!(header(&oks[1].1, "CSeq"), Some("1 INVITE"));
    h.run_until(10.0);
    assert_eq!(
        h.sent_starting("SIP/2.0 183").len(),
        3,
        "no 183 after the PRACK"
    );
}

#[test]
fn prack_for_unknown_rseq_gets_481() {
    let mut h = Harness::udp();
    h.recv(&invite_with("Supported: 100rel\n"));
    let call = incoming_call(&mut h);
    h.ep.respond(h.now, call, 180, None).unwrap();
    h.drain();
    let tag = to_tag(&h.sent_starting("SIP/2.0 180").pop().unwrap().1);
    h.recv(
        &in_dialog("PRACK", "c1", &tag, "z9hG4bKpr", 2, "PRACK", "")
            .replace("Max-Forwards: 70\n", "Max-Forwards: 70\nRAck: 9 1 INVITE\n"),
    );
    assert_eq!(h.sent_starting("SIP/2.0 481").len(), 1);
}

#[test]
fn missing_prack_fails_the_invite_with_504() {
    let mut h = Harness::udp();
    h.recv(&invite_with("Require: 100rel\n"));
    let call = incoming_call(&mut h);
    h.ep.respond(h.now, call, 180, None).unwrap();
    h.drain();
    h.run_until(40.0);
    assert_eq!(h.sent_starting("SIP/2.0 504")[0].0, 32.0);
    assert_eq!(
        h.take_events(),
        [Event::Ended {
            call,
            reason: EndReason::Timeout
        }]
    );
}
