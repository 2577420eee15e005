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
use phonebridge_rooms::sfu::{publisher_of, Sfu, SfuStats, TappedAudio};
use phonebridge_rooms::{LeaveReason, Output, Rooms, RoomsError, SessionProps};
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::media::{SessionInbox, SessionInput};
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

/// A phone in a session, as the hub routes its audio.
struct PhoneTap {
    session: String,
    stream: Arc<str>,
    /// Where the session's audio for the phone's leg goes.
    inbox: SessionInbox,
    /// Sequence number of the phone's packets as other phones receive them.
    seq: u64,
    /// The subscribers' loss last passed to the leg (percent), which sets its Opus FEC.
    loss: u8,
}

/// What the hub tells the SIP gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HubNotice {
    /// A phone's participant left for a reason other than its own call ending (evicted,
    /// session closed, server stopping).
    PhoneGone {
        connection: String,
        reason: LeaveReason,
    },
    /// A session is gone: calls placed for it that are still ringing end.
    SessionClosed { session: String },
}

pub(crate) type Notices = Box<dyn Fn(HubNotice) + Send>;

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
    /// Phones in sessions, by connection, and the phones of each session.
    phones: HashMap<String, PhoneTap>,
    by_session: HashMap<String, Vec<String>>,
    /// Publishers whose audio phones hear: connection → (session, stream).
    streams: HashMap<String, (String, Arc<str>)>,
    notices: Option<Notices>,
}

/// The SFU's figures as last published.
pub(crate) type SharedSfuStats = Arc<std::sync::Mutex<SfuStats>>;

impl Hub {
    /// A hub with no participants, phones or dropped sockets yet.
    fn new(
        rooms: Rooms,
        sfu: Sfu,
        sockets: HashMap<SocketAddr, Arc<UdpSocket>>,
        outbox: Option<Arc<Outbox>>,
        stats: SharedSfuStats,
        notices: Option<Notices>,
    ) -> Self {
        Hub {
            rooms,
            sfu,
            sockets,
            outbox,
            participants: HashMap::new(),
            drops: HashMap::new(),
            stats,
            phones: HashMap::new(),
            by_session: HashMap::new(),
            streams: HashMap::new(),
            notices,
        }
    }

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

    /// A signalling connection closed (`tx` is the channel it was fed through). A participant
    /// that did not leave gets the grace period, unless it is already back on another socket:
    /// a client that reconnects may do so before its old socket is seen to close (a half-open
    /// connection is noticed only by the ping watchdog), and that close says nothing of it.
    pub(crate) fn socket_closed(
        &mut self,
        now_ms: u64,
        peer: &Peer,
        tx: &mpsc::UnboundedSender<ToParticipant>,
    ) {
        let Some((sid, cid)) = &peer.joined else {
            return;
        };
        if self
            .participants
            .get(cid)
            .is_some_and(|current| !current.same_channel(tx))
        {
            return;
        }
        self.participants.remove(cid);
        let deadline = now_ms + RECONNECT_GRACE.as_millis() as u64;
        self.drops.insert(cid.clone(), (sid.clone(), deadline));
    }

    /// A WebRTC datagram from `source` on our socket `local`.
    fn datagram(&mut self, local: SocketAddr, source: SocketAddr, bytes: &[u8]) {
        self.sfu.handle_datagram(now(), local, source, bytes);
        while let Some(a) = self.sfu.poll_audio() {
            self.route_to_phones(a);
        }
        self.send_datagrams();
    }

    /// A phone call joins `session_id`; with `create`, the session is created if it does not
    /// exist (a dial-in code outlives the session it was made for, e.g. across a restart).
    /// Returns the connection and its stream.
    pub(crate) fn join_phone(
        &mut self,
        now_ms: u64,
        session_id: &str,
        create: bool,
        data: (&str, &str),
        ip: &str,
        inbox: SessionInbox,
    ) -> Result<(String, String), JoinError> {
        let failed = |e: RoomsError| JoinError::Failed(e.to_string());
        if self.rooms.session(session_id).is_none() {
            if !create {
                return Err(JoinError::SessionGone);
            }
            let props = SessionProps {
                custom_session_id: Some(session_id.to_owned()),
                ..SessionProps::default()
            };
            self.rooms.create_session(now_ms, props).map_err(failed)?;
        }
        let (server_data, client_data) = data;
        let joined = self
            .rooms
            .join_phone(now_ms, session_id, server_data, client_data, ip);
        let (connection, stream) = match joined {
            Ok(x) => x,
            Err(e) => {
                self.flush(now_ms);
                return Err(failed(e));
            }
        };
        self.sfu.add_local_publisher(&connection);
        self.sfu.set_audio_tap(true);
        self.phones.insert(
            connection.clone(),
            PhoneTap {
                session: session_id.to_owned(),
                stream: stream.id.as_str().into(),
                inbox,
                seq: 0,
                loss: 0,
            },
        );
        self.by_session
            .entry(session_id.to_owned())
            .or_default()
            .push(connection.clone());
        self.flush(now_ms);
        Ok((connection, stream.id))
    }

