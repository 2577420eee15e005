//! The four transaction machines of RFC 3261 §17 (client/server × INVITE/non-INVITE), with the
//! Accepted states of RFC 6026.
//!
//! A [`Transaction`] is driven by `handle_*` calls that carry `now`; after each call the owner
//! drains [`Transaction::poll_transmit`] and [`Transaction::poll_event`] until both return
//! `None`, then arms a wake-up at [`Transaction::poll_timeout`]. Calling
//! [`Transaction::handle_timeout`] early is harmless: only due timers fire.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::header::HeaderName;
use crate::headers::Via;
use crate::message::{Method, Request, Response};

/// RFC 3261 timer base values (§17.1.1.1, Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip estimate (default 500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (default 4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (default 5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Which of the four machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ClientInvite,
    ClientNonInvite,
    ServerInvite,
    ServerNonInvite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Client INVITE, request sent.
    Calling,
    /// Non-INVITE, request sent or received, no response yet.
    Trying,
    Proceeding,
    Completed,
    /// Server INVITE: ACK received for a non-2xx final response.
    Confirmed,
    /// RFC 6026: a 2xx was sent (server) or received (client).
    Accepted,
    Terminated,
}

/// The RFC 3261/6026 timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    A,
    B,
    D,
    E,
    F,
    K,
    G,
    H,
    I,
    J,
    L,
    M,
    /// Server INVITE: send 100 Trying if the TU has not answered within 200 ms (§17.2.1).
    Trying,
}

const TIMERS: [Timer; 13] = [
    Timer::A,
    Timer::B,
    Timer::D,
    Timer::E,
    Timer::F,
    Timer::K,
    Timer::G,
    Timer::H,
    Timer::I,
    Timer::J,
    Timer::L,
    Timer::M,
    Timer::Trying,
];

/// What a transaction reports to its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// Client: a response for the transaction user (1xx, each 2xx, the first non-2xx final).
    Response(Response),
    /// Client: Timer B or F fired. Server INVITE: Timer H fired (no ACK came).
    Timeout,
    /// The transport reported a failure sending this transaction's message.
    TransportError,
    /// The machine reached Terminated and can be removed.
    Terminated,
}

/// One transaction. See the module docs for the drain rule.
#[derive(Debug)]
pub struct Transaction {
    kind: Kind,
    state: State,
    reliable: bool,
    cfg: TimerConfig,
    method: Method,
    /// The request: kept by client transactions (ACK building) and by server transactions
    /// until their final response (answers built from it); then released, since a server
    /// transaction only resends bytes while it absorbs retransmissions.
    /// Shared with the call and the application's event (an INVITE is never copied).
    request: Option<Arc<Request>>,
    /// The bytes a retransmission timer (A, E, G) or a retransmitted request resends.
    last_sent: Option<Vec<u8>>,
    /// Client INVITE: the ACK sent for a non-2xx final response, resent on its retransmissions.
    ack: Option<Vec<u8>>,
    interval: Duration,
    deadlines: [Option<Instant>; 13],
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<TxEvent>,
    final_status: Option<u16>,
}

impl Transaction {
    /// Starts a client transaction: the request goes out at once.
    pub fn client(now: Instant, request: Request, reliable: bool, cfg: TimerConfig) -> Self {
        let kind = if request.method == Method::Invite {
            Kind::ClientInvite
        } else {
            Kind::ClientNonInvite
        };
        let bytes = request.encode();
        let method = request.method.clone();
        let mut t = Transaction::bare(kind, method, Some(Arc::new(request)), reliable, cfg);
        t.transmits.push_back(bytes.clone());
        t.last_sent = Some(bytes);
        t.interval = cfg.t1;
        match kind {
            Kind::ClientInvite => {
                t.state = State::Calling;
                if !reliable {
                    t.arm(Timer::A, now + cfg.t1);
                }
                t.arm(Timer::B, now + 64 * cfg.t1);
            }
            _ => {
                t.state = State::Trying;
                if !reliable {
                    t.arm(Timer::E, now + cfg.t1);
                }
                t.arm(Timer::F, now + 64 * cfg.t1);
            }
        }
        t
    }

