//! The `/openvidu` WebSocket: one task per socket, carrying JSON-RPC text frames to the hub
//! and notifications back. A client that stops pinging for three of its ping intervals is
//! treated as gone (its place is kept for the reconnection grace period, as for any drop).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use phonebridge_rooms::rpc::Peer;
use serde_json::json;
use tokio::sync::mpsc;

use crate::sessions::{RoomsHandle, ToParticipant};

/// Largest frame accepted (SDP offers are up to about 10 KB).
const MAX_FRAME: usize = 256 * 1024;
/// Kurento's default ping interval when the client names none.
const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);

pub(crate) fn router(rooms: RoomsHandle) -> Router {
    Router::new()
        .route("/openvidu", get(upgrade))
        .with_state(rooms)
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(rooms): State<RoomsHandle>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
) -> Response {
    ws.max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| serve(socket, rooms, remote))
}

async fn serve(mut socket: WebSocket, rooms: RoomsHandle, remote: SocketAddr) {
    let (tx, mut rx) = mpsc::unbounded_channel::<ToParticipant>();
    let ip = remote.ip().to_string();
    let mut peer = Peer::default();
    let mut last_ping = tokio::time::Instant::now();
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            frame = socket.recv() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let (tx2, ip2, mut p) = (tx.clone(), ip.clone(), peer.clone());
                let answer = rooms
                    .call_hub(move |hub, now| {
                        let answer = hub.frame(now, &mut p, &ip2, &text, &tx2);
                        (p, answer)
                    })
                    .await;
                let Some((p, answer)) = answer else { break };
                if p.pings != peer.pings {
                    last_ping = tokio::time::Instant::now();
                }
                peer = p;
                if let Some(a) = answer {
                    if socket.send(Message::Text(a.into())).await.is_err() {
                        break;
                    }
                }
            }
            note = rx.recv() => match note {
                Some(ToParticipant::Notify { method, params }) => {
                    let frame = json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string();
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        break;
                    }
                }
                Some(ToParticipant::Close) | None => {
                    // Evicted: the client closes on participantEvicted; close from our side
                    // too after a moment so nothing lingers.
                    peer.joined = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code: 1000, reason: "evicted".into() })))
                        .await;
                    break;
                }
            },
            _ = watchdog.tick() => {
                let interval = peer
                    .ping_interval
                    .map(Duration::from_millis)
                    .unwrap_or(DEFAULT_PING_INTERVAL);
                if last_ping.elapsed() > interval * 3 {
                    tracing::debug!(%remote, "no ping for three intervals: closing the socket");
                    break;
                }
            }
        }
    }
    if !peer.left {
        rooms.post(move |hub, now| hub.socket_closed(now, &peer, &tx));
    }
}
