//! OpenVidu's JSON-RPC 2.0 signalling (the protocol `openvidu-browser` speaks over the
//! `/openvidu` WebSocket), as one function per incoming text frame: parse, check, run the
//! method on the [`Rooms`], and answer. Notifications to other participants come out of the
//! rooms as [`crate::Output`]s.
//!
//! Media methods (`publishVideo`, `receiveVideoFrom`, `onIceCandidate`, …) go to a
//! [`MediaHandler`]; the SFU implements it.

use serde_json::{json, Value};

use crate::model::{MediaOptions, Role, Status};
use crate::rooms::{LeaveReason, Rooms, RoomsError};

/// The OpenVidu version reported to clients (2.29–2.32 clients speak the same protocol).
pub const VERSION: &str = "2.32.2";

/// OpenVidu error codes (`OpenViduException.Code`) and JSON-RPC's own.
pub mod code {
    pub const GENERIC: i64 = 999;
    pub const USER_NOT_FOUND: i64 = 102;
    pub const USER_NOT_STREAMING: i64 = 105;
    pub const USER_ALREADY_STREAMING: i64 = 106;
    pub const ROOM_NOT_FOUND: i64 = 202;
    pub const MEDIA_GENERIC: i64 = 301;
    pub const MEDIA_SDP: i64 = 302;
    pub const UNAUTHORIZED: i64 = 401;
    pub const SIGNAL_FORMAT_INVALID: i64 = 600;
    pub const SIGNAL_TO_INVALID: i64 = 601;
    pub const FORCED_CODEC_NOT_FOUND: i64 = 800;
    pub const TRANSPORT: i64 = 803;
    pub const RECONNECTION: i64 = 40007;
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
}

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

/// What the SFU does for the signalling. Each call runs inside the same operation as the
/// rooms' bookkeeping, so the answer and the notifications stay in order.
pub trait MediaHandler {
    /// Answers a publisher's offer; `forced_codec` is the session's `forcedVideoCodec`.
    fn publish(
        &mut self,
        session: &str,
        connection: &str,
        offer: &str,
        forced_codec: &str,
    ) -> Result<String, RpcError>;
    /// Answers a subscriber's offer for `stream`.
    fn subscribe(
        &mut self,
        session: &str,
        connection: &str,
        stream: &str,
        offer: &str,
    ) -> Result<String, RpcError>;
    /// A trickled candidate for the connection's publisher (`endpoint` = own id) or for its
    /// subscription to the publisher `endpoint`.
    fn candidate(&mut self, connection: &str, endpoint: &str, candidate: &Value);
}
// Streams, subscriptions and participants that end are announced by the rooms as outputs
// (`StreamEnded`, `SubscriptionEnded`, `ParticipantGone`), whoever ended them (RPC, REST, a
// network loss), so the media side tears down from one place.

/// A signalling connection's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The session and connection this socket joined as.
    pub joined: Option<(String, String)>,
    /// The ping interval the client announced (ms).
    pub ping_interval: Option<u64>,
    /// Pings received (the shell's watchdog watches it move).
    pub pings: u64,
    /// The client asked to leave; the socket may close.
    pub left: bool,
}

/// What a text frame produced: the answer to send back (if the frame was a request).
pub fn handle(
    rooms: &mut Rooms,
    media: &mut dyn MediaHandler,
    now: u64,
    peer: &mut Peer,
    ip: &str,
    text: &str,
) -> Option<String> {
    let msg: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            return Some(error(
                Value::Null,
                RpcError::new(code::PARSE_ERROR, "parse error"),
            ))
        }
    };
    let id = msg.get("id").cloned();
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        // A response from the client (we send no requests) or garbage: nothing to answer.
        return id
            .filter(|_| msg.get("result").is_none() && msg.get("error").is_none())
            .map(|id| error(id, RpcError::new(code::INVALID_REQUEST, "invalid request")));
    };
    let id = id?; // A notification from the client needs no answer.
    let params = msg.get("params").cloned().unwrap_or(json!({}));
    let result = dispatch(rooms, media, now, peer, ip, method, &params);
    Some(match result {
        Ok(mut v) => {
            // Kurento's injection of the signalling session id into object results.
            if let (Some(obj), Some((sid, cid))) = (v.as_object_mut(), &peer.joined) {
                if !obj.contains_key("sessionId") {
                    if let Some(p) = rooms
                        .session(sid)
                        .and_then(|s| s.connection(cid))
                        .and_then(|c| c.private_id.clone())
                    {
                        obj.insert("sessionId".into(), p.into());
                    }
                }
            }
            json!({"jsonrpc": "2.0", "id": id, "result": v}).to_string()
        }
        Err(e) => error(id, e),
    })
}

