//! The calls part of the REST API (README, "Call records"): `POST /sessions/{id}/calls`
//! (dial-out), `GET /calls[?sessionId=]`, `GET|PATCH|DELETE /calls/{id}` and
//! `POST /calls/{id}/dtmf`.
//! Records come from SQLite, so ended calls (and calls of a previous run) are listed too;
//! changes to a live call go to the SIP gateway, which owns it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::calls::CallRecord;
use crate::gateway::{ApiError, ApiRequest, DialRequest, GatewayMsg};
use crate::rest::{error, parse_body, required_str, stopping, QueryMap, RestState};
use phonebridge_sip::{TransportKind, Uri};

/// The live calls' records (or call `id`'s) as the gateway has them now, media figures
/// included; empty when the gateway is stopping.
async fn live(s: &RestState, id: Option<String>) -> Vec<CallRecord> {
    let (reply, rx) = oneshot::channel();
    if s.gateway
        .send(GatewayMsg::Api(ApiRequest::Live { id, reply }))
        .is_err()
    {
        return Vec::new();
    }
    rx.await.unwrap_or_default()
}

/// Stored records, with the live ones as the gateway has them now.
fn overlay(mut stored: Vec<CallRecord>, live: Vec<CallRecord>) -> Vec<CallRecord> {
    for r in &mut stored {
        if let Some(l) = live.iter().find(|l| l.id == r.id) {
            *r = l.clone();
        }
    }
    stored
}

pub(crate) async fn list_calls(State(s): State<RestState>, q: QueryMap) -> Response {
    let store = s.store.clone();
    let session = q.0.get("sessionId").cloned();
    let live = live(&s, None).await;
    match tokio::task::spawn_blocking(move || store.calls(session.as_deref())).await {
        Ok(calls) => {
            let content: Vec<Value> = overlay(calls, live)
                .iter()
                .map(CallRecord::to_json)
                .collect();
            Json(json!({"numberOfElements": content.len(), "content": content})).into_response()
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the store failed",
            "/openvidu/api/calls",
        ),
    }
}

pub(crate) async fn get_call(State(s): State<RestState>, Path(id): Path<String>) -> Response {
    let store = s.store.clone();
    let live = live(&s, Some(id.clone())).await;
    match tokio::task::spawn_blocking(move || store.call(&id)).await {
        Ok(Some(c)) => Json(overlay(vec![c], live)[0].to_json()).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Sends `make(reply)` to the gateway and turns its answer into a response (`ok` on success).
async fn ask(
    s: &RestState,
    path: &str,
    ok: StatusCode,
    make: impl FnOnce(oneshot::Sender<Result<CallRecord, ApiError>>) -> ApiRequest,
) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.gateway.send(GatewayMsg::Api(make(tx))).is_err() {
        return stopping();
    }
    match rx.await {
        Ok(Ok(c)) => (ok, Json(c.to_json())).into_response(),
        Ok(Err(ApiError::NotFound)) => StatusCode::NOT_FOUND.into_response(),
        Ok(Err(ApiError::Conflict(m))) => error(StatusCode::CONFLICT, &m, path),
        Ok(Err(ApiError::BadRequest(m))) => error(StatusCode::BAD_REQUEST, &m, path),
        Ok(Err(ApiError::Unavailable(m))) => error(StatusCode::SERVICE_UNAVAILABLE, &m, path),
        Err(_) => stopping(),
    }
}

/// `audioSubscriptions`: absent, `null` (every other publisher) or an array of stream ids.
fn subscriptions(body: &Value) -> Result<Option<Option<Vec<String>>>, String> {
    const WHAT: &str = "'audioSubscriptions' must be an array of stream ids or null";
    match body.get("audioSubscriptions") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .map(|ids| Some(Some(ids)))
            .ok_or_else(|| WHAT.to_owned()),
        Some(_) => Err(WHAT.to_owned()),
    }
}

/// The first field of `body` not in `known`.
fn unknown_field(body: &Value, known: &[&str]) -> Option<String> {
    body.as_object()?
        .keys()
        .find(|k| !known.contains(&k.as_str()))
        .cloned()
}

/// A phone number to dial: digits with an optional leading `+`; spaces, dashes, dots and
/// parentheses are dropped. `None` when it is not one.
fn dial_number(s: &str) -> Option<String> {
    let s = s.trim();
    let (plus, rest) = match s.strip_prefix('+') {
        Some(r) => ("+", r),
        None => ("", s),
    };
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || " -().".contains(c))
    {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    (2..=20)
        .contains(&digits.len())
        .then(|| format!("{plus}{digits}"))
}

fn is_sip_uri(s: &str) -> bool {
    let l = s.trim_start().to_ascii_lowercase();
    l.starts_with("sip:") || l.starts_with("sips:")
}

/// An optional string field (`null` counts as absent).
fn opt_string(body: &Value, key: &str) -> Result<Option<String>, String> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("'{key}' must be a string")),
    }
}

