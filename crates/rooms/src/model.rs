//! Sessions, connections and streams, and their JSON as OpenVidu 2.32's REST API and
//! `openvidu-node-client` know them.

use serde_json::{json, Map, Value};

/// What a connection may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Subscriber,
    Publisher,
    Moderator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Subscriber => "SUBSCRIBER",
            Role::Publisher => "PUBLISHER",
            Role::Moderator => "MODERATOR",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "SUBSCRIBER" => Role::Subscriber,
            "PUBLISHER" => Role::Publisher,
            "MODERATOR" => Role::Moderator,
            _ => return None,
        })
    }

    pub fn can_publish(self) -> bool {
        self != Role::Subscriber
    }
}

/// How a participant takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionType {
    /// A browser (or any openvidu-browser client).
    WebRtc,
    /// A phone call bridged into the session.
    Sip,
}

impl ConnectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionType::WebRtc => "WEBRTC",
            ConnectionType::Sip => "SIP",
        }
    }
}

/// A published stream's media as the client described it.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaOptions {
    pub has_audio: bool,
    pub has_video: bool,
    pub audio_active: Option<bool>,
    pub video_active: Option<bool>,
    /// `CAMERA`, `SCREEN`, `CUSTOM`.
    pub type_of_video: Option<String>,
    /// -1 when unset.
    pub frame_rate: Value,
    /// A JSON *string* such as `{"width":640,"height":480}`.
    pub video_dimensions: Option<String>,
    pub filter: Value,
}

/// A published stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub id: String,
    pub created_at: u64,
    pub media: MediaOptions,
}

impl Stream {
    /// The stream as `joinRoom`'s `value[].streams[]` and `participantPublished` carry it.
    pub fn to_rpc_json(&self) -> Value {
        let m = &self.media;
        json!({
            "id": self.id,
            "createdAt": self.created_at,
            "hasAudio": m.has_audio,
            "hasVideo": m.has_video,
            "audioActive": m.audio_active,
            "videoActive": m.video_active,
            "typeOfVideo": m.type_of_video,
            "frameRate": m.frame_rate,
            "videoDimensions": m.video_dimensions,
            "filter": m.filter,
        })
    }

    /// The stream as REST's `publishers[]` carries it.
    fn to_rest_json(&self) -> Value {
        let m = &self.media;
        let mut media = Map::new();
        media.insert("hasAudio".into(), m.has_audio.into());
        if m.has_audio {
            media.insert("audioActive".into(), m.audio_active.into());
        }
        media.insert("hasVideo".into(), m.has_video.into());
        if m.has_video {
            media.insert("videoActive".into(), m.video_active.into());
            media.insert("typeOfVideo".into(), m.type_of_video.clone().into());
            media.insert("frameRate".into(), m.frame_rate.clone());
            media.insert("videoDimensions".into(), m.video_dimensions.clone().into());
        }
        media.insert("filter".into(), m.filter.clone());
        json!({"createdAt": self.created_at, "streamId": self.id, "mediaOptions": media})
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Created by REST; its token has not been used.
    Pending,
    /// Joined.
    Active,
}

/// A participant slot: a token until it is used, then a participant.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: String,
    pub session_id: String,
    /// The full token URL (`ws://host?sessionId=…&token=tok_…`).
    pub token: String,
    pub status: Status,
    pub created_at: u64,
    pub active_at: Option<u64>,
    pub kind: ConnectionType,
    pub role: Role,
    pub record: bool,
    pub server_data: String,
    pub client_data: Option<String>,
    pub platform: Option<String>,
    pub ip: Option<String>,
    pub kurento_options: Value,
    pub custom_ice_servers: Vec<Value>,
    pub publisher: Option<Stream>,
    /// Streams this participant receives, with when the subscription was made.
    pub subscriptions: Vec<(String, u64)>,
    /// The signalling session's private id (set on join; a reconnecting client names it).
    pub private_id: Option<String>,
}