fn error(id: Value, e: RpcError) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}}).to_string()
}

fn str_param<'a>(p: &'a Value, key: &str) -> Result<&'a str, RpcError> {
    p.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::new(code::INVALID_PARAMS, format!("'{key}' is required")))
}

fn dispatch(
    rooms: &mut Rooms,
    media: &mut dyn MediaHandler,
    now: u64,
    peer: &mut Peer,
    ip: &str,
    method: &str,
    p: &Value,
) -> Result<Value, RpcError> {
    match method {
        "ping" => {
            peer.pings += 1;
            if let Some(i) = p.get("interval").and_then(Value::as_u64) {
                peer.ping_interval = Some(i);
            }
            return Ok(json!({"value": "pong"}));
        }
        "joinRoom" => return join(rooms, now, peer, ip, p),
        "connect" => {
            // Re-binding a reconnected socket is the shell's (it owns the sockets); here the
            // private id must belong to a live participant.
            let private = str_param(p, "sessionId")?;
            return match rooms.find_private(private) {
                Some(found) => {
                    peer.joined = Some(found);
                    Ok(json!({"value": "reconnection successful", "sessionId": private}))
                }
                None => Err(RpcError::new(code::RECONNECTION, "reconnection error")),
            };
        }
        _ => {}
    }
    let Some((sid, cid)) = peer.joined.clone() else {
        return Err(RpcError::new(
            code::TRANSPORT,
            "No connection found for this socket: Session.connect() must be the first operation",
        ));
    };
    let role = rooms
        .session(&sid)
        .and_then(|s| s.connection(&cid))
        .filter(|c| c.status == Status::Active)
        .map(|c| c.role)
        .ok_or_else(|| RpcError::new(code::TRANSPORT, "the participant is gone"))?;
    let moderator = || {
        if role == Role::Moderator {
            Ok(())
        } else {
            Err(RpcError::new(
                code::UNAUTHORIZED,
                "only moderators may do this",
            ))
        }
    };
    let not_found = |e: RoomsError| RpcError::new(code::USER_NOT_FOUND, e.to_string());
    match method {
        "leaveRoom" => {
            rooms
                .leave(now, &sid, &cid, LeaveReason::Disconnect)
                .map_err(not_found)?;
            peer.joined = None;
            peer.left = true;
            Ok(json!({}))
        }
        "sendMessage" => {
            let text = str_param(p, "message")?;
            let m: Value = serde_json::from_str(text)
                .map_err(|_| RpcError::new(code::SIGNAL_FORMAT_INVALID, "message is not JSON"))?;
            let to: Vec<String> = match m.get("to") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(l)) => l
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Some(_) => {
                    return Err(RpcError::new(
                        code::SIGNAL_FORMAT_INVALID,
                        "'to' must be an array",
                    ))
                }
            };
            let kind = m.get("type").and_then(Value::as_str).unwrap_or("signal");
            let data = m.get("data").and_then(Value::as_str).unwrap_or("");
            rooms
                .signal(now, &sid, Some(&cid), &to, kind, data)
                .map_err(|e| RpcError::new(code::SIGNAL_TO_INVALID, e.to_string()))?;
            Ok(json!({}))
        }
        "forceDisconnect" => {
            moderator()?;
            let target = str_param(p, "connectionId")?;
            let active = rooms
                .session(&sid)
                .and_then(|s| s.connection(target))
                .is_some_and(|c| c.status == Status::Active);
            if !active {
                return Err(RpcError::new(code::USER_NOT_FOUND, "no such participant"));
            }
            rooms
                .leave(now, &sid, target, LeaveReason::ForceDisconnectByUser)
                .map_err(not_found)?;
            Ok(json!({}))
        }
        "forceUnpublish" => {
            moderator()?;
            let stream = str_param(p, "streamId")?;
            rooms
                .unpublish(now, &sid, stream, "forceUnpublishByUser")
                .map_err(not_found)?;
            Ok(json!({}))
        }
        "unpublishVideo" => {
            let Some(stream) = own_stream(rooms, &sid, &cid) else {
                return Err(RpcError::new(code::USER_NOT_STREAMING, "not publishing"));
            };
            rooms
                .unpublish(now, &sid, &stream, "unpublish")
                .map_err(not_found)?;
            Ok(json!({}))
        }
        "streamPropertyChanged" => {
            let stream = str_param(p, "streamId")?;
            let property = str_param(p, "property")?;
            let reason = p.get("reason").and_then(Value::as_str).unwrap_or("");
            let value = p.get("newValue").cloned().unwrap_or(Value::Null);
            rooms
                .stream_property_changed(&sid, &cid, stream, property, &value, reason)
                .map_err(|_| RpcError::new(code::USER_NOT_STREAMING, "no such stream of yours"))?;
            Ok(json!({}))
        }
        "publishVideo" => {
            if !role.can_publish() {
                return Err(RpcError::new(
                    code::UNAUTHORIZED,
                    "the role may not publish",
                ));
            }
            if own_stream(rooms, &sid, &cid).is_some() {
                return Err(RpcError::new(
                    code::USER_ALREADY_STREAMING,
                    "already publishing",
                ));
            }
            let offer = str_param(p, "sdpOffer")?;
            let answer = media.publish(&sid, &cid, offer, &forced_codec(rooms, &sid))?;
            let stream = rooms
                .publish(now, &sid, &cid, media_options(p))
                .map_err(|e| RpcError::new(code::MEDIA_GENERIC, e.to_string()))?;
            Ok(json!({"sdpAnswer": answer, "id": stream.id, "createdAt": stream.created_at}))
        }
        "receiveVideoFrom" => {
            let sender = str_param(p, "sender")?;
            let stream = sender.to_owned();
            if owner_of(rooms, &sid, &stream).is_none() {
                return Err(RpcError::new(code::USER_NOT_FOUND, "no such stream"));
            }
            let offer = str_param(p, "sdpOffer")?;
            let answer = media.subscribe(&sid, &cid, &stream, offer)?;
            rooms
                .subscribe(now, &sid, &cid, &stream)
                .map_err(not_found)?;
            Ok(json!({"sdpAnswer": answer}))
        }
        "unsubscribeFromVideo" => {
            let publisher = str_param(p, "sender")?;
            if own_stream(rooms, &sid, publisher).is_none() {
                return Err(RpcError::new(code::USER_NOT_FOUND, "no such publisher"));
            }
            rooms
                .unsubscribe(now, &sid, &cid, publisher)
                .map_err(not_found)?;
            Ok(json!({}))
        }
        "onIceCandidate" => {
            let endpoint = str_param(p, "endpointName")?;
            media.candidate(&cid, endpoint, p);
            Ok(json!({}))
        }
        "reconnectStream" => {
            let stream = str_param(p, "stream")?;
            let mine = own_stream(rooms, &sid, &cid).is_some_and(|s| s == stream);
            if mine {
                let offer = str_param(p, "sdpString")?;
                // The new peer connection replaces the old one.
                let answer = media.publish(&sid, &cid, offer, &forced_codec(rooms, &sid))?;
                let created = rooms
                    .session(&sid)
                    .and_then(|s| s.connection(&cid))
                    .and_then(|c| c.publisher.as_ref())
                    .map(|s| s.created_at)
                    .unwrap_or(now);
                Ok(json!({"sdpAnswer": answer, "id": stream, "createdAt": created}))
            } else {
                if owner_of(rooms, &sid, stream).is_none() {
                    return Err(RpcError::new(code::USER_NOT_FOUND, "no such stream"));
                }
                let offer = str_param(p, "sdpOffer")?;
                let answer = media.subscribe(&sid, &cid, stream, offer)?;
                Ok(json!({"sdpAnswer": answer}))
            }
        }
        "echo" | "videoData" => Ok(json!({})),
        "applyFilter"
        | "execFilterMethod"
        | "removeFilter"
        | "addFilterEventListener"
        | "removeFilterEventListener" => {
            Err(RpcError::new(code::GENERIC, "filters are not supported"))
        }
        "subscribeToSpeechToText" | "unsubscribeFromSpeechToText" => {
            Err(RpcError::new(997, "speech to text is not supported"))
        }
        _ => Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!("unknown method {method}"),
        )),
    }
}

