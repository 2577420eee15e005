//! Sessions through their life as OpenVidu runs them: what each operation returns, whom it
//! notifies, and which webhook events it fires in which order.

use phonebridge_rooms::*;
use serde_json::{json, Value};

fn rooms() -> Rooms {
    Rooms::new(42, "ws://127.0.0.1:4443/", 3_600_000)
}

/// A notification: (to, method, params).
type Note = (String, &'static str, Value);

/// Drains outputs: (webhook bodies in order, notifications, connections to close).
fn drain(r: &mut Rooms) -> (Vec<Value>, Vec<Note>, Vec<String>) {
    let (mut hooks, mut notes, mut closes) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(o) = r.poll_output() {
        match o {
            Output::Webhook(v) => hooks.push(v),
            Output::Notify {
                connection,
                method,
                params,
            } => notes.push((connection, method, params)),
            Output::Disconnect { connection } => closes.push(connection),
            // Media teardown is the SFU's business.
            Output::StreamEnded { .. }
            | Output::SubscriptionEnded { .. }
            | Output::ParticipantGone { .. }
            | Output::SessionDestroyed { .. } => {}
        }
    }
    (hooks, notes, closes)
}

fn names(hooks: &[Value]) -> Vec<String> {
    hooks
        .iter()
        .map(|h| {
            let e = h["event"].as_str().unwrap().to_owned();
            match h.get("connection").and_then(Value::as_str) {
                Some(dir) => format!("{e}:{dir}"),
                None => e,
            }
        })
        .collect()
}

fn camera() -> MediaOptions {
    MediaOptions {
        has_audio: true,
        has_video: true,
        audio_active: Some(true),
        video_active: Some(true),
        type_of_video: Some("CAMERA".into()),
        frame_rate: json!(30),
        video_dimensions: Some("{\"width\":640,\"height\":480}".into()),
        filter: json!({}),
    }
}

/// A session with `n` joined participants; returns their connection ids.
fn session_with(r: &mut Rooms, n: usize) -> (String, Vec<String>) {
    let sid = r
        .create_session(1_000, SessionProps::default())
        .unwrap()
        .id
        .clone();
    let mut ids = Vec::new();
    for i in 0..n {
        let token = r
            .create_connection(1_000, &sid, ConnectionProps::default())
            .unwrap()
            .token
            .clone();
        let j = r
            .join(
                2_000 + i as u64,
                &token,
                &format!("user{i}"),
                "Chrome",
                "127.0.0.1",
            )
            .unwrap();
        ids.push(j.connection.id);
    }
    drain(r);
    (sid, ids)
}

#[test]
fn create_session_with_and_without_a_custom_id() {
    let mut r = rooms();
    let s = r
        .create_session(5, SessionProps::default())
        .unwrap()
        .to_json(true);
    for key in [
        "sessionId",
        "createdAt",
        "mediaMode",
        "recordingMode",
        "customSessionId",
        "defaultRecordingProperties",
        "forcedVideoCodec",
        "allowTranscoding",
    ] {
        assert!(s.get(key).is_some(), "{key} missing: {s}");
    }
    assert!(s["connections"]["content"].is_array());
    assert!(s["id"].as_str().unwrap().starts_with("ses_"));
    let props = SessionProps {
        custom_session_id: Some("interview-42".into()),
        ..SessionProps::default()
    };
    assert_eq!(
        r.create_session(6, props.clone()).unwrap().id,
        "interview-42"
    );
    assert_eq!(
        r.create_session(7, props).unwrap_err(),
        RoomsError::Conflict
    );
    let (hooks, ..) = drain(&mut r);
    assert_eq!(names(&hooks), ["sessionCreated", "sessionCreated"]);
    assert_eq!(hooks[1]["uniqueSessionId"], "interview-42_6");
}

#[test]
fn a_pending_connection_has_a_single_use_token() {
    let mut r = rooms();
    let sid = r
        .create_session(1, SessionProps::default())
        .unwrap()
        .id
        .clone();
    let c = r
        .create_connection(
            2,
            &sid,
            ConnectionProps {
                data: "server-side".into(),
                role: Role::Moderator,
                ..ConnectionProps::default()
            },
        )
        .unwrap()
        .to_json();
    assert_eq!(c["status"], "pending");
    assert_eq!(c["role"], "MODERATOR");
    assert_eq!(c["serverData"], "server-side");
    assert!(c["publishers"].is_null() && c["activeAt"].is_null());
    let token = c["token"].as_str().unwrap();
    assert!(
        token.starts_with(&format!("ws://127.0.0.1:4443?sessionId={sid}&token=tok_")),
        "{token}"
    );
    let j = r
        .join(3, token, "alice", "Chrome 120 on Linux", "10.0.0.9")
        .unwrap();
    assert_eq!(j.connection.metadata(), "alice%/%server-side");
    assert_eq!(
        r.join(4, token, "mallory", "x", "y").unwrap_err(),
        RoomsError::NotFound
    );
    let active = r
        .session(&sid)
        .unwrap()
        .connection(&j.connection.id)
        .unwrap()
        .to_json();
    assert_eq!(
        (active["status"].as_str(), active["location"].as_str()),
        (Some("active"), Some("unknown"))
    );
    assert_eq!(active["publishers"], json!([]));
    assert_eq!(
        r.create_connection(5, "ses_nope", ConnectionProps::default())
            .unwrap_err(),
        RoomsError::SessionNotFound
    );
}

#[test]
fn joining_notifies_the_others_and_fires_participant_joined() {
    let mut r = rooms();
    let (sid, ids) = session_with(&mut r, 2);
    let token = r
        .create_connection(3_000, &sid, ConnectionProps::default())
        .unwrap()
        .token
        .clone();
    let j = r
        .join(3_500, &token, "carol", "Firefox", "10.0.0.3")
        .unwrap();
    assert_eq!(j.others.len(), 2);
    let (hooks, notes, _) = drain(&mut r);
    let to: Vec<&str> = notes.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(to, [ids[0].as_str(), ids[1].as_str()]);
    assert!(notes
        .iter()
        .all(|(_, m, p)| *m == "participantJoined" && p.get("role").is_none()));
    assert_eq!(notes[0].2["metadata"], "carol");
    assert_eq!(names(&hooks), ["participantJoined"]);
    assert_eq!(hooks[0]["platform"], "Firefox");
    assert_eq!(hooks[0]["timestamp"], 3_500);
}

#[test]
fn publish_subscribe_and_leave_fire_events_in_openvidus_order() {
    let mut r = rooms();
    let (sid, ids) = session_with(&mut r, 2);
    let (a, b) = (&ids[0], &ids[1]);
    let sa = r.publish(10_000, &sid, a, camera()).unwrap();
    assert!(sa.id.starts_with("str_CAM_") && sa.id.ends_with(a.as_str()));
    let sb = r
        .publish(
            10_100,
            &sid,
            b,
            MediaOptions {
                has_video: false,
                video_active: None,
                type_of_video: None,
                video_dimensions: None,
                frame_rate: json!(-1),
                ..camera()
            },
        )
        .unwrap();
    assert!(sb.id.starts_with("str_MIC_"));
    r.subscribe(11_000, &sid, b, &sa.id).unwrap();
    r.subscribe(11_000, &sid, a, &sb.id).unwrap();
    let (hooks, notes, _) = drain(&mut r);
    assert_eq!(
        names(&hooks),
        [
            "webrtcConnectionCreated:OUTBOUND",
            "webrtcConnectionCreated:OUTBOUND",
            "webrtcConnectionCreated:INBOUND",
            "webrtcConnectionCreated:INBOUND"
        ]
    );
    assert_eq!(hooks[2]["receivingFrom"], a.as_str());
    assert_eq!(
        hooks[0]["videoDimensions"],
        "{\"width\":640,\"height\":480}"
    );
    assert!(
        hooks[1].get("videoSource").is_none(),
        "audio-only has no video fields"
    );
    assert_eq!(
        notes[0],
        (
            b.clone(),
            "participantPublished",
            json!({"id": a, "streams": [sa.to_rpc_json()]})
        )
    );
    // REST shows the publisher and the subscription.
    let ca = r.session(&sid).unwrap().connection(a).unwrap().to_json();
    assert_eq!(ca["publishers"][0]["streamId"], sa.id.as_str());
    assert_eq!(ca["publishers"][0]["mediaOptions"]["typeOfVideo"], "CAMERA");
    assert_eq!(ca["subscribers"][0]["streamId"], sb.id.as_str());

    r.leave(20_000, &sid, a, LeaveReason::Disconnect).unwrap();
    let (hooks, notes, closes) = drain(&mut r);
    // The leaver's subscription, the other's subscription to it, its publisher, then itself.
    assert_eq!(
        names(&hooks),
        [
            "webrtcConnectionDestroyed:INBOUND",
            "webrtcConnectionDestroyed:INBOUND",
            "webrtcConnectionDestroyed:OUTBOUND",
            "participantLeft"
        ]
    );
    assert_eq!(hooks[0]["connectionId"], a.as_str());
    assert_eq!(hooks[1]["connectionId"], b.as_str());
    assert_eq!(hooks[3]["reason"], "disconnect");
    assert_eq!(hooks[3]["duration"], 18, "joined at 2 s, left at 20 s");
    assert_eq!(
        notes,
        [(
            b.clone(),
            "participantLeft",
            json!({"connectionId": a, "reason": "disconnect"})
        )]
    );
    assert!(closes.is_empty());

    r.leave(30_000, &sid, b, LeaveReason::NetworkDisconnect)
        .unwrap();
    let (hooks, ..) = drain(&mut r);
    assert_eq!(
        names(&hooks),
        [
            "webrtcConnectionDestroyed:OUTBOUND",
            "participantLeft",
            "sessionDestroyed"
        ]
    );
    assert_eq!(hooks[2]["reason"], "lastParticipantLeft");
    assert!(r.session(&sid).is_none());
}

#[test]
fn closing_a_session_evicts_everyone() {
    let mut r = rooms();
    let (sid, ids) = session_with(&mut r, 2);
    r.create_connection(3_000, &sid, ConnectionProps::default())
        .unwrap();
    r.close_session(9_000, &sid).unwrap();
    let (hooks, notes, closes) = drain(&mut r);
    assert_eq!(
        names(&hooks),
        ["participantLeft", "participantLeft", "sessionDestroyed"]
    );
    assert_eq!(hooks[2]["reason"], "sessionClosedByServer");
    assert_eq!(closes, ids);
    let evicted: Vec<_> = notes
        .iter()
        .filter(|(_, m, _)| *m == "participantEvicted")
        .collect();
    // Each eviction goes to everyone still there, the evicted one included.
    assert_eq!(evicted.len(), 2 + 1);
    assert!(notes
        .iter()
        .all(|(_, _, p)| p["reason"] == "sessionClosedByServer"));
    assert!(r.session(&sid).is_none());
    assert_eq!(
        r.close_session(9_001, &sid).unwrap_err(),
        RoomsError::NotFound
    );
}

#[test]
fn deleting_connections_and_streams_by_rest() {
    let mut r = rooms();
    let (sid, ids) = session_with(&mut r, 3);
    let pending = r
        .create_connection(3_000, &sid, ConnectionProps::default())
        .unwrap()
        .id
        .clone();
    r.delete_connection(3_100, &sid, &pending).unwrap();
    assert!(drain(&mut r).0.is_empty(), "a pending token goes silently");
    let stream = r.publish(4_000, &sid, &ids[0], camera()).unwrap();
    r.subscribe(4_100, &sid, &ids[1], &stream.id).unwrap();
    drain(&mut r);
    r.unpublish(5_000, &sid, &stream.id, "forceUnpublishByServer")
        .unwrap();
    let (hooks, notes, _) = drain(&mut r);
    // Everyone is told, the owner included.
    assert_eq!(notes.len(), 3);
    assert!(
        notes
            .iter()
            .all(|(_, m, p)| *m == "participantUnpublished"
                && p["reason"] == "forceUnpublishByServer")
    );
    assert_eq!(
        names(&hooks),
        [
            "webrtcConnectionDestroyed:INBOUND",
            "webrtcConnectionDestroyed:OUTBOUND"
        ]
    );
    assert!(r
        .session(&sid)
        .unwrap()
        .connection(&ids[1])
        .unwrap()
        .subscriptions
        .is_empty());
    r.delete_connection(6_000, &sid, &ids[2]).unwrap();
    let (hooks, notes, closes) = drain(&mut r);
    assert_eq!(closes, [ids[2].clone()]);
    assert_eq!(hooks.last().unwrap()["reason"], "forceDisconnectByServer");
    assert!(notes
        .iter()
        .any(|(to, m, _)| *to == ids[2] && *m == "participantEvicted"));
    assert_eq!(
        r.delete_connection(6_001, &sid, &ids[2]).unwrap_err(),
        RoomsError::NotFound
    );
    assert_eq!(
        r.delete_connection(6_001, "ses_x", &ids[2]).unwrap_err(),
        RoomsError::SessionNotFound
    );
}

#[test]
fn signals_reach_their_targets_or_are_refused() {
    let mut r = rooms();
    let sid = r
        .create_session(1, SessionProps::default())
        .unwrap()
        .id
        .clone();
    assert!(matches!(
        r.signal(2, &sid, None, &[], "signal:x", "d"),
        Err(RoomsError::NotAcceptable(_))
    ));
    drain(&mut r);
    let (sid, ids) = session_with(&mut r, 2);
    r.signal(3, &sid, Some(&ids[0]), &[], "signal:chat", "hi")
        .unwrap();
    let (hooks, notes, _) = drain(&mut r);
    assert_eq!(
        notes.len(),
        2,
        "to nobody in particular means everyone, the sender too"
    );
    assert_eq!(
        notes[0].2,
        json!({"data": "hi", "type": "signal:chat", "from": ids[0]})
    );
    assert_eq!(hooks[0]["to"], json!(ids));
    r.signal(4, &sid, None, &[ids[1].clone()], "signal:x", "d")
        .unwrap();
    let (hooks, notes, _) = drain(&mut r);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].2.get("from").is_none(),
        "server signals have no sender"
    );
    assert!(hooks[0]["from"].is_null());
    assert!(matches!(
        r.signal(5, &sid, None, &["con_Unknown".into()], "signal", ""),
        Err(RoomsError::NotAcceptable(_))
    ));
    assert_eq!(
        r.signal(5, "ses_x", None, &[], "signal", ""),
        Err(RoomsError::SessionNotFound)
    );
}

#[test]
fn unused_sessions_are_collected_and_used_ones_are_not() {
    let mut r = rooms();
    let unused = r
        .create_session(0, SessionProps::default())
        .unwrap()
        .id
        .clone();
    let (used, _) = session_with(&mut r, 1);
    drain(&mut r);
    assert_eq!(r.collect_garbage(1_000), Some(3_600_000));
    assert!(r.session(&unused).is_some());
    assert_eq!(r.collect_garbage(3_600_000), None);
    assert!(r.session(&unused).is_none());
    assert!(r.session(&used).is_some());
    let (hooks, ..) = drain(&mut r);
    assert_eq!(names(&hooks), ["sessionDestroyed"]);
    assert_eq!(hooks[0]["reason"], "automaticStop");
}
