//! The task that owns the sessions: a [`Hub`] with the [`Rooms`], the [`Sfu`] and the
//! participants' signalling connections. REST handlers and WebSocket connections send it
//! operations and await the results; WebRTC datagrams arrive from one reader task per socket.
//! It stamps each operation with the wall clock, runs it, and passes on what it caused:
//! webhook events into the durable outbox, JSON-RPC notifications to the participants,
//! ended streams and participants to the SFU, the SFU's datagrams to the sockets. A
//! participant whose socket dropped keeps its place for [`RECONNECT_GRACE`]; then it leaves
//! with `networkDisconnect`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phonebridge_rooms::rpc::{self, Peer};
use phonebridge_rooms::sfu::{Sfu, SfuStats};
use phonebridge_rooms::{LeaveReason, Output, Rooms};
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::outbox::Outbox;
use crate::sip_driver::now;

/// How often unused sessions and dropped sockets are looked at.
const TICK: Duration = Duration::from_secs(1);
/// How long a participant whose socket dropped may come back (`connect`).
pub(crate) const RECONNECT_GRACE: Duration = Duration::from_secs(10);

type Op = Box<dyn FnOnce(&mut Hub, u64) + Send>;

/// A message for a participant's signalling connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToParticipant {
    Notify { method: &'static str, params: Value },
    Close,
}

/// Everything the task owns.
pub(crate) struct Hub {
    pub(crate) rooms: Rooms,
    sfu: Sfu,
    sockets: HashMap<SocketAddr, Arc<UdpSocket>>,
    outbox: Option<Arc<Outbox>>,
    /// Signalling connections by connection id.
    participants: HashMap<String, mpsc::UnboundedSender<ToParticipant>>,
    /// Participants whose socket dropped: connection → (session, deadline in ms).
    drops: HashMap<String, (String, u64)>,
    /// SFU figures for `/metrics`, refreshed every tick.
    stats: SharedSfuStats,
}

/// The SFU's figures as last published.
pub(crate) type SharedSfuStats = Arc<std::sync::Mutex<SfuStats>>;

impl Hub {
    /// A text frame from a signalling connection; returns the answer to send back.
    pub(crate) fn frame(
        &mut self,
        now_ms: u64,
        peer: &mut Peer,
        ip: &str,
        text: &str,
        tx: &mpsc::UnboundedSender<ToParticipant>,
    ) -> Option<String> {
        self.sfu.set_time(now());
        let before = peer.joined.clone();
        let answer = rpc::handle(&mut self.rooms, &mut self.sfu, now_ms, peer, ip, text);
        match (&before, &peer.joined) {
            (None, Some((_, cid))) => {
                // Joined, or came back within the grace period.
                self.drops.remove(cid);
                self.participants.insert(cid.clone(), tx.clone());
            }
            (Some((_, cid)), None) => {
                self.participants.remove(cid);
            }
            _ => {}
        }
        self.flush(now_ms);
        answer
    }

    /// A signalling connection closed. A participant that did not leave gets the grace period.
    pub(crate) fn socket_closed(&mut self, now_ms: u64, peer: &Peer) {
        if let Some((sid, cid)) = &peer.joined {
            self.participants.remove(cid);
            let deadline = now_ms + RECONNECT_GRACE.as_millis() as u64;
            self.drops.insert(cid.clone(), (sid.clone(), deadline));
        }
    }

    /// A WebRTC datagram from `source` on our socket `local`.
    fn datagram(&mut self, local: SocketAddr, source: SocketAddr, bytes: &[u8]) {
        self.sfu.handle_datagram(now(), local, source, bytes);
        self.send_datagrams();
    }

