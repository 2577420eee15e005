//! All sessions, and every operation on them, as one state machine.
//!
//! Each operation takes the wall-clock time in milliseconds (`now`) and returns its result;
//! what it causes elsewhere — webhook events, JSON-RPC notifications to participants,
//! signalling connections to close — is queued as [`Output`] for the shell to drain with
//! [`Rooms::poll_output`], in the order OpenVidu produces them.

use std::collections::VecDeque;

use serde_json::{json, Value};

use crate::ids::{valid_custom_session_id, IdGen};
use crate::model::{
    default_recording_properties, Connection, ConnectionType, MediaOptions, Role, Session, Status,
    Stream,
};

/// What an operation causes outside the rooms.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A webhook event (the full JSON body, `event` included).
    Webhook(Value),
    /// A JSON-RPC notification to one participant.
    Notify {
        connection: String,
        method: &'static str,
        params: Value,
    },
    /// The participant's signalling should be closed (it was evicted).
    Disconnect { connection: String },
    /// A published stream ended: its publisher and every subscription to it are gone.
    StreamEnded { stream: String },
    /// One subscription ended.
    SubscriptionEnded { connection: String, stream: String },
    /// A participant left: everything it sent or received is gone.
    ParticipantGone {
        connection: String,
        reason: LeaveReason,
    },
    /// A session is gone (closed, or its last participant left).
    SessionDestroyed { session: String },
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomsError {
    #[error("session not found")]
    SessionNotFound,
    #[error("not found")]
    NotFound,
    #[error("a session with this id exists")]
    Conflict,
    #[error("{0}")]
    BadRequest(String),
    /// The request cannot be honoured in the current state (e.g. a signal to nobody).
    #[error("{0}")]
    NotAcceptable(String),
}

/// What a new session is created with.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionProps {
    pub custom_session_id: Option<String>,
    pub media_mode: String,
    pub recording_mode: String,
    pub default_recording_properties: Value,
    pub forced_video_codec: String,
    pub allow_transcoding: bool,
    pub media_node: Value,
}

impl Default for SessionProps {
    fn default() -> Self {
        SessionProps {
            custom_session_id: None,
            media_mode: "ROUTED".into(),
            recording_mode: "MANUAL".into(),
            default_recording_properties: default_recording_properties(),
            forced_video_codec: "MEDIA_SERVER_PREFERRED".into(),
            allow_transcoding: false,
            media_node: Value::Null,
        }
    }
}

/// What a new connection is created with.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionProps {
    pub kind: ConnectionType,
    pub data: String,
    pub record: bool,
    pub role: Role,
    pub kurento_options: Value,
    pub custom_ice_servers: Vec<Value>,
}

impl Default for ConnectionProps {
    fn default() -> Self {
        ConnectionProps {
            kind: ConnectionType::WebRtc,
            data: String::new(),
            record: true,
            role: Role::Publisher,
            kurento_options: Value::Null,
            custom_ice_servers: Vec::new(),
        }
    }
}

/// Why a participant leaves (OpenVidu's `EndReason` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    Disconnect,
    ForceDisconnectByUser,
    ForceDisconnectByServer,
    SessionClosedByServer,
    NetworkDisconnect,
    OpenviduServerStopped,
}

impl LeaveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Disconnect => "disconnect",
            LeaveReason::ForceDisconnectByUser => "forceDisconnectByUser",
            LeaveReason::ForceDisconnectByServer => "forceDisconnectByServer",
            LeaveReason::SessionClosedByServer => "sessionClosedByServer",
            LeaveReason::NetworkDisconnect => "networkDisconnect",
            LeaveReason::OpenviduServerStopped => "openviduServerStopped",
        }
    }

    /// Whether the participant is told it was evicted (`participantEvicted`).
    fn evicts(self) -> bool {
        matches!(
            self,
            LeaveReason::ForceDisconnectByUser
                | LeaveReason::ForceDisconnectByServer
                | LeaveReason::SessionClosedByServer
        )
    }
}

