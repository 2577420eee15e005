//! The SIP endpoint: one sans-IO object that owns every transaction and dialog of a user
//! agent and turns received bytes and application commands into bytes to send and events.
//!
//! Drain rule: after any `handle_*` call or command, drain [`Endpoint::poll_transmit`] and
//! [`Endpoint::poll_event`] until both are empty, then wake the endpoint at
//! [`Endpoint::poll_timeout`] with [`Endpoint::handle_timeout`]. Early wake-ups are harmless.

mod build;
mod guard;
mod inbound_auth;
mod ping;
mod register;
mod session;
mod uac;
mod uas;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::header::HeaderName;
use crate::message::{Method, Request, Response};
use crate::parse::{parse_datagram, Limits};
use crate::transaction::{TimerConfig, Transaction, TxEvent, TxKey};
use crate::uri::Uri;
use crate::validate::{screen, Envelope, Screened, UasPolicy};

pub use guard::{Cidr, GuardConfig};
pub use inbound_auth::InboundAuth;
pub use ping::{PingHandle, Probe};
pub use register::{RegHandle, Registration};
pub use uac::Dial;
pub use uas::CommandError;

/// The transport a message travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Udp,
    Tcp,
    Tls,
}

impl TransportKind {
    pub fn is_reliable(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }
}

/// A connection the shell owns (TCP or TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// One end of a message flow: where bytes came from, or where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub transport: TransportKind,
    /// The far end's address.
    pub remote: SocketAddr,
    /// Our address as the far end should see it (used in Via and Contact).
    pub local: SocketAddr,
    /// The connection to send on, for TCP/TLS; `None` asks the shell to connect.
    pub conn: Option<ConnId>,
}

/// A call (INVITE dialog usage) known to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The peer sent BYE.
    RemoteBye,
    /// The peer cancelled before the answer.
    Cancelled,
    /// The application hung up (BYE or CANCEL sent, or the INVITE rejected).
    LocalHangup,
    /// Our 2xx was never acknowledged (RFC 3261 §13.3.1.4).
    NoAck,
    /// A request of ours got no answer.
    Timeout,
    /// The transport failed.
    TransportError,
    /// The INVITE got this final non-2xx status (from us or from the callee).
    Rejected(u16),
    /// The peer stopped refreshing the session (RFC 4028).
    SessionExpired,
}

/// What the endpoint tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new INVITE. Answer it with [`Endpoint::respond`]; a 100 Trying is already sent.
    IncomingCall {
        call: CallHandle,
        /// Shared with the endpoint, which keeps the INVITE for the call's life.
        request: Arc<Request>,
        peer: Peer,
    },
    /// The ACK for our 2xx to the initial INVITE arrived; `body` holds the SDP answer when our
    /// 2xx carried the offer.
    Confirmed { call: CallHandle, body: Vec<u8> },
    /// A re-INVITE or UPDATE inside the call; answer with [`Endpoint::answer_offer`].
    /// `body` is the offer (empty for an offerless re-INVITE).
    Offer {
        call: CallHandle,
        method: Method,
        body: Vec<u8>,
    },
    /// A call we placed got a provisional response (180, 183 …); `body` is its SDP, if any
    /// (early media).
    Progress {
        call: CallHandle,
        status: u16,
        body: Vec<u8>,
    },
    /// A call we placed was answered (ACK already sent); `body` is the SDP answer.
    Answered { call: CallHandle, body: Vec<u8> },
    /// An INFO inside the call (already answered 200).
    Info {
        call: CallHandle,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// A registration was accepted (or refreshed) for `expires` seconds.
    Registered { reg: RegHandle, expires: u32 },
    /// A registration failed (`status` None: no answer); it is retried after `retry_in`.
    RegistrationFailed {
        reg: RegHandle,
        status: Option<u16>,
        retry_in: Duration,
    },
    /// The call is over; no further events come for it.
    Ended { call: CallHandle, reason: EndReason },
    /// A probe's OPTIONS got a final answer (any status: the peer is up) after `rtt`.
    PingAnswered {
        ping: PingHandle,
        status: u16,
        rtt: Duration,
    },
    /// A probe's OPTIONS got no answer, or could not be sent: the peer is down.
    PingUnanswered { ping: PingHandle },
}