const DIAL_FIELDS: &[&str] = &[
    "to",
    "trunk",
    "from",
    "displayName",
    "audioSubscriptions",
    "videoSource",
    "ringTimeout",
    "data",
];
const DEFAULT_RING_TIMEOUT: f64 = 30.0;
const MAX_RING_TIMEOUT: f64 = 300.0;

/// Checks a dial-out body and resolves where the INVITE goes.
async fn dial_request(
    s: &RestState,
    session_id: &str,
    body: &Value,
) -> Result<DialRequest, String> {
    if !body.is_object() {
        return Err("the body must be a JSON object with at least 'to'".into());
    }
    if let Some(k) = unknown_field(body, DIAL_FIELDS) {
        return Err(format!(
            "unknown field '{k}'; known fields: {}",
            DIAL_FIELDS.join(", ")
        ));
    }
    let to = opt_string(body, "to")?
        .filter(|t| !t.trim().is_empty())
        .ok_or("'to' is required: a sip: URI or a phone number")?;
    let trunk = match opt_string(body, "trunk")? {
        Some(name) => {
            Some(s.trunks.iter().find(|(t, _)| t.name == name).ok_or_else(
                || match s.trunks.len() {
                    0 => format!("unknown trunk '{name}': no trunks are configured"),
                    _ => format!(
                        "unknown trunk '{name}'; configured: {}",
                        s.trunks
                            .iter()
                            .map(|(t, _)| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            )?)
        }
        None => None,
    };
    let from = opt_string(body, "from")?;
    let (from_uri, from_user) = match from.as_deref() {
        None => (None, None),
        Some(f) if is_sip_uri(f) => (
            Some(
                Uri::parse(f.trim())
                    .map_err(|_| format!("'from' is not a valid SIP URI: '{f}'"))?,
            ),
            None,
        ),
        Some(f) => {
            let number = dial_number(f)
                .ok_or_else(|| format!("'from' must be a sip: URI or a phone number, got '{f}'"))?;
            match trunk {
                Some((t, _)) => (Some(t.caller_uri(Some(&number))), None),
                None => (None, Some(number)),
            }
        }
    };
    let display_name = opt_string(body, "displayName")?;
    if let Some(d) = &display_name {
        if d.chars().count() > 100 || d.chars().any(char::is_control) {
            return Err(
                "'displayName' must be at most 100 characters, none of them control characters"
                    .into(),
            );
        }
    }
    let audio_subscriptions = subscriptions(body)?.flatten();
    let video_source = opt_string(body, "videoSource")?;
    let ring_timeout = match body.get("ringTimeout") {
        None | Some(Value::Null) => DEFAULT_RING_TIMEOUT,
        Some(v) => v
            .as_f64()
            .filter(|t| (1.0..=MAX_RING_TIMEOUT).contains(t))
            .ok_or_else(|| {
                format!("'ringTimeout' must be a number of seconds from 1 to {MAX_RING_TIMEOUT}")
            })?,
    };
    let data = opt_string(body, "data")?.unwrap_or_default();
    let mut req = DialRequest {
        session_id: session_id.to_owned(),
        uri: Uri::parse("sip:invalid").expect("a valid URI"),
        to: to.trim().to_owned(),
        from: from_uri,
        from_user,
        display_name,
        remote: SocketAddr::from(([0, 0, 0, 0], 0)),
        transport: TransportKind::Udp,
        credentials: None,
        srtp: None,
        ring_timeout: Duration::from_secs_f64(ring_timeout),
        audio_subscriptions,
        video_source,
        data,
    };
    if is_sip_uri(&to) {
        let uri =
            Uri::parse(to.trim()).map_err(|_| format!("'to' is not a valid SIP URI: '{to}'"))?;
        match trunk {
            Some((t, addr)) => through_trunk(&mut req, t, *addr),
            None => {
                let (remote, transport, name) = resolve_uri(&uri, &s.dns).await?;
                if let Some(name) = name.filter(|_| transport == TransportKind::Tls) {
                    if let Ok(mut n) = s.tls_names.lock() {
                        n.insert(remote, name);
                    }
                }
                req.remote = remote;
                req.transport = transport;
            }
        }
        req.uri = uri;
    } else {
        let number = dial_number(&to)
            .ok_or_else(|| format!("'to' must be a sip: URI or a phone number, got '{to}'"))?;
        let (t, addr) = match trunk {
            Some(t) => t,
            None if s.trunks.len() == 1 => &s.trunks[0],
            None if s.trunks.is_empty() => {
                return Err(
                    "'to' is a phone number but no trunk is configured; dial a sip: URI \
                            or configure a trunk"
                        .into(),
                )
            }
            None => return Err("'to' is a phone number: name the 'trunk' to call through".into()),
        };
        req.uri = t
            .request_uri(&number)
            .ok_or_else(|| format!("trunk '{}' cannot form a URI for '{number}'", t.name))?;
        through_trunk(&mut req, t, *addr);
    }
    Ok(req)
}

fn through_trunk(req: &mut DialRequest, t: &crate::trunks::Trunk, addr: SocketAddr) {
    req.remote = addr;
    req.transport = t.transport;
    req.credentials = t.credentials();
    req.srtp = t.srtp;
    if req.from.is_none() {
        req.from = Some(t.caller_uri(req.from_user.take().as_deref()));
    }
}

/// Where a SIP URI's INVITE goes: its host (A/AAAA) and port, its transport (`sips:` or
/// `;transport=`), and the host name to verify over TLS.
async fn resolve_uri(
    uri: &Uri,
    dns: &crate::dns::Resolver,
) -> Result<(SocketAddr, TransportKind, Option<String>), String> {
    let sip = uri.as_sip().ok_or("'to' must be a sip: or sips: URI")?;
    let transport = match (sip.secure, sip.transport().as_deref()) {
        (true, _) | (_, Some("tls")) => TransportKind::Tls,
        (_, Some("tcp")) => TransportKind::Tcp,
        (_, None | Some("udp")) => TransportKind::Udp,
        (_, Some(other)) => return Err(format!("transport '{other}' is not supported")),
    };
    let host = sip.host.to_string();
    match dns.locate(&host, sip.port, transport).await {
        Some(a) if sip.host.ip().is_some() => Ok((a, transport, None)),
        Some(a) => Ok((a, transport, Some(host))),
        None => Err(format!("cannot resolve '{host}'")),
    }
}

/// `POST /sessions/{id}/calls`: dials a phone for the session; 201 with the call, in
/// `ringing`. Its progress comes by webhook and `GET /calls/{id}`.
pub(crate) async fn place_call(
    State(s): State<RestState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let path = format!("/openvidu/api/sessions/{id}/calls");
    let body = match parse_body(&body, &path) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let sid = id.clone();
    match s.rooms.call(move |r, _| r.session(&sid).is_some()).await {
        Some(true) => {}
        Some(false) => return StatusCode::NOT_FOUND.into_response(),
        None => return stopping(),
    }
    let request = match dial_request(&s, &id, &body).await {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m, &path),
    };
    ask(&s, &path, StatusCode::CREATED, |reply| ApiRequest::Dial {
        request: Box::new(request),
        reply,
    })
    .await
}

/// `PATCH /calls/{id}`: `audioSubscriptions` (array of stream ids, or null for every other
/// publisher) and `muted`.
pub(crate) async fn patch_call(
    State(s): State<RestState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let path = format!("/openvidu/api/calls/{id}");
    let body = match parse_body(&body, &path) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let audio_subscriptions = match subscriptions(&body) {
        Ok(s) => s,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m, &path),
    };
    let muted = match body.get("muted") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return error(StatusCode::BAD_REQUEST, "'muted' must be a boolean", &path),
    };
    if let Some(k) = unknown_field(&body, &["audioSubscriptions", "muted", "videoSource"]) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("unknown field '{k}'"),
            &path,
        );
    }
    ask(&s, &path, StatusCode::OK, |reply| ApiRequest::Patch {
        id,
        audio_subscriptions,
        muted,
        reply,
    })
    .await
}

