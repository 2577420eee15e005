//! REST request bodies as `openvidu-node-client` sends them, read into typed properties.
//! Absent and `null` fields take OpenVidu's defaults; wrong types are a `BadRequest` that
//! names the field.

use serde_json::Value;

use crate::model::{default_recording_properties, ConnectionType, Role};
use crate::rooms::{ConnectionProps, RoomsError, SessionProps};

fn bad(field: &str, expected: &str) -> RoomsError {
    RoomsError::BadRequest(format!("'{field}' must be {expected}"))
}

fn field<'a>(body: &'a Value, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

fn string(body: &Value, key: &str) -> Result<Option<String>, RoomsError> {
    match field(body, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(key, "a string")),
    }
}

fn one_of(body: &Value, key: &str, allowed: &[&str], default: &str) -> Result<String, RoomsError> {
    match string(body, key)? {
        None => Ok(default.to_owned()),
        Some(s) if allowed.contains(&s.as_str()) => Ok(s),
        Some(_) => Err(bad(key, &format!("one of {}", allowed.join(", ")))),
    }
}

/// The body of `POST /sessions` (an empty body is all defaults).
pub fn session_props(body: &Value) -> Result<SessionProps, RoomsError> {
    if !body.is_object() && !body.is_null() {
        return Err(RoomsError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let custom = string(body, "customSessionId")?.filter(|s| !s.is_empty());
    let media_node = match field(body, "mediaNode") {
        None => Value::Null,
        Some(Value::String(s)) => serde_json::json!({"id": s}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(bad("mediaNode", "a string or an object")),
    };
    let allow_transcoding = match field(body, "allowTranscoding") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("allowTranscoding", "a boolean")),
    };
    let recording = match field(body, "defaultRecordingProperties") {
        None => default_recording_properties(),
        Some(Value::Object(given)) => {
            let mut props = default_recording_properties();
            if let Some(p) = props.as_object_mut() {
                for (k, v) in given {
                    if !v.is_null() {
                        p.insert(k.clone(), v.clone());
                    }
                }
            }
            props
        }
        Some(_) => return Err(bad("defaultRecordingProperties", "an object")),
    };
    Ok(SessionProps {
        custom_session_id: custom,
        media_mode: one_of(body, "mediaMode", &["ROUTED", "RELAYED"], "ROUTED")?,
        recording_mode: one_of(body, "recordingMode", &["MANUAL", "ALWAYS"], "MANUAL")?,
        default_recording_properties: recording,
        forced_video_codec: one_of(
            body,
            "forcedVideoCodec",
            &["VP8", "VP9", "H264", "NONE", "MEDIA_SERVER_PREFERRED"],
            "MEDIA_SERVER_PREFERRED",
        )?,
        allow_transcoding,
        media_node,
    })
}

/// The body of `POST /sessions/{id}/connection` (also the deprecated `/tokens`).
pub fn connection_props(body: &Value) -> Result<ConnectionProps, RoomsError> {
    if !body.is_object() && !body.is_null() {
        return Err(RoomsError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    let kind = match string(body, "type")?.as_deref() {
        None | Some("WEBRTC") => ConnectionType::WebRtc,
        Some("IPCAM") => {
            return Err(RoomsError::BadRequest(
                "IPCAM connections are not supported; phones join through the SIP gateway".into(),
            ))
        }
        Some(_) => return Err(bad("type", "WEBRTC")),
    };
    let role = match string(body, "role")? {
        None => Role::Publisher,
        Some(r) => {
            Role::parse(&r).ok_or_else(|| bad("role", "SUBSCRIBER, PUBLISHER or MODERATOR"))?
        }
    };
    let record = match field(body, "record") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("record", "a boolean")),
    };
    let kurento_options = match field(body, "kurentoOptions") {
        None => Value::Null,
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(bad("kurentoOptions", "an object")),
    };
    let custom_ice_servers = match field(body, "customIceServers") {
        None => Vec::new(),
        Some(Value::Array(list)) => {
            for s in list {
                let url = s.get("url").and_then(Value::as_str).unwrap_or("");
                if !(url.starts_with("stun:")
                    || url.starts_with("turn:")
                    || url.starts_with("turns:"))
                {
                    return Err(bad(
                        "customIceServers[].url",
                        "a stun:, turn: or turns: URL",
                    ));
                }
            }
            list.clone()
        }
        Some(_) => return Err(bad("customIceServers", "an array")),
    };
    Ok(ConnectionProps {
        kind,
        data: string(body, "data")?.unwrap_or_default(),
        record,
        role,
        kurento_options,
        custom_ice_servers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_client_session_body() {
        let p = session_props(&json!({"mediaMode":"ROUTED","recordingMode":"MANUAL","customSessionId":"","defaultRecordingProperties":{"name":"","hasAudio":true,"hasVideo":true,"outputMode":"COMPOSED","recordingLayout":"BEST_FIT","resolution":"1280x720","frameRate":25,"shmSize":536870912},"forcedVideoCodec":"VP8","allowTranscoding":false,"mediaNode":"kms_1"})).unwrap();
        assert_eq!(p.custom_session_id, None);
        assert_eq!(p.forced_video_codec, "VP8");
        assert_eq!(p.media_node, json!({"id":"kms_1"}));
        assert_eq!(
            session_props(&Value::Null).unwrap(),
            SessionProps::default()
        );
        let e = session_props(&json!({"mediaMode":"P2P"})).unwrap_err();
        assert!(e.to_string().contains("mediaMode"), "{e}");
        assert!(session_props(&json!([1])).is_err());
    }

    #[test]
    fn node_client_connection_body() {
        let p = connection_props(&json!({"type":null,"data":"alice","record":null,"role":"MODERATOR","kurentoOptions":null,"rtspUri":null,"customIceServers":[]})).unwrap();
        assert_eq!(
            (p.role, p.record, p.data.as_str()),
            (Role::Moderator, true, "alice")
        );
        assert!(connection_props(&json!({"role":"ADMIN"})).is_err());
        assert!(connection_props(&json!({"type":"IPCAM","rtspUri":"rtsp://x"})).is_err());
        assert!(connection_props(&json!({"customIceServers":[{"url":"http://x"}]})).is_err());
        assert_eq!(
            connection_props(&json!({})).unwrap(),
            ConnectionProps::default()
        );
    }
}