/// Counters of protocol anomalies and protective actions, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub retransmissions_absorbed: u64,
    pub responses_retransmitted: u64,
    pub rejected_malformed: u64,
    pub dropped_malformed: u64,
    pub dropped_flood: u64,
    pub dropped_scanner: u64,
    pub rejected_busy: u64,
    /// INVITEs that reached us twice by different paths (a fork or a loop), refused with 482.
    pub rejected_merged: u64,
    /// INVITEs from an authenticating trunk answered with a digest challenge.
    pub auth_challenges: u64,
    pub unmatched_responses: u64,
    pub calls_started: u64,
    pub calls_ended: u64,
}

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub timers: TimerConfig,
    pub limits: Limits,
    pub policy: UasPolicy,
    pub guard: GuardConfig,
    /// Most calls at once; further INVITEs get 503 with Retry-After.
    pub max_calls: usize,
    /// The `Server`/`User-Agent` header value.
    pub user_agent: String,
    /// Seed for tags, branches and Call-IDs.
    pub seed: u64,
    /// Session interval we ask for and grant (RFC 4028), seconds; 0 disables session timers
    /// unless the peer asks for one.
    pub session_expires: u32,
    /// The smallest session interval we accept (Min-SE).
    pub min_se: u32,
    /// Sources whose INVITEs must answer a digest challenge.
    pub inbound_auth: Vec<InboundAuth>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            timers: TimerConfig::default(),
            limits: Limits::default(),
            policy: UasPolicy::default(),
            guard: GuardConfig::default(),
            max_calls: 1000,
            user_agent: concat!("phonebridge/", env!("CARGO_PKG_VERSION")).to_owned(),
            seed: 0,
            session_expires: 1800,
            min_se: 90,
            inbound_auth: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerRef {
    Tx(u64),
    Call(CallHandle),
    Reg(RegHandle),
    Ping(PingHandle),
}

/// The next deadline of every transaction, call and registration that has one, in time
/// order. Each holds at most one entry, moved when its deadline changes and removed when it
/// ends, so the set stays as large as what is alive (a call's session-refresh deadline half
/// an hour away leaves with the call).
#[derive(Debug, Default)]
struct Deadlines {
    by_time: BTreeSet<(Instant, TimerRef)>,
    /// Where the wind-down grid starts (see [`Deadlines::coarse`]).
    grid_origin: Option<Instant>,
}

/// The grid that deadlines which only end a transaction are rounded up to: the many
/// transactions that finish absorbing retransmissions within one step end in one wake-up
/// (about four a second under load, rather than one per transaction).
const WIND_DOWN_STEP: Duration = Duration::from_millis(250);

impl Deadlines {
    /// `t` rounded up to the next step of the wind-down grid (which starts at the first
    /// time it is asked for).
    fn coarse(&mut self, t: Instant) -> Instant {
        let origin = *self.grid_origin.get_or_insert(t);
        let step = WIND_DOWN_STEP.as_nanos();
        let since = t.saturating_duration_since(origin).as_nanos();
        let steps = since.div_ceil(step);
        let rounded = Duration::from_nanos(u64::try_from(steps * step).unwrap_or(u64::MAX));
        origin.checked_add(rounded).unwrap_or(t)
    }

    /// Moves `r` from its deadline `scheduled` (what it was last given, kept by its owner)
    /// to `new`, and records `new` there.
    fn set(&mut self, r: TimerRef, scheduled: &mut Option<Instant>, new: Option<Instant>) {
        let old = std::mem::replace(scheduled, new);
        if old == new {
            return;
        }
        if let Some(t) = old {
            self.by_time.remove(&(t, r));
        }
        if let Some(t) = new {
            self.by_time.insert((t, r));
        }
    }