/// Everything about a participant that joined, for the `joinRoom` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    pub session_id: String,
    pub connection: Connection,
    /// The other active participants at the time of joining.
    pub others: Vec<Connection>,
}

/// All sessions. See the module documentation for the drain rule.
#[derive(Debug)]
pub struct Rooms {
    sessions: Vec<Session>,
    ids: IdGen,
    /// `ws://host:port` (or `wss://`), the base of every token.
    ws_base: String,
    /// Unused sessions are collected after this many milliseconds.
    gc_after_ms: u64,
    outputs: VecDeque<Output>,
}

impl Rooms {
    pub fn new(seed: u64, ws_base: &str, gc_after_ms: u64) -> Self {
        Rooms {
            sessions: Vec::new(),
            ids: IdGen::new(seed),
            ws_base: ws_base.trim_end_matches('/').to_owned(),
            gc_after_ms,
            outputs: VecDeque::new(),
        }
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The same notification to each of `to`, in order.
    fn notify(&mut self, to: &[String], method: &'static str, params: &Value) {
        for c in to {
            self.outputs.push_back(Output::Notify {
                connection: c.clone(),
                method,
                params: params.clone(),
            });
        }
    }

    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }

    fn session_mut(&mut self, id: &str) -> Result<&mut Session, RoomsError> {
        self.sessions
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(RoomsError::SessionNotFound)
    }

    /// `POST /sessions`. `Conflict` when the custom id exists.
    pub fn create_session(
        &mut self,
        now: u64,
        props: SessionProps,
    ) -> Result<&Session, RoomsError> {
        let id = match props.custom_session_id.as_deref() {
            Some(custom) => {
                if !valid_custom_session_id(custom) {
                    return Err(RoomsError::BadRequest(
                        "customSessionId must match [a-zA-Z0-9_-]+".into(),
                    ));
                }
                if self.session(custom).is_some() {
                    return Err(RoomsError::Conflict);
                }
                custom.to_owned()
            }
            None => loop {
                let id = self.ids.session();
                if self.session(&id).is_none() {
                    break id;
                }
            },
        };
        let session = Session {
            custom_session_id: props.custom_session_id.unwrap_or_default(),
            id,
            created_at: now,
            media_mode: props.media_mode,
            recording_mode: props.recording_mode,
            default_recording_properties: props.default_recording_properties,
            forced_video_codec: props.forced_video_codec,
            allow_transcoding: props.allow_transcoding,
            media_node: props.media_node,
            connections: Vec::new(),
            joined: false,
        };
        self.webhook(&SessionKey::of(&session), "sessionCreated", now, json!({}));
        self.sessions.push(session);
        Ok(self.sessions.last().expect("just pushed"))
    }

    /// `POST /sessions/{id}/connection`: a pending connection with its token.
    pub fn create_connection(
        &mut self,
        now: u64,
        session_id: &str,
        props: ConnectionProps,
    ) -> Result<&Connection, RoomsError> {
        let id = self.ids.connection();
        let token = format!(
            "{}?sessionId={session_id}&token={}",
            self.ws_base,
            self.ids.token()
        );
        let session = self.session_mut(session_id)?;
        session.connections.push(Connection {
            id,
            session_id: session_id.to_owned(),
            token,
            status: Status::Pending,
            created_at: now,
            active_at: None,
            kind: props.kind,
            role: props.role,
            record: props.record,
            server_data: props.data,
            client_data: None,
            platform: None,
            ip: None,
            kurento_options: props.kurento_options,
            custom_ice_servers: props.custom_ice_servers,
            publisher: None,
            subscriptions: Vec::new(),
            private_id: None,
        });
        Ok(session.connections.last().expect("just pushed"))
    }

