//! Dial-in end to end with real peers: baresip and SIPp as phones, a headless Chromium page
//! running openvidu-browser as the interviewer, audio checked by content (a distinct tone per
//! side), and the call's webhooks and record.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

const SECRET: &str = "MY_SECRET";

/// Creates `session` and sets its dial-in code.
fn session_with_code(server: &Server, session: &str, pin: &str) {
    create_session(server, session);
    let (st, body) = api(
        server.http,
        "POST",
        &format!("/openvidu/api/sessions/{session}/dialin"),
        SECRET,
        &format!(r#"{{"pin":"{pin}"}}"#),
    );
    assert_eq!(st, 200, "{body}");
}

/// The event names the receiver accepted, in order.
fn events(hooks: &WebhookReceiver) -> Vec<String> {
    hooks
        .accepted()
        .iter()
        .map(|(_, b)| b["event"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn calls(server: &Server) -> Vec<Value> {
    let (st, body) = api(server.http, "GET", "/openvidu/api/calls", SECRET, "");
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    v["content"].as_array().unwrap().clone()
}

/// Windows (20 ms) of `samples` in which `freq` dominates.
fn share_of_windows(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = tone_windows(samples, rate, freq);
    w.iter().filter(|x| **x).count() as f64 / w.len().max(1) as f64
}

#[test]
fn a_phone_types_the_code_by_rfc4733_and_joins_heard_by_the_browser_and_hearing_it() {
    let hooks = WebhookReceiver::start();
    let server = Server::start(&["--webhook", &hooks.url, "--caller-id", "full"]);
    session_with_code(&server, "interview", "482913");
    let dir = scratch_dir("dialin-rfc4733");
    // The interviewer's microphone plays 1000 Hz; the phone plays 700 Hz.
    let browser = interviewer_listening(&server, &dir, "interview", &["700,1000", "14"]);
    // The page publishes first; then the phone calls and types the code during the greeting.
    std::thread::sleep(Duration::from_secs(5));
    let target = format!("sip:dialin@{}", server.sip);
    let (log, samples, rate) = baresip_call(
        &dir.join("phone"),
        &Phone {
            target: &target,
            user: "+15550100",
            keys: Some((Duration::from_secs(3), "482913#")),
            secs: 24,
            ..Phone::default()
        },
    );
    let heard = heard_by(browser, &format!("\nbaresip: {log}"));
    // The browser hears the phone's 700 Hz, and not its own 1000 Hz back.
    assert_hears_phone_not_itself(&heard);
    // The phone's connection shows its number (caller-id full).
    assert!(
        heard["phone"].as_str().unwrap().contains("+15550100"),
        "{heard}"
    );
    // The phone, once joined, hears the browser's 1000 Hz and never its own 700 Hz.
    assert!(
        samples.len() > rate as usize * 15,
        "recorded {}",
        samples.len()
    );
    let joined = &samples[samples.len() - rate as usize * 8..samples.len() - rate as usize];
    let browser_share = share_of_windows(joined, rate, 1000.0);
    assert!(
        browser_share > 0.8,
        "browser tone in {browser_share} of windows"
    );
    let own = share_of_windows(&samples, rate, 700.0);
    eprintln!(
        "browser power {}; phone: 1000 Hz in {:.0}% of windows once joined, 700 Hz in {:.1}% of all",
        heard["power"],
        browser_share * 100.0,
        own * 100.0
    );
    assert!(own < 0.01, "the phone hears itself in {own} of windows");
    // The call record and the webhooks, in order.
    let c = &calls(&server)[0];
    assert_eq!(c["status"], "ended", "{c}");
    assert_eq!(c["endReason"], "phoneHangup", "{c}");
    assert_eq!(c["sessionId"], "interview");
    assert_eq!(c["from"], "+15550100");
    assert_eq!(c["media"]["audioCodec"], "PCMU");
    assert!(c["connectionId"].as_str().unwrap().starts_with("con_"));
    assert!(
        c["quality"]["packetsReceived"].as_u64().unwrap() > 500,
        "{c}"
    );
    hooks.wait_for_event("sipCallEnded", |_| true);
    hooks.wait_for_event("participantLeft", |b| {
        b["connectionId"] == c["connectionId"]
    });
    let ev = events(&hooks);
    let pos = |name: &str| {
        ev.iter()
            .position(|e| e == name)
            .unwrap_or_else(|| panic!("no {name} in {ev:?}"))
    };
    assert!(pos("sipCallIncoming") < pos("sipCallAnswered"), "{ev:?}");
    assert!(pos("sipCallAnswered") < pos("sipPinAccepted"), "{ev:?}");
    assert!(pos("sipPinAccepted") < pos("sipCallEnded"), "{ev:?}");
    let accepted = hooks.accepted();
    let phone_joined = accepted
        .iter()
        .map(|(_, b)| b)
        .find(|b| b["event"] == "participantJoined" && b["platform"] == "SIP")
        .expect("participantJoined of the phone");
    assert_eq!(phone_joined["connectionId"], c["connectionId"]);
    let phone_left = accepted
        .iter()
        .map(|(_, b)| b)
        .find(|b| b["event"] == "participantLeft" && b["connectionId"] == c["connectionId"])
        .expect("participantLeft of the phone");
    assert_eq!(phone_left["reason"], "disconnect");
    let ended = accepted
        .iter()
        .map(|(_, b)| b)
        .find(|b| b["event"] == "sipCallEnded")
        .unwrap();
    assert_eq!(ended["reason"], "phoneHangup");
    assert_eq!(ended["callId"], c["id"]);
    assert!(ended["duration"].as_u64().unwrap() >= 15, "{ended}");
    // The code never reaches the log above debug.
    let logged = server.log.lock().unwrap().join("\n");
    assert!(!logged.contains("482913"), "the code was logged");
}

#[test]
fn three_wrong_codes_by_sip_info_end_the_call_with_pin_rejected() {
    let hooks = WebhookReceiver::start();
    let server = Server::start(&["--webhook", &hooks.url]);
    session_with_code(&server, "guarded", "555123");
    let dir = scratch_dir("dialin-info");
    let s = one_scenario_call(&server, &dir, "uac_info_wrong_codes.xml");
    assert_eq!((s.successful, s.failed), (1, 0), "{s:?}");
    hooks.wait_for_event("sipCallEnded", |_| true);
    let ev = events(&hooks);
    let rejected = ev.iter().filter(|e| *e == "sipPinRejected").count();
    assert_eq!(rejected, 3, "{ev:?}");
    assert!(!ev.contains(&"sipPinAccepted".to_owned()), "{ev:?}");
    assert!(!ev.contains(&"participantJoined".to_owned()), "{ev:?}");
    let accepted = hooks.accepted();
    let ended = &accepted.last().unwrap().1;
    assert_eq!(ended["reason"], "pinRejected", "{ended}");
    let c = &calls(&server)[0];
    assert_eq!(c["endReason"], "pinRejected", "{c}");
    assert_eq!(c["sessionId"], "", "{c}");
    assert!(c["connectionId"].is_null(), "{c}");
}

/// The code as in-band tones (a phone that sends no RFC 4733 events): 3 s of silence, each
/// key 125 ms on and 125 ms off, then 20 s of 700 Hz.
fn inband_code_wav(path: &std::path::Path, code: &str) {
    let rate = 8000;
    let mut samples: Vec<i16> = vec![0; rate * 3];
    for d in code.chars() {
        phonebridge_media::Tone::dtmf(rate as u32, d, 6000.0)
            .expect("a key")
            .fill(rate / 8, &mut samples);
        samples.extend(std::iter::repeat_n(0, rate / 8));
    }
    phonebridge_media::Tone::sine(rate as u32, 700.0, 12000.0).fill(rate * 20, &mut samples);
    write_wav(path, rate as u32, 1, &samples);
}

#[test]
fn a_code_typed_as_inband_tones_joins_the_session() {
    let hooks = WebhookReceiver::start();
    // A real number as the dial-in number, written as people write it.
    let server = Server::start(&[
        "--webhook",
        &hooks.url,
        "--dialin-numbers",
        "+1 (555) 010-0",
    ]);
    session_with_code(&server, "inband", "7310");
    let dir = scratch_dir("dialin-inband");
    let wav = dir.join("code.wav");
    inband_code_wav(&wav, "7310#");
    let target = format!("sip:+15550100@{}", server.sip);
    let (log, _, _) = baresip_call(
        &dir.join("phone"),
        &Phone {
            target: &target,
            source: Some(&wav),
            secs: 14,
            ..Phone::default()
        },
    );
    assert!(log.contains("Call established"), "{log}");
    hooks.wait_for_event("sipCallEnded", |_| true);
    let c = &calls(&server)[0];
    assert_eq!(c["sessionId"], "inband", "{c}");
    assert_eq!(c["endReason"], "phoneHangup", "{c}");
    assert!(c["connectionId"].as_str().is_some(), "{c}");
    let ev = events(&hooks);
    assert!(ev.contains(&"sipPinAccepted".to_owned()), "{ev:?}");
    assert!(ev.contains(&"participantJoined".to_owned()), "{ev:?}");
}

/// A baresip phone calling the dial-in number of `server`, typing `keys` two seconds in, for
/// `secs` seconds, on its own thread.
fn dial_in(
    server: &Server,
    dir: std::path::PathBuf,
    keys: Option<&'static str>,
    secs: u32,
) -> std::thread::JoinHandle<(String, Vec<i16>, u32)> {
    let target = format!("sip:dialin@{}", server.sip);
    std::thread::spawn(move || {
        baresip_call(
            &dir,
            &Phone {
                target: &target,
                keys: keys.map(|k| (Duration::from_secs(2), k)),
                secs,
                ..Phone::default()
            },
        )
    })
}

/// Waits until the call record of `server` satisfies `done`; returns it.
fn wait_for_call(server: &Server, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, Duration::from_secs(20), || {
        calls(server).first().is_some_and(&done)
    });
    calls(server)[0].clone()
}

#[test]
fn the_api_steers_a_live_call_and_closing_the_session_hangs_it_up() {
    let hooks = WebhookReceiver::start();
    let server = Server::start(&["--webhook", &hooks.url]);
    session_with_code(&server, "steered", "246810");
    let phone = dial_in(&server, scratch_dir("dialin-steered"), Some("246810#"), 20);
    let c = wait_for_call(&server, "the phone to join", |c| c["status"] == "answered");
    let id = c["id"].as_str().unwrap().to_owned();
    let path = format!("/openvidu/api/calls/{id}");
    // The session lists the phone as a SIP connection publishing audio.
    let (st, body) = api(
        server.http,
        "GET",
        "/openvidu/api/sessions/steered",
        SECRET,
        "",
    );
    assert_eq!(st, 200);
    let session: Value = serde_json::from_str(&body).unwrap();
    let conn = &session["connections"]["content"][0];
    assert_eq!(conn["type"], "SIP", "{conn}");
    assert_eq!(conn["platform"], "SIP", "{conn}");
    assert_eq!(conn["connectionId"], c["connectionId"]);
    assert_eq!(
        conn["publishers"][0]["mediaOptions"]["hasAudio"], true,
        "{conn}"
    );
    assert_eq!(
        conn["clientData"], "phone",
        "masked caller id of a short number: {conn}"
    );
    // PATCH: mute and a subset; bad input is refused and changes nothing.
    let (st, body) = api(
        server.http,
        "PATCH",
        &path,
        SECRET,
        r#"{"muted": true, "audioSubscriptions": ["str_MIC_x_con_y"]}"#,
    );
    assert_eq!(st, 200, "{body}");
    let patched: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(patched["muted"], true);
    assert_eq!(patched["audioSubscriptions"][0], "str_MIC_x_con_y");
    let (st, _) = api(server.http, "PATCH", &path, SECRET, r#"{"muted": "yes"}"#);
    assert_eq!(st, 400);
    let (st, _) = api(
        server.http,
        "PATCH",
        &path,
        SECRET,
        r#"{"audioSubscriptions": 3}"#,
    );
    assert_eq!(st, 400);
    let (st, _) = api(
        server.http,
        "POST",
        &format!("{path}/dtmf"),
        SECRET,
        r#"{"digits": "1x"}"#,
    );
    assert_eq!(st, 400);
    let (st, body) = api(
        server.http,
        "POST",
        &format!("{path}/dtmf"),
        SECRET,
        r#"{"digits": "12#"}"#,
    );
    assert_eq!(st, 200, "{body}");
    let (st, _) = api(
        server.http,
        "PATCH",
        "/openvidu/api/calls/CALL_none",
        SECRET,
        "{}",
    );
    assert_eq!(st, 404);
    assert_eq!(calls(&server)[0]["muted"], true);
    // Closing the session ends the call: BYE to the phone, reason sessionClosed.
    let (st, _) = api(
        server.http,
        "DELETE",
        "/openvidu/api/sessions/steered",
        SECRET,
        "",
    );
    assert_eq!(st, 204);
    let c = wait_for_call(&server, "the call to end", |c| c["status"] == "ended");
    assert_eq!(c["endReason"], "sessionClosed", "{c}");
    let (log, _, _) = phone.join().unwrap();
    assert!(
        log.contains("terminated"),
        "the phone was not hung up: {log}"
    );
    hooks.wait_for_event("sipCallEnded", |_| true);
    hooks.wait_for_event("participantLeft", |b| {
        b["connectionId"] == c["connectionId"]
    });
    let accepted = hooks.accepted();
    let left = accepted
        .iter()
        .map(|(_, b)| b)
        .find(|b| b["event"] == "participantLeft" && b["connectionId"] == c["connectionId"])
        .expect("participantLeft of the phone");
    assert_eq!(left["reason"], "sessionClosedByServer");
    // The REST API requires the secret for calls too.
    let (st, _) = api(server.http, "GET", "/openvidu/api/calls", "wrong", "");
    assert_eq!(st, 401);
}

#[test]
fn after_a_crash_live_calls_are_recorded_as_server_restart_and_codes_still_work() {
    let data = scratch_dir("dialin-restart-data");
    let data_arg = data.display().to_string();
    let mut server = Server::start(&["--data-dir", &data_arg]);
    session_with_code(&server, "durable", "135790");
    let phone = dial_in(&server, scratch_dir("dialin-restart"), None, 8);
    wait_for_call(&server, "the call in the voice menu", |c| {
        c["status"] == "ivr"
    });
    server.kill();
    let _ = phone.join();
    let server = Server::start(&["--data-dir", &data_arg]);
    let c = &calls(&server)[0];
    assert_eq!(c["status"], "ended", "{c}");
    assert_eq!(c["endReason"], "serverRestart", "{c}");
    let (st, body) = api(
        server.http,
        "GET",
        "/openvidu/api/sessions/durable/dialin",
        SECRET,
        "",
    );
    assert_eq!(st, 200);
    assert!(body.contains("135790"), "{body}");
    // The code joins its session even though the session itself did not survive.
    let phone = dial_in(
        &server,
        scratch_dir("dialin-restart-again"),
        Some("135790#"),
        14,
    );
    wait_for("the phone to join again", Duration::from_secs(20), || {
        calls(&server)
            .iter()
            .any(|c| c["status"] == "answered" && c["sessionId"] == "durable")
    });
    let (st, _) = api(
        server.http,
        "GET",
        "/openvidu/api/sessions/durable",
        SECRET,
        "",
    );
    assert_eq!(st, 200);
    let _ = phone.join();
}

#[test]
#[allow(clippy::disallowed_methods)] // the unpublish is placed on the recording's timeline
fn a_phone_whose_stream_is_unpublished_stays_in_the_call_but_is_no_longer_heard() {
    let server = Server::start(&[]);
    session_with_code(&server, "two-phones", "135790");
    let target = format!("sip:dialin@{}", server.sip);
    // Phone A plays 700 Hz; phone B plays 1300 Hz and records what it hears.
    let phone = |name: &'static str, user: &'static str, tone: f64| {
        let (target, dir) = (target.clone(), scratch_dir(name));
        std::thread::spawn(move || {
            baresip_call(
                &dir,
                &Phone {
                    target: &target,
                    user,
                    tone,
                    keys: Some((Duration::from_secs(2), "135790#")),
                    secs: 20,
                    ..Phone::default()
                },
            )
        })
    };
    let a = phone("dialin-unpublish-a", "+15550101", 700.0);
    let started = std::time::Instant::now();
    let b = phone("dialin-unpublish-b", "+15550102", 1300.0);
    wait_for("both phones to join", Duration::from_secs(20), || {
        calls(&server)
            .iter()
            .filter(|c| c["status"] == "answered")
            .count()
            == 2
    });
    let a_call = calls(&server)
        .into_iter()
        .find(|c| c["from"].as_str().unwrap_or("").contains("0101"))
        .expect("phone A's call");
    let a_connection = a_call["connectionId"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(4));
    // The application unpublishes phone A's stream.
    let (st, body) = api(
        server.http,
        "GET",
        &format!("/openvidu/api/sessions/two-phones/connection/{a_connection}"),
        SECRET,
        "",
    );
    assert_eq!(st, 200, "{body}");
    let conn: Value = serde_json::from_str(&body).unwrap();
    let stream = conn["publishers"][0]["streamId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, body) = api(
        server.http,
        "DELETE",
        &format!("/openvidu/api/sessions/two-phones/stream/{stream}"),
        SECRET,
        "",
    );
    assert_eq!(st, 204, "{body}");
    let unpublished_at = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    // A is still in the call (and the session), without a stream.
    let a_now = calls(&server)
        .into_iter()
        .find(|c| c["connectionId"] == a_connection.as_str())
        .unwrap();
    assert_eq!(a_now["status"], "answered", "{a_now}");
    let (_, body) = api(
        server.http,
        "GET",
        &format!("/openvidu/api/sessions/two-phones/connection/{a_connection}"),
        SECRET,
        "",
    );
    let conn: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        conn["publishers"].as_array().map(Vec::len),
        Some(0),
        "{conn}"
    );
    let (_, heard, rate) = b.join().unwrap();
    a.join().unwrap();
    // B heard A before the unpublish, and not after it.
    let at = |secs: f64| ((secs * rate as f64) as usize).min(heard.len());
    let before = &heard[at(unpublished_at - 3.0)..at(unpublished_at - 0.5)];
    let after = &heard[at(unpublished_at + 1.0)..at(unpublished_at + 6.0)];
    let (share_before, share_after) = (
        share_of_windows(before, rate, 700.0),
        share_of_windows(after, rate, 700.0),
    );
    assert!(share_before > 0.8, "B heard A in {share_before} of windows");
    assert!(
        after.len() > rate as usize * 3,
        "B's recording is too short"
    );
    assert_eq!(share_after, 0.0, "B still heard A after the unpublish");
}
