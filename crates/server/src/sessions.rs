//! The task that owns the [`Rooms`]: REST handlers (and, later, signalling connections) send
//! it operations and await the results; it stamps each with the wall clock, runs it, and
//! passes what the operation caused on: webhook events into the durable outbox, JSON-RPC
//! notifications to the participants' signalling connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phonebridge_rooms::{Output, Rooms};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::outbox::Outbox;

/// How often unused sessions are looked for.
const GC_PERIOD: Duration = Duration::from_secs(30);

type Op = Box<dyn FnOnce(&mut Rooms, u64, &mut Outputs) + Send>;

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
    #[allow(dead_code)] // used by the JSON-RPC signalling, next
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
        let (tx, rx) = oneshot::channel();
        let op: Op = Box::new(move |rooms, now, _| {
            let _ = tx.send(f(rooms, now));
        });
        self.tx.send(op).ok()?;
        rx.await.ok()
    }
}

/// Starts the rooms task. On shutdown every participant leaves and every session ends (with
/// their webhook events stored) before the task exits.
pub(crate) fn spawn(
    mut rooms: Rooms,
    outbox: Option<Arc<Outbox>>,
    mut shutdown: watch::Receiver<bool>,
) -> (RoomsHandle, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
    let task = tokio::spawn(async move {
        let mut outputs = Outputs {
            outbox,
            participants: HashMap::new(),
        };
        let mut gc = tokio::time::interval(GC_PERIOD);
        loop {
            tokio::select! {
                op = rx.recv() => {
                    let Some(op) = op else { break };
                    let now = now_ms();
                    op(&mut rooms, now, &mut outputs);
                    outputs.drain(&mut rooms, now);
                }
                _ = gc.tick() => {
                    let now = now_ms();
                    rooms.collect_garbage(now);
                    outputs.drain(&mut rooms, now);
                }
                _ = shutdown.changed() => {
                    let now = now_ms();
                    rooms.shutdown(now);
                    outputs.drain(&mut rooms, now);
                    break;
                }
            }
        }
    });
    (RoomsHandle { tx }, task)
}