    /// A participant joins with a pending connection's token (single use).
    pub fn join(
        &mut self,
        now: u64,
        token: &str,
        client_data: &str,
        platform: &str,
        ip: &str,
    ) -> Result<Joined, RoomsError> {
        let (si, ci) = self
            .sessions
            .iter()
            .enumerate()
            .find_map(|(si, s)| {
                s.connections
                    .iter()
                    .position(|c| c.status == Status::Pending && c.token == token)
                    .map(|ci| (si, ci))
            })
            .ok_or(RoomsError::NotFound)?;
        let private_id = self.ids.private();
        let session = &mut self.sessions[si];
        session.joined = true;
        let c = &mut session.connections[ci];
        c.private_id = Some(private_id);
        c.status = Status::Active;
        c.active_at = Some(now);
        c.client_data = Some(client_data.to_owned());
        c.platform = Some(platform.to_owned());
        c.ip = Some(ip.to_owned());
        let joined = c.clone();
        let others: Vec<Connection> = session
            .active()
            .filter(|o| o.id != joined.id)
            .cloned()
            .collect();
        let params = json!({
            "id": joined.id,
            "createdAt": joined.active_at,
            "metadata": joined.metadata(),
        });
        let to: Vec<String> = others.iter().map(|o| o.id.clone()).collect();
        self.notify(&to, "participantJoined", &params);
        let key = SessionKey::of(&self.sessions[si]);
        let fields = participant_fields(&joined);
        self.webhook(&key, "participantJoined", now, fields);
        Ok(Joined {
            session_id: key.id.clone(),
            connection: joined,
            others,
        })
    }

    /// A phone call joins `session_id`: an active connection of type `SIP` (platform `SIP`)
    /// that publishes an audio-only stream at once. Browsers see `participantJoined` then
    /// `participantPublished`; the webhooks are `participantJoined` then
    /// `webrtcConnectionCreated`, as for a browser that joins and publishes.
    pub fn join_phone(
        &mut self,
        now: u64,
        session_id: &str,
        server_data: &str,
        client_data: &str,
        ip: &str,
    ) -> Result<(String, Stream), RoomsError> {
        let props = ConnectionProps {
            kind: ConnectionType::Sip,
            data: server_data.to_owned(),
            record: false,
            role: Role::Publisher,
            ..ConnectionProps::default()
        };
        let token = self
            .create_connection(now, session_id, props)?
            .token
            .clone();
        let joined = self.join(now, &token, client_data, "SIP", ip)?;
        let media = MediaOptions {
            has_audio: true,
            has_video: false,
            audio_active: Some(true),
            video_active: Some(false),
            type_of_video: None,
            frame_rate: json!(-1),
            video_dimensions: None,
            filter: json!({}),
        };
        let stream = self.publish(now, session_id, &joined.connection.id, media)?;
        Ok((joined.connection.id, stream))
    }

    /// A participant publishes its stream. Returns the stream.
    pub fn publish(
        &mut self,
        now: u64,
        session_id: &str,
        connection_id: &str,
        media: MediaOptions,
    ) -> Result<Stream, RoomsError> {
        let kind = match (media.has_video, media.type_of_video.as_deref()) {
            (false, _) => "MIC".to_owned(),
            (true, Some(t)) => t.chars().take(3).collect::<String>().to_ascii_uppercase(),
            (true, None) => "CAM".to_owned(),
        };
        let stream_id = self.ids.stream(&kind, connection_id);
        let session = self.session_mut(session_id)?;
        let c = session
            .connection_mut(connection_id)
            .filter(|c| c.status == Status::Active)
            .ok_or(RoomsError::NotFound)?;
        if c.publisher.is_some() {
            return Err(RoomsError::NotAcceptable("already publishing".into()));
        }
        let stream = Stream {
            id: stream_id,
            created_at: now,
            media,
        };
        c.publisher = Some(stream.clone());
        let publisher = c.clone();
        let params = json!({"id": connection_id, "streams": [stream.to_rpc_json()]});
        let others = session.active_ids_except(connection_id);
        self.notify(&others, "participantPublished", &params);
        let session = SessionKey::of(self.session(session_id).expect("looked up above"));
        self.webhook(
            &session,
            "webrtcConnectionCreated",
            now,
            connection_fields(&publisher, &stream, None),
        );
        Ok(stream)
    }

