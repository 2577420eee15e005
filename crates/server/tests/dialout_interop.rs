//! Dial-out end to end: the REST API places a call for a session, SIPp plays the callee (early
//! media then an answer, busy, ringing until cancelled, a trunk that challenges), a headless
//! Chromium page running openvidu-browser listens to the phone, and the call's record and
//! webhooks follow every step.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

const SECRET: &str = "MY_SECRET";

/// POSTs a call for `session`; the status and the body as JSON.
fn place(server: &Server, session: &str, body: &str) -> (u16, Value) {
    let (st, text) = api(
        server.http,
        "POST",
        &format!("/openvidu/api/sessions/{session}/calls"),
        SECRET,
        body,
    );
    (st, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn call(server: &Server, id: &str) -> Value {
    let (st, body) = api(
        server.http,
        "GET",
        &format!("/openvidu/api/calls/{id}"),
        SECRET,
        "",
    );
    assert_eq!(st, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `DELETE /calls/{id}`: the status and the body.
fn hang_up(server: &Server, id: &str) -> (u16, String) {
    api(
        server.http,
        "DELETE",
        &format!("/openvidu/api/calls/{id}"),
        SECRET,
        "",
    )
}

/// Places a call for `session` (the body's fields after `to`: `more`) to a new SIPp callee
/// playing `scenario`, in the scratch directory `name`; the callee, its directory and the
/// call id.
fn call_callee(
    server: &Server,
    session: &str,
    name: &str,
    scenario: &str,
    more: &str,
) -> (std::process::Child, std::path::PathBuf, String) {
    let dir = scratch_dir(name);
    let (sipp, port) = callee(&dir, scenario);
    let (st, placed) = place(
        server,
        session,
        &format!(r#"{{"to":"sip:bob@127.0.0.1:{port}"{more}}}"#),
    );
    assert_eq!(st, 201, "{placed}");
    let id = placed["id"].as_str().unwrap().to_owned();
    (sipp, dir, id)
}

/// A call for `session` to a new SIPp callee that rings until cancelled, once its 180 came.
fn ringing_call(
    server: &Server,
    session: &str,
    name: &str,
) -> (std::process::Child, std::path::PathBuf, String) {
    let (sipp, dir, id) = call_callee(server, session, name, "uas_ring_until_cancel.xml", "");
    wait_for("the 180", Duration::from_secs(5), || {
        call(server, &id)["sipStatus"] == 180
    });
    (sipp, dir, id)
}

/// Waits until the call's record has `status`.
fn wait_status(server: &Server, id: &str, status: &str, limit: Duration) -> Value {
    wait_for(&format!("call {id} {status}"), limit, || {
        call(server, id)["status"] == status
    });
    call(server, id)
}

/// The `sip*` webhook events of call `id`, in the order received.
fn sip_events(hooks: &WebhookReceiver, id: &str) -> Vec<Value> {
    hooks
        .accepted()
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| b["callId"] == id)
        .collect()
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["event"].as_str()).collect()
}

/// A SIPp callee for one call, playing `scenario` from tests/sipp/.
fn callee(dir: &std::path::Path, scenario: &str) -> (std::process::Child, u16) {
    carrier(dir, &["-sf", &scenario_path(scenario)], "u1")
}

/// Writes SIPp `scenario` into `dir` with each placeholder replaced by its capture's path.
fn scenario_with(
    dir: &std::path::Path,
    scenario: &str,
    captures: &[(&str, &std::path::Path)],
) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(scenario_path(scenario)).unwrap();
    for (placeholder, path) in captures {
        text = text.replace(placeholder, &path.display().to_string());
    }
    let file = dir.join(scenario);
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn a_placed_call_is_heard_in_the_session_during_early_media_and_after_the_answer() {
    let hooks = WebhookReceiver::start();
    let server = Server::start(&["--webhook", &hooks.url, "--caller-id", "full"]);
    create_session(&server, "interview");
    let dir = scratch_dir("dialout-early");
    // The callee plays 700 Hz as early media, then 1300 Hz once it answers.
    let early = dir.join("early.pcap");
    let answered = dir.join("answered.pcap");
    write_tone_pcap(&early, 700.0, 6.0, 0x1111_1111, ToneCodec::Pcma);
    write_tone_pcap(&answered, 1300.0, 20.0, 0x2222_2222, ToneCodec::Pcma);
    let scenario_file = scenario_with(
        &dir,
        "uas_early_media_tones.xml",
        &[("EARLY_PCAP", &early), ("ANSWERED_PCAP", &answered)],
    );
    // The interviewer publishes 1000 Hz and listens to the phone for 12 s once it appears.
    let browser = interviewer_listening(&server, &dir, "interview", &["700,1300", "0", "12"]);
    std::thread::sleep(Duration::from_secs(5));
    let (sipp, port) = carrier(&dir, &["-sf", scenario_file.to_str().unwrap()], "u1");
    let (st, placed) = place(
        &server,
        "interview",
        &format!(
            r#"{{"to":"sip:+15550100@127.0.0.1:{port}","displayName":"Acme Interviews","data":"candidate-7"}}"#
        ),
    );
    assert_eq!(st, 201, "{placed}");
    assert_eq!(placed["status"], "ringing");
    assert_eq!(placed["direction"], "outbound");
    assert_eq!(placed["to"], format!("sip:+15550100@127.0.0.1:{port}"));
    let id = placed["id"].as_str().unwrap().to_owned();
    // Early media: the phone is a participant before the answer.
    let early_rec = wait_status(&server, &id, "early", Duration::from_secs(5));
    assert_eq!(early_rec["sipStatus"], 183, "{early_rec}");
    assert!(early_rec["answeredAt"].is_null());
    assert_eq!(early_rec["media"]["audioCodec"], "PCMA");
    assert!(
        early_rec["connectionId"].is_string(),
        "an early call is a participant: {early_rec}"
    );
    let answered_rec = wait_status(&server, &id, "answered", Duration::from_secs(10));
    assert_eq!(answered_rec["sipStatus"], 200);
    assert_eq!(
        answered_rec["connectionId"], early_rec["connectionId"],
        "the participant that joined with the early media stays"
    );
    let heard = heard_by(browser, "");
    // The participant's data: the application's `data` and the callee's number.
    let data = heard["phone"].as_str().unwrap();
    assert!(
        data.contains("candidate-7") && data.contains("+15550100"),
        "{heard}"
    );
    // Each 100 ms window: which tone dominates.
    let timeline: Vec<(f64, f64)> = heard["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["700"].as_f64().unwrap(), w["1300"].as_f64().unwrap()))
        .collect();
    let early_windows: Vec<usize> = (0..timeline.len())
        .filter(|&i| timeline[i].0 > 1e-5 && timeline[i].0 > 100.0 * timeline[i].1)
        .collect();
    let answered_windows: Vec<usize> = (0..timeline.len())
        .filter(|&i| timeline[i].1 > 1e-5 && timeline[i].1 > 100.0 * timeline[i].0)
        .collect();
    eprintln!(
        "browser: early tone in {} windows, answered tone in {} of {}",
        early_windows.len(),
        answered_windows.len(),
        timeline.len()
    );
    assert!(
        early_windows.len() >= 10,
        "early media not heard in the session: {heard}"
    );
    assert!(
        answered_windows.len() >= 40,
        "the answered call not heard in the session: {heard}"
    );
    assert!(
        early_windows.last() < answered_windows.first(),
        "early media heard after the answer: {heard}"
    );
    // A live call's record carries its media figures as they are now.
    let live = call(&server, &id);
    assert!(
        live["quality"]["packetsReceived"].as_u64().unwrap() > 300,
        "{live}"
    );
    // The mix counters: the phone's frames went up, the browser's packets came down.
    assert!(server.metric("phonebridge_mix_frames_up_total") > 300.0);
    assert!(server.metric("phonebridge_mix_packets_down_total") > 300.0);
    // Hang up through the API: a BYE, the record and the webhooks.
    let (st, body) = hang_up(&server, &id);
    assert_eq!(st, 200, "{body}");
    assert_eq!(finish(sipp, &dir), (1, 0), "the callee saw the whole call");
    let ended = call(&server, &id);
    assert_eq!(ended["status"], "ended");
    assert_eq!(ended["endReason"], "callDeleted");
    assert_eq!(ended["sipStatus"], 200);
    assert!(ended["quality"]["packetsReceived"].as_u64().unwrap() > 500);
    hooks.wait_for_event("sipCallEnded", |b| b["callId"] == id.as_str());
    let events = sip_events(&hooks, &id);
    assert_eq!(
        names(&events),
        ["sipCallRinging", "sipCallAnswered", "sipCallEnded"],
        "{events:?}"
    );
    assert_eq!(events[0]["sipStatus"], 183);
    assert_eq!(events[0]["earlyMedia"], true);
    assert_eq!(events[2]["reason"], "callDeleted");
    // The participant joined with the early media, before the answer, and left at the end
    // (the session's own events go out beside the call's: the last may come a moment later).
    let connection = ended["connectionId"].as_str().unwrap();
    hooks.wait_for_event("participantLeft", |b| b["connectionId"] == connection);
    let all: Vec<Value> = hooks.accepted().into_iter().map(|(_, b)| b).collect();
    let at = |event: &str, pred: &dyn Fn(&Value) -> bool| {
        all.iter()
            .position(|b| b["event"] == event && pred(b))
            .unwrap_or_else(|| panic!("{event} missing: {all:?}"))
    };
    let joined = at("participantJoined", &|b| b["connectionId"] == connection);
    let answered_at = at("sipCallAnswered", &|b| b["callId"] == id.as_str());
    let left = at("participantLeft", &|b| b["connectionId"] == connection);
    assert!(joined < answered_at && answered_at < left, "{all:?}");
}

#[test]
fn a_busy_callee_ends_the_call_with_busy_and_its_status() {
    let hooks = WebhookReceiver::start();
    let server = Server::start(&["--webhook", &hooks.url]);
    create_session(&server, "s1");
    let (sipp, dir, id) = call_callee(&server, "s1", "dialout-busy", "uas_busy.xml", "");
    let id = id.as_str();
    let ended = wait_status(&server, id, "ended", Duration::from_secs(10));
    assert_eq!(ended["endReason"], "busy", "{ended}");
    assert_eq!(ended["sipStatus"], 486);
    assert!(ended["connectionId"].is_null(), "never joined: {ended}");
    assert_eq!(finish(sipp, &dir), (1, 0));
    hooks.wait_for_event("sipCallEnded", |b| b["callId"] == id);
    let events = sip_events(&hooks, id);
    assert_eq!(names(&events), ["sipCallRinging", "sipCallEnded"]);
    assert_eq!(events[0]["sipStatus"], 180);
    assert_eq!(events[0]["earlyMedia"], false);
    assert_eq!(events[1]["reason"], "busy");
    assert_eq!(events[1]["sipStatus"], 486);
}

#[test]
fn ring_timeout_delete_and_a_closed_session_cancel_a_ringing_call() {
    let server = Server::start(&[]);
    create_session(&server, "s2");
    // No answer within ringTimeout: CANCEL, `noAnswer`.
    let (sipp, dir, id) = call_callee(
        &server,
        "s2",
        "dialout-ring-timeout",
        "uas_ring_until_cancel.xml",
        r#","ringTimeout":2"#,
    );
    let ended = wait_status(&server, &id, "ended", Duration::from_secs(8));
    assert_eq!(ended["endReason"], "noAnswer", "{ended}");
    assert_eq!(ended["sipStatus"], 487);
    let took = ended["endedAt"].as_u64().unwrap() - ended["createdAt"].as_u64().unwrap();
    assert!((1900..4000).contains(&took), "cancelled after {took} ms");
    assert_eq!(finish(sipp, &dir), (1, 0), "the callee got the CANCEL");
    // DELETE while it rings: CANCEL, `callDeleted`.
    let (sipp, dir, id) = ringing_call(&server, "s2", "dialout-delete-ringing");
    let (st, body) = hang_up(&server, &id);
    assert_eq!(st, 200, "{body}");
    let deleted: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(deleted["status"], "ended");
    assert_eq!(deleted["endReason"], "callDeleted");
    assert_eq!(deleted["sipStatus"], 487);
    assert_eq!(finish(sipp, &dir), (1, 0), "the callee got the CANCEL");
    // The session closes while it rings: CANCEL, `sessionClosed`.
    let (sipp, dir, id) = ringing_call(&server, "s2", "dialout-session-closed-ringing");
    let (st, _) = api(
        server.http,
        "DELETE",
        "/openvidu/api/sessions/s2",
        SECRET,
        "",
    );
    assert_eq!(st, 204);
    let ended = wait_status(&server, &id, "ended", Duration::from_secs(5));
    assert_eq!(ended["endReason"], "sessionClosed", "{ended}");
    assert_eq!(ended["sipStatus"], 487);
    assert_eq!(finish(sipp, &dir), (1, 0), "the callee got the CANCEL");
}

#[test]
fn a_number_is_dialled_through_the_trunk_which_challenges() {
    let dir = scratch_dir("dialout-trunk");
    let (sipp, port) = callee(&dir, "uas_auth.xml");
    let config = write_config(&dir, format!(
            "[trunks.carrier]\naddress = \"127.0.0.1:{port}\"\nusername = \"trunkuser\"\npassword = \"trunkpass\"\nfrom = \"sip:+15550199@carrier.example\"\n"
        ));
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    create_session(&server, "s3");
    let (st, placed) = place(&server, "s3", r#"{"to":"+1 555 0100","trunk":"carrier"}"#);
    assert_eq!(st, 201, "{placed}");
    assert_eq!(placed["from"], "+15550199");
    let id = placed["id"].as_str().unwrap();
    let answered = wait_status(&server, id, "answered", Duration::from_secs(10));
    assert!(answered["connectionId"]
        .as_str()
        .unwrap()
        .starts_with("con_"));
    // The phone is a participant of the session.
    let (_, session) = api(server.http, "GET", "/openvidu/api/sessions/s3", SECRET, "");
    let session: Value = serde_json::from_str(&session).unwrap();
    let conn = session["connections"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["connectionId"] == answered["connectionId"])
        .cloned()
        .unwrap_or_else(|| panic!("the phone's connection is missing: {session}"));
    assert_eq!(conn["type"], "SIP", "{conn}");
    assert_eq!(conn["publishers"].as_array().unwrap().len(), 1, "{conn}");
    // Closing the session hangs the call up.
    let (st, _) = api(
        server.http,
        "DELETE",
        "/openvidu/api/sessions/s3",
        SECRET,
        "",
    );
    assert_eq!(st, 204);
    let ended = wait_status(&server, id, "ended", Duration::from_secs(5));
    assert_eq!(ended["endReason"], "sessionClosed", "{ended}");
    assert_eq!(
        finish(sipp, &dir),
        (1, 0),
        "the trunk saw a good digest and the BYE"
    );
}

#[test]
fn a_call_placed_over_a_tcp_trunk_keeps_its_connection_while_it_idles() {
    // Connections idle out after 1 s unless they serve something; the call's does, and the
    // BYE that ends it goes down the same connection.
    let dir = scratch_dir("dialout-tcp");
    let (sipp, port) = carrier(&dir, &["-sn", "uas"], "t1");
    let config = write_config(
        &dir,
        format!("[trunks.carrier]\naddress = \"127.0.0.1:{port}\"\ntransport = \"tcp\"\n"),
    );
    let server = Server::start(&[
        "--config",
        config.to_str().unwrap(),
        "--sip-tcp-idle-timeout",
        "1",
    ]);
    create_session(&server, "s-tcp");
    let (st, placed) = place(&server, "s-tcp", r#"{"to":"+15550100","trunk":"carrier"}"#);
    assert_eq!(st, 201, "{placed}");
    let id = placed["id"].as_str().unwrap();
    wait_status(&server, id, "answered", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(server.metric("phonebridge_sip_tcp_connections"), 1.0);
    let (st, body) = hang_up(&server, id);
    assert_eq!(st, 200, "{body}");
    let ended = wait_status(&server, id, "ended", Duration::from_secs(5));
    assert_eq!(ended["endReason"], "callDeleted", "{ended}");
    assert_eq!(finish(sipp, &dir), (1, 0), "the callee got the BYE");
}

#[test]
fn bad_dial_requests_get_clear_errors() {
    let server = Server::start(&[]);
    create_session(&server, "s4");
    let cases = [
        ("{}", "'to' is required"),
        (r#"{"to":"+15550100"}"#, "no trunk is configured"),
        (
            r#"{"to":"sip:bob@127.0.0.1","trunk":"nope"}"#,
            "unknown trunk 'nope'",
        ),
        (r#"{"to":"hello"}"#, "must be a sip: URI or a phone number"),
        (
            r#"{"to":"sip:bob@127.0.0.1","ringTimeout":0}"#,
            "'ringTimeout'",
        ),
        (
            r#"{"to":"sip:bob@127.0.0.1","colour":"red"}"#,
            "unknown field 'colour'",
        ),
        (
            r#"{"to":"sip:bob@127.0.0.1","audioSubscriptions":"all"}"#,
            "audioSubscriptions",
        ),
    ];
    for (body, expect) in cases {
        let (st, v) = place(&server, "s4", body);
        assert_eq!(st, 400, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap_or("").contains(expect),
            "{body}: {v}"
        );
    }
    let (st, _) = place(&server, "nosuch", r#"{"to":"sip:bob@127.0.0.1"}"#);
    assert_eq!(st, 404);
    // Nothing was placed.
    let (_, list) = api(server.http, "GET", "/openvidu/api/calls", SECRET, "");
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["numberOfElements"], 0, "{list}");
}

#[test]
fn call_webhooks_survive_a_receiver_outage_and_a_restart_exactly_once_in_order() {
    let hooks = WebhookReceiver::start();
    hooks.status.store(503, std::sync::atomic::Ordering::SeqCst);
    let data = scratch_dir("dialout-outbox-data");
    let args = [
        "--webhook",
        hooks.url.as_str(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let mut server = Server::start(&args);
    create_session(&server, "s5");
    let (sipp, dir, id) = call_callee(&server, "s5", "dialout-outbox", "uas_early_media.xml", "");
    wait_status(&server, &id, "answered", Duration::from_secs(10));
    // The receiver is down: the call's events wait in the outbox.
    let (_, pending) = api(
        server.http,
        "GET",
        "/openvidu/api/webhooks/pending",
        SECRET,
        "",
    );
    let pending: Value = serde_json::from_str(&pending).unwrap();
    let pending_names: Vec<&str> = pending["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["event"]["event"].as_str())
        .collect();
    assert!(
        pending_names.contains(&"sipCallRinging") && pending_names.contains(&"sipCallAnswered"),
        "{pending}"
    );
    // A graceful stop hangs the call up (BYE) and keeps its last events too.
    assert!(server.terminate().success());
    drop(server);
    assert_eq!(finish(sipp, &dir), (1, 0), "the callee got the BYE");
    hooks.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let server = Server::start(&args);
    wait_for("the call's events", Duration::from_secs(20), || {
        names(&sip_events(&hooks, &id)).contains(&"sipCallEnded")
    });
    hooks.wait_for_event("participantLeft", |_| true);
    std::thread::sleep(Duration::from_millis(500));
    let events = sip_events(&hooks, &id);
    assert_eq!(
        names(&events),
        ["sipCallRinging", "sipCallAnswered", "sipCallEnded"],
        "{events:?}"
    );
    assert_eq!(events[2]["reason"], "serverShutdown");
    // Every event once, in the order stored.
    let ids: Vec<u64> = hooks
        .accepted()
        .iter()
        .map(|(h, _)| h["x-phonebridge-event-id"].parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, once: {ids:?}"
    );
    let all: Vec<Value> = hooks.accepted().into_iter().map(|(_, b)| b).collect();
    for e in ["sessionCreated", "participantJoined", "participantLeft"] {
        assert!(all.iter().any(|b| b["event"] == e), "{e} missing: {all:?}");
    }
    // The record says the same after the restart.
    let ended = call(&server, &id);
    assert_eq!(ended["endReason"], "serverShutdown", "{ended}");
    let (_, pending) = api(
        server.http,
        "GET",
        "/openvidu/api/webhooks/pending",
        SECRET,
        "",
    );
    assert!(pending.contains("\"numberOfElements\":0"), "{pending}");
}

#[test]
fn an_opus_callee_reaches_the_session_without_transcoding() {
    let server = Server::start(&[]);
    create_session(&server, "opus");
    let dir = scratch_dir("dialout-opus");
    let tone = dir.join("tone.pcap");
    write_tone_pcap(&tone, 700.0, 20.0, 0x3333_3333, ToneCodec::Opus);
    let scenario_file = scenario_with(&dir, "uas_opus_tone.xml", &[("TONE_PCAP", &tone)]);
    let browser = interviewer_listening(&server, &dir, "opus", &["700,1000", "0", "6"]);
    std::thread::sleep(Duration::from_secs(5));
    let (sipp, port) = carrier(&dir, &["-sf", scenario_file.to_str().unwrap()], "u1");
    let (st, placed) = place(
        &server,
        "opus",
        &format!(r#"{{"to":"sip:bob@127.0.0.1:{port}"}}"#),
    );
    assert_eq!(st, 201, "{placed}");
    let id = placed["id"].as_str().unwrap().to_owned();
    let answered = wait_status(&server, &id, "answered", Duration::from_secs(10));
    assert_eq!(answered["media"]["audioCodec"], "OPUS", "{answered}");
    assert_hears_phone_not_itself(&heard_by(browser, ""));
    // The callee's packets went to the session as they came: none was encoded again.
    let passed = server.metric("phonebridge_mix_packets_passed_total");
    assert!(passed > 250.0, "{passed} packets passed through");
    assert_eq!(server.metric("phonebridge_mix_frames_up_total"), 0.0);
    // What the callee hears is still the mix, encoded to its Opus.
    assert!(server.metric("phonebridge_mix_packets_down_total") > 250.0);
    // Muted, the callee's stream carries encoded silence instead of its packets.
    let (st, body) = api(
        server.http,
        "PATCH",
        &format!("/openvidu/api/calls/{id}"),
        SECRET,
        r#"{"muted": true}"#,
    );
    assert_eq!(st, 200, "{body}");
    wait_for(
        "silence encoded while muted",
        Duration::from_secs(5),
        || server.metric("phonebridge_mix_frames_up_total") > 25.0,
    );
    let passed_muted = server.metric("phonebridge_mix_packets_passed_total");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        server.metric("phonebridge_mix_packets_passed_total"),
        passed_muted,
        "nothing passes while muted"
    );
    let (st, body) = hang_up(&server, &id);
    assert_eq!(st, 200, "{body}");
    assert_eq!(finish(sipp, &dir), (1, 0), "the callee saw the whole call");
}

/// A DNS server on loopback that answers the SRV query for `name` with one record (`target`,
/// `port`) and every other query with "no such name"; runs until the test ends.
fn dns_server(name: &'static str, target: &'static str, port: u16) -> std::net::SocketAddr {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            // The question's name, label by label.
            let (mut pos, mut labels) = (12, Vec::new());
            while pos < n && q[pos] != 0 {
                let l = q[pos] as usize;
                labels.push(String::from_utf8_lossy(&q[pos + 1..pos + 1 + l]).into_owned());
                pos += 1 + l;
            }
            let question_end = pos + 5;
            let mut a = q[..question_end].to_vec();
            a[2] = 0x81;
            let found = labels.join(".") == name && q[pos + 2] == 33;
            if found {
                a[3] = 0x80;
                a[7] = 1;
                a.extend_from_slice(&[0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60]);
                let mut rdata = vec![0, 10, 0, 5];
                rdata.extend_from_slice(&port.to_be_bytes());
                for label in target.split('.') {
                    rdata.push(label.len() as u8);
                    rdata.extend_from_slice(label.as_bytes());
                }
                rdata.push(0);
                a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                a.extend_from_slice(&rdata);
            } else {
                a[3] = 0x83;
            }
            let _ = sock.send_to(&a, from);
        }
    });
    addr
}

#[test]
fn a_trunk_named_without_a_port_is_found_by_srv() {
    let dir = scratch_dir("dialout-srv");
    // The carrier's SIP service: _sip._udp.carrier.test → a SIPp callee that answers busy.
    // (The record's target is the callee's address written as a name, which the system
    // resolver takes as it is.)
    let (sipp, port) = callee(&dir, "uas_busy.xml");
    let dns = dns_server("_sip._udp.carrier.test", "127.0.0.1", port);
    let config = write_config(
        &dir,
        format!("dns-server = \"{dns}\"\n[trunks.carrier]\naddress = \"carrier.test\"\n"),
    );
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    create_session(&server, "srv");
    let (st, placed) = place(&server, "srv", r#"{"to":"+15550100"}"#);
    assert_eq!(st, 201, "{placed}");
    let id = placed["id"].as_str().unwrap();
    let ended = wait_status(&server, id, "ended", Duration::from_secs(10));
    assert_eq!(ended["endReason"], "busy", "{ended}");
    assert_eq!(
        ended["sipStatus"], 486,
        "the callee behind the SRV record answered"
    );
    assert_eq!(finish(sipp, &dir), (1, 0), "the callee took the call");
}
