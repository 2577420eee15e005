//! The endpoint answering calls, on virtual time with a scripted UDP peer.

mod common;

use common::*;
use phonebridge_sip::{EndReason, Event};

fn incoming(h: &mut Harness, call_id: &str) -> phonebridge_sip::CallHandle {
    h.recv(&invite(call_id, "z9hG4bKinv1", 1, SDP));
    let ev = h.take_events();
    match &ev[..] {
        [Event::IncomingCall { call, request, .. }] => {
            assert_eq!(request.body.len(), SDP.replace('\n', "\r\n").len());
            *call
        }
        other => panic!("{other:?}"),
    }
}

fn answer(h: &mut Harness, call: phonebridge_sip::CallHandle) -> String {
    h.ep.respond(
        h.now,
        call,
        200,
        Some(("application/sdp", b"v=0\r\n".to_vec())),
    )
    .unwrap();
    h.drain();
    let ok = h.sent_starting("SIP/2.0 200").pop().expect("200").1;
    to_tag(&ok)
}

#[test]
fn invite_gets_100_trying_then_answer_with_contact_and_tag() {
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    // Not answered within 200 ms: the transaction sends 100 Trying (RFC 3261 §17.2.1).
    assert!(h.sent.is_empty());
    h.run_until(0.2);
    let trying = h.sent_starting("SIP/2.0 100");
    assert_eq!(trying.len(), 1);
    assert_eq!(trying[0].0, 0.2);
    assert!(
        !header(&trying[0].1, "To").unwrap().contains("tag="),
        "100 carries no tag"
    );
    // rport: the answer goes back to the source port with received/rport filled in.
    assert!(header(&trying[0].1, "Via").unwrap().contains("rport=5062"));
    let tag = answer(&mut h, call);
    let ok = h.sent_starting("SIP/2.0 200").pop().unwrap().1;
    assert!(header(&ok, "Contact")
        .unwrap()
        .contains("sip:phonebridge@127.0.0.1:5060"));
    assert!(header(&ok, "Content-Type").unwrap() == "application/sdp");
    assert!(!tag.is_empty());
    assert!(h
        .sent
        .iter()
        .all(|(_, p, _)| p.remote.to_string() == REMOTE));
}

#[test]
fn retransmitted_invite_is_absorbed_with_the_last_response() {
    let mut h = Harness::udp();
    let _call = incoming(&mut h, "c1");
    // Before any response, a retransmission is absorbed silently.
    h.recv(&invite("c1", "z9hG4bKinv1", 1, SDP));
    assert!(
        h.take_events().is_empty(),
        "no second call for a retransmission"
    );
    assert!(h.sent.is_empty());
    h.run_until(0.2);
    // After the 100 Trying, a retransmission gets it again.
    h.recv(&invite("c1", "z9hG4bKinv1", 1, SDP));
    assert_eq!(h.sent_starting("SIP/2.0 100").len(), 2);
    assert_eq!(h.ep.stats().retransmissions_absorbed, 2);
}

#[test]
fn a_call_answered_at_once_gets_no_100_trying() {
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    answer(&mut h, call);
    h.run_until(1.0);
    assert!(h.sent_starting("SIP/2.0 100").is_empty());
}

#[test]
fn answer_is_retransmitted_until_ack() {
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    let tag = answer(&mut h, call);
    h.run_until(8.0);
    let times: Vec<f64> = h
        .sent_starting("SIP/2.0 200")
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(times, [0.0, 0.5, 1.5, 3.5, 7.5]);
    h.recv(&in_dialog("ACK", "c1", &tag, "z9hG4bKack1", 1, "ACK", ""));
    assert_eq!(h.take_events(), [Event::Confirmed { call, body: vec![] }]);
    h.run_until(60.0);
    assert_eq!(
        h.sent_starting("SIP/2.0 200").len(),
        5,
        "no 2xx after the ACK"
    );
    assert_eq!(h.ep.active_calls(), 1);
}