    /// The phone's call ended: its participant leaves with `reason`.
    pub(crate) fn leave_phone(&mut self, now_ms: u64, connection: &str, reason: LeaveReason) {
        if let Some(tap) = self.forget_phone(connection) {
            let _ = self.rooms.leave(now_ms, &tap.session, connection, reason);
            self.flush(now_ms);
        }
    }

    fn forget_phone(&mut self, connection: &str) -> Option<PhoneTap> {
        let tap = self.phones.remove(connection)?;
        if let Some(list) = self.by_session.get_mut(&tap.session) {
            list.retain(|c| c != connection);
            if list.is_empty() {
                self.by_session.remove(&tap.session);
            }
        }
        if self.phones.is_empty() {
            self.sfu.set_audio_tap(false);
        }
        Some(tap)
    }

    /// One Opus packet of a phone: to the session's subscribers and to the other phones.
    pub(crate) fn phone_audio(&mut self, connection: &str, ts: u32, payload: &[u8]) {
        // A phone whose stream was unpublished (forceUnpublish, REST) stays in its call,
        // hearing the session, but nobody hears it any more.
        if !self.sfu.is_local_publisher(connection) {
            return;
        }
        let Some(tap) = self.phones.get_mut(connection) else {
            return;
        };
        tap.seq += 1;
        let (session, stream, seq) = (tap.session.clone(), tap.stream.clone(), tap.seq);
        self.sfu.write_local_audio(now(), connection, ts, payload);
        let shared: Arc<[u8]> = payload.into();
        self.to_phones(&session, connection, || SessionInput::Audio {
            stream: stream.clone(),
            seq,
            payload: shared.clone(),
        });
        self.send_datagrams();
    }

    /// A browser publisher's audio packet, to every phone in its session.
    fn route_to_phones(&mut self, a: TappedAudio) {
        if !self.streams.contains_key(&a.publisher) {
            let found = self.rooms.sessions().iter().find_map(|s| {
                let c = s.connection(&a.publisher)?;
                Some((s.id.clone(), c.publisher.as_ref()?.id.as_str().into()))
            });
            match found {
                Some(f) => {
                    self.streams.insert(a.publisher.clone(), f);
                }
                None => return,
            }
        }
        let (session, stream) = &self.streams[&a.publisher];
        self.to_phones(session, &a.publisher, || SessionInput::Audio {
            stream: stream.clone(),
            seq: a.seq,
            payload: a.payload.clone(),
        });
    }

    /// A publisher's stream ended (a browser's, or a phone's): the session's other phones
    /// forget it as a source.
    fn source_gone(&mut self, publisher: &str) {
        let (session, stream) = match self.streams.remove(publisher) {
            Some(x) => x,
            None => match self.phones.get(publisher) {
                Some(t) => (t.session.clone(), t.stream.clone()),
                None => return,
            },
        };
        self.to_phones(&session, publisher, || SessionInput::Gone(stream.clone()));
    }

