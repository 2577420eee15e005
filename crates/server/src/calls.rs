//! Call records: the `Call` object of the REST API (README, "Call records"), kept in SQLite at
//! every change of status, and the `sip*` webhook events built from it.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CallStatus {
    /// Dial-out: the phone is ringing (180, or nothing yet).
    Ringing,
    /// Dial-in: answered by the voice menu, the code not yet accepted.
    Ivr,
    /// Dial-out: early media (183 with SDP).
    Early,
    /// In the session.
    Answered,
    Ended,
}

impl CallStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CallStatus::Ringing => "ringing",
            CallStatus::Ivr => "ivr",
            CallStatus::Early => "early",
            CallStatus::Answered => "answered",
            CallStatus::Ended => "ended",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    Inbound,
    Outbound,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum EndReason {
    /// The phone hung up.
    PhoneHangup,
    /// `DELETE /calls/{id}` (a CANCEL while ringing, a BYE once answered).
    CallDeleted,
    /// The call's connection was deleted or evicted.
    ConnectionDeleted,
    SessionClosed,
    /// No media from the phone for the configured time.
    MediaTimeout,
    /// Three wrong codes (or the guessing limits).
    PinRejected,
    /// Nothing (more) typed in the voice menu in time.
    MenuTimeout,
    ServerShutdown,
    /// Recorded at start-up for calls that were live when the server stopped.
    ServerRestart,
    /// Dial-out failures, by the final SIP status.
    Busy,
    NoAnswer,
    Rejected,
    Unavailable,
    Error,
}

/// What the call's media negotiated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallMedia {
    pub(crate) audio_codec: Option<String>,
    pub(crate) video_codec: Option<String>,
    pub(crate) srtp: bool,
}

/// Media quality figures of the phone leg, as last measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallQuality {
    pub(crate) packets_received: u64,
    pub(crate) packets_sent: u64,
    pub(crate) packets_lost: u64,
    pub(crate) packets_late: u64,
    pub(crate) source_switches: u64,
}

/// A call, as `GET /openvidu/api/calls` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallRecord {
    pub(crate) id: String,
    pub(crate) session_id: String,
    pub(crate) connection_id: Option<String>,
    pub(crate) direction: Direction,
    pub(crate) status: CallStatus,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) created_at: u64,
    pub(crate) answered_at: Option<u64>,
    pub(crate) ended_at: Option<u64>,
    pub(crate) end_reason: Option<EndReason>,
    pub(crate) sip_status: Option<u16>,
    pub(crate) audio_subscriptions: Option<Vec<String>>,
    pub(crate) video_source: Option<String>,
    pub(crate) muted: bool,
    pub(crate) media: CallMedia,
    pub(crate) quality: CallQuality,
}

impl CallRecord {
    pub(crate) fn new(
        id: String,
        session_id: String,
        direction: Direction,
        status: CallStatus,
        (from, to): (String, String),
        now_ms: u64,
    ) -> Self {
        CallRecord {
            id,
            session_id,
            connection_id: None,
            direction,
            status,
            from,
            to,
            created_at: now_ms,
            answered_at: None,
            ended_at: None,
            end_reason: None,
            sip_status: None,
            audio_subscriptions: None,
            video_source: None,
            muted: false,
            media: CallMedia::default(),
            quality: CallQuality::default(),
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.status != CallStatus::Ended
    }

    /// Marks the call ended (once).
    pub(crate) fn end(&mut self, now_ms: u64, reason: EndReason, sip_status: Option<u16>) {
        if !self.is_live() {
            return;
        }
        self.status = CallStatus::Ended;
        self.ended_at = Some(now_ms);
        self.end_reason = Some(reason);
        if sip_status.is_some() {
            self.sip_status = sip_status;
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Seconds in the call (from the answer to the end, or to now).
    pub(crate) fn duration_s(&self, now_ms: u64) -> u64 {
        match self.answered_at {
            Some(a) => self.ended_at.unwrap_or(now_ms).saturating_sub(a) / 1000,
            None => 0,
        }
    }

    /// A `sip*` webhook event about this call, with `extra` fields.
    pub(crate) fn webhook(&self, event: &str, now_ms: u64, extra: Value) -> Value {
        let mut body = json!({
            "event": event,
            "timestamp": now_ms,
            "sessionId": self.session_id,
            "callId": self.id,
            "connectionId": self.connection_id,
            "direction": self.direction,
            "from": self.from,
            "to": self.to,
        });
        if let (Some(b), Value::Object(f)) = (body.as_object_mut(), extra) {
            b.extend(f);
        }
        body
    }

    /// `sipCallEnded` for an ended call.
    pub(crate) fn ended_webhook(&self, now_ms: u64) -> Value {
        self.webhook(
            "sipCallEnded",
            now_ms,
            json!({
                "reason": self.end_reason,
                "sipStatus": self.sip_status,
                "duration": self.duration_s(now_ms),
                "quality": self.quality,
            }),
        )
    }
}

/// What the caller's number looks like to the session (`clientData` of the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallerId {
    /// The number as the network gave it.
    Full,
    /// Only the last four digits (`•••0100`).
    Masked,
    /// Nothing: `phone`.
    Hidden,
}

impl CallerId {
    pub(crate) fn parse(s: &str) -> Option<CallerId> {
        Some(match s {
            "full" => CallerId::Full,
            "masked" => CallerId::Masked,
            "hidden" => CallerId::Hidden,
            _ => return None,
        })
    }

    pub(crate) fn show(self, number: &str) -> String {
        match self {
            CallerId::Full => number.to_owned(),
            CallerId::Masked => {
                let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
                if digits.len() <= 4 {
                    "phone".to_owned()
                } else {
                    let tail: String = digits[digits.len() - 4..].iter().collect();
                    format!("•••{tail}")
                }
            }
            CallerId::Hidden => "phone".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_end_once_and_serialise_as_the_rest_api_names_them() {
        let mut c = CallRecord::new(
            "CALL_x".into(),
            "s".into(),
            Direction::Inbound,
            CallStatus::Ivr,
            ("+15550100".into(), "dialin".into()),
            1_000,
        );
        c.answered_at = Some(2_000);
        c.end(62_500, EndReason::PhoneHangup, Some(200));
        c.end(70_000, EndReason::CallDeleted, None);
        let j = c.to_json();
        assert_eq!(j["status"], "ended");
        assert_eq!(j["endReason"], "phoneHangup");
        assert_eq!(j["endedAt"], 62_500);
        assert_eq!(j["sessionId"], "s");
        assert_eq!(j["direction"], "inbound");
        assert_eq!(j["media"]["srtp"], false);
        assert_eq!(c.duration_s(99_999), 60);
        let back: CallRecord = serde_json::from_value(j).unwrap();
        assert_eq!(back, c);
        let w = c.ended_webhook(62_500);
        assert_eq!(w["event"], "sipCallEnded");
        assert_eq!(w["reason"], "phoneHangup");
        assert_eq!(w["sipStatus"], 200);
        assert_eq!(w["duration"], 60);
    }

    #[test]
    fn caller_id_policies() {
        assert_eq!(CallerId::Masked.show("+1 555 0100"), "•••0100");
        assert_eq!(CallerId::Masked.show("12"), "phone");
        assert_eq!(CallerId::Full.show("+15550100"), "+15550100");
        assert_eq!(CallerId::Hidden.show("+15550100"), "phone");
    }
}