    /// `participant` starts receiving `stream_id`.
    pub fn subscribe(
        &mut self,
        now: u64,
        session_id: &str,
        participant: &str,
        stream_id: &str,
    ) -> Result<(), RoomsError> {
        let session = self.session_mut(session_id)?;
        let publisher = session
            .active()
            .find(|c| c.publisher.as_ref().is_some_and(|s| s.id == stream_id))
            .cloned()
            .ok_or(RoomsError::NotFound)?;
        let c = session
            .connection_mut(participant)
            .filter(|c| c.status == Status::Active)
            .ok_or(RoomsError::NotFound)?;
        c.subscriptions.retain(|(s, _)| s != stream_id);
        c.subscriptions.push((stream_id.to_owned(), now));
        let subscriber = c.clone();
        let stream = publisher.publisher.clone().expect("found by its stream");
        let session = SessionKey::of(self.session(session_id).expect("looked up above"));
        self.webhook(
            &session,
            "webrtcConnectionCreated",
            now,
            connection_fields(&subscriber, &stream, Some(&publisher.id)),
        );
        Ok(())
    }

    /// `participant` stops receiving the stream of `publisher_connection`.
    pub fn unsubscribe(
        &mut self,
        now: u64,
        session_id: &str,
        participant: &str,
        publisher_connection: &str,
    ) -> Result<(), RoomsError> {
        let session = self.session_mut(session_id)?;
        let stream = session
            .connection(publisher_connection)
            .and_then(|p| p.publisher.clone())
            .ok_or(RoomsError::NotFound)?;
        let c = session
            .connection_mut(participant)
            .ok_or(RoomsError::NotFound)?;
        let Some(pos) = c.subscriptions.iter().position(|(s, _)| *s == stream.id) else {
            return Err(RoomsError::NotFound);
        };
        let (_, since) = c.subscriptions.remove(pos);
        let subscriber = c.clone();
        self.outputs.push_back(Output::SubscriptionEnded {
            connection: participant.to_owned(),
            stream: stream.id.clone(),
        });
        let session = SessionKey::of(self.session(session_id).expect("looked up above"));
        let mut fields = connection_fields(&subscriber, &stream, Some(publisher_connection));
        ended(&mut fields, since, now, "unsubscribe");
        self.webhook(&session, "webrtcConnectionDestroyed", now, fields);
        Ok(())
    }

    /// The active participant whose signalling session had `private_id`.
    pub fn find_private(&self, private_id: &str) -> Option<(String, String)> {
        self.sessions.iter().find_map(|s| {
            s.active()
                .find(|c| c.private_id.as_deref() == Some(private_id))
                .map(|c| (s.id.clone(), c.id.clone()))
        })
    }

    /// A publisher changed a property of its stream (`audioActive`, `videoActive`,
    /// `videoDimensions`, track replacements): stored, and told to everyone else with
    /// `newValue` as the JSON text of what was sent.
    #[allow(clippy::too_many_arguments)]
    pub fn stream_property_changed(
        &mut self,
        session_id: &str,
        connection_id: &str,
        stream_id: &str,
        property: &str,
        new_value: &Value,
        reason: &str,
    ) -> Result<(), RoomsError> {
        let session = self.session_mut(session_id)?;
        let c = session
            .connection_mut(connection_id)
            .ok_or(RoomsError::NotFound)?;
        let stream = c
            .publisher
            .as_mut()
            .filter(|s| s.id == stream_id)
            .ok_or(RoomsError::NotFound)?;
        match (property, new_value) {
            ("audioActive", Value::Bool(b)) => stream.media.audio_active = Some(*b),
            ("videoActive", Value::Bool(b)) => stream.media.video_active = Some(*b),
            ("videoDimensions", Value::String(d)) => {
                stream.media.video_dimensions = Some(d.clone())
            }
            _ => {}
        }
        let params = json!({
            "connectionId": connection_id,
            "streamId": stream_id,
            "property": property,
            "newValue": new_value.to_string(),
            "reason": reason,
        });
        let others = session.active_ids_except(connection_id);
        self.notify(&others, "streamPropertyChanged", &params);
        Ok(())
    }

