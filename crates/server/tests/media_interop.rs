//! The phone-side media path with real peers: SIPp replaying its PCMA capture (30 ms
//! packets, played twice so the stream starts over) and its RFC 2833 digit captures at the
//! echo user; baresip calling with Opus, G.722 and SRTP and hearing its own tone back.
#![allow(clippy::disallowed_methods)] // tests time what real peers do

mod support;
use support::*;

/// Digits the echo user logged, in order.
fn logged_digits(server: &Server) -> String {
    server
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("echo call digit"))
        .filter_map(|l| {
            let i = l.find("digit=")? + 6;
            l[i..].chars().next()
        })
        .collect()
}

/// One call of a SIPp scenario to the server, with SIPp's media on a port of its own.
#[test]
fn sipp_pcma_capture_and_rfc2833_digits_reach_the_echo_user() {
    let server = Server::start(&[]);
    let dir = scratch_dir("pcap-dtmf");
    let s = one_scenario_call(&server, &dir, "uac_pcap_dtmf.xml");
    assert_eq!((s.successful, s.failed), (1, 0), "{s:?}");
    // Each capture's end packet comes three times with one sequence number: one digit each.
    assert_eq!(logged_digits(&server), "482913#");
    wait_for(
        "the leg's final figures",
        std::time::Duration::from_secs(5),
        || server.metric("phonebridge_media_legs") == 0.0,
    );
    let m = |name: &str| server.metric(&format!("phonebridge_{name}"));
    // 2 × 236 PCMA packets and 7 × 10 event packets, all accepted.
    assert_eq!(m("rtp_packets_received_total"), (2 * 236 + 7 * 10) as f64);
    assert_eq!(m("dtmf_digits_total"), 7.0);
    // The second playback restarts sequence numbers and timestamps on the same SSRC: one new
    // segment, and nothing of it is lost or late.
    assert_eq!(
        m("rtp_sequence_restarts_total") + m("rtp_timestamp_jumps_total"),
        1.0
    );
    assert_eq!(m("rtp_lost_total"), 0.0);
    assert_eq!(m("rtp_late_total"), 0.0);
    // The echo went back at the caller's 30 ms packetisation: ~33 packets a second for ~18 s.
    let sent = m("rtp_packets_sent_total");
    assert!((450.0..=700.0).contains(&sent), "sent {sent}");
}

fn echo_with(codec: &str, media_params: &str, name: &str) -> (String, Server) {
    let server = Server::start(&[]);
    let dir = scratch_dir(name);
    let (log, samples, rate) = baresip_codec_call(
        &dir,
        &format!("sip:echo@{}", server.sip),
        codec,
        "",
        media_params,
        "",
    );
    assert!(log.contains("Call established"), "{log}");
    assert_echoed_tone(&samples, rate);
    let lines = server.log.lock().unwrap().join("\n");
    (lines, server)
}

#[test]
fn baresip_with_opus_hears_its_tone_back() {
    let (log, _s) = echo_with("opus/48000/2", "", "baresip-opus");
    assert!(log.contains("codec=Opus"), "{log}");
}

#[test]
fn baresip_with_g722_hears_its_tone_back() {
    let (log, _s) = echo_with("G722/16000/1", "", "baresip-g722");
    assert!(log.contains("codec=G722"), "{log}");
}

#[test]
fn baresip_with_mandatory_srtp_hears_its_tone_back() {
    let (log, server) = echo_with("PCMA", ";mediaenc=srtp-mand", "baresip-srtp");
    assert!(
        log.contains("codec=Pcma") && log.contains("srtp=true"),
        "{log}"
    );
    // Every media packet authenticated (baresip's first RTCP packets go out before its keys
    // apply and are refused; they are counted apart).
    assert_eq!(server.metric("phonebridge_rtp_srtp_failures_total"), 0.0);
}

#[test]
fn baresip_with_best_effort_srtp_hears_its_tone_back() {
    let (log, _s) = echo_with("PCMU", ";mediaenc=srtp", "baresip-srtp-be");
    assert!(log.contains("srtp=true"), "{log}");
}

/// `phonebridge call` sending digits to the echo user of another phonebridge, which must
/// report each once, by the route it was sent.
fn digits_to_echo(mode: &str, source: &str) {
    let server = Server::start(&[]);
    let out = place_call(
        &format!("sip:echo@{}", server.sip),
        "3",
        &["--digits", "482913#", "--dtmf", mode],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("sending digits 482913#"), "{text}");
    wait_for("the digits", std::time::Duration::from_secs(5), || {
        logged_digits(&server).len() >= 7
    });
    assert_eq!(logged_digits(&server), "482913#");
    let log = server.log.lock().unwrap().join("\n");
    assert_eq!(log.matches(&format!("source={source}")).count(), 7, "{log}");
}

#[test]
fn digits_sent_by_rfc4733_are_received_once_each() {
    digits_to_echo("rfc4733", "Rfc4733");
}

#[test]
fn digits_sent_by_sip_info_are_received_once_each() {
    digits_to_echo("info", "SipInfo");
}

#[test]
fn a_call_without_media_is_hung_up_after_the_media_timeout() {
    let server = Server::start(&["--media-timeout", "2"]);
    let dir = scratch_dir("silent");
    let started = std::time::Instant::now();
    let s = one_scenario_call(&server, &dir, "uac_silent.xml");
    // The BYE came (the scenario fails without it) after about two seconds.
    assert_eq!((s.successful, s.failed), (1, 0), "{s:?}");
    let took = started.elapsed().as_secs_f64();
    assert!((1.9..6.0).contains(&took), "hung up after {took:.1} s");
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("reason=\"mediaTimeout\"") || log.contains("reason=mediaTimeout"),
        "{log}"
    );
}

#[test]
fn a_trunk_that_requires_srtp_gets_no_plain_call() {
    let dir = scratch_dir("trunk-srtp");
    let conf = write_config(
        &dir,
        "[trunks.pbx]\naddress = \"127.0.0.1:5999\"\nsrtp = \"require\"\n",
    );
    let server = Server::start(&["--config", conf.to_str().unwrap()]);
    let target = format!("sip:echo@{}", server.sip);
    let (log, _, _) = baresip_codec_call(&dir.join("plain"), &target, "PCMU", "", "", "");
    assert!(
        !log.contains("Call established"),
        "a plain call from the trunk was answered: {log}"
    );
    assert!(log.contains("488"), "{log}");
    let (log, samples, rate) = baresip_codec_call(
        &dir.join("secure"),
        &target,
        "PCMU",
        "",
        ";mediaenc=srtp-mand",
        "",
    );
    assert!(log.contains("Call established"), "{log}");
    assert_echoed_tone(&samples, rate);
}
