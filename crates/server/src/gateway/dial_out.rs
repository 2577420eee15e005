//! Dial-out: calls the REST API places for a session (`POST …/sessions/{id}/calls`).
//!
//! The INVITE goes through the named trunk (its address, transport, credentials and SRTP
//! policy) or straight to a SIP URI. A 180 or 183 moves the call to `ringing`/`early` and is
//! announced once by `sipCallRinging`; the first media (a 183's SDP or the 200's) makes the
//! phone a participant, so early media is heard in the session; the 200 answers the call. A
//! final failure ends it with the `endReason` its status maps to; `ringTimeout`, DELETE and the
//! session closing cancel it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use phonebridge_sdp::{self as sdp, SrtpPolicy};
use phonebridge_sip::endpoint::Dial;
use phonebridge_sip::{CallHandle, EndReason as SipEnd, Endpoint, Peer, TransportKind, Uri};
use serde_json::json;

use super::{ApiError, Bridged, Call, Gateway, Role};
use crate::calls::{CallRecord, CallStatus, Direction as CallDirection, EndReason};
use crate::sessions::now_ms;

/// A call the API asked for, checked and resolved by the REST layer.
#[derive(Debug, Clone)]
pub(crate) struct DialRequest {
    pub(crate) session_id: String,
    /// The Request-URI.
    pub(crate) uri: Uri,
    /// `to` as the API gave it (the record's `to`).
    pub(crate) to: String,
    /// Our From URI; `None`: `sip:<from_user>@<our address>`.
    pub(crate) from: Option<Uri>,
    /// The user of that default From (`phonebridge` when `None`).
    pub(crate) from_user: Option<String>,
    pub(crate) display_name: Option<String>,
    /// Where the INVITE goes, and how.
    pub(crate) remote: SocketAddr,
    pub(crate) transport: TransportKind,
    pub(crate) credentials: Option<(String, String)>,
    /// The trunk's SRTP policy (`None`: the server's).
    pub(crate) srtp: Option<SrtpPolicy>,
    pub(crate) ring_timeout: Duration,
    pub(crate) audio_subscriptions: Option<Vec<String>>,
    pub(crate) video_source: Option<String>,
    /// The participant's `serverData`.
    pub(crate) data: String,
}

/// The `endReason` of a call we placed whose INVITE got `status` instead of an answer.
pub(crate) fn failure_reason(status: u16) -> EndReason {
    match status {
        486 | 600 => EndReason::Busy,
        408 | 487 => EndReason::NoAnswer,
        401 | 403 | 407 | 603 | 607 | 608 => EndReason::Rejected,
        404 | 410 | 480 | 484 | 485 | 502 | 503 | 504 | 604 => EndReason::Unavailable,
        _ => EndReason::Error,
    }
}

/// How a call we placed ended before its answer, by what the SIP layer saw: the reason and
/// the final status (a lost INVITE counts as 408, a failed transport as 503, RFC 3261
/// §8.1.3.1).
pub(crate) fn unanswered_end(reason: SipEnd) -> (EndReason, Option<u16>) {
    match reason {
        SipEnd::Rejected(s) => (failure_reason(s), Some(s)),
        SipEnd::Timeout => (EndReason::Unavailable, Some(408)),
        SipEnd::TransportError => (EndReason::Unavailable, Some(503)),
        SipEnd::LocalHangup => (EndReason::CallDeleted, Some(487)),
        SipEnd::RemoteBye | SipEnd::Cancelled => (EndReason::PhoneHangup, None),
        SipEnd::NoAck | SipEnd::SessionExpired => (EndReason::Error, None),
    }
}

/// `"Display" <uri>` with the display name quoted (RFC 3261 §25.1 quoted-string).
fn name_addr(display: Option<&str>, uri: &Uri) -> String {
    match display {
        Some(d) => {
            let quoted: String = d
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("\"{quoted}\" <{uri}>")
        }
        None => format!("<{uri}>"),
    }
}

