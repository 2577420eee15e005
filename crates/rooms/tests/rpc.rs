//! The JSON-RPC signalling as openvidu-browser 2.32 uses it: framing, ping before join, the
//! joinRoom answer's required fields, errors by code, signals, moderation, reconnection.

use phonebridge_rooms::rpc::{handle, MediaHandler, Peer, RpcError};
use phonebridge_rooms::*;
use serde_json::{json, Value};

/// Stands in for the SFU: answers every offer with a fixed SDP and records the calls.
#[derive(Default)]
struct Answers {
    calls: Vec<String>,
}

impl MediaHandler for Answers {
    fn publish(&mut self, _: &str, c: &str, _: &str, forced: &str) -> Result<String, RpcError> {
        self.calls.push(format!("publish {c} {forced}"));
        Ok("v=0 answer".into())
    }
    fn subscribe(&mut self, _: &str, c: &str, stream: &str, _: &str) -> Result<String, RpcError> {
        self.calls.push(format!("subscribe {c} {stream}"));
        Ok("v=0 answer".into())
    }
    fn candidate(&mut self, c: &str, endpoint: &str, _: &Value) {
        self.calls.push(format!("candidate {c} {endpoint}"));
    }
}

struct World {
    rooms: Rooms,
    media: Answers,
    now: u64,
}

impl World {
    fn new() -> Self {
        World {
            rooms: Rooms::new(3, "ws://127.0.0.1:4443", 3_600_000),
            media: Answers::default(),
            now: 1_000,
        }
    }

    fn call(&mut self, peer: &mut Peer, id: u64, method: &str, params: Value) -> Value {
        self.now += 10;
        let req =
            json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string();
        let out = handle(
            &mut self.rooms,
            &mut self.media,
            self.now,
            peer,
            "127.0.0.1",
            &req,
        )
        .expect("an answer");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], id);
        assert!(
            v.get("result").is_some() != v.get("error").is_some(),
            "exactly one of result/error: {v}"
        );
        v
    }

    fn token(&mut self, sid: &str, role: Role) -> String {
        self.rooms
            .create_connection(
                self.now,
                sid,
                ConnectionProps {
                    role,
                    ..ConnectionProps::default()
                },
            )
            .unwrap()
            .token
            .clone()
    }

    fn join(&mut self, sid: &str, role: Role, name: &str) -> (Peer, Value) {
        let token = self.token(sid, role);
        let mut peer = Peer::default();
        let v = self.call(&mut peer, 1, "joinRoom", json!({"token": token, "session": sid, "platform": "Chrome", "sdkVersion": "2.32.2", "metadata": name, "secret": "", "recorder": false, "stt": false}));
        (peer, v["result"].clone())
    }

    fn notes(&mut self) -> Vec<(String, &'static str, Value)> {
        let mut v = Vec::new();
        while let Some(o) = self.rooms.poll_output() {
            if let Output::Notify {
                connection,
                method,
                params,
            } = o
            {
                v.push((connection, method, params));
            }
        }
        v
    }
}

#[test]
fn ping_before_join_and_methods_that_need_a_join() {
    let mut w = World::new();
    let mut peer = Peer::default();
    let pong = w.call(&mut peer, 0, "ping", json!({"interval": 5000}));
    assert_eq!(pong["result"]["value"], "pong");
    assert_eq!((peer.ping_interval, peer.pings), (Some(5000), 1));
    let e = w.call(&mut peer, 1, "sendMessage", json!({"message": "{}"}));
    assert_eq!(e["error"]["code"], 803);
    let e = w.call(&mut peer, 2, "noSuchMethod", json!({}));
    assert_eq!(e["error"]["code"], 803, "unjoined sockets get 803 first");
    // A ping without params (every ping after the first) is fine too.
    let raw = json!({"jsonrpc":"2.0","method":"ping","id":3}).to_string();
    let out = handle(&mut w.rooms, &mut w.media, 1, &mut peer, "x", &raw).unwrap();
    assert!(out.contains("pong"));
    // Garbage gets a parse error; a client notification gets nothing.
    assert!(handle(&mut w.rooms, &mut w.media, 1, &mut peer, "x", "{")
        .unwrap()
        .contains("-32700"));
    assert_eq!(
        handle(
            &mut w.rooms,
            &mut w.media,
            1,
            &mut peer,
            "x",
            "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}"
        ),
        None
    );
}

