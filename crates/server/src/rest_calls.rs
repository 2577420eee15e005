//! The calls part of the REST API (DESIGN §1): `GET /calls[?sessionId=]`,
//! `GET|PATCH|DELETE /calls/{id}` and `POST /calls/{id}/dtmf`. Records come from SQLite, so
//! ended calls (and calls of a previous run) are listed too; changes to a live call go to the
//! SIP gateway, which owns it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::calls::CallRecord;
use crate::gateway::{ApiError, ApiRequest, GatewayMsg};
use crate::rest::{error, parse_body, stopping, QueryMap, RestState};

pub(crate) async fn list_calls(State(s): State<RestState>, q: QueryMap) -> Response {
    let store = s.store.clone();
    let session = q.0.get("sessionId").cloned();
    match tokio::task::spawn_blocking(move || store.calls(session.as_deref())).await {
        Ok(calls) => {
            let content: Vec<Value> = calls.iter().map(CallRecord::to_json).collect();
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
    match tokio::task::spawn_blocking(move || store.call(&id)).await {
        Ok(Some(c)) => Json(c.to_json()).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Sends `make(reply)` to the gateway and turns its answer into a response.
async fn ask(
    s: &RestState,
    path: &str,
    make: impl FnOnce(oneshot::Sender<Result<CallRecord, ApiError>>) -> ApiRequest,
) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.gateway.send(GatewayMsg::Api(make(tx))).is_err() {
        return stopping();
    }
    match rx.await {
        Ok(Ok(c)) => Json(c.to_json()).into_response(),
        Ok(Err(ApiError::NotFound)) => StatusCode::NOT_FOUND.into_response(),
        Ok(Err(ApiError::Conflict(m))) => error(StatusCode::CONFLICT, &m, path),
        Ok(Err(ApiError::BadRequest(m))) => error(StatusCode::BAD_REQUEST, &m, path),
        Err(_) => stopping(),
    }
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
    let audio_subscriptions = match body.get("audioSubscriptions") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Array(a)) => {
            let ids: Option<Vec<String>> =
                a.iter().map(|v| v.as_str().map(str::to_owned)).collect();
            match ids {
                Some(ids) => Some(Some(ids)),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "'audioSubscriptions' must be an array of stream ids or null",
                        &path,
                    )
                }
            }
        }
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "'audioSubscriptions' must be an array of stream ids or null",
                &path,
            )
        }
    };
    let muted = match body.get("muted") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return error(StatusCode::BAD_REQUEST, "'muted' must be a boolean", &path),
    };
    if let Some(k) = body.as_object().and_then(|o| {
        o.keys()
            .find(|k| !["audioSubscriptions", "muted", "videoSource"].contains(&k.as_str()))
    }) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("unknown field '{k}'"),
            &path,
        );
    }
    ask(&s, &path, |reply| ApiRequest::Patch {
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
    ask(&s, &path, |reply| ApiRequest::Hangup { id, reply }).await
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
    let Some(digits) = body
        .get("digits")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return error(StatusCode::BAD_REQUEST, "'digits' is required", &path);
    };
    ask(&s, &path, |reply| ApiRequest::Dtmf { id, digits, reply }).await
}