/// The stream `connection` publishes, if any.
fn own_stream(rooms: &Rooms, session: &str, connection: &str) -> Option<String> {
    rooms
        .session(session)?
        .connection(connection)?
        .publisher
        .as_ref()
        .map(|s| s.id.clone())
}

/// The video codec the session forces on publishers; empty when it forces none.
fn forced_codec(rooms: &Rooms, session: &str) -> String {
    rooms
        .session(session)
        .map(|s| s.forced_video_codec.clone())
        .unwrap_or_default()
}

/// The connection publishing `stream`.
fn owner_of(rooms: &Rooms, session: &str, stream: &str) -> Option<String> {
    rooms
        .session(session)?
        .active()
        .find(|c| c.publisher.as_ref().is_some_and(|s| s.id == stream))
        .map(|c| c.id.clone())
}

/// The media options of a `publishVideo` request.
fn media_options(p: &Value) -> MediaOptions {
    let b = |k: &str| p.get(k).and_then(Value::as_bool);
    let has_video = b("hasVideo").unwrap_or(false);
    MediaOptions {
        has_audio: b("hasAudio").unwrap_or(false),
        has_video,
        audio_active: b("audioActive"),
        video_active: b("videoActive"),
        type_of_video: p
            .get("typeOfVideo")
            .and_then(Value::as_str)
            .map(str::to_owned),
        frame_rate: p.get("frameRate").cloned().unwrap_or(json!(-1)),
        video_dimensions: p
            .get("videoDimensions")
            .and_then(Value::as_str)
            .map(str::to_owned),
        filter: p.get("filter").cloned().unwrap_or(json!({})),
    }
}

