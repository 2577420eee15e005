//! The OpenVidu 2 REST API under `/openvidu/api`, as `openvidu-node-client` 2.32 uses it:
//! Basic auth (`OPENVIDUAPP:<secret>`), CORS open to every origin, OpenVidu's status codes and
//! JSON shapes. Handlers hold no state: each sends one operation to the rooms task and turns
//! its result into a response.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post};
use axum::{Json, Router};
use base64::Engine as _;
use phonebridge_rooms::requests::{connection_props, session_props};
use phonebridge_rooms::{RoomsError, Status};
use serde_json::{json, Value};

use crate::outbox::Outbox;
use crate::rest_calls;
use crate::sessions::{now_ms, RoomsHandle};
use crate::store::{PinError, Store};

#[derive(Clone)]
pub(crate) struct RestState {
    pub(crate) rooms: RoomsHandle,
    /// `Basic base64(OPENVIDUAPP:<secret>)`.
    pub(crate) authorization: Arc<str>,
    pub(crate) outbox: Option<Arc<Outbox>>,
    /// The public URL clients reach this server at (`http://host:port`).
    pub(crate) public_url: Arc<str>,
    pub(crate) store: Arc<Store>,
    /// The SIP gateway, which owns live calls.
    pub(crate) gateway: tokio::sync::mpsc::UnboundedSender<crate::gateway::GatewayMsg>,
    /// The configured trunks with their resolved addresses, for dial-out.
    pub(crate) trunks: Arc<[(crate::trunks::Trunk, std::net::SocketAddr)]>,
    /// Server names to verify on outbound TLS, shared with the SIP driver.
    pub(crate) tls_names: crate::sip_driver::TlsNames,
    /// Where dial-out hosts are looked up.
    pub(crate) dns: crate::dns::Resolver,
}

impl RestState {
    pub(crate) fn new(
        rooms: RoomsHandle,
        secret: &str,
        outbox: Option<Arc<Outbox>>,
        public_url: &str,
        store: Arc<Store>,
        gateway: tokio::sync::mpsc::UnboundedSender<crate::gateway::GatewayMsg>,
    ) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("OPENVIDUAPP:{secret}"));
        RestState {
            rooms,
            authorization: format!("Basic {b64}").into(),
            outbox,
            public_url: public_url.into(),
            store,
            gateway,
            trunks: Arc::from(Vec::new()),
            tls_names: Default::default(),
            dns: crate::dns::Resolver::new(None),
        }
    }

    /// Dial-out goes through these trunks, and names TLS servers in `tls_names`.
    pub(crate) fn with_trunks(
        mut self,
        trunks: Vec<(crate::trunks::Trunk, std::net::SocketAddr)>,
        tls_names: crate::sip_driver::TlsNames,
        dns: crate::dns::Resolver,
    ) -> Self {
        self.trunks = trunks.into();
        self.tls_names = tls_names;
        self.dns = dns;
        self
    }
}

/// The `/openvidu/api` routes.
pub(crate) fn router(state: RestState) -> Router {
    let api = Router::new()
        .route("/sessions", post(create_session).get(list_sessions))
        .route("/sessions/{id}", get(get_session).delete(close_session))
        .route(
            "/sessions/{id}/connection",
            post(create_connection).get(list_connections),
        )
        .route(
            "/sessions/{id}/connection/{cid}",
            get(get_connection)
                .delete(delete_connection)
                .patch(not_implemented),
        )
        .route("/sessions/{id}/stream/{stream}", delete(delete_stream))
        .route(
            "/sessions/{id}/dialin",
            post(set_dialin).get(get_dialin).delete(delete_dialin),
        )
        .route("/sessions/{id}/calls", post(rest_calls::place_call))
        .route("/calls", get(rest_calls::list_calls))
        .route(
            "/calls/{id}",
            get(rest_calls::get_call)
                .patch(rest_calls::patch_call)
                .delete(rest_calls::delete_call),
        )
        .route("/calls/{id}/dtmf", post(rest_calls::send_dtmf))
        .route("/tokens", post(create_token))
        .route("/signal", post(signal))
        .route("/webhooks/pending", get(pending_webhooks))
        .route("/recordings", any(not_implemented))
        .route("/recordings/{*rest}", any(not_implemented))
        .route("/broadcast/{*rest}", any(not_implemented))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            basic_auth,
        ))
        .with_state(state.clone());
    let public = Router::new()
        .route("/config/openvidu-publicurl", get(public_url))
        .with_state(state);
    Router::new()
        .nest("/openvidu/api", api.merge(public))
        .layer(axum::middleware::from_fn(cors))
}