    /// Starts a server transaction for a received request. An INVITE gets 100 Trying after
    /// 200 ms unless the transaction user responds first (RFC 3261 §17.2.1): a caller that is
    /// answered at once sees no needless provisional.
    pub fn server(now: Instant, request: Arc<Request>, reliable: bool, cfg: TimerConfig) -> Self {
        let kind = if request.method == Method::Invite {
            Kind::ServerInvite
        } else {
            Kind::ServerNonInvite
        };
        let mut t = Transaction::bare(kind, request.method.clone(), Some(request), reliable, cfg);
        t.state = if kind == Kind::ServerInvite {
            t.arm(Timer::Trying, now + TRYING_DELAY);
            State::Proceeding
        } else {
            State::Trying
        };
        t
    }

    /// A server transaction for a non-INVITE request: it only ever resends the bytes of its
    /// response, so it keeps the method and not the request.
    pub fn server_non_invite(method: Method, reliable: bool, cfg: TimerConfig) -> Self {
        debug_assert!(
            method != Method::Invite,
            "INVITE server transactions keep their request"
        );
        let mut t = Transaction::bare(Kind::ServerNonInvite, method, None, reliable, cfg);
        t.state = State::Trying;
        t
    }

    fn bare(
        kind: Kind,
        method: Method,
        request: Option<Arc<Request>>,
        reliable: bool,
        cfg: TimerConfig,
    ) -> Self {
        Transaction {
            kind,
            state: State::Trying,
            reliable,
            cfg,
            method,
            request,
            last_sent: None,
            ack: None,
            interval: cfg.t1,
            deadlines: [None; 13],
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            final_status: None,
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The request, while the transaction still needs it (see the field's docs).
    pub fn request(&self) -> Option<&Request> {
        self.request.as_deref()
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// The bytes last sent (the request, or the last response of a server transaction).
    pub fn last_sent(&self) -> Option<&[u8]> {
        self.last_sent.as_deref()
    }

    /// Takes the bytes last sent out of an Accepted server INVITE transaction, for the
    /// transaction user that retransmits its 2xx: the transaction itself only absorbs
    /// retransmitted INVITEs from then on and needs no copy for the 32 s it waits out.
    pub fn take_last_sent(&mut self) -> Option<Vec<u8>> {
        if self.state != State::Accepted {
            return None;
        }
        self.last_sent.take()
    }

    /// The final status sent (server) or received (client), if any.
    pub fn final_status(&self) -> Option<u16> {
        self.final_status
    }

    /// Whether every timer still armed only ends the transaction (D, I, J, K, L, M): what
    /// remains is absorbing retransmissions, so firing a little late changes nothing on the
    /// wire.
    pub fn winding_down(&self) -> bool {
        TIMERS.iter().zip(&self.deadlines).all(|(t, d)| {
            d.is_none()
                || matches!(
                    t,
                    Timer::D | Timer::I | Timer::J | Timer::K | Timer::L | Timer::M
                )
        })
    }

    fn arm(&mut self, t: Timer, at: Instant) {
        self.deadlines[t as usize] = Some(at);
    }

    fn disarm_all(&mut self) {
        self.deadlines = [None; 13];
    }

    fn terminate(&mut self) {
        if self.state != State::Terminated {
            self.state = State::Terminated;
            self.disarm_all();
            self.events.push_back(TxEvent::Terminated);
        }
    }

    /// A wait that is zero on reliable transports terminates at once.
    fn wait_or_terminate(&mut self, timer: Timer, now: Instant, wait: Duration) {
        if self.reliable || wait.is_zero() {
            self.terminate();
        } else {
            self.arm(timer, now + wait);
        }
    }

    /// Client: a response matched to this transaction.
    pub fn handle_response(&mut self, now: Instant, resp: Response) {
        let status = resp.status;
        match (self.kind, self.state) {
            (Kind::ClientInvite, State::Calling | State::Proceeding) => {
                self.deadlines[Timer::A as usize] = None;
                if status < 200 {
                    self.state = State::Proceeding;
                    self.events.push_back(TxEvent::Response(resp));
                } else if status < 300 {
                    // RFC 6026 §8.4: stay to absorb 2xx retransmissions; pass each to the TU.
                    self.final_status = Some(status);
                    self.state = State::Accepted;
                    self.deadlines[Timer::B as usize] = None;
                    self.arm(Timer::M, now + 64 * self.cfg.t1);
                    self.events.push_back(TxEvent::Response(resp));
                } else {
                    self.final_status = Some(status);
                    if let Some(ack) = self.build_ack(&resp).map(|a| a.encode()) {
                        self.transmits.push_back(ack.clone());
                        self.ack = Some(ack);
                    }
                    self.state = State::Completed;
                    self.deadlines[Timer::B as usize] = None;
                    self.events.push_back(TxEvent::Response(resp));
                    self.wait_or_terminate(
                        Timer::D,
                        now,
                        Duration::from_secs(32).max(64 * self.cfg.t1 / 2),
                    );
                }
            }
            (Kind::ClientInvite, State::Accepted) if (200..300).contains(&status) => {
                self.events.push_back(TxEvent::Response(resp));
            }
            (Kind::ClientInvite, State::Completed) if status >= 300 => {
                if let Some(ack) = &self.ack {
                    self.transmits.push_back(ack.clone());
                }
            }
            (Kind::ClientNonInvite, State::Trying | State::Proceeding) => {
                if status < 200 {
                    self.state = State::Proceeding;
                    self.events.push_back(TxEvent::Response(resp));
                } else {
                    self.final_status = Some(status);
                    self.state = State::Completed;
                    self.deadlines[Timer::E as usize] = None;
                    self.deadlines[Timer::F as usize] = None;
                    self.events.push_back(TxEvent::Response(resp));
                    let t4 = self.cfg.t4;
                    self.wait_or_terminate(Timer::K, now, t4);
                }
            }
            _ => {}
        }
    }

    /// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3).
    fn build_ack(&self, resp: &Response) -> Option<Request> {
        // Client transactions keep their request for their whole life.
        let req = self.request.as_ref()?;
        let mut ack = Request::new(Method::Ack, req.uri.clone());
        let h = &req.headers;
        if let Some(via) = h.get(&HeaderName::VIA) {
            ack.headers.push(
                HeaderName::VIA,
                crate::text::split_commas(via).next().unwrap_or_default(),
            );
        }
        ack.headers.copy_from(h, &HeaderName::ROUTE);
        ack.headers.push(HeaderName::MAX_FORWARDS, "70");
        ack.headers.copy_from(h, &HeaderName::FROM);
        if let Some(to) = resp.headers.get(&HeaderName::TO) {
            ack.headers.push(HeaderName::TO, to);
        }
        ack.headers.copy_from(h, &HeaderName::CALL_ID);
        let seq = h
            .get(&HeaderName::CSEQ)
            .and_then(|c| crate::headers::CSeq::parse(c).ok())
            .map_or(1, |c| c.seq);
        ack.headers.push(HeaderName::CSEQ, format!("{seq} ACK"));
        Some(ack)
    }

    /// Server: the same request arrived again (a retransmission).
    pub fn handle_retransmitted_request(&mut self, now: Instant, method: &Method) {
        let _ = now;
        match (self.kind, self.state, method) {
            (Kind::ServerInvite, State::Completed, Method::Ack) => {
                self.state = State::Confirmed;
                self.deadlines[Timer::G as usize] = None;
                self.deadlines[Timer::H as usize] = None;
                let t4 = self.cfg.t4;
                self.wait_or_terminate(Timer::I, now, t4);
            }
            (_, State::Proceeding | State::Completed, m) if *m != Method::Ack => {
                if let Some(b) = &self.last_sent {
                    self.transmits.push_back(b.clone());
                }
            }
            // Trying (non-INVITE, nothing sent yet), Confirmed, Accepted: absorb.
            _ => {}
        }
    }

    /// Server: the transaction user sends a response.
    pub fn send_response(&mut self, now: Instant, resp: &Response) {
        let status = resp.status;
        let bytes = resp.encode();
        // Any response of ours makes the automatic 100 Trying moot.
        self.deadlines[Timer::Trying as usize] = None;
        if status >= 200 {
            // Only bytes are resent from now on.
            self.request = None;
        }
        match (self.kind, self.state) {
            (Kind::ServerInvite, State::Proceeding) if (200..300).contains(&status) => {
                // RFC 6026 §8.5: Accepted; the TU retransmits the 2xx itself (it takes the
                // bytes with `take_last_sent`) and a retransmitted INVITE is absorbed.
                self.transmits.push_back(bytes.clone());
                self.last_sent = Some(bytes);
                self.final_status = Some(status);
                self.state = State::Accepted;
                self.arm(Timer::L, now + 64 * self.cfg.t1);
            }
            (Kind::ServerInvite, State::Proceeding) => {
                self.transmits.push_back(bytes.clone());
                self.last_sent = Some(bytes);
                if status >= 200 {
                    self.final_status = Some(status);
                }
                if status >= 300 {
                    self.state = State::Completed;
                    if !self.reliable {
                        self.interval = self.cfg.t1;
                        self.arm(Timer::G, now + self.cfg.t1);
                    }
                    self.arm(Timer::H, now + 64 * self.cfg.t1);
                }
            }
            (Kind::ServerInvite, State::Accepted) if (200..300).contains(&status) => {
                // A 2xx retransmission from the TU.
                self.transmits.push_back(bytes);
            }
            (Kind::ServerNonInvite, State::Trying | State::Proceeding) => {
                self.transmits.push_back(bytes.clone());
                self.last_sent = Some(bytes);
                if status < 200 {
                    self.state = State::Proceeding;
                } else {
                    self.final_status = Some(status);
                    self.state = State::Completed;
                    let wait = 64 * self.cfg.t1;
                    self.wait_or_terminate(Timer::J, now, wait);
                }
            }
            _ => {
                tracing::debug!(status, state = ?self.state, "response not sendable in this state")
            }
        }
    }

    /// The transport failed to deliver a message of this transaction (RFC 3261 §17.1.4).
    pub fn handle_transport_error(&mut self) {
        if self.state != State::Terminated {
            self.events.push_back(TxEvent::TransportError);
            self.terminate();
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in TIMERS {
            if self.deadlines[t as usize].is_some_and(|d| d <= now) {
                self.deadlines[t as usize] = None;
                self.fire(t, now);
            }
        }
    }

    fn fire(&mut self, t: Timer, now: Instant) {
        match t {
            Timer::A => {
                if let Some(b) = &self.last_sent {
                    self.transmits.push_back(b.clone());
                }
                self.interval *= 2;
                self.arm(Timer::A, now + self.interval);
            }
            Timer::E => {
                if let Some(b) = &self.last_sent {
                    self.transmits.push_back(b.clone());
                }
                self.interval = if self.state == State::Proceeding {
                    self.cfg.t2
                } else {
                    (self.interval * 2).min(self.cfg.t2)
                };
                self.arm(Timer::E, now + self.interval);
            }
            Timer::G => {
                if let Some(b) = &self.last_sent {
                    self.transmits.push_back(b.clone());
                }
                self.interval = (self.interval * 2).min(self.cfg.t2);
                self.arm(Timer::G, now + self.interval);
            }
            Timer::B | Timer::F | Timer::H => {
                self.events.push_back(TxEvent::Timeout);
                self.terminate();
            }
            Timer::D | Timer::K | Timer::I | Timer::J | Timer::L | Timer::M => self.terminate(),
            Timer::Trying => {
                if self.state == State::Proceeding && self.last_sent.is_none() {
                    if let Some(req) = &self.request {
                        let trying = trying_for(req).encode();
                        self.transmits.push_back(trying.clone());
                        self.last_sent = Some(trying);
                    }
                }
            }
        }
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }
}

/// How long a server INVITE transaction waits for the TU before sending 100 Trying.
pub const TRYING_DELAY: Duration = Duration::from_millis(200);

/// 100 Trying for `req`: Via, From, To (no tag), Call-ID and CSeq copied (§8.2.6.1).
fn trying_for(req: &Request) -> Response {
    let mut r = Response::new(100);
    for name in [
        HeaderName::VIA,
        HeaderName::FROM,
        HeaderName::TO,
        HeaderName::CALL_ID,
        HeaderName::CSEQ,
    ] {
        r.headers.copy_from(&req.headers, &name);
    }
    r.headers.copy_from(&req.headers, &HeaderName::TIMESTAMP);
    r
}

/// How a received request or response finds its transaction (RFC 3261 §17.1.3, §17.2.3),
/// as one compact string: one allocation and one short hash per lookup.
///
/// RFC 3261 peers: branch, sent-by and method (ACK counts as INVITE; CANCEL is its own).
/// RFC 2543 peers without the cookie: Request-URI, From tag, Call-ID, CSeq and the top Via.
/// Client keys (our own branches) omit sent-by: the branch is ours and unique.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey(String);

impl TxKey {
    fn method_class(m: &Method) -> &str {
        match m {
            Method::Ack => "INVITE",
            m => m.as_str(),
        }
    }

    /// The server transaction key of a received request; `as_method` overrides the method
    /// (a CANCEL looks up the INVITE it cancels).
    pub fn server(
        req: &Request,
        env: &crate::validate::Envelope,
        as_method: Option<&Method>,
    ) -> TxKey {
        use std::fmt::Write as _;
        let via: &Via = env.top_via();
        let method = Self::method_class(as_method.unwrap_or(&req.method));
        let mut k = String::with_capacity(96);
        if via.has_rfc3261_branch() {
            // Host names compare case-insensitively; branch and method do not.
            k.push_str("3\x00");
            k.push_str(via.branch().unwrap_or_default());
            k.push('\x00');
            let sent_by = k.len();
            match &via.host {
                crate::uri::Host::Name(n) => k.push_str(n),
                crate::uri::Host::Ip(ip) => crate::uri::push_ip(&mut k, *ip),
            }
            k.push(':');
            crate::text::push_decimal(&mut k, via.port.unwrap_or(5060).into());
            k[sent_by..].make_ascii_lowercase();
            k.push('\x00');
            k.push_str(method);
        } else {
            let mut v = via.clone();
            v.params.remove("received");
            v.params.remove("rport");
            let _ = write!(
                k,
                "2\x00{}\x00{}\x00{}\x00{}\x00{}\x00{method}",
                req.uri,
                env.from.tag().unwrap_or_default(),
                env.call_id,
                env.cseq.seq,
                v.to_string().to_ascii_lowercase()
            );
        }
        TxKey(k)
    }

    /// The client transaction key of a response: top Via branch and CSeq method.
    pub fn client(env: &crate::validate::Envelope) -> TxKey {
        Self::for_sent(env.top_via().branch().unwrap_or_default(), &env.cseq.method)
    }

    /// The key a client transaction sending `req` with `branch` is found under.
    pub fn for_sent(branch: &str, method: &Method) -> TxKey {
        TxKey(format!("c\x00{branch}\x00{}", Self::method_class(method)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_datagram, Limits};

    fn key(method: &str, via_host: &str, cseq_method: &str) -> TxKey {
        let m = format!(
            "{method} sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP {via_host}:5060;branch=z9hG4bKAbC\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: k\r\nCSeq: 1 {cseq_method}\r\nContent-Length: 0\r\n\r\n"
        );
        let crate::message::Message::Request(r) =
            parse_datagram(m.as_bytes(), &Limits::default()).unwrap()
        else {
            unreachable!()
        };
        let env = crate::validate::check_request(&r).unwrap();
        TxKey::server(&r, &env, None)
    }

    #[test]
    fn server_keys_follow_rfc3261_matching() {
        assert_eq!(
            key("INVITE", "Host.Example.COM", "INVITE"),
            key("INVITE", "host.example.com", "INVITE")
        );
        assert_eq!(
            key("ACK", "h", "ACK"),
            key("INVITE", "h", "INVITE"),
            "ACK finds its INVITE"
        );
        assert_ne!(key("CANCEL", "h", "CANCEL"), key("INVITE", "h", "INVITE"));
        assert_ne!(
            key("FOO", "h", "FOO"),
            key("foo", "h", "foo"),
            "methods are case-sensitive"
        );
    }
}