    fn next(&self) -> Option<Instant> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// The earliest entry if it is due at `now`, taken out.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerRef)> {
        if self.next()? > now {
            return None;
        }
        self.by_time.pop_first()
    }
}

/// Who a client transaction's responses go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    None,
    Call(CallHandle),
    Reg(RegHandle),
    Ping(PingHandle),
}

impl From<Option<CallHandle>> for Owner {
    fn from(c: Option<CallHandle>) -> Self {
        c.map_or(Owner::None, Owner::Call)
    }
}

#[derive(Debug)]
struct TxEntry {
    key: TxKey,
    tx: Transaction,
    /// Where this transaction's messages go.
    target: Peer,
    owner: Owner,
    scheduled: Option<Instant>,
}

impl TxEntry {
    fn call(&self) -> Option<CallHandle> {
        match self.owner {
            Owner::Call(h) => Some(h),
            _ => None,
        }
    }
}

/// Hashing for the tables keyed by our own sequential ids (transactions, calls): the keys
/// are not the peer's to choose, so they need no keyed hash, and one multiplication spreads
/// consecutive ids over the table (SipHash cost about 140 instructions a lookup).
#[derive(Debug, Clone, Copy, Default)]
struct Ids;

impl std::hash::BuildHasher for Ids {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// See [`Ids`].
#[derive(Debug, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: the odd constant is 2^64 over the golden ratio.
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
}

/// The endpoint. See the module docs for the drain rule.
#[derive(Debug)]
pub struct Endpoint {
    cfg: EndpointConfig,
    rng: SmallRng,
    /// Boxed: tens of thousands live at high call rates (completed transactions wait out
    /// Timer J/K), and growing the table then moves pointers rather than whole entries.
    txs: HashMap<u64, Box<TxEntry>, Ids>,
    tx_index: HashMap<TxKey, u64>,
    next_id: u64,
    calls: HashMap<CallHandle, uas::Call, Ids>,
    /// (Call-ID, local tag) → call.
    /// Call-ID → (local tag, call): looked up by `&str`, without allocating.
    dialogs: HashMap<String, Vec<(String, CallHandle)>>,
    regs: HashMap<RegHandle, register::RegState>,
    pings: HashMap<PingHandle, ping::PingState>,
    timers: Deadlines,
    transmits: VecDeque<(Peer, Vec<u8>)>,
    events: VecDeque<Event>,
    guard: guard::Guard,
    stats: Stats,
    /// Key for stateless digest nonces; its epoch is the first input's time.
    nonce_key: Option<inbound_auth::NonceKey>,
    /// Allow, Supported and Accept values, joined once from the policy.
    policy_headers: PolicyHeaders,
}

#[derive(Debug)]
struct PolicyHeaders {
    allow: String,
    supported: String,
    accept: String,
}