    /// Ends a stream (`unpublishVideo`, `forceUnpublish`, REST DELETE stream). `reason` is
    /// `unpublish`, `forceUnpublishByUser` or `forceUnpublishByServer`; the owner is told too
    /// unless it unpublished itself.
    pub fn unpublish(
        &mut self,
        now: u64,
        session_id: &str,
        stream_id: &str,
        reason: &'static str,
    ) -> Result<(), RoomsError> {
        let session = self.session_mut(session_id)?;
        let owner = session
            .connections
            .iter()
            .find(|c| c.publisher.as_ref().is_some_and(|s| s.id == stream_id))
            .map(|c| c.id.clone())
            .ok_or(RoomsError::NotFound)?;
        let recipients: Vec<String> = session
            .active()
            .filter(|c| reason != "unpublish" || c.id != owner)
            .map(|c| c.id.clone())
            .collect();
        let params = json!({"connectionId": owner, "reason": reason});
        self.notify(&recipients, "participantUnpublished", &params);
        self.end_stream(now, session_id, &owner, reason);
        Ok(())
    }

    /// Webhooks for a stream's subscribers and its publisher, and the state cleared.
    fn end_stream(&mut self, now: u64, session_id: &str, owner: &str, reason: &str) {
        let Ok(session) = self.session_mut(session_id) else {
            return;
        };
        let Some(stream) = session
            .connection_mut(owner)
            .and_then(|c| c.publisher.take())
        else {
            return;
        };
        self.outputs.push_back(Output::StreamEnded {
            stream: stream.id.clone(),
        });
        let Ok(session) = self.session_mut(session_id) else {
            return;
        };
        let mut events = Vec::new();
        for c in session.connections.iter_mut() {
            if let Some(pos) = c.subscriptions.iter().position(|(s, _)| *s == stream.id) {
                let (_, since) = c.subscriptions.remove(pos);
                let mut f = connection_fields(c, &stream, Some(owner));
                ended(&mut f, since, now, reason);
                events.push(f);
            }
        }
        if let Some(p) = session.connection(owner) {
            let mut f = connection_fields(p, &stream, None);
            ended(&mut f, stream.created_at, now, reason);
            events.push(f);
        }
        let session = SessionKey::of(session);
        for f in events {
            self.webhook(&session, "webrtcConnectionDestroyed", now, f);
        }
    }