impl Gateway {
    /// Our address as `remote` sees it: the public IP, the bound one, or the one the kernel
    /// routes from.
    fn local_ip_towards(&self, remote: IpAddr) -> IpAddr {
        crate::sip_driver::configured_ip(self.cfg.public_ip, self.cfg.bind_ip)
            .unwrap_or_else(|| crate::sip_driver::route_local_ip(remote))
    }

    /// Places a call for a session; the record comes back at once, in `ringing`.
    pub(super) fn dial(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        req: DialRequest,
    ) -> Result<CallRecord, ApiError> {
        if self.links.is_none() {
            return Err(ApiError::Unavailable("calls need the sessions".into()));
        }
        let local_ip = self.local_ip_towards(req.remote.ip());
        let sip_port = match req.transport {
            TransportKind::Tls => self.cfg.sip_tls_port.unwrap_or(self.cfg.sip_port),
            _ => self.cfg.sip_port,
        };
        let mut caps = self.cfg.caps.clone();
        if let Some(p) = req.srtp {
            caps.srtp = p;
        }
        let from = match req.from.clone() {
            Some(f) => f,
            None => {
                let user = req.from_user.as_deref().unwrap_or("phonebridge");
                Uri::parse(&format!(
                    "sip:{user}@{}",
                    phonebridge_sip::Host::from(local_ip)
                ))
                .map_err(|_| ApiError::BadRequest(format!("'from' is not usable: '{user}'")))?
            }
        };
        let shown_from = phonebridge_sip::endpoint::request_user(&from)
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| from.to_string());
        let mut record = CallRecord::new(
            self.new_call_id(),
            req.session_id.clone(),
            CallDirection::Outbound,
            CallStatus::Ringing,
            (shown_from, req.to.clone()),
            now_ms(),
        );
        record.audio_subscriptions = req.audio_subscriptions.clone();
        record.video_source = req.video_source.clone();
        // The callee's number (the Request-URI's user), as `caller-id` shows numbers.
        let client_data = self.cfg.caller_id.show(
            &phonebridge_sip::endpoint::request_user(&req.uri)
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| req.to.clone()),
        );
        let mut bridged = Bridged::new(record, req.data.clone(), client_data);
        bridged.ring_deadline = Some(now + req.ring_timeout);
        let ports = self.ports.allocate(now, self.cfg.bind_ip).map_err(|e| {
            tracing::warn!(error = %e, "no RTP ports for a call");
            ApiError::Unavailable("no media ports free; try again later".into())
        })?;
        let source = req.remote.ip();
        let mut call = self.new_call(caps, ports, local_ip, source, Role::Bridged(bridged));
        let offer = sdp::offer(&call.caps, &call.local(), &call.offer_keys);
        let body = offer.print().into_bytes();
        call.offered = Some(offer);
        let dial = Dial {
            uri: req.uri.clone(),
            from: name_addr(req.display_name.as_deref(), &from),
            to: name_addr(None, &req.uri),
            peer: Peer {
                transport: req.transport,
                remote: req.remote,
                local: SocketAddr::new(local_ip, sip_port),
                conn: None,
            },
            body: Some(("application/sdp".into(), body)),
            credentials: req.credentials.clone(),
            headers: Vec::new(),
        };
        let h = ep.invite(now, dial);
        let record = match &call.role {
            Role::Bridged(d) => d.record.clone(),
            Role::Echo => unreachable!("a placed call is bridged"),
        };
        tracing::info!(call = %record.id, session = %req.session_id, transport = ?req.transport, "placing a call");
        self.by_id.insert(record.id.clone(), h);
        self.calls.insert(h, call);
        self.store(&record);
        Ok(record)
    }

    /// A 180 or 183 for a call we placed.
    pub(super) fn progress(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        h: CallHandle,
        status: u16,
        body: &[u8],
    ) {
        let Some(d) = self.calls.get_mut(&h).and_then(Call::bridged) else {
            return;
        };
        if !d.placed_unanswered() || !d.record.is_live() {
            return;
        }
        // The first provisional (other than 100) is announced once.
        let first = d.record.sip_status.is_none();
        d.record.sip_status = Some(status);
        // With usable early media the phone joins the session now; the record says `early`
        // once it is a participant there (see `joined`).
        let mut early = d.record.status == CallStatus::Early;
        if !body.iter().all(u8::is_ascii_whitespace) {
            match self.accept_answer(ep, now, h, body) {
                Ok(()) => early = true,
                Err(why) => tracing::info!(%why, "early media SDP unusable; still ringing"),
            }
        }
        let Some(d) = self.calls.get_mut(&h).and_then(Call::bridged) else {
            return;
        };
        let r = d.record.clone();
        self.store(&r);
        if first {
            self.webhook(r.webhook(
                "sipCallRinging",
                now_ms(),
                json!({"sipStatus": status, "earlyMedia": early}),
            ));
        }
    }

    /// The 200 for a call we placed (the ACK is sent).
    pub(super) fn answered(&mut self, ep: &mut Endpoint, now: Instant, h: CallHandle, body: &[u8]) {
        let has_media = self.calls.get(&h).is_some_and(|c| c.leg.is_some());
        let sdp = !body.iter().all(u8::is_ascii_whitespace);
        // A 200 with the 183's SDP changes nothing; another SDP switches the media cleanly.
        let media = if sdp {
            self.accept_answer(ep, now, h, body)
        } else if has_media {
            Ok(())
        } else {
            Err("no SDP answer".to_owned())
        };
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        c.offered = None;
        let Some(d) = c.bridged() else {
            return;
        };
        if !d.record.is_live() {
            return;
        }
        // `answered` once the phone is also a participant; without early media it joins
        // now (see `joined`).
        if d.connection.is_some() {
            d.record.status = CallStatus::Answered;
        }
        d.record.answered_at = Some(now_ms());
        d.record.sip_status = Some(200);
        d.ring_deadline = None;
        let r = d.record.clone();
        self.store(&r);
        self.webhook(r.webhook("sipCallAnswered", now_ms(), json!({})));
        if let Err(why) = media {
            tracing::info!(call = %r.id, %why, "answer unusable; hanging up");
            self.hang_up(ep, now, h, EndReason::Error);
        }
    }

    /// Applies the far end's SDP (a 183's or the 200's) to our offer: starts the media the
    /// first time (which joins the session), updates it after.
    fn accept_answer(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        h: CallHandle,
        body: &[u8],
    ) -> Result<(), String> {
        let c = self.calls.get(&h).ok_or("no such call")?;
        let offer = c.offered.as_ref().ok_or("no offer of ours to answer")?;
        let answer = super::parse(body)?;
        let negotiated = sdp::accept_answer(offer, &answer, &c.caps, &c.offer_keys)
            .map_err(|e| e.to_string())?;
        if self.apply(ep, h, now, negotiated) {
            Ok(())
        } else {
            Err("the call's media could not start".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_map_to_end_reasons() {
        assert_eq!(failure_reason(486), EndReason::Busy);
        assert_eq!(failure_reason(600), EndReason::Busy);
        assert_eq!(failure_reason(408), EndReason::NoAnswer);
        assert_eq!(failure_reason(603), EndReason::Rejected);
        assert_eq!(failure_reason(404), EndReason::Unavailable);
        assert_eq!(failure_reason(503), EndReason::Unavailable);
        assert_eq!(failure_reason(488), EndReason::Error);
        assert_eq!(failure_reason(500), EndReason::Error);
        assert_eq!(
            unanswered_end(SipEnd::Timeout),
            (EndReason::Unavailable, Some(408))
        );
        assert_eq!(
            unanswered_end(SipEnd::Rejected(486)),
            (EndReason::Busy, Some(486))
        );
    }

    #[test]
    fn display_names_are_quoted() {
        let uri = Uri::parse("sip:+15550100@trunk.example.com").unwrap();
        assert_eq!(
            name_addr(Some("Acme \"HR\""), &uri),
            "\"Acme \\\"HR\\\"\" <sip:+15550100@trunk.example.com>"
        );
        assert_eq!(name_addr(None, &uri), "<sip:+15550100@trunk.example.com>");
    }
}