/// `DELETE /calls/{id}`: hangs up.
pub(crate) async fn delete_call(State(s): State<RestState>, Path(id): Path<String>) -> Response {
    let path = format!("/openvidu/api/calls/{id}");
    ask(&s, &path, StatusCode::OK, |reply| ApiRequest::Hangup {
        id,
        reply,
    })
    .await
}

/// `POST /calls/{id}/dtmf {"digits": "12#"}`: sends digits to the phone by RFC 4733.
pub(crate) async fn send_dtmf(
    State(s): State<RestState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let path = format!("/openvidu/api/calls/{id}/dtmf");
    let body = match parse_body(&body, &path) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let digits = match required_str(&body, "digits", &path) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    ask(&s, &path, StatusCode::OK, |reply| ApiRequest::Dtmf {
        id,
        digits,
        reply,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_numbers_keep_digits_and_a_leading_plus() {
        assert_eq!(
            dial_number("+1 (555) 010-0100").as_deref(),
            Some("+15550100100")
        );
        assert_eq!(dial_number(" 100 ").as_deref(), Some("100"));
        assert_eq!(dial_number("1+2"), None);
        assert_eq!(dial_number("echo"), None);
        assert_eq!(dial_number("+"), None);
        assert_eq!(dial_number("123456789012345678901"), None);
        assert!(is_sip_uri("SIP:alice@example.com"));
        assert!(!is_sip_uri("+15550100"));
    }

    #[test]
    fn subscriptions_are_absent_null_or_ids() {
        assert_eq!(subscriptions(&json!({})), Ok(None));
        assert_eq!(
            subscriptions(&json!({"audioSubscriptions": null})),
            Ok(Some(None))
        );
        assert_eq!(
            subscriptions(&json!({"audioSubscriptions": ["a"]})),
            Ok(Some(Some(vec!["a".to_owned()])))
        );
        assert!(subscriptions(&json!({"audioSubscriptions": [1]})).is_err());
    }
}