impl Endpoint {
    pub fn new(cfg: EndpointConfig) -> Self {
        Endpoint {
            rng: SmallRng::seed_from_u64(cfg.seed),
            txs: HashMap::default(),
            tx_index: HashMap::new(),
            next_id: 1,
            calls: HashMap::default(),
            dialogs: HashMap::new(),
            regs: HashMap::new(),
            pings: HashMap::new(),
            timers: Deadlines::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            guard: guard::Guard::default(),
            stats: Stats::default(),
            nonce_key: None,
            policy_headers: PolicyHeaders {
                allow: cfg.policy.allow_header(),
                supported: cfg.policy.supported_header(),
                accept: cfg.policy.accept_header(),
            },
            cfg,
        }
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Calls not yet ended.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Live transactions (for leak checks and metrics).
    pub fn active_transactions(&self) -> usize {
        self.txs.len()
    }

    /// Transactions still waiting for an answer (ours unanswered, or the peer's unanswered by
    /// us). Those in Completed/Accepted/Confirmed only absorb retransmissions, so a shell
    /// that is stopping need not wait for them.
    pub fn awaiting_answers(&self) -> usize {
        use crate::transaction::State;
        self.txs
            .values()
            .filter(|e| {
                matches!(
                    e.tx.state(),
                    State::Calling | State::Trying | State::Proceeding
                )
            })
            .count()
    }

    /// A UDP datagram arrived.
    pub fn handle_datagram(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        if !self.guard.admit(&self.cfg.guard, now, from.remote.ip()) {
            self.stats.dropped_flood += 1;
            return;
        }
        let parsed = parse_datagram(bytes, &self.cfg.limits);
        self.handle_parsed(now, from, parsed);
    }

    /// A message framed from a TCP/TLS stream (see [`crate::StreamFramer`]).
    pub fn handle_stream_message(
        &mut self,
        now: Instant,
        from: Peer,
        parsed: Result<crate::Message, crate::ParseError>,
    ) {
        if !self.guard.admit(&self.cfg.guard, now, from.remote.ip()) {
            self.stats.dropped_flood += 1;
            return;
        }
        self.handle_parsed(now, from, parsed);
    }

    fn handle_parsed(
        &mut self,
        now: Instant,
        from: Peer,
        parsed: Result<crate::Message, crate::ParseError>,
    ) {
        self.stats.received += 1;
        match screen(parsed, &self.cfg.policy) {
            Screened::Drop(reason) => {
                self.stats.dropped_malformed += 1;
                tracing::debug!(%reason, "dropped message");
            }
            Screened::Reject { rejection, headers } => {
                if self.drop_scanner(&headers) {
                    return;
                }
                self.stats.rejected_malformed += 1;
                tracing::debug!(status = rejection.status, reason = %rejection.reason, "rejecting request");
                let mut resp = build::response_from_headers(
                    &headers,
                    rejection.status,
                    Some(&rejection.reason),
                    Some(&self.random_token()),
                );
                for (n, v) in rejection.headers {
                    resp.headers.push(n, v);
                }
                self.decorate(&mut resp.headers);
                let via = build::top_via(&headers);
                let target = build::response_target(&from, via.as_ref());
                self.transmits.push_back((target, resp.encode()));
            }
            Screened::Response(resp, env) => self.on_response(now, resp, env),
            Screened::Request(mut req, env) => {
                if self.drop_scanner(&req.headers) {
                    return;
                }
                build::stamp_via(&mut req, env.top_via(), from.remote);
                self.on_request(now, from, req, env);
            }
        }
    }

    /// A request from a scanner User-Agent: counted, and dropped without an answer.
    fn drop_scanner(&mut self, headers: &crate::message::Headers) -> bool {
        let scanner = headers
            .get(&HeaderName::USER_AGENT)
            .is_some_and(|ua| guard::Guard::ignored_agent(&self.cfg.guard, ua));
        if scanner {
            self.stats.dropped_scanner += 1;
        }
        scanner
    }

    fn on_response(&mut self, now: Instant, resp: Response, env: Envelope) {
        let key = TxKey::client(&env);
        let Some(&id) = self.tx_index.get(&key) else {
            self.stats.unmatched_responses += 1;
            tracing::debug!(status = resp.status, "response matches no transaction");
            return;
        };
        if let Some(e) = self.txs.get_mut(&id) {
            e.tx.handle_response(now, resp);
        }
        self.drive_tx(now, id);
    }

    fn on_request(&mut self, now: Instant, from: Peer, req: Request, env: Envelope) {
        // A retransmission (or the ACK of a non-2xx) belongs to an existing transaction.
        let key = TxKey::server(&req, &env, None);
        if let Some(&id) = self.tx_index.get(&key) {
            let absorbed = self.txs.get(&id).is_some_and(|e| {
                req.method != Method::Ack || e.tx.state() == crate::transaction::State::Completed
            });
            if absorbed {
                self.stats.retransmissions_absorbed += 1;
                if let Some(e) = self.txs.get_mut(&id) {
                    e.tx.handle_retransmitted_request(now, &req.method);
                }
                self.drive_tx(now, id);
                return;
            }
        }
        self.on_new_request(now, from, req, env, key);
    }

    /// Creates a server transaction for `req`; responses go per its top Via.
    fn new_server_tx(
        &mut self,
        now: Instant,
        key: TxKey,
        req: &Request,
        env: &Envelope,
        from: &Peer,
        call: Option<CallHandle>,
    ) -> u64 {
        let invite = (req.method == Method::Invite).then(|| Arc::new(req.clone()));
        self.open_server_tx(now, key, &req.method, invite, (env, from), call)
    }

    /// Creates a server transaction for a request of `method`; an INVITE's transaction keeps
    /// the (shared) request to build its 100 Trying.
    fn open_server_tx(
        &mut self,
        now: Instant,
        key: TxKey,
        method: &Method,
        invite: Option<Arc<Request>>,
        (env, from): (&Envelope, &Peer),
        call: Option<CallHandle>,
    ) -> u64 {
        let target = build::response_target(from, Some(env.top_via()));
        let reliable = from.transport.is_reliable();
        let tx = match invite {
            Some(req) => Transaction::server(now, req, reliable, self.cfg.timers),
            None => Transaction::server_non_invite(method.clone(), reliable, self.cfg.timers),
        };
        let id = self.insert_tx(key, tx, target, call);
        // Schedules the transaction's first timer (100 Trying for an INVITE).
        self.drive_tx(now, id);
        id
    }

    fn insert_tx(
        &mut self,
        key: TxKey,
        tx: Transaction,
        target: Peer,
        owner: impl Into<Owner>,
    ) -> u64 {
        let owner = owner.into();
        let id = self.next_id;
        self.next_id += 1;
        self.tx_index.insert(key.clone(), id);
        self.txs.insert(
            id,
            Box::new(TxEntry {
                key,
                tx,
                target,
                owner,
                scheduled: None,
            }),
        );
        id
    }

    /// Sends `resp` on server transaction `id`.
    fn respond_tx(&mut self, now: Instant, id: u64, mut resp: Response) {
        self.decorate(&mut resp.headers);
        if let Some(e) = self.txs.get_mut(&id) {
            e.tx.send_response(now, &resp);
        }
        self.drive_tx(now, id);
    }

    /// Drains transaction `id`: queues its bytes, handles its events, reschedules its timer,
    /// and removes it once terminated.
    fn drive_tx(&mut self, now: Instant, id: u64) {
        let mut events = Vec::new();
        let Some(e) = self.txs.get_mut(&id) else {
            return;
        };
        while let Some(bytes) = e.tx.poll_transmit() {
            self.transmits.push_back((e.target.clone(), bytes));
        }
        while let Some(ev) = e.tx.poll_event() {
            events.push(ev);
        }
        let next = e.tx.poll_timeout();
        let next = match next {
            Some(t) if e.tx.winding_down() => Some(self.timers.coarse(t)),
            other => other,
        };
        self.timers.set(TimerRef::Tx(id), &mut e.scheduled, next);
        let owner = e.owner;
        let method = e.tx.method().clone();
        let server = matches!(
            e.tx.kind(),
            crate::transaction::Kind::ServerInvite | crate::transaction::Kind::ServerNonInvite
        );
        for ev in events {
            match ev {
                TxEvent::Terminated => {
                    if let Some(mut e) = self.txs.remove(&id) {
                        self.tx_index.remove(&e.key);
                        self.timers.set(TimerRef::Tx(id), &mut e.scheduled, None);
                    }
                }
                TxEvent::Response(resp) if !server => match owner {
                    Owner::Call(call) => self.on_call_response(now, call, &method, resp),
                    Owner::Reg(reg) => self.on_register_response(now, reg, &resp),
                    Owner::Ping(ping) => self.on_ping_response(now, ping, &resp),
                    Owner::None => {}
                },
                TxEvent::Timeout | TxEvent::TransportError if !server => match owner {
                    Owner::Call(call) => {
                        let reason = if ev == TxEvent::Timeout {
                            EndReason::Timeout
                        } else {
                            EndReason::TransportError
                        };
                        self.on_call_failure(now, call, &method, reason);
                    }
                    Owner::Reg(reg) => self.on_register_failure(now, reg),
                    Owner::Ping(ping) => self.on_ping_failure(now, ping),
                    Owner::None => {}
                },
                _ => {}
            }
        }
    }

    /// The shell could not deliver to `peer` (connection refused or reset, ICMP error).
    pub fn handle_transport_error(&mut self, now: Instant, peer: &Peer) {
        let ids: Vec<u64> = self
            .txs
            .iter()
            .filter(|(_, e)| e.target.remote == peer.remote && e.target.transport == peer.transport)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(e) = self.txs.get_mut(&id) {
                e.tx.handle_transport_error();
            }
            self.drive_tx(now, id);
        }
    }