    /// Sends `make()` to the leg of every phone in `session` but `except`.
    fn to_phones(&self, session: &str, except: &str, make: impl Fn() -> SessionInput) {
        for phone in self.by_session.get(session).into_iter().flatten() {
            if phone == except {
                continue;
            }
            if let Some(t) = self.phones.get(phone) {
                t.inbox.push(make());
            }
        }
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
        for (connection, tap) in &mut self.phones {
            let loss = self.sfu.local_loss_percent(connection);
            if loss != tap.loss {
                tap.loss = loss;
                tap.inbox.push(SessionInput::Loss(loss));
            }
        }
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
                Output::ParticipantGone { connection, reason } => {
                    // Phones hear each other through the hub, not the SFU: a phone that
                    // leaves is forgotten as a source before its tap goes.
                    self.source_gone(&connection);
                    if self.forget_phone(&connection).is_some() {
                        if let Some(f) = &self.notices {
                            f(HubNotice::PhoneGone {
                                connection: connection.clone(),
                                reason,
                            });
                        }
                    }
                    self.sfu
                        .on_rooms_output(&Output::ParticipantGone { connection, reason });
                }
                Output::StreamEnded { stream } => {
                    if let Some(publisher) = publisher_of(&stream) {
                        self.source_gone(publisher);
                    }
                    self.sfu.on_rooms_output(&Output::StreamEnded { stream });
                }
                media @ Output::SubscriptionEnded { .. } => self.sfu.on_rooms_output(&media),
                Output::SessionDestroyed { session } => {
                    if let Some(f) = &self.notices {
                        f(HubNotice::SessionClosed { session });
                    }
                }
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

/// Why a phone could not join its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JoinError {
    /// The session was closed (and is not to be recreated).
    SessionGone,
    Failed(String),
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
    notices: Option<Notices>,
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
    let mut hub = Hub::new(
        rooms,
        Sfu::new(now(), candidates),
        sockets,
        outbox,
        stats,
        notices,
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use phonebridge_rooms::ConnectionProps;
    use serde_json::json;

    type Inbox = mpsc::UnboundedReceiver<ToParticipant>;

    fn hub() -> Hub {
        Hub::new(
            Rooms::new(7, "ws://127.0.0.1:4443", 3_600_000),
            Sfu::new(now(), Vec::new()),
            HashMap::new(),
            None,
            SharedSfuStats::default(),
            None,
        )
    }

    /// A signalling socket: its peer state, the channel the hub feeds and its far end.
    struct Socket {
        peer: Peer,
        tx: mpsc::UnboundedSender<ToParticipant>,
        inbox: Inbox,
    }

    impl Socket {
        fn new() -> Self {
            let (tx, inbox) = mpsc::unbounded_channel();
            Socket {
                peer: Peer::default(),
                tx,
                inbox,
            }
        }

        fn call(&mut self, hub: &mut Hub, now_ms: u64, method: &str, params: Value) -> Value {
            let req = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
            let answer = hub.frame(
                now_ms,
                &mut self.peer,
                "127.0.0.1",
                &req.to_string(),
                &self.tx,
            );
            serde_json::from_str(&answer.expect("an answer")).unwrap()
        }

        /// The notifications and closes the hub sent this socket so far.
        fn received(&mut self) -> Vec<&'static str> {
            std::iter::from_fn(|| self.inbox.try_recv().ok())
                .map(|m| match m {
                    ToParticipant::Notify { method, .. } => method,
                    ToParticipant::Close => "close",
                })
                .collect()
        }
    }

    /// A session with one participant joined through `socket`: (session, connection, the
    /// private id a reconnecting client names).
    fn joined(hub: &mut Hub, socket: &mut Socket) -> (String, String, String) {
        let sid = hub
            .rooms
            .create_session(1, SessionProps::default())
            .unwrap()
            .id
            .clone();
        let token = hub
            .rooms
            .create_connection(1, &sid, ConnectionProps::default())
            .unwrap()
            .token
            .clone();
        let r = socket.call(
            hub,
            10,
            "joinRoom",
            json!({"token": token, "session": sid, "platform": "Chrome", "sdkVersion": "2.32.2",
                   "metadata": "a", "secret": "", "recorder": false, "stt": false}),
        );
        let result = &r["result"];
        let cid = result["id"].as_str().expect("joined").to_owned();
        let private = result["sessionId"].as_str().unwrap().to_owned();
        (sid, cid, private)
    }

    fn present(hub: &Hub, sid: &str, cid: &str) -> bool {
        hub.rooms
            .session(sid)
            .is_some_and(|s| s.connection(cid).is_some())
    }

    const PAST_GRACE: u64 = RECONNECT_GRACE.as_millis() as u64 + 1_000;

    #[test]
    fn the_old_socket_closing_after_a_reconnection_leaves_the_participant_in() {
        let mut hub = hub();
        let mut old = Socket::new();
        let (sid, cid, private) = joined(&mut hub, &mut old);
        // The client is back on a new socket before its old one is seen to close.
        let mut new = Socket::new();
        let r = new.call(
            &mut hub,
            20,
            "connect",
            json!({"sessionId": private, "reconnect": true}),
        );
        assert_eq!(r["result"]["value"], "reconnection successful", "{r}");
        hub.socket_closed(30, &old.peer, &old.tx);
        hub.tick(30 + PAST_GRACE);
        assert!(
            present(&hub, &sid, &cid),
            "evicted for a socket it had left"
        );
        // What the session sends it reaches the new socket.
        hub.rooms
            .delete_connection(40 + PAST_GRACE, &sid, &cid)
            .unwrap();
        hub.flush(40 + PAST_GRACE);
        assert_eq!(new.received(), ["participantEvicted", "close"]);
        assert!(old.received().is_empty());
    }

    #[test]
    fn a_participant_whose_socket_closed_leaves_after_the_grace_period() {
        let mut hub = hub();
        let mut socket = Socket::new();
        let (sid, cid, _) = joined(&mut hub, &mut socket);
        hub.socket_closed(30, &socket.peer, &socket.tx);
        hub.tick(30 + RECONNECT_GRACE.as_millis() as u64 - 1);
        assert!(present(&hub, &sid, &cid), "kept for the grace period");
        hub.tick(30 + PAST_GRACE);
        assert!(!present(&hub, &sid, &cid), "gone after it");
    }
}