    /// A participant leaves (by itself, evicted, or its network gone). Pending connections
    /// are simply removed. The session closes when its last participant leaves.
    pub fn leave(
        &mut self,
        now: u64,
        session_id: &str,
        connection_id: &str,
        reason: LeaveReason,
    ) -> Result<(), RoomsError> {
        let session = self.session_mut(session_id)?;
        let c = session
            .connection(connection_id)
            .cloned()
            .ok_or(RoomsError::NotFound)?;
        if c.status == Status::Pending {
            session.connections.retain(|x| x.id != connection_id);
            return Ok(());
        }
        let others = session.active_ids_except(connection_id);
        self.outputs.push_back(Output::ParticipantGone {
            connection: connection_id.to_owned(),
            reason,
        });
        let params = json!({"connectionId": connection_id, "reason": reason.as_str()});
        self.notify(&others, "participantLeft", &params);
        if reason.evicts() {
            let mut evicted = others;
            evicted.push(c.id.clone());
            self.notify(&evicted, "participantEvicted", &params);
            self.outputs.push_back(Output::Disconnect {
                connection: c.id.clone(),
            });
        }
        // The leaver's subscriptions, then everyone's subscriptions to it and its publisher.
        let reason_str = reason.as_str();
        let session = self.session_mut(session_id)?;
        let leaver = session.connection_mut(connection_id).expect("found above");
        let subscriptions = std::mem::take(&mut leaver.subscriptions);
        let leaver = leaver.clone();
        let mut events = Vec::new();
        for (stream_id, since) in subscriptions {
            if let Some(p) = session
                .active()
                .find(|p| p.publisher.as_ref().is_some_and(|s| s.id == stream_id))
            {
                let stream = p.publisher.as_ref().expect("matched");
                let mut f = connection_fields(&leaver, stream, Some(&p.id));
                ended(&mut f, since, now, reason_str);
                events.push(f);
            }
        }
        let snapshot = SessionKey::of(session);
        for f in events {
            self.webhook(&snapshot, "webrtcConnectionDestroyed", now, f);
        }
        self.end_stream(now, session_id, connection_id, reason_str);
        let session = self.session_mut(session_id)?;
        session.connections.retain(|x| x.id != connection_id);
        let empty = session.active().next().is_none();
        let snapshot = SessionKey::of(session);
        let mut fields = participant_fields(&leaver);
        ended(
            &mut fields,
            leaver.active_at.unwrap_or(now),
            now,
            reason_str,
        );
        self.webhook(&snapshot, "participantLeft", now, fields);
        if empty && reason != LeaveReason::SessionClosedByServer {
            self.destroy(now, session_id, "lastParticipantLeft");
        }
        Ok(())
    }

    /// `DELETE /sessions/{id}`: everyone is evicted, then the session is destroyed.
    pub fn close_session(&mut self, now: u64, session_id: &str) -> Result<(), RoomsError> {
        let active: Vec<String> = self
            .session(session_id)
            .ok_or(RoomsError::NotFound)?
            .active()
            .map(|c| c.id.clone())
            .collect();
        for c in active {
            self.leave(now, session_id, &c, LeaveReason::SessionClosedByServer)?;
        }
        self.destroy(now, session_id, "sessionClosedByServer");
        Ok(())
    }

    fn destroy(&mut self, now: u64, session_id: &str, reason: &str) {
        let Some(pos) = self.sessions.iter().position(|s| s.id == session_id) else {
            return;
        };
        let session = self.sessions.remove(pos);
        let duration = now.saturating_sub(session.created_at) / 1000;
        self.webhook(
            &SessionKey::of(&session),
            "sessionDestroyed",
            now,
            json!({"startTime": session.created_at, "duration": duration, "reason": reason}),
        );
        self.outputs.push_back(Output::SessionDestroyed {
            session: session.id,
        });
    }

    /// `DELETE /sessions/{id}/connection/{cid}`: removes a pending token or evicts a
    /// participant.
    pub fn delete_connection(
        &mut self,
        now: u64,
        session_id: &str,
        connection_id: &str,
    ) -> Result<(), RoomsError> {
        let session = self
            .session(session_id)
            .ok_or(RoomsError::SessionNotFound)?;
        if session.connection(connection_id).is_none() {
            return Err(RoomsError::NotFound);
        }
        self.leave(
            now,
            session_id,
            connection_id,
            LeaveReason::ForceDisconnectByServer,
        )
    }

    /// A signal to `to` (everyone when empty), from a participant or (`from` None) from the
    /// server. Unknown targets refuse the whole signal.
    pub fn signal(
        &mut self,
        now: u64,
        session_id: &str,
        from: Option<&str>,
        to: &[String],
        kind: &str,
        data: &str,
    ) -> Result<(), RoomsError> {
        let session = self
            .session(session_id)
            .ok_or(RoomsError::SessionNotFound)?;
        let key = SessionKey::of(session);
        let active: Vec<String> = session.active().map(|c| c.id.clone()).collect();
        if active.is_empty() {
            return Err(RoomsError::NotAcceptable("nobody is connected".into()));
        }
        if let Some(unknown) = to.iter().find(|t| !active.contains(t)) {
            return Err(RoomsError::NotAcceptable(format!(
                "unknown connection {unknown}"
            )));
        }
        let targets = if to.is_empty() { active } else { to.to_vec() };
        let mut params = json!({"data": data, "type": kind});
        if let Some(f) = from {
            params["from"] = f.into();
        }
        self.notify(&targets, "sendMessage", &params);
        self.webhook(
            &key,
            "signalSent",
            now,
            json!({"from": from, "to": targets, "type": kind, "data": data}),
        );
        Ok(())
    }