/// CORS as OpenVidu configures it: every origin, method and header.
async fn cors(req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let requested = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut resp = if req.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.unwrap_or(HeaderValue::from_static("*")),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PATCH, PUT, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested.unwrap_or(HeaderValue::from_static("Authorization, Content-Type")),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    resp
}

async fn basic_auth(State(state): State<RestState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if !constant_time_eq(given, state.authorization.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"phonebridge\"")],
        )
            .into_response();
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An error response: OpenVidu's JSON body for 400/406/500, an empty body otherwise.
pub(crate) fn error(status: StatusCode, message: &str, path: &str) -> Response {
    if matches!(status.as_u16(), 400 | 406 | 500 | 503) {
        let body = json!({
            "timestamp": now_ms(),
            "status": status.as_u16(),
            "error": status.canonical_reason().unwrap_or(""),
            "message": message,
            "path": path,
        });
        (status, Json(body)).into_response()
    } else {
        status.into_response()
    }
}

/// The rooms task is gone only while the server stops.
pub(crate) fn stopping() -> Response {
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

/// A JSON body, or `null` for an empty one (the node client sends empty form bodies on
/// GET/DELETE and JSON on POST/PATCH).
pub(crate) fn parse_body(body: &Bytes, path: &str) -> Result<Value, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("the body is not valid JSON: {e}"),
            path,
        ))
    })
}

/// A string field the request must carry, or the 400 that says it is missing.
pub(crate) fn required_str(body: &Value, key: &str, path: &str) -> Result<String, Box<Response>> {
    match body.get(key).and_then(Value::as_str) {
        Some(v) => Ok(v.to_owned()),
        None => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("'{key}' is required"),
            path,
        ))),
    }
}

/// A JSON body that must name its `session`: the body and the session id.
fn body_naming_session(raw: &Bytes, path: &str) -> Result<(Value, String), Box<Response>> {
    let body = parse_body(raw, path)?;
    let session = required_str(&body, "session", path)?;
    Ok((body, session))
}

fn flag(q: &std::collections::HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true")
}

pub(crate) type QueryMap = Query<std::collections::HashMap<String, String>>;

async fn create_session(State(s): State<RestState>, body: Bytes) -> Response {
    let path = "/openvidu/api/sessions";
    let body = match parse_body(&body, path) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let props = match session_props(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string(), path),
    };
    let result = s
        .rooms
        .call(move |r, now| r.create_session(now, props).map(|s| s.to_json(false)))
        .await;
    match result {
        Some(Ok(json)) => Json(json).into_response(),
        Some(Err(RoomsError::Conflict)) => StatusCode::CONFLICT.into_response(),
        Some(Err(e)) => error(StatusCode::BAD_REQUEST, &e.to_string(), path),
        None => stopping(),
    }
}

async fn list_sessions(State(s): State<RestState>, q: QueryMap) -> Response {
    let pending = flag(&q, "pendingConnections");
    match s
        .rooms
        .call(move |r, _| {
            let content: Vec<Value> = r.sessions().iter().map(|s| s.to_json(pending)).collect();
            json!({"numberOfElements": content.len(), "content": content})
        })
        .await
    {
        Some(v) => Json(v).into_response(),
        None => stopping(),
    }
}

async fn get_session(State(s): State<RestState>, Path(id): Path<String>, q: QueryMap) -> Response {
    let pending = flag(&q, "pendingConnections");
    match s
        .rooms
        .call(move |r, _| r.session(&id).map(|s| s.to_json(pending)))
        .await
    {
        Some(Some(v)) => Json(v).into_response(),
        Some(None) => StatusCode::NOT_FOUND.into_response(),
        None => stopping(),
    }
}

