//! The OpenVidu REST API driven by the real `openvidu-node-client`, and the durable, signed
//! webhook outbox against a receiver that goes down and a server that restarts.

#![allow(clippy::disallowed_methods)] // tests wait on real time

mod support;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::*;

fn events(r: &WebhookReceiver) -> Vec<String> {
    r.accepted()
        .iter()
        .map(|(_, b)| {
            format!(
                "{}:{}",
                b["event"].as_str().unwrap(),
                b["sessionId"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn node_client_exercises_every_rest_call() {
    let receiver = WebhookReceiver::start();
    let dir = scratch_dir("rest-node");
    let server = Server::start(&[
        "--secret",
        "s3cret",
        "--webhook",
        &receiver.url,
        "--webhook-secret",
        "hook-key",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let out = node(
        "rest_client.cjs",
        &[&format!("http://{}", server.http), "s3cret"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let result: serde_json::Value = serde_json::from_str(last).unwrap();
    let generated = result["sessions"][1].as_str().unwrap().to_owned();
    wait_for("the webhooks", Duration::from_secs(10), || {
        receiver.accepted().len() >= 3
    });
    assert_eq!(
        events(&receiver),
        [
            "sessionCreated:interview-1".to_owned(),
            format!("sessionCreated:{generated}"),
            "sessionDestroyed:interview-1".to_owned(),
        ]
    );
    let accepted = receiver.accepted();
    let (headers, destroyed) = &accepted[2];
    assert_eq!(destroyed["reason"], "sessionClosedByServer");
    assert!(destroyed["uniqueSessionId"]
        .as_str()
        .unwrap()
        .starts_with("interview-1_"));
    // Signed: t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>, checked with Python's hmac.
    let sig = &headers["x-phonebridge-signature"];
    let body = receiver.requests.lock().unwrap()[2].1.clone();
    let check = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,sys; t,v=sys.argv[1].split(','); t=t[2:]; v=v[3:]; \
             exp=hmac.new(b'hook-key',(t+'.'+sys.argv[2]).encode(),hashlib.sha256).hexdigest(); \
             sys.exit(0 if hmac.compare_digest(exp,v) else 1)",
            sig,
            &body,
        ])
        .status()
        .unwrap();
    assert!(check.success(), "signature {sig} does not verify");
    // An event leaves the outbox once its receiver's answer is in.
    wait_for("the outbox to empty", Duration::from_secs(5), || {
        server.metric("phonebridge_webhook_pending") == 0.0
    });
}

#[test]
fn webhooks_survive_a_receiver_outage_and_a_restart_exactly_once_in_order() {
    let receiver = WebhookReceiver::start();
    receiver.status.store(503, Ordering::SeqCst);
    let dir = scratch_dir("outbox");
    let args = [
        "--webhook",
        receiver.url.as_str(),
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    let mut server = Server::start(&args);
    for name in ["a", "b", "c"] {
        let (status, _) = api(
            server.http,
            "POST",
            "/openvidu/api/sessions",
            "MY_SECRET",
            &format!("{{\"customSessionId\":\"{name}\"}}"),
        );
        assert_eq!(status, 200);
    }
    // The receiver is down: everything waits in the outbox, visible over REST.
    wait_for("a failed attempt", Duration::from_secs(10), || {
        !receiver.requests.lock().unwrap().is_empty()
    });
    let (status, pending) = api(
        server.http,
        "GET",
        "/openvidu/api/webhooks/pending",
        "MY_SECRET",
        "",
    );
    assert_eq!(status, 200);
    let pending: serde_json::Value = serde_json::from_str(&pending).unwrap();
    assert_eq!(pending["numberOfElements"], 3, "{pending}");
    assert_eq!(pending["content"][0]["event"]["sessionId"], "a");
    // Stopping ends the sessions (three more events), all kept for later.
    assert!(server.terminate().success());
    drop(server);
    receiver.status.store(200, Ordering::SeqCst);
    let server = Server::start(&args);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while receiver.accepted().len() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered after the restart; server log:\n{}\nrequests: {:?}",
            server.log.lock().unwrap().join("\n"),
            receiver
                .requests
                .lock()
                .unwrap()
                .iter()
                .map(|(_, b, c)| (c, b.clone()))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        events(&receiver),
        [
            "sessionCreated:a",
            "sessionCreated:b",
            "sessionCreated:c",
            "sessionDestroyed:a",
            "sessionDestroyed:b",
            "sessionDestroyed:c"
        ]
    );
    let ids: Vec<u64> = receiver
        .accepted()
        .iter()
        .map(|(h, _)| h["x-phonebridge-event-id"].parse().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 6, "each event once: {ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    assert!(receiver.accepted()[3..]
        .iter()
        .all(|(_, b)| b["reason"] == "openviduServerStopped"));
    wait_for("the outbox to empty", Duration::from_secs(5), || {
        server.metric("phonebridge_webhook_pending") == 0.0
    });
    assert!(server.metric("phonebridge_webhook_delivered_total") >= 6.0);
}

#[test]
fn the_api_requires_the_secret() {
    let server = Server::start(&["--secret", "right"]);
    let (status, _) = api(server.http, "GET", "/openvidu/api/sessions", "wrong", "");
    assert_eq!(status, 401);
    let (status, body) = api(server.http, "GET", "/openvidu/api/sessions", "right", "");
    assert_eq!(
        (status, body.as_str()),
        (200, "{\"content\":[],\"numberOfElements\":0}")
    );
    let (status, body) = api(
        server.http,
        "POST",
        "/openvidu/api/sessions",
        "right",
        "{not json",
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("\"path\":\"/openvidu/api/sessions\""),
        "{body}"
    );
    // A request without the field it needs is told which one, and changes nothing.
    for (path, field) in [
        ("/openvidu/api/tokens", "session"),
        ("/openvidu/api/signal", "session"),
        ("/openvidu/api/calls/nope/dtmf", "digits"),
    ] {
        let (status, body) = api(server.http, "POST", path, "right", "{\"data\":\"x\"}");
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(&format!("'{field}' is required")), "{body}");
        assert!(body.contains(&format!("\"path\":\"{path}\"")), "{body}");
    }
    let (_, body) = api(server.http, "GET", "/openvidu/api/sessions", "right", "");
    assert!(body.contains("\"numberOfElements\":0"), "{body}");
}

/// Runs the Chromium script `script` against a new server whose webhooks go to a new
/// receiver (data in the scratch directory `name`); fails the test when the script fails.
/// The receiver, the server and the script's standard output.
fn browser_script(name: &str, script: &str) -> (WebhookReceiver, Server, String) {
    let receiver = WebhookReceiver::start();
    let dir = scratch_dir(name);
    let server = Server::start(&[
        "--webhook",
        &receiver.url,
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let out = node(script, &[&format!("http://{}", server.http), "MY_SECRET"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log.lock().unwrap().join("\n")
    );
    (receiver, server, stdout)
}

#[test]
fn two_chromium_pages_join_signal_reconnect_and_are_evicted() {
    let (receiver, _server, _) = browser_script("browser-signalling", "browser_signalling.cjs");
    wait_for("the webhooks", Duration::from_secs(10), || {
        receiver
            .accepted()
            .iter()
            .any(|(_, b)| b["event"] == "sessionDestroyed")
    });
    let names: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|(_, b)| {
            let mut n = b["event"].as_str().unwrap().to_owned();
            if let Some(r) = b.get("reason").and_then(|r| r.as_str()) {
                n = format!("{n}({r})");
            }
            n
        })
        .collect();
    assert_eq!(
        names,
        [
            "sessionCreated",
            "participantJoined",
            "participantJoined",
            "signalSent",
            "participantLeft(forceDisconnectByServer)",
            "participantLeft(sessionClosedByServer)",
            "sessionDestroyed(sessionClosedByServer)",
        ]
    );
}

#[test]
fn two_chromium_pages_see_and_hear_each_other_through_the_sfu() {
    let (receiver, server, stdout) = browser_script("browser-media", "browser_media.cjs");
    let result: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    eprintln!(
        "late joiner's first decoded frame after {} ms",
        result["lateJoinerFirstFrameMs"]
    );
    // A publisher per page (OUTBOUND), a subscription each way, then Carol's two.
    wait_for("the media webhooks", Duration::from_secs(10), || {
        receiver
            .accepted()
            .iter()
            .filter(|(_, b)| b["event"] == "webrtcConnectionCreated")
            .count()
            >= 6
    });
    let created: Vec<(String, String)> = receiver
        .accepted()
        .iter()
        .filter(|(_, b)| b["event"] == "webrtcConnectionCreated")
        .map(|(_, b)| {
            (
                b["connection"].as_str().unwrap().to_owned(),
                b["streamId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        created.iter().filter(|(d, _)| d == "OUTBOUND").count(),
        2,
        "{created:?}"
    );
    assert_eq!(
        created.iter().filter(|(d, _)| d == "INBOUND").count(),
        4,
        "{created:?}"
    );
    assert!(created.iter().all(|(_, s)| s.starts_with("str_CAM_")));
    assert!(server.metric("phonebridge_sfu_packets_forwarded_total") > 100.0);
}

#[test]
fn dial_in_codes_are_set_unique_durable_and_never_logged() {
    let dir = scratch_dir("dialin");
    let args = ["--data-dir", dir.to_str().unwrap()];
    let mut server = Server::start(&args);
    let call = |server: &Server, method: &str, path: &str, body: &str| {
        api(server.http, method, path, "MY_SECRET", body)
    };
    for s in ["interview-7", "interview-8"] {
        let (status, _) = call(
            &server,
            "POST",
            "/openvidu/api/sessions",
            &format!("{{\"customSessionId\":\"{s}\"}}"),
        );
        assert_eq!(status, 200);
    }
    let (status, body) = call(
        &server,
        "POST",
        "/openvidu/api/sessions/interview-7/dialin",
        "",
    );
    assert_eq!(status, 200, "{body}");
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pin = d["pin"].as_str().unwrap().to_owned();
    assert!(
        pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()),
        "{pin}"
    );
    assert_eq!(
        call(
            &server,
            "GET",
            "/openvidu/api/sessions/interview-7/dialin",
            ""
        )
        .1,
        body
    );
    // Unique among sessions; validated; only for live sessions.
    let taken = format!("{{\"pin\":\"{pin}\"}}");
    assert_eq!(
        call(
            &server,
            "POST",
            "/openvidu/api/sessions/interview-8/dialin",
            &taken
        )
        .0,
        409
    );
    assert_eq!(
        call(
            &server,
            "POST",
            "/openvidu/api/sessions/interview-8/dialin",
            "{\"pin\":\"12x4\"}"
        )
        .0,
        400
    );
    assert_eq!(
        call(&server, "POST", "/openvidu/api/sessions/nope/dialin", "").0,
        404
    );
    let (status, b8) = call(
        &server,
        "POST",
        "/openvidu/api/sessions/interview-8/dialin",
        "{\"pin\":\"4829130\"}",
    );
    assert_eq!((status, b8.contains("\"pin\":\"4829130\"")), (200, true));
    assert_eq!(
        api(
            server.http,
            "GET",
            "/openvidu/api/sessions/interview-7/dialin",
            "wrong",
            ""
        )
        .0,
        401
    );
    // Kept across a restart.
    assert!(server.terminate().success());
    let logged = server.log.lock().unwrap().join("\n");
    assert!(
        !logged.contains(&pin) && !logged.contains("4829130"),
        "a code reached the log:\n{logged}"
    );
    drop(server);
    let server = Server::start(&args);
    assert_eq!(
        call(
            &server,
            "GET",
            "/openvidu/api/sessions/interview-7/dialin",
            ""
        )
        .1,
        body
    );
    // Deleted by DELETE; closing a session by REST retires its code too.
    assert_eq!(
        call(
            &server,
            "DELETE",
            "/openvidu/api/sessions/interview-7/dialin",
            ""
        )
        .0,
        204
    );
    assert_eq!(
        call(
            &server,
            "GET",
            "/openvidu/api/sessions/interview-7/dialin",
            ""
        )
        .0,
        404
    );
    assert_eq!(
        call(
            &server,
            "DELETE",
            "/openvidu/api/sessions/interview-7/dialin",
            ""
        )
        .0,
        404
    );
    let (status, _) = call(
        &server,
        "POST",
        "/openvidu/api/sessions",
        "{\"customSessionId\":\"interview-8\"}",
    );
    assert_eq!(status, 200);
    assert_eq!(
        call(&server, "DELETE", "/openvidu/api/sessions/interview-8", "").0,
        204
    );
    assert_eq!(
        call(
            &server,
            "GET",
            "/openvidu/api/sessions/interview-8/dialin",
            ""
        )
        .0,
        404
    );
}