    /// Destroys sessions nobody has joined within the collection threshold. Returns when to
    /// call again.
    pub fn collect_garbage(&mut self, now: u64) -> Option<u64> {
        let expired: Vec<String> = self
            .sessions
            .iter()
            .filter(|s| !s.joined && now >= s.created_at + self.gc_after_ms)
            .map(|s| s.id.clone())
            .collect();
        for id in expired {
            self.destroy(now, &id, "automaticStop");
        }
        self.sessions
            .iter()
            .filter(|s| !s.joined)
            .map(|s| s.created_at + self.gc_after_ms)
            .min()
    }

    /// The server is stopping: everyone leaves, every session is destroyed.
    pub fn shutdown(&mut self, now: u64) {
        let ids: Vec<String> = self.sessions.iter().map(|s| s.id.clone()).collect();
        for sid in ids {
            let active: Vec<String> = self
                .session(&sid)
                .map(|s| s.active().map(|c| c.id.clone()).collect())
                .unwrap_or_default();
            for c in active {
                let _ = self.leave(now, &sid, &c, LeaveReason::OpenviduServerStopped);
            }
            self.destroy(now, &sid, "openviduServerStopped");
        }
    }

    fn webhook(&mut self, session: &SessionKey, event: &str, now: u64, fields: Value) {
        let mut body = json!({
            "event": event,
            "sessionId": session.id,
            "uniqueSessionId": session.unique,
            "timestamp": now,
        });
        if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        self.outputs.push_back(Output::Webhook(body));
    }
}

/// What a webhook names a session by.
struct SessionKey {
    id: String,
    unique: String,
}

impl SessionKey {
    fn of(s: &Session) -> Self {
        SessionKey {
            id: s.id.clone(),
            unique: s.unique_id(),
        }
    }
}

/// The participant fields of `participantJoined`/`participantLeft` webhooks.
fn participant_fields(c: &Connection) -> Value {
    json!({
        "participantId": c.id,
        "connectionId": c.id,
        "location": "unknown",
        "ip": c.ip,
        "platform": c.platform,
        "clientData": c.client_data,
        "serverData": c.server_data,
    })
}

/// The fields of `webrtcConnectionCreated/Destroyed` for `c`'s side of `stream`
/// (`receiving_from` set for a subscription).
fn connection_fields(c: &Connection, stream: &Stream, receiving_from: Option<&str>) -> Value {
    let m = &stream.media;
    let mut f = json!({
        "participantId": c.id,
        "connectionId": c.id,
        "streamId": stream.id,
        "connection": if receiving_from.is_some() { "INBOUND" } else { "OUTBOUND" },
        "audioEnabled": m.has_audio,
        "videoEnabled": m.has_video,
    });
    if let Some(p) = receiving_from {
        f["receivingFrom"] = p.into();
    }
    if m.has_video {
        f["videoSource"] = m.type_of_video.clone().into();
        f["videoFramerate"] = m.frame_rate.clone();
        f["videoDimensions"] = m.video_dimensions.clone().into();
    }
    f
}

/// Adds `startTime`, `duration` (s) and `reason` to a destroyed/left event.
fn ended(fields: &mut Value, since: u64, now: u64, reason: &str) {
    fields["startTime"] = since.into();
    fields["duration"] = (now.saturating_sub(since) / 1000).into();
    fields["reason"] = reason.into();
}