    /// Fires every due timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Every entry is its owner's current deadline (moved or removed with it), so what
        // comes out is due as it stands.
        while let Some((_, r)) = self.timers.pop_due(now) {
            match r {
                TimerRef::Tx(id) => {
                    let Some(e) = self.txs.get_mut(&id) else {
                        continue;
                    };
                    e.scheduled = None;
                    e.tx.handle_timeout(now);
                    if let Some(next) = e.tx.poll_timeout() {
                        if next <= now {
                            // Never loop on a deadline that does not move.
                            let later = Some(now + Duration::from_millis(1));
                            self.timers.set(TimerRef::Tx(id), &mut e.scheduled, later);
                        }
                    }
                    self.drive_tx(now, id);
                }
                TimerRef::Call(h) => self.call_timeout(now, h),
                TimerRef::Reg(h) => self.reg_timeout(now, h),
                TimerRef::Ping(h) => self.ping_timeout(now, h),
            }
        }
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(Peer, Vec<u8>)> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.timers.next()
    }

    /// Applies the inbound digest rules to a new INVITE from `ip`; `Some(challenge)` to send.
    fn inbound_challenge(
        &mut self,
        now: Instant,
        ip: std::net::IpAddr,
        req: &Request,
    ) -> Option<String> {
        if self.cfg.inbound_auth.is_empty() {
            return None;
        }
        if self.nonce_key.is_none() {
            let secret: [u8; 32] = self.rng.gen();
            self.nonce_key = Some(inbound_auth::NonceKey::new(secret, now));
        }
        let key = self.nonce_key.as_ref()?;
        match inbound_auth::check(&self.cfg.inbound_auth, key, now, ip, req) {
            inbound_auth::Verdict::Pass => None,
            inbound_auth::Verdict::Challenge(v) => Some(v),
        }
    }

    fn add_dialog(&mut self, call_id: String, local_tag: String, h: CallHandle) {
        self.dialogs
            .entry(call_id)
            .or_default()
            .push((local_tag, h));
    }

    /// Whether connection `conn` (to `remote`) still serves something: a call runs on it (or,
    /// for a call we placed, on the address it goes to), a
    /// transaction on it waits for a response or its final answer, or a registration is
    /// kept with `remote` (the registrar sends our calls down the flow it registered, all
    /// the more when we are behind NAT). The shell may close an idle connection only if
    /// not. A transaction that has its final response and only winds down does not count: a
    /// retransmission can come over a new connection.
    pub fn connection_in_use(&self, conn: ConnId, remote: SocketAddr) -> bool {
        use crate::transaction::State;
        // A call we placed names the address we connected to, not the connection.
        let on_it = |p: &Peer| p.conn == Some(conn) || (p.conn.is_none() && p.remote == remote);
        self.regs.values().any(|r| r.peer().remote == remote)
            || self.calls.values().any(|c| on_it(&c.peer))
            || self.txs.values().any(|e| {
                e.target.conn == Some(conn)
                    && matches!(
                        e.tx.state(),
                        State::Calling | State::Trying | State::Proceeding
                    )
            })
    }

    fn find_dialog(&self, call_id: &str, local_tag: &str) -> Option<CallHandle> {
        self.dialogs
            .get(call_id)?
            .iter()
            .find(|(t, _)| t == local_tag)
            .map(|(_, h)| *h)
    }

    fn remove_dialog(&mut self, call_id: &str, local_tag: &str) {
        if let Some(list) = self.dialogs.get_mut(call_id) {
            list.retain(|(t, _)| t != local_tag);
            if list.is_empty() {
                self.dialogs.remove(call_id);
            }
        }
    }

    /// Adds the headers every message of ours carries.
    fn decorate(&self, headers: &mut crate::message::Headers) {
        if headers.get(&HeaderName::SERVER).is_none()
            && headers.get(&HeaderName::USER_AGENT).is_none()
        {
            headers.push(HeaderName::SERVER, &self.cfg.user_agent);
        }
    }

    fn random_token(&mut self) -> String {
        let mut t = String::with_capacity(16);
        push_hex(&mut t, self.rng.gen::<u64>());
        t
    }

    fn new_branch(&mut self) -> String {
        let mut b = String::with_capacity(23);
        b.push_str(crate::headers::BRANCH_COOKIE);
        push_hex(&mut b, self.rng.gen::<u64>());
        b
    }

    /// Our Contact URI on the flow to `peer`.
    fn contact_for(peer: &Peer) -> String {
        let mut c = String::with_capacity(64);
        c.push_str("<sip:phonebridge@");
        crate::uri::push_ip(&mut c, peer.local.ip());
        c.push(':');
        crate::text::push_decimal(&mut c, peer.local.port().into());
        // `sip:` with transport=tls rather than `sips:` for TLS: the form peers interoperate
        // with (a `sips:` Contact makes some UAs, e.g. baresip 1.0, fail the ACK).
        c.push_str(match peer.transport {
            TransportKind::Udp => ">",
            TransportKind::Tcp => ";transport=tcp>",
            TransportKind::Tls => ";transport=tls>",
        });
        c
    }

    /// The Via of a request we send to `peer` with `branch` (RFC 3581 `rport` asked for).
    fn via_header(peer: &Peer, branch: &str) -> String {
        let host = crate::uri::Host::from(peer.local.ip());
        format!(
            "SIP/2.0/{} {host}:{};branch={branch};rport",
            peer.transport.via_token(),
            peer.local.port()
        )
    }

    /// Starts a client transaction for `req` towards `target`; returns its branch.
    fn send_request(
        &mut self,
        now: Instant,
        req: Request,
        target: Peer,
        call: Option<CallHandle>,
    ) -> String {
        let branch = self.new_branch();
        self.send_with_branch(now, req, target, call, &branch);
        branch
    }
}

