//! The task that owns the [`Rooms`] (in a [`Hub`] with the media side and the signalling
//! connections): REST handlers and WebSocket connections send it operations and await the
//! results; it stamps each with the wall clock, runs it, and passes what the operation caused
//! on: webhook events into the durable outbox, JSON-RPC notifications to the participants'
//! signalling connections. A participant whose socket dropped keeps its place for
//! [`RECONNECT_GRACE`]; then it leaves with `networkDisconnect`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phonebridge_rooms::rpc::{self, MediaHandler, Peer, RpcError};
use phonebridge_rooms::{LeaveReason, Output, Rooms};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::outbox::Outbox;

/// How often unused sessions and dropped sockets are looked at.
const TICK: Duration = Duration::from_secs(1);
/// How long a participant whose socket dropped may come back (`connect`).
pub(crate) const RECONNECT_GRACE: Duration = Duration::from_secs(10);

type Op = Box<dyn FnOnce(&mut Hub, u64) + Send>;

/// Media for browsers until the SFU is in: every media request is refused plainly.
struct NoMedia;

impl MediaHandler for NoMedia {
    fn publish(&mut self, _: &str, _: &str, _: &str, _: &str) -> Result<String, RpcError> {
        Err(RpcError::new(
            rpc::code::MEDIA_GENERIC,
            "media is not available on this server yet",
        ))
    }
    fn subscribe(&mut self, _: &str, _: &str, _: &str, _: &str) -> Result<String, RpcError> {
        Err(RpcError::new(
            rpc::code::MEDIA_GENERIC,
            "media is not available on this server yet",
        ))
    }
    fn candidate(&mut self, _: &str, _: &str, _: &Value) {}
}

/// Everything the task owns.
pub(crate) struct Hub {
    pub(crate) rooms: Rooms,
    media: Box<dyn MediaHandler + Send>,
    outputs: Outputs,
    /// Participants whose socket dropped: connection → (session, deadline in ms).
    drops: HashMap<String, (String, u64)>,
}

impl Hub {
    /// A text frame from a signalling connection; returns the answer to send back.
    pub(crate) fn frame(
        &mut self,
        now: u64,
        peer: &mut Peer,
        ip: &str,
        text: &str,
        tx: &mpsc::UnboundedSender<ToParticipant>,
    ) -> Option<String> {
        let before = peer.joined.clone();
        let answer = rpc::handle(&mut self.rooms, self.media.as_mut(), now, peer, ip, text);
        match (&before, &peer.joined) {
            (None, Some((_, cid))) => {
                // Joined, or came back within the grace period.
                self.drops.remove(cid);
                self.outputs.attach(cid, tx.clone());
            }
            (Some((_, cid)), None) => {
                self.outputs.participants.remove(cid);
            }
            _ => {}
        }
        self.outputs.drain(&mut self.rooms, now);
        answer
    }

    /// A signalling connection closed. A participant that did not leave gets the grace period.
    pub(crate) fn socket_closed(&mut self, now: u64, peer: &Peer) {
        if let Some((sid, cid)) = &peer.joined {
            self.outputs.participants.remove(cid);
            let deadline = now + RECONNECT_GRACE.as_millis() as u64;
            self.drops.insert(cid.clone(), (sid.clone(), deadline));
        }
    }

    fn tick(&mut self, now: u64) {
        let due: Vec<(String, String)> = self
            .drops
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(c, (s, _))| (c.clone(), s.clone()))
            .collect();
        for (cid, sid) in due {
            self.drops.remove(&cid);
            let _ = self
                .rooms
                .leave(now, &sid, &cid, LeaveReason::NetworkDisconnect);
        }
        self.rooms.collect_garbage(now);
        self.outputs.drain(&mut self.rooms, now);
    }
}

/// A message for a participant's signalling connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToParticipant {
    Notify { method: &'static str, params: Value },
    Close,
}

/// Where the outputs of an operation go.
pub(crate) struct Outputs {
    outbox: Option<Arc<Outbox>>,
    /// Signalling connections by connection id.
    participants: HashMap<String, mpsc::UnboundedSender<ToParticipant>>,
}

impl Outputs {
    /// Registers a participant's signalling connection.
    pub(crate) fn attach(&mut self, connection: &str, tx: mpsc::UnboundedSender<ToParticipant>) {
        self.participants.insert(connection.to_owned(), tx);
    }

    fn drain(&mut self, rooms: &mut Rooms, now: u64) {
        while let Some(o) = rooms.poll_output() {
            match o {
                Output::Webhook(body) => {
                    if let Some(outbox) = &self.outbox {
                        if let Err(e) = outbox.push(now, &body.to_string()) {
                            tracing::error!(error = %e, "webhook event not stored");
                        }
                    }
                }
                Output::Notify {
                    connection,
                    method,
                    params,
                } => {
                    if let Some(tx) = self.participants.get(&connection) {
                        let _ = tx.send(ToParticipant::Notify { method, params });
                    }
                }
                Output::Disconnect { connection } => {
                    if let Some(tx) = self.participants.remove(&connection) {
                        let _ = tx.send(ToParticipant::Close);
                    }
                }
                // Media teardown: the SFU's, once browsers publish through it.
                Output::StreamEnded { .. }
                | Output::SubscriptionEnded { .. }
                | Output::ParticipantGone { .. } => {}
            }
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
#[allow(clippy::disallowed_methods)] // the shell reads the wall clock
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// A way to reach the rooms task.
#[derive(Clone)]
pub(crate) struct RoomsHandle {
    tx: mpsc::UnboundedSender<Op>,
}

impl RoomsHandle {
    /// Runs `f` on the rooms (with the current time) and returns its result; `None` once the
    /// task has stopped.
    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Rooms, u64) -> R + Send + 'static,
    ) -> Option<R> {
        self.call_hub(move |hub, now| {
            let r = f(&mut hub.rooms, now);
            hub.outputs.drain(&mut hub.rooms, now);
            r
        })
        .await
    }

    /// Runs `f` on the whole hub.
    pub(crate) async fn call_hub<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Hub, u64) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |hub, now| {
            let _ = tx.send(f(hub, now));
        });
        self.tx.send(op).ok()?;
        rx.await.ok()
    }

    /// Runs `f` on the hub without waiting for it.
    pub(crate) fn post(&self, f: impl FnOnce(&mut Hub, u64) + Send + 'static) {
        let _ = self.tx.send(Box::new(f));
    }
}

/// Starts the rooms task. On shutdown every participant leaves and every session ends (with
/// their webhook events stored) before the task exits.
pub(crate) fn spawn(
    rooms: Rooms,
    outbox: Option<Arc<Outbox>>,
    mut shutdown: watch::Receiver<bool>,
) -> (RoomsHandle, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
    let task = tokio::spawn(async move {
        let mut hub = Hub {
            rooms,
            media: Box::new(NoMedia),
            outputs: Outputs {
                outbox,
                participants: HashMap::new(),
            },
            drops: HashMap::new(),
        };
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                op = rx.recv() => {
                    let Some(op) = op else { break };
                    let now = now_ms();
                    op(&mut hub, now);
                }
                _ = tick.tick() => hub.tick(now_ms()),
                _ = shutdown.changed() => break,
            }
        }
        // Stopping (signalled, or every handle gone with the HTTP server): everyone leaves
        // and every session ends, their events stored before the process exits.
        let now = now_ms();
        hub.rooms.shutdown(now);
        hub.outputs.drain(&mut hub.rooms, now);
    });
    (RoomsHandle { tx }, task)
}