#[test]
fn join_answer_has_what_openvidu_browser_requires() {
    let mut w = World::new();
    let sid = w
        .rooms
        .create_session(1, SessionProps::default())
        .unwrap()
        .id
        .clone();
    let (mut alice, a) = w.join(&sid, Role::Publisher, "Alice");
    assert!(a["id"].as_str().unwrap().starts_with("con_"));
    assert_eq!(a["role"], "PUBLISHER");
    assert_eq!(a["value"], json!([]));
    assert_eq!(a["session"], sid.as_str());
    assert_eq!(a["version"], "2.32.2");
    assert_eq!(a["mediaServer"], "kurento");
    assert!(a["sessionId"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(a["metadata"], "Alice");
    // Alice publishes; Bob joins and sees her with her stream; Carol without one.
    let p = w.call(&mut alice, 2, "publishVideo", json!({"sdpOffer": "v=0 offer", "doLoopback": false, "hasAudio": true, "hasVideo": true, "audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": "{\"width\":640,\"height\":480}"}));
    let stream = p["result"]["id"].as_str().unwrap().to_owned();
    assert_eq!(p["result"]["sdpAnswer"], "v=0 answer");
    assert!(p["result"]["createdAt"].as_u64().is_some());
    let (_, c) = w.join(&sid, Role::Subscriber, "Carol");
    let (mut bob, b) = w.join(&sid, Role::Publisher, "Bob");
    let value = b["value"].as_array().unwrap();
    assert_eq!(value.len(), 2);
    let alice_entry = value.iter().find(|v| v["id"] == a["id"]).unwrap();
    assert_eq!(alice_entry["streams"][0]["id"], stream.as_str());
    assert_eq!(
        alice_entry["streams"][0]["videoDimensions"],
        "{\"width\":640,\"height\":480}"
    );
    let carol_entry = value.iter().find(|v| v["id"] == c["id"]).unwrap();
    assert!(
        carol_entry.get("streams").is_none(),
        "no streams key for a non-publisher"
    );
    // participantJoined never carries a role.
    let notes = w.notes();
    assert!(notes
        .iter()
        .filter(|n| n.1 == "participantJoined")
        .all(|n| n.2.get("role").is_none()));
    // Bob subscribes; his candidates for that subscription name Alice's connection.
    let s = w.call(
        &mut bob,
        3,
        "receiveVideoFrom",
        json!({"sender": stream, "sdpOffer": "v=0 offer"}),
    );
    assert_eq!(s["result"]["sdpAnswer"], "v=0 answer");
    w.call(&mut bob, 4, "onIceCandidate", json!({"endpointName": a["id"], "candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}));
    assert_eq!(
        w.media.calls.last().unwrap(),
        &format!(
            "candidate {} {}",
            b["id"].as_str().unwrap(),
            a["id"].as_str().unwrap()
        )
    );
    // A used token is refused with 401; an unknown session with 202.
    let token = w.token(&sid, Role::Publisher);
    let mut p1 = Peer::default();
    w.call(
        &mut p1,
        1,
        "joinRoom",
        json!({"token": token, "session": sid}),
    );
    let mut p2 = Peer::default();
    assert_eq!(
        w.call(
            &mut p2,
            1,
            "joinRoom",
            json!({"token": token, "session": sid})
        )["error"]["code"],
        401
    );
    assert_eq!(
        w.call(
            &mut p2,
            2,
            "joinRoom",
            json!({"token": "ws://x?sessionId=nope&token=tok_A", "session": "nope"})
        )["error"]["code"],
        202
    );
}

#[test]
fn roles_limit_publishing_and_moderation() {
    let mut w = World::new();
    let sid = w
        .rooms
        .create_session(1, SessionProps::default())
        .unwrap()
        .id
        .clone();
    let (mut sub, s) = w.join(&sid, Role::Subscriber, "s");
    let (mut pubr, p) = w.join(&sid, Role::Publisher, "p");
    let (mut moderator, _) = w.join(&sid, Role::Moderator, "m");
    assert_eq!(
        w.call(
            &mut sub,
            2,
            "publishVideo",
            json!({"sdpOffer": "o", "hasAudio": true, "hasVideo": false})
        )["error"]["code"],
        401
    );
    let r = w.call(&mut pubr, 2, "publishVideo", json!({"sdpOffer": "o", "hasAudio": true, "hasVideo": false, "audioActive": true, "frameRate": -1}));
    let stream = r["result"]["id"].as_str().unwrap().to_owned();
    assert!(stream.starts_with("str_MIC_"));
    assert_eq!(
        w.call(
            &mut pubr,
            3,
            "publishVideo",
            json!({"sdpOffer": "o", "hasAudio": true, "hasVideo": false})
        )["error"]["code"],
        106
    );
    assert_eq!(
        w.call(
            &mut pubr,
            4,
            "forceDisconnect",
            json!({"connectionId": s["id"]})
        )["error"]["code"],
        401
    );
    w.notes();
    // The moderator unpublishes the publisher's stream: everyone, the owner included, hears.
    assert!(w.call(
        &mut moderator,
        2,
        "forceUnpublish",
        json!({"streamId": stream})
    )["result"]
        .is_object());
    let notes = w.notes();
    let unpub: Vec<_> = notes
        .iter()
        .filter(|n| n.1 == "participantUnpublished")
        .collect();
    assert_eq!(unpub.len(), 3);
    assert!(unpub
        .iter()
        .all(|n| n.2["reason"] == "forceUnpublishByUser"));
    // And evicts the subscriber.
    assert!(w.call(
        &mut moderator,
        3,
        "forceDisconnect",
        json!({"connectionId": s["id"]})
    )["result"]
        .is_object());
    let notes = w.notes();
    assert!(notes
        .iter()
        .any(|n| n.0 == s["id"].as_str().unwrap() && n.1 == "participantEvicted"));
    assert_eq!(
        w.call(
            &mut moderator,
            4,
            "forceDisconnect",
            json!({"connectionId": "con_Gone"})
        )["error"]["code"],
        102
    );
    assert_eq!(
        w.call(&mut moderator, 5, "noSuchMethod", json!({}))["error"]["code"],
        -32601
    );
    let _ = p;
}

#[test]
fn signals_and_property_changes_reach_the_others() {
    let mut w = World::new();
    let sid = w
        .rooms
        .create_session(1, SessionProps::default())
        .unwrap()
        .id
        .clone();
    let (mut a, ja) = w.join(&sid, Role::Publisher, "a");
    let (_b, jb) = w.join(&sid, Role::Publisher, "b");
    w.notes();
    let msg = json!({"to": [jb["id"]], "data": "hello", "type": "signal:chat"}).to_string();
    assert!(w.call(&mut a, 2, "sendMessage", json!({"message": msg}))["result"].is_object());
    let notes = w.notes();
    assert_eq!(
        notes,
        [(
            jb["id"].as_str().unwrap().to_owned(),
            "sendMessage",
            json!({"data": "hello", "type": "signal:chat", "from": ja["id"]})
        )]
    );
    let bad = json!({"to": ["con_Nobody"], "data": "x", "type": "signal"}).to_string();
    assert_eq!(
        w.call(&mut a, 3, "sendMessage", json!({"message": bad}))["error"]["code"],
        601
    );
    let r = w.call(&mut a, 4, "publishVideo", json!({"sdpOffer": "o", "hasAudio": true, "hasVideo": true, "audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": "{\"width\":640,\"height\":480}"}));
    let stream = r["result"]["id"].as_str().unwrap().to_owned();
    w.notes();
    w.call(&mut a, 5, "streamPropertyChanged", json!({"streamId": stream, "property": "videoActive", "newValue": false, "reason": "publishVideo"}));
    w.call(&mut a, 6, "streamPropertyChanged", json!({"streamId": stream, "property": "videoDimensions", "newValue": "{\"width\":480,\"height\":640}", "reason": "deviceRotated"}));
    let notes = w.notes();
    assert_eq!(notes[0].2["newValue"], "false");
    assert_eq!(
        notes[1].2["newValue"],
        "\"{\\\"width\\\":480,\\\"height\\\":640}\""
    );
    let s = w
        .rooms
        .session(&sid)
        .unwrap()
        .connection(ja["id"].as_str().unwrap())
        .unwrap()
        .publisher
        .clone()
        .unwrap();
    assert_eq!(s.media.video_active, Some(false));
    assert_eq!(
        s.media.video_dimensions.as_deref(),
        Some("{\"width\":480,\"height\":640}")
    );
}

#[test]
fn reconnection_rebinds_by_private_id_and_leave_ends_the_participant() {
    let mut w = World::new();
    let sid = w
        .rooms
        .create_session(1, SessionProps::default())
        .unwrap()
        .id
        .clone();
    let (_old, ja) = w.join(&sid, Role::Publisher, "a");
    let (_b, _) = w.join(&sid, Role::Publisher, "b");
    let private = ja["sessionId"].as_str().unwrap().to_owned();
    let mut fresh = Peer::default();
    let r = w.call(
        &mut fresh,
        0,
        "connect",
        json!({"sessionId": private, "reconnect": true}),
    );
    assert_eq!(r["result"]["value"], "reconnection successful");
    assert_eq!(fresh.joined.as_ref().unwrap().1, ja["id"].as_str().unwrap());
    let mut stranger = Peer::default();
    assert_eq!(
        w.call(
            &mut stranger,
            0,
            "connect",
            json!({"sessionId": "nope", "reconnect": true})
        )["error"]["code"],
        40007
    );
    w.notes();
    assert!(w.call(&mut fresh, 1, "leaveRoom", json!({}))["result"].is_object());
    assert!(fresh.left && fresh.joined.is_none());
    let notes = w.notes();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].1, "participantLeft");
    assert_eq!(notes[0].2["reason"], "disconnect");
}