/// True when `uri` names a user we might serve (a SIP URI).
pub fn request_user(uri: &Uri) -> Option<String> {
    uri.as_sip().and_then(|u| u.user_unescaped())
}

/// Appends `n` as 16 lower-case hex digits (what `{:016x}` prints).
fn push_hex(out: &mut String, n: u64) {
    for shift in (0..16).rev() {
        let d = (n >> (shift * 4)) as u8 & 0xf;
        out.push(char::from(if d < 10 { b'0' + d } else { b'a' + d - 10 }));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn consecutive_ids_spread_over_hash_buckets_and_control_bits() {
        use std::hash::BuildHasher;
        let hashes: Vec<u64> = (1..=1024u64).map(|n| super::Ids.hash_one(n)).collect();
        // hashbrown takes the bucket from the low bits and a tag from the top seven.
        let buckets: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        let tags: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(buckets.len(), 1024);
        assert_eq!(tags.len(), 128);
        let handle = super::CallHandle(7);
        assert_eq!(super::Ids.hash_one(handle), super::Ids.hash_one(7u64));
    }

    #[test]
    fn tokens_are_sixteen_hex_digits_as_the_formatter_prints_them() {
        for n in [0u64, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            let mut t = String::new();
            super::push_hex(&mut t, n);
            assert_eq!(t, format!("{n:016x}"));
        }
    }
}
