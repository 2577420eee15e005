//! Re-INVITE and UPDATE inside an answered call: offers go to the application, answers are
//! retransmitted until ACK, and overlapping offers are refused per RFC 3261 §14.2.

mod common;

use common::*;
use phonebridge_sip::{Event, Method};

fn established(h: &mut Harness) -> (phonebridge_sip::CallHandle, String) {
    let (call, tag, _) = answered_call(h, "");
    h.take_sent();
    (call, tag)
}

/// Answers the pending offer 200 with a minimal SDP and sends what that produces.
fn accept_offer(h: &mut Harness, call: phonebridge_sip::CallHandle) {
    h.ep.answer_offer(
        h.now,
        call,
        200,
        Some(("application/sdp", b"v=0\r\n".to_vec())),
    )
    .unwrap();
    h.drain();
}

#[test]
fn hold_reinvite_is_offered_and_answered() {
    let mut h = Harness::udp();
    let (call, tag) = established(&mut h);
    let hold = SDP.replace(
        "m=audio 40000 RTP/AVP 0 8\n",
        "m=audio 40000 RTP/AVP 0 8\na=sendonly\n",
    );
    h.recv(&in_dialog(
        "INVITE",
        "c1",
        &tag,
        "z9hG4bKre1",
        2,
        "INVITE",
        &hold,
    ));
    match &h.take_events()[..] {
        [Event::Offer {
            call: c,
            method,
            body,
        }] => {
            assert_eq!(*c, call);
            assert_eq!(*method, Method::Invite);
            assert!(String::from_utf8_lossy(body).contains("a=sendonly"));
        }
        other => panic!("{other:?}"),
    }
    assert!(h.take_sent().is_empty(), "no 100 Trying before 200 ms");
    h.ep.answer_offer(
        h.now,
        call,
        200,
        Some(("application/sdp", b"v=0\r\na=recvonly\r\n".to_vec())),
    )
    .unwrap();
    h.drain();
    let ok = h.take_sent().pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200"));
    assert_eq!(header(&ok, "CSeq"), Some("2 INVITE"));
    assert!(ok.contains("a=recvonly"));
    // The 2xx is retransmitted until the re-INVITE's ACK.
    h.run_until(1.0);
    assert_eq!(h.sent_starting("SIP/2.0 200").len(), 1);
    h.recv(&in_dialog("ACK", "c1", &tag, "z9hG4bKack2", 2, "ACK", ""));
    h.run_until(10.0);
    assert_eq!(h.sent_starting("SIP/2.0 200").len(), 1);
}

#[test]
fn second_offer_while_first_pending_gets_500_with_retry_after() {
    let mut h = Harness::udp();
    let (_call, tag) = established(&mut h);
    h.recv(&in_dialog(
        "INVITE",
        "c1",
        &tag,
        "z9hG4bKre1",
        2,
        "INVITE",
        SDP,
    ));
    h.take_events();
    h.take_sent();
    h.recv(&in_dialog(
        "UPDATE",
        "c1",
        &tag,
        "z9hG4bKup1",
        3,
        "UPDATE",
        SDP,
    ));
    let r = h.take_sent().pop().unwrap();
    assert!(r.starts_with("SIP/2.0 500"), "{r}");
    let secs: u32 = header(&r, "Retry-After").unwrap().parse().unwrap();
    assert!(secs <= 10);
    assert!(h.take_events().is_empty());
}

#[test]
fn update_offer_is_answered_in_its_200() {
    let mut h = Harness::udp();
    let (call, tag) = established(&mut h);
    h.recv(&in_dialog(
        "UPDATE",
        "c1",
        &tag,
        "z9hG4bKup1",
        2,
        "UPDATE",
        SDP,
    ));
    assert!(matches!(
        h.take_events()[..],
        [Event::Offer {
            method: Method::Update,
            ..
        }]
    ));
    accept_offer(&mut h, call);
    let ok = h.take_sent().pop().unwrap();
    assert!(ok.starts_with("SIP/2.0 200"));
    assert_eq!(header(&ok, "CSeq"), Some("2 UPDATE"));
    assert_eq!(header(&ok, "Content-Type"), Some("application/sdp"));
}