    fn tick(&mut self, now_ms: u64) {
        let due: Vec<(String, String)> = self
            .drops
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now_ms)
            .map(|(c, (s, _))| (c.clone(), s.clone()))
            .collect();
        for (cid, sid) in due {
            self.drops.remove(&cid);
            let _ = self
                .rooms
                .leave(now_ms, &sid, &cid, LeaveReason::NetworkDisconnect);
        }
        self.rooms.collect_garbage(now_ms);
        self.flush(now_ms);
        if let Ok(mut s) = self.stats.lock() {
            *s = self.sfu.stats();
        }
    }

    /// Passes on everything the last operation caused.
    fn flush(&mut self, now_ms: u64) {
        while let Some(o) = self.rooms.poll_output() {
            match o {
                Output::Webhook(body) => {
                    if let Some(outbox) = &self.outbox {
                        if let Err(e) = outbox.push(now_ms, &body.to_string()) {
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
                media @ (Output::StreamEnded { .. }
                | Output::SubscriptionEnded { .. }
                | Output::ParticipantGone { .. }) => self.sfu.on_rooms_output(&media),
            }
        }
        self.send_datagrams();
    }

    fn send_datagrams(&mut self) {
        while let Some(d) = self.sfu.poll_datagram() {
            if let Some(s) = self.sockets.get(&d.from) {
                // A full socket buffer loses this datagram, as the network would.
                if let Err(e) = s.try_send_to(&d.bytes, d.to) {
                    tracing::trace!(error = %e, to = %d.to, "webrtc send");
                }
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
        self.call_hub(move |hub, now_ms| {
            let r = f(&mut hub.rooms, now_ms);
            hub.flush(now_ms);
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
        let op: Op = Box::new(move |hub, now_ms| {
            let _ = tx.send(f(hub, now_ms));
        });
        self.tx.send(op).ok()?;
        rx.await.ok()
    }

    /// Runs `f` on the hub without waiting for it.
    pub(crate) fn post(&self, f: impl FnOnce(&mut Hub, u64) + Send + 'static) {
        let _ = self.tx.send(Box::new(f));
    }
}

/// A WebRTC socket: bound locally, advertised to browsers as `advertised`.
pub(crate) struct WebRtcSocket {
    pub(crate) socket: UdpSocket,
    pub(crate) advertised: SocketAddr,
}

/// Starts the hub task with the WebRTC sockets. On shutdown every participant leaves and
/// every session ends (their webhook events stored) before the task exits.
pub(crate) fn spawn(
    rooms: Rooms,
    outbox: Option<Arc<Outbox>>,
    webrtc: Vec<WebRtcSocket>,
    stats: SharedSfuStats,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<(RoomsHandle, JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
    let handle = RoomsHandle { tx };
    let mut sockets = HashMap::new();
    let mut candidates = Vec::new();
    for w in webrtc {
        let local = w.socket.local_addr()?;
        let socket = Arc::new(w.socket);
        candidates.push((local, w.advertised));
        sockets.insert(local, socket.clone());
        // One reader per socket hands datagrams to the hub.
        let h = handle.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                match socket.recv_from(&mut buf).await {
                    Ok((n, source)) => {
                        let bytes = buf[..n].to_vec();
                        h.post(move |hub, _| hub.datagram(local, source, &bytes));
                    }
                    Err(e) => tracing::trace!(error = %e, "webrtc recv"),
                }
                if h.tx.is_closed() {
                    return;
                }
            }
        });
    }
    let mut hub = Hub {
        rooms,
        sfu: Sfu::new(now(), candidates),
        sockets,
        outbox,
        participants: HashMap::new(),
        drops: HashMap::new(),
        stats,
    };
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        let far = || now() + Duration::from_secs(3600);
        loop {
            let media_deadline = hub.sfu.poll_timeout().unwrap_or_else(far);
            tokio::select! {
                op = rx.recv() => {
                    let Some(op) = op else { break };
                    op(&mut hub, now_ms());
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(media_deadline)) => {
                    hub.sfu.handle_timeout(now());
                    hub.send_datagrams();
                }
                _ = tick.tick() => hub.tick(now_ms()),
                _ = shutdown.changed() => break,
            }
        }
        // Stopping (signalled, or every handle gone with the HTTP server): everyone leaves
        // and every session ends, their events stored before the process exits.
        let now_ms = now_ms();
        hub.rooms.shutdown(now_ms);
        hub.flush(now_ms);
    });
    Ok((handle, task))
}