async fn close_session(State(s): State<RestState>, Path(id): Path<String>) -> Response {
    let sid = id.clone();
    match s.rooms.call(move |r, now| r.close_session(now, &sid)).await {
        Some(Ok(())) => {
            // Closing a session on purpose retires its dial-in code too.
            let store = s.store.clone();
            let _ = tokio::task::spawn_blocking(move || store.delete_pin(&id)).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Some(Err(_)) => StatusCode::NOT_FOUND.into_response(),
        None => stopping(),
    }
}

async fn create_connection(
    State(s): State<RestState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let path = format!("/openvidu/api/sessions/{id}/connection");
    let body = match parse_body(&body, &path) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let props = match connection_props(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string(), &path),
    };
    match s
        .rooms
        .call(move |r, now| r.create_connection(now, &id, props).map(|c| c.to_json()))
        .await
    {
        Some(Ok(v)) => Json(v).into_response(),
        Some(Err(_)) => StatusCode::NOT_FOUND.into_response(),
        None => stopping(),
    }
}

async fn list_connections(
    State(s): State<RestState>,
    Path(id): Path<String>,
    q: QueryMap,
) -> Response {
    // Pending connections are listed unless asked otherwise.
    let pending = q.get("pendingConnections").is_none_or(|v| v != "false");
    match s
        .rooms
        .call(move |r, _| {
            r.session(&id).map(|s| {
                let content: Vec<Value> = s
                    .connections
                    .iter()
                    .filter(|c| pending || c.status == Status::Active)
                    .map(|c| c.to_json())
                    .collect();
                json!({"numberOfElements": content.len(), "content": content})
            })
        })
        .await
    {
        Some(Some(v)) => Json(v).into_response(),
        Some(None) => StatusCode::NOT_FOUND.into_response(),
        None => stopping(),
    }
}

async fn get_connection(
    State(s): State<RestState>,
    Path((id, cid)): Path<(String, String)>,
) -> Response {
    let path = format!("/openvidu/api/sessions/{id}/connection/{cid}");
    match s
        .rooms
        .call(move |r, _| {
            r.session(&id)
                .map(|s| s.connection(&cid).map(|c| c.to_json()))
        })
        .await
    {
        Some(Some(Some(v))) => Json(v).into_response(),
        Some(Some(None)) => StatusCode::NOT_FOUND.into_response(),
        Some(None) => error(StatusCode::BAD_REQUEST, "no such session", &path),
        None => stopping(),
    }
}

async fn delete_connection(
    State(s): State<RestState>,
    Path((id, cid)): Path<(String, String)>,
) -> Response {
    let path = format!("/openvidu/api/sessions/{id}/connection/{cid}");
    match s
        .rooms
        .call(move |r, now| r.delete_connection(now, &id, &cid))
        .await
    {
        Some(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Some(Err(RoomsError::SessionNotFound)) => {
            error(StatusCode::BAD_REQUEST, "no such session", &path)
        }
        Some(Err(_)) => StatusCode::NOT_FOUND.into_response(),
        None => stopping(),
    }
}

async fn delete_stream(
    State(s): State<RestState>,
    Path((id, stream)): Path<(String, String)>,
) -> Response {
    let path = format!("/openvidu/api/sessions/{id}/stream/{stream}");
    match s
        .rooms
        .call(move |r, now| r.unpublish(now, &id, &stream, "forceUnpublishByServer"))
        .await
    {
        Some(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Some(Err(RoomsError::SessionNotFound)) => {
            error(StatusCode::BAD_REQUEST, "no such session", &path)
        }
        Some(Err(_)) => StatusCode::NOT_FOUND.into_response(),
        None => stopping(),
    }
}

/// The deprecated `POST /tokens`: a connection, answered in the old token shape.
async fn create_token(State(s): State<RestState>, body: Bytes) -> Response {
    let path = "/openvidu/api/tokens";
    let (body, session) = match body_naming_session(&body, path) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let props = match connection_props(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string(), path),
    };
    let sid = session.clone();
    match s
        .rooms
        .call(move |r, now| r.create_connection(now, &sid, props).cloned())
        .await
    {
        Some(Ok(c)) => {
            let mut v = json!({
                "id": c.token,
                "token": c.token,
                "createdAt": c.created_at,
                "connectionId": c.id,
                "session": session,
                "data": c.server_data,
                "role": c.role.as_str(),
            });
            if !c.kurento_options.is_null() {
                v["kurentoOptions"] = c.kurento_options;
            }
            Json(v).into_response()
        }
        Some(Err(_)) => StatusCode::NOT_FOUND.into_response(),
        None => stopping(),
    }
}

async fn signal(State(s): State<RestState>, body: Bytes) -> Response {
    let path = "/openvidu/api/signal";
    let (body, session) = match body_naming_session(&body, path) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let to: Vec<String> = match body.get("to") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => {
            match list.iter().map(|v| v.as_str().map(str::to_owned)).collect() {
                Some(l) => l,
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "'to' must be an array of connection ids",
                        path,
                    )
                }
            }
        }
        Some(_) => return error(StatusCode::BAD_REQUEST, "'to' must be an array", path),
    };
    let text = |k: &str, default: &str| -> Result<String, String> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(default.to_owned()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("'{k}' must be a string")),
        }
    };
    let (kind, data) = match (text("type", "signal"), text("data", "")) {
        (Ok(k), Ok(d)) => (k, d),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, &m, path),
    };
    match s
        .rooms
        .call(move |r, now| r.signal(now, &session, None, &to, &kind, &data))
        .await
    {
        Some(Ok(())) => StatusCode::OK.into_response(),
        Some(Err(RoomsError::SessionNotFound)) => StatusCode::NOT_FOUND.into_response(),
        Some(Err(RoomsError::NotAcceptable(m))) => error(StatusCode::NOT_ACCEPTABLE, &m, path),
        Some(Err(e)) => error(StatusCode::BAD_REQUEST, &e.to_string(), path),
        None => stopping(),
    }
}