#[test]
fn out_of_order_cseq_gets_500() {
    let mut h = Harness::udp();
    let (_call, tag) = established(&mut h);
    h.recv(&in_dialog("INFO", "c1", &tag, "z9hG4bKi1", 1, "INFO", ""));
    assert!(h.take_sent().pop().unwrap().starts_with("SIP/2.0 500"));
}

#[test]
fn info_is_reported_and_answered() {
    let mut h = Harness::udp();
    let (call, tag) = established(&mut h);
    let info = in_dialog("INFO", "c1", &tag, "z9hG4bKi1", 5, "INFO", "").replace(
        "Content-Length: 0",
        "Content-Type: application/dtmf-relay\nContent-Length: 24",
    ) + "Signal=5\r\nDuration=160\r\n";
    h.recv(&info);
    assert!(h.take_sent().pop().unwrap().starts_with("SIP/2.0 200"));
    match &h.take_events()[..] {
        [Event::Info {
            call: c,
            content_type,
            body,
        }] => {
            assert_eq!(*c, call);
            assert_eq!(content_type.as_deref(), Some("application/dtmf-relay"));
            assert!(body.starts_with(b"Signal=5"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn info_goes_out_inside_the_dialog() {
    let mut h = Harness::udp();
    let (call, tag) = established(&mut h);
    h.ep.send_info(
        h.now,
        call,
        "application/dtmf-relay",
        b"Signal=5\r\nDuration=160\r\n".to_vec(),
    )
    .unwrap();
    h.drain();
    let info = h.take_sent().pop().unwrap();
    assert!(
        info.starts_with("INFO sip:alice@192.0.2.10:5062 SIP/2.0"),
        "{info}"
    );
    assert_eq!(header(&info, "CSeq"), Some("1 INFO"));
    assert_eq!(
        header(&info, "Content-Type"),
        Some("application/dtmf-relay")
    );
    assert!(header(&info, "From").unwrap().contains(&tag));
    assert!(info.ends_with("Signal=5\r\nDuration=160\r\n"));
    // Only answered calls carry INFO.
    h.recv(&invite("c2", "z9hG4bKinv2", 1, SDP));
    let ringing = incoming_call(&mut h);
    assert_eq!(
        h.ep.send_info(h.now, ringing, "application/dtmf", b"5".to_vec()),
        Err(phonebridge_sip::endpoint::CommandError::WrongState)
    );
}

/// RFC 3261 §12.2.2 and RFC 3311 §5.2: a re-INVITE or UPDATE is a target refresh, so the
/// dialog's next request goes to the Contact it carried; an INFO (no target refresh) leaves
/// the target alone.
#[test]
fn reinvite_and_update_refresh_the_remote_target() {
    let mut h = Harness::udp();
    let (call, tag) = established(&mut h);
    let moved = |req: String, uri: &str| {
        req.replace(
            "Contact: <sip:alice@192.0.2.10:5062>",
            &format!("Contact: <{uri}>"),
        )
    };
    let info_uri = |h: &mut Harness| {
        h.ep.send_info(h.now, call, "application/dtmf", b"5".to_vec())
            .unwrap();
        h.drain();
        let info = h.take_sent().pop().unwrap();
        info.lines().next().unwrap().to_owned()
    };
    h.recv(&moved(
        in_dialog("INVITE", "c1", &tag, "z9hG4bKre1", 2, "INVITE", SDP),
        "sip:alice@198.51.100.7:5070;transport=udp",
    ));
    accept_offer(&mut h, call);
    h.recv(&in_dialog("ACK", "c1", &tag, "z9hG4bKack2", 2, "ACK", ""));
    h.take_sent();
    assert_eq!(
        info_uri(&mut h),
        "INFO sip:alice@198.51.100.7:5070;transport=udp SIP/2.0"
    );
    h.recv(&moved(
        in_dialog("UPDATE", "c1", &tag, "z9hG4bKup3", 3, "UPDATE", ""),
        "sip:alice@203.0.113.9",
    ));
    h.drain();
    h.take_sent();
    assert_eq!(info_uri(&mut h), "INFO sip:alice@203.0.113.9 SIP/2.0");
    h.recv(&moved(
        in_dialog("INFO", "c1", &tag, "z9hG4bKi4", 4, "INFO", ""),
        "sip:elsewhere@192.0.2.99",
    ));
    h.drain();
    h.take_sent();
    assert_eq!(info_uri(&mut h), "INFO sip:alice@203.0.113.9 SIP/2.0");
}