#[test]
fn lost_ack_ends_call_with_bye_after_64_t1() {
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    answer(&mut h, call);
    h.run_until(40.0);
    let times: Vec<f64> = h
        .sent_starting("SIP/2.0 200")
        .iter()
        .map(|(t, _)| *t)
        .collect();
    // T1 doubling capped at T2 = 4 s, until 64*T1 = 32 s.
    assert_eq!(
        times,
        [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    let bye = h.sent_starting("BYE ");
    // The BYE goes out at 32 s and its own transaction retransmits it (no answer here).
    assert_eq!(bye[0].0, 32.0);
    assert_eq!(
        bye.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [32.0, 32.5, 33.5, 35.5, 39.5]
    );
    assert!(bye.iter().all(|(_, m)| *m == bye[0].1));
    assert!(bye[0]
        .1
        .starts_with("BYE sip:alice@192.0.2.10:5062 SIP/2.0"));
    assert!(header(&bye[0].1, "To").unwrap().contains("tag=a1"));
    assert!(h.take_events().contains(&Event::Ended {
        call,
        reason: EndReason::NoAck
    }));
}

#[test]
fn cancel_before_answer_gets_200_and_487() {
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    h.recv(
        &invite("c1", "z9hG4bKinv1", 1, "")
            .replace("INVITE sip:", "CANCEL sip:")
            .replace("1 INVITE", "1 CANCEL"),
    );
    assert_eq!(
        h.take_events(),
        [Event::Ended {
            call,
            reason: EndReason::Cancelled
        }]
    );
    let ok = h.sent_starting("SIP/2.0 200");
    assert_eq!(ok.len(), 1);
    assert!(header(&ok[0].1, "CSeq").unwrap().ends_with("CANCEL"));
    let r487 = h.sent_starting("SIP/2.0 487");
    assert_eq!(r487.len(), 1);
    let tag = to_tag(&r487[0].1);
    // The ACK for the 487 stops its retransmission (same branch as the INVITE).
    h.recv(
        &in_dialog("ACK", "c1", &tag, "z9hG4bKinv1", 1, "ACK", "").replace(
            "ACK sip:phonebridge@127.0.0.1:5060",
            "ACK sip:echo@127.0.0.1",
        ),
    );
    h.run_until(40.0);
    assert_eq!(h.sent_starting("SIP/2.0 487").len(), 1);
    assert_eq!(h.ep.active_transactions(), 0, "every transaction ends");
}

#[test]
fn cancel_racing_the_200_leaves_the_call_up() {
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    let tag = answer(&mut h, call);
    h.recv(
        &invite("c1", "z9hG4bKinv1", 1, "")
            .replace("INVITE sip:", "CANCEL sip:")
            .replace("1 INVITE", "1 CANCEL"),
    );
    assert!(h.sent_starting("SIP/2.0 487").is_empty());
    assert_eq!(
        h.sent_starting("SIP/2.0 200").len(),
        2,
        "the 2xx and the 200 for CANCEL"
    );
    h.recv(&in_dialog("ACK", "c1", &tag, "z9hG4bKack1", 1, "ACK", ""));
    assert_eq!(h.take_events(), [Event::Confirmed { call, body: vec![] }]);
}

#[test]
fn cancel_for_unknown_invite_gets_481() {
    let mut h = Harness::udp();
    h.recv(
        &invite("nope", "z9hG4bKx", 1, "")
            .replace("INVITE sip:", "CANCEL sip:")
            .replace("1 INVITE", "1 CANCEL"),
    );
    assert_eq!(h.sent_starting("SIP/2.0 481").len(), 1);
}

#[test]
fn bye_from_peer_ends_call() {
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    let tag = answer(&mut h, call);
    h.recv(&in_dialog("ACK", "c1", &tag, "z9hG4bKack1", 1, "ACK", ""));
    h.recv(&in_dialog("BYE", "c1", &tag, "z9hG4bKbye1", 2, "BYE", ""));
    let ok = h.sent_starting("SIP/2.0 200").pop().unwrap().1;
    assert!(header(&ok, "CSeq").unwrap().ends_with("BYE"));
    assert!(h.take_events().contains(&Event::Ended {
        call,
        reason: EndReason::RemoteBye
    }));
    // A retransmitted BYE gets the same 200 from its transaction, not a 481.
    h.recv(&in_dialog("BYE", "c1", &tag, "z9hG4bKbye1", 2, "BYE", ""));
    assert!(h.sent_starting("SIP/2.0 481").is_empty());
    assert_eq!(h.ep.active_calls(), 0);
    // Once the transactions have waited out their timers nothing is left to wake for: the
    // ended call's session-refresh deadline went with it.
    h.run_until(40.0);
    assert_eq!(h.ep.active_transactions(), 0);
    assert_eq!(h.ep.poll_timeout(), None);
}

#[test]
fn a_malformed_contact_is_refused_where_it_is_read_and_ignored_where_not() {
    let bad_contact = |m: &str| {
        m.replace(
            "Contact: <sip:alice@192.0.2.10:5062>",
            "Contact: <sip:alice@>",
        )
    };
    // A new dialog's remote target: refused.
    let mut h = Harness::udp();
    h.recv(&bad_contact(&invite("c1", "z9hG4bKinv0", 1, SDP)));
    let r = h.take_sent().pop().unwrap();
    assert!(r.starts_with("SIP/2.0 400 Bad Contact header"), "{r}");
    // A BYE reads no Contact: it still ends the call.
    let call = incoming(&mut h, "c2");
    let tag = answer(&mut h, call);
    h.recv(&in_dialog("ACK", "c2", &tag, "z9hG4bKack2", 1, "ACK", ""));
    h.recv(&bad_contact(&in_dialog(
        "BYE",
        "c2",
        &tag,
        "z9hG4bKbye2",
        2,
        "BYE",
        "",
    )));
    let ok = h.sent_starting("SIP/2.0 200").pop().unwrap().1;
    assert!(header(&ok, "CSeq").unwrap().ends_with("BYE"), "{ok}");
    assert!(h.take_events().contains(&Event::Ended {
        call,
        reason: EndReason::RemoteBye
    }));
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn requests_for_unknown_dialogs_get_481() {
    let mut h = Harness::udp();
    h.recv(&in_dialog("BYE", "ghost", "t", "z9hG4bKb", 2, "BYE", ""));
    h.recv(&in_dialog("INFO", "ghost", "t", "z9hG4bKi", 3, "INFO", ""));
    assert_eq!(h.sent_starting("SIP/2.0 481").len(), 2);
}

#[test]
fn local_hangup_sends_bye_to_contact_over_the_same_flow() {
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    let tag = answer(&mut h, call);
    h.recv(&in_dialog("ACK", "c1", &tag, "z9hG4bKack1", 1, "ACK", ""));
    h.take_events();
    h.ep.hangup(h.now, call).unwrap();
    h.drain();
    let bye = h.sent_starting("BYE ").pop().unwrap().1;
    assert!(header(&bye, "From")
        .unwrap()
        .contains(&format!("tag={tag}")));
    assert_eq!(header(&bye, "CSeq"), Some("1 BYE"));
    assert_eq!(
        h.take_events(),
        [Event::Ended {
            call,
            reason: EndReason::LocalHangup
        }]
    );
}

#[test]
fn hangup_before_answer_rejects_with_480() {
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    h.ep.hangup(h.now, call).unwrap();
    h.drain();
    assert_eq!(h.sent_starting("SIP/2.0 480").len(), 1);
}

#[test]
fn options_lists_what_we_allow_accept_and_support() {
    let mut h = Harness::udp();
    h.recv("OPTIONS sip:anyone@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKo\nMax-Forwards: 70\nFrom: <sip:a@192.0.2.10>;tag=x\nTo: <sip:anyone@127.0.0.1>\nCall-ID: o1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    let ok = h.sent_starting("SIP/2.0 200").pop().unwrap().1;
    assert!(header(&ok, "Allow").unwrap().contains("INVITE"));
    assert!(header(&ok, "Accept").unwrap().contains("application/sdp"));
    assert!(header(&ok, "Supported").unwrap().contains("100rel"));
}

#[test]
fn transactions_that_wind_down_together_end_in_one_wake_up() {
    use std::time::Duration;
    let mut h = Harness::udp();
    let options = |i: u32| {
        format!("OPTIONS sip:x@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKw{i}\nMax-Forwards: 70\nFrom: <sip:a@192.0.2.10>;tag=x\nTo: <sip:x@127.0.0.1>\nCall-ID: w{i}\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")
    };
    // Ten answered requests 10 ms apart: each transaction then only absorbs retransmissions
    // for 64*T1 (Timer J).
    for i in 0..10 {
        h.recv(&options(i));
        h.now += Duration::from_millis(10);
    }
    assert_eq!(h.sent_starting("SIP/2.0 200").len(), 10);
    assert_eq!(h.ep.active_transactions(), 10);
    // Timer J is never early: nothing ends before 32 s after the first answer.
    let first = h.ep.poll_timeout().unwrap();
    assert!(first >= h.t0 + Duration::from_secs(32));
    // They end on a quarter-second grid: at most two wake-ups for the ten, the last at most
    // a quarter second after the last Timer J.
    let mut wakes = Vec::new();
    while let Some(t) = h.ep.poll_timeout() {
        h.now = t;
        h.ep.handle_timeout(t);
        wakes.push(t);
        assert!(wakes.len() <= 2, "one wake-up per step: {wakes:?}");
    }
    assert_eq!(h.ep.active_transactions(), 0);
    let last = *wakes.last().unwrap();
    assert!(last >= h.t0 + Duration::from_millis(90) + Duration::from_secs(32));
    assert!(last <= h.t0 + Duration::from_millis(90) + Duration::from_millis(32_250));
}

#[test]
fn unknown_method_gets_501_and_known_unserved_gets_405() {
    let mut h = Harness::udp();
    let req = |m: &str| {
        format!("{m} sip:x@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK{m}\nMax-Forwards: 70\nFrom: <sip:a@192.0.2.10>;tag=x\nTo: <sip:x@127.0.0.1>\nCall-ID: {m}1\nCSeq: 1 {m}\nContent-Length: 0\n\n")
    };
    h.recv(&req("FOO"));
    h.recv(&req("SUBSCRIBE"));
    let sent = h.take_sent();
    assert!(sent[0].starts_with("SIP/2.0 501"));
    assert!(sent[1].starts_with("SIP/2.0 405"));
    assert!(header(&sent[1], "Allow").is_some());
}

#[test]
fn too_many_calls_get_503_with_retry_after() {
    let mut h = Harness::new(phonebridge_sip::EndpointConfig {
        max_calls: 1,
        ..Default::default()
    });
    h.peer.remote = "127.0.0.1:5062".parse().unwrap();
    incoming(&mut h, "c1");
    h.recv(&invite("c2", "z9hG4bKinv2", 1, SDP));
    let busy = h.sent_starting("SIP/2.0 503").pop().unwrap().1;
    assert_eq!(header(&busy, "Retry-After"), Some("5"));
}

#[test]
fn scanners_get_no_answer() {
    let mut h = Harness::udp();
    h.recv(&invite("s1", "z9hG4bKs", 1, "").replace(
        "Max-Forwards: 70",
        "User-Agent: friendly-scanner\nMax-Forwards: 70",
    ));
    assert!(h.sent.is_empty());
    assert!(h.events.is_empty());
    assert_eq!(h.ep.stats().dropped_scanner, 1);
}

#[test]
fn floods_from_untrusted_sources_are_cut_off() {
    let mut h = Harness::new(phonebridge_sip::EndpointConfig::default());
    for i in 0..200 {
        h.recv(&format!("OPTIONS sip:x@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKf{i}\nMax-Forwards: 70\nFrom: <sip:a@192.0.2.10>;tag=x\nTo: <sip:x@127.0.0.1>\nCall-ID: f{i}\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"));
    }
    let answered = h.sent_starting("SIP/2.0 200").len();
    assert_eq!(answered, 60, "the burst, then nothing");
    assert_eq!(h.ep.stats().dropped_flood, 140);
}

#[test]
fn invite_without_sdp_gets_offer_in_200_and_answer_in_ack() {
    let mut h = Harness::udp();
    h.recv(&invite("c1", "z9hG4bKinv1", 1, ""));
    let call = match &h.take_events()[..] {
        [Event::IncomingCall { call, request, .. }] => {
            assert!(request.body.is_empty());
            *call
        }
        other => panic!("{other:?}"),
    };
    let tag = answer(&mut h, call);
    h.recv(&in_dialog("ACK", "c1", &tag, "z9hG4bKack1", 1, "ACK", SDP));
    match &h.take_events()[..] {
        [Event::Confirmed { body, .. }] => {
            assert!(String::from_utf8_lossy(body).contains("m=audio 40000"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_request_gets_400_naming_the_fault() {
    let mut h = Harness::udp();
    h.recv("INVITE sip:echo@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKm\nMax-Forwards: 70\nFrom: <sip:a@192.0.2.10>;tag=x\nTo: <sip:echo@127.0.0.1>\nCall-ID: m1\nCSeq: 99999999999 INVITE\nContent-Length: 0\n\n");
    let r = h.take_sent().pop().unwrap();
    assert!(r.starts_with("SIP/2.0 400 Bad CSeq header"), "{r}");
    assert!(header(&r, "To").unwrap().contains("tag="));
}

#[test]
fn responses_matching_nothing_are_dropped() {
    let mut h = Harness::udp();
    h.recv("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\nVia: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23\nCall-ID: bcast\nCSeq: 35 INVITE\nFrom: sip:user@example.com;tag=11141343\nTo: sip:user@example.edu;tag=2229\nContent-Length: 0\n\n");
    assert!(h.sent.is_empty());
    assert_eq!(h.ep.stats().unmatched_responses, 1);
}

#[test]
fn rfc2543_peer_without_branch_cookie_is_matched_by_its_fields() {
    let mut h = Harness::udp();
    let old = |method: &str, to_tag: &str| {
        format!(
            "{method} sip:echo@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062\nFrom: <sip:old@192.0.2.10>;tag=o1\nTo: <sip:echo@127.0.0.1>{to_tag}\nCall-ID: legacy-1\nCSeq: 7 {method}\nContact: <sip:old@192.0.2.10:5062>\nContent-Length: 0\n\n"
        )
    };
    h.recv(&old("INVITE", ""));
    let call = incoming_call(&mut h);
    // The retransmission (same Request-URI, From tag, Call-ID, CSeq, Via) is absorbed.
    h.recv(&old("INVITE", ""));
    assert!(h.take_events().is_empty());
    h.ep.hangup(h.now, call).unwrap();
    h.drain();
    let r480 = h.sent_starting("SIP/2.0 480").pop().unwrap().1;
    let tag = format!(";tag={}", to_tag(&r480));
    // The ACK carries the To tag of our 480 and matches the INVITE transaction (§17.2.3).
    h.recv(&old("ACK", &tag));
    h.run_until(40.0);
    assert_eq!(
        h.sent_starting("SIP/2.0 480").len(),
        1,
        "the ACK stopped the 480's retransmissions"
    );
    assert_eq!(h.ep.active_transactions(), 0);
}

#[test]
fn a_bye_before_the_ack_ends_the_call_and_the_2xx_retransmissions() {
    // The peer's ACK was lost; its BYE shows it has the 2xx, which need not be sent again.
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    let tag = answer(&mut h, call);
    h.run_until(0.7);
    h.recv(&in_dialog("BYE", "c1", &tag, "z9hG4bKbye1", 2, "BYE", ""));
    assert!(h.take_events().contains(&Event::Ended {
        call,
        reason: EndReason::RemoteBye
    }));
    h.run_until(40.0);
    let oks: Vec<(f64, String)> = h.sent_starting("SIP/2.0 200");
    let invite_oks: Vec<f64> = oks
        .iter()
        .filter(|(_, m)| header(m, "CSeq").unwrap().ends_with("INVITE"))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(invite_oks, [0.0, 0.5], "no 2xx after the BYE");
    assert_eq!(h.ep.active_calls(), 0);
    assert_eq!(h.ep.active_transactions(), 0);
}

#[test]
fn a_malformed_ack_gets_no_answer() {
    // An ACK is never answered, even when its request line cannot be read (an empty
    // Request-URI here) or a header is broken: the request is dropped and counted.
    let mut h = Harness::udp();
    let tail = "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKa\nMax-Forwards: 70\nFrom: <sip:a@192.0.2.10>;tag=x\nTo: <sip:echo@127.0.0.1>;tag=y\nCall-ID: a1\n";
    h.recv(&format!(
        "ACK  SIP/2.0\n{tail}CSeq: 1 ACK\nContent-Length: 0\n\n"
    ));
    h.recv(&format!(
        "ACK sip:echo@127.0.0.1 SIP/2.0\n{tail}CSeq: 99999999999 ACK\nContent-Length: 0\n\n"
    ));
    assert_eq!(h.take_sent(), Vec::<String>::new());
    assert_eq!(h.ep.stats().dropped_malformed, 2);
    // The same broken request line on an INVITE is answered.
    h.recv(&format!(
        "INVITE  SIP/2.0\n{tail}CSeq: 1 INVITE\nContent-Length: 0\n\n"
    ));
    let r = h.take_sent().pop().expect("an answer");
    assert!(r.starts_with("SIP/2.0 400"), "{r}");
}

#[test]
fn a_forked_copy_of_an_invite_gets_482_and_no_second_call() {
    // A forking proxy (or a loop) delivers the same INVITE twice, with its own branch on
    // each copy: one call is set up, the other copy is refused (RFC 3261 §8.2.2.2).
    let mut h = Harness::udp();
    let call = incoming(&mut h, "c1");
    let copy = invite("c1", "z9hG4bKfork2", 1, SDP);
    h.recv(&copy);
    assert_eq!(h.take_events(), [], "no second call");
    let refused = h.sent_starting("SIP/2.0 482");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].1.contains("branch=z9hG4bKfork2"),
        "{}",
        refused[0].1
    );
    assert_eq!(h.ep.stats().rejected_merged, 1);
    // Its retransmission is absorbed by its own transaction: the same 482 again.
    h.recv(&copy);
    assert_eq!(h.sent_starting("SIP/2.0 482").len(), 2);
    assert_eq!(h.ep.stats().rejected_merged, 1);
    // The first copy's call goes on; a new INVITE of the caller (next CSeq, as after a
    // challenge) is not a copy.
    answer(&mut h, call);
    assert_eq!(h.ep.active_calls(), 1);
    h.recv(&invite("c1", "z9hG4bKnext", 2, SDP));
    assert!(matches!(&h.take_events()[..], [Event::IncomingCall { .. }]));
    assert_eq!(h.ep.stats().rejected_merged, 1);
}