fn dialin_json(d: &crate::store::DialIn) -> Value {
    json!({"sessionId": d.session_id, "pin": d.pin, "createdAt": d.created_at})
}

/// `POST /sessions/{id}/dialin`: sets the session's dial-in code (`{"pin": "digits"}`, or a
/// generated one when absent).
async fn set_dialin(State(s): State<RestState>, Path(id): Path<String>, body: Bytes) -> Response {
    let path = format!("/openvidu/api/sessions/{id}/dialin");
    let body = match parse_body(&body, &path) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let pin = match body.get("pin") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "'pin' must be a string of 4 to 16 digits",
                &path,
            )
        }
    };
    let sid = id.clone();
    match s.rooms.call(move |r, _| r.session(&sid).is_some()).await {
        Some(true) => {}
        Some(false) => return StatusCode::NOT_FOUND.into_response(),
        None => return stopping(),
    }
    let store = s.store.clone();
    let result =
        tokio::task::spawn_blocking(move || store.set_pin(&id, pin.as_deref(), now_ms())).await;
    match result {
        Ok(Ok(d)) => {
            tracing::debug!(session = %d.session_id, pin = %d.pin, "dial-in code set");
            Json(dialin_json(&d)).into_response()
        }
        Ok(Err(PinError::Taken)) => StatusCode::CONFLICT.into_response(),
        Ok(Err(PinError::Invalid)) => error(
            StatusCode::BAD_REQUEST,
            "'pin' must be a string of 4 to 16 digits",
            &path,
        ),
        Ok(Err(PinError::Storage(e))) => error(StatusCode::INTERNAL_SERVER_ERROR, &e, &path),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the store failed", &path),
    }
}

async fn get_dialin(State(s): State<RestState>, Path(id): Path<String>) -> Response {
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || store.pin(&id)).await {
        Ok(Some(d)) => Json(dialin_json(&d)).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_dialin(State(s): State<RestState>, Path(id): Path<String>) -> Response {
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || store.delete_pin(&id)).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Webhook events not yet delivered, oldest first.
async fn pending_webhooks(State(s): State<RestState>) -> Response {
    let Some(outbox) = s.outbox.clone() else {
        return Json(json!({"numberOfElements": 0, "content": []})).into_response();
    };
    let rows = tokio::task::spawn_blocking(move || outbox.pending(1000)).await;
    match rows {
        Ok(Ok(rows)) => {
            let content: Vec<Value> = rows
                .into_iter()
                .map(|p| {
                    json!({
                        "id": p.id,
                        "createdAt": p.created_at,
                        "attempts": p.attempts,
                        "event": serde_json::from_str::<Value>(&p.body).unwrap_or(Value::Null),
                    })
                })
                .collect();
            Json(json!({"numberOfElements": content.len(), "content": content})).into_response()
        }
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the webhook outbox cannot be read",
            "/openvidu/api/webhooks/pending",
        ),
    }
}

async fn public_url(State(s): State<RestState>) -> Response {
    s.public_url.to_string().into_response()
}

/// Recording, broadcasting and connection updates are not part of phonebridge.
async fn not_implemented(headers: HeaderMap) -> Response {
    let _ = headers;
    StatusCode::NOT_IMPLEMENTED.into_response()
}