fn join(
    rooms: &mut Rooms,
    now: u64,
    peer: &mut Peer,
    ip: &str,
    p: &Value,
) -> Result<Value, RpcError> {
    if peer.joined.is_some() {
        return Err(RpcError::new(
            code::GENERIC,
            "this socket has joined already",
        ));
    }
    let token = str_param(p, "token")?;
    let session = p
        .get("session")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| token_param(token, "sessionId"))
        .unwrap_or_default();
    if rooms.session(&session).is_none() {
        return Err(RpcError::new(
            code::ROOM_NOT_FOUND,
            format!("Session {session} not found"),
        ));
    }
    let metadata = p.get("metadata").and_then(Value::as_str).unwrap_or("");
    let platform = p.get("platform").and_then(Value::as_str).unwrap_or("");
    let joined = rooms
        .join(now, token, metadata, platform, ip)
        .map_err(|_| {
            RpcError::new(
                code::UNAUTHORIZED,
                format!("Unable to join session {session}. Token {token} is not valid"),
            )
        })?;
    let c = &joined.connection;
    peer.joined = Some((joined.session_id.clone(), c.id.clone()));
    let value: Vec<Value> = joined
        .others
        .iter()
        .map(|o| {
            let mut v = json!({"id": o.id, "createdAt": o.active_at, "metadata": o.metadata()});
            // No `streams` key at all for a participant that does not publish.
            if let Some(s) = &o.publisher {
                v["streams"] = json!([s.to_rpc_json()]);
            }
            v
        })
        .collect();
    let mut result = json!({
        "id": c.id,
        "finalUserId": c.private_id.as_deref().map(|p| p.chars().take(16).collect::<String>()),
        "createdAt": c.active_at,
        "metadata": c.metadata(),
        "value": value,
        "session": joined.session_id,
        "version": VERSION,
        "mediaServer": "kurento",
        "videoSimulcast": false,
        "record": c.record,
        "role": c.role.as_str(),
        "sessionId": c.private_id,
    });
    if !c.custom_ice_servers.is_empty() {
        result["customIceServers"] = Value::Array(c.custom_ice_servers.clone());
    }
    Ok(result)
}

/// A query parameter of a token URL.
fn token_param(token: &str, key: &str) -> Option<String> {
    let query = token.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}