impl Connection {
    /// `clientData%/%serverData`, or whichever is non-empty (joinRoom's `metadata`).
    pub fn metadata(&self) -> String {
        let client = self.client_data.as_deref().unwrap_or("");
        match (client.is_empty(), self.server_data.is_empty()) {
            (false, false) => format!("{client}%/%{}", self.server_data),
            (false, true) => client.to_owned(),
            (true, _) => self.server_data.clone(),
        }
    }

    /// The REST Connection object.
    pub fn to_json(&self) -> Value {
        let active = self.status == Status::Active;
        json!({
            "id": self.id,
            "object": "connection",
            "status": if active { "active" } else { "pending" },
            "connectionId": self.id,
            "sessionId": self.session_id,
            "createdAt": self.created_at,
            "type": self.kind.as_str(),
            "record": self.record,
            "role": self.role.as_str(),
            "kurentoOptions": self.kurento_options,
            "customIceServers": self.custom_ice_servers,
            "rtspUri": null,
            "adaptativeBitrate": null,
            "onlyPlayWithSubscribers": null,
            "networkCache": null,
            "serverData": self.server_data,
            "token": self.token,
            "activeAt": self.active_at,
            "location": if active { Value::from("unknown") } else { Value::Null },
            "ip": self.ip,
            "platform": self.platform,
            "clientData": self.client_data,
            "publishers": if active {
                Value::Array(self.publisher.iter().map(Stream::to_rest_json).collect())
            } else {
                Value::Null
            },
            "subscribers": if active {
                Value::Array(
                    self.subscriptions
                        .iter()
                        .map(|(s, at)| json!({"streamId": s, "createdAt": at}))
                        .collect(),
                )
            } else {
                Value::Null
            },
        })
    }
}

/// A session and everything in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: String,
    pub created_at: u64,
    pub custom_session_id: String,
    pub media_mode: String,
    pub recording_mode: String,
    pub default_recording_properties: Value,
    pub forced_video_codec: String,
    pub allow_transcoding: bool,
    pub media_node: Value,
    /// Connections in creation order.
    pub connections: Vec<Connection>,
    /// Someone has joined at least once.
    pub joined: bool,
}

impl Session {
    pub fn connection(&self, id: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.id == id)
    }

    pub fn connection_mut(&mut self, id: &str) -> Option<&mut Connection> {
        self.connections.iter_mut().find(|c| c.id == id)
    }

    pub fn active(&self) -> impl Iterator<Item = &Connection> {
        self.connections
            .iter()
            .filter(|c| c.status == Status::Active)
    }

    /// Ids of the active connections other than `id`: who hears about `id`'s doings.
    pub fn active_ids_except(&self, id: &str) -> Vec<String> {
        self.active()
            .filter(|c| c.id != id)
            .map(|c| c.id.clone())
            .collect()
    }

    /// `<sessionId>_<createdAt>`, as webhooks identify a session's lifetime.
    pub fn unique_id(&self) -> String {
        format!("{}_{}", self.id, self.created_at)
    }

    /// The REST Session object; `pending` includes unused tokens.
    pub fn to_json(&self, pending: bool) -> Value {
        let content: Vec<Value> = self
            .connections
            .iter()
            .filter(|c| pending || c.status == Status::Active)
            .map(Connection::to_json)
            .collect();
        json!({
            "id": self.id,
            "object": "session",
            "sessionId": self.id,
            "createdAt": self.created_at,
            "recording": false,
            "broadcasting": false,
            "mediaMode": self.media_mode,
            "recordingMode": self.recording_mode,
            "defaultRecordingProperties": self.default_recording_properties,
            "customSessionId": self.custom_session_id,
            "forcedVideoCodec": self.forced_video_codec,
            "allowTranscoding": self.allow_transcoding,
            "mediaNode": self.media_node,
            "connections": {"numberOfElements": content.len(), "content": content},
        })
    }
}

/// The default recording properties OpenVidu reports.
pub fn default_recording_properties() -> Value {
    json!({
        "name": "",
        "hasAudio": true,
        "hasVideo": true,
        "outputMode": "COMPOSED",
        "recordingLayout": "BEST_FIT",
        "resolution": "1280x720",
        "frameRate": 25,
        "shmSize": 536_870_912,
    })
}
