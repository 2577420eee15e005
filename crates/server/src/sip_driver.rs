//! The shell around the SIP [`Endpoint`]: one thread owns the endpoint and the app (the
//! gateway, or the dialer of `call`) in an event loop of its own; it reads the UDP socket
//! itself, takes what the connection tasks on the runtime hand it, sends what the endpoint
//! asks for and sleeps in `epoll_wait` until the next datagram, input or deadline.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use phonebridge_sip::endpoint::Stats;
use phonebridge_sip::{
    ConnId, Endpoint, Frame, Limits, Message, ParseError, Peer, StreamFramer, TransportKind,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// What runs on top of the endpoint: the echo user for `serve`, the dialer for `call`.
pub(crate) trait App {
    /// What the app's own tasks (media legs) send it.
    type Message: Send + 'static;
    /// The receiving end of the app's own channel, taken once when the driver starts.
    fn take_messages(&mut self) -> Option<mpsc::UnboundedReceiver<Self::Message>> {
        None
    }
    /// A message from one of the app's tasks.
    fn on_message(&mut self, _ep: &mut Endpoint, _now: Instant, _msg: Self::Message) {}
    /// Called once before the first input.
    fn start(&mut self, _ep: &mut Endpoint, _now: Instant) {}
    fn on_event(&mut self, ep: &mut Endpoint, now: Instant, ev: &phonebridge_sip::Event);
    /// The app's own next deadline.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _ep: &mut Endpoint, _now: Instant) {}
    /// True when the driver may stop (once the endpoint's transactions are done too).
    fn finished(&self) -> bool {
        false
    }
    /// The server is stopping: called before every call gets its BYE.
    fn stopping(&mut self, _ep: &mut Endpoint, _now: Instant) {}
    /// Calls the app is serving, for metrics.
    fn active(&self) -> usize;
}

/// Reads the clock: the shell is the only place that does.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// How long a stopping driver waits for its last requests (BYE, CANCEL) to be answered.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// When the app is done on its own, open connections stay this long so the peer can finish
/// its side of the last transaction before we close (peers count an early close as failure).
const CONNECTION_LINGER: Duration = Duration::from_secs(5);

/// What socket tasks tell the driver.
pub(crate) enum Input {
    Stream {
        conn: ConnId,
        parsed: Box<Result<Message, ParseError>>,
    },
    ConnOpened {
        conn: ConnId,
        transport: TransportKind,
        remote: SocketAddr,
        local: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    ConnClosed {
        conn: ConnId,
    },
    ConnectFailed {
        transport: TransportKind,
        remote: SocketAddr,
    },
    /// A connection has been quiet for the idle timeout: may it close? (Not while a call or
    /// a transaction runs on it: a caller behind NAT is reachable only through it.)
    Idle {
        conn: ConnId,
        in_use: tokio::sync::oneshot::Sender<bool>,
    },
}

/// A connection task's ties to the driver.
#[derive(Clone)]
pub(crate) struct Link {
    id: ConnId,
    tx: mpsc::Sender<Input>,
    /// How long the connection may sit with nothing to read before it asks to close.
    idle: Duration,
}

/// Bounds on the connections a listener accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// Open connections at most (64 per source address).
    pub(crate) max: usize,
    /// See [`Link::idle`].
    pub(crate) idle: Duration,
}

/// Figures the driver publishes for `/metrics`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SipMetrics {
    pub(crate) stats: Stats,
    /// Probed trunks by name: the last outcome.
    pub(crate) trunks: std::collections::BTreeMap<String, TrunkHealth>,
    pub(crate) active_calls: usize,
    pub(crate) active_transactions: usize,
    pub(crate) tcp_connections: usize,
    pub(crate) echo_calls: usize,
    pub(crate) panics: u64,
}

pub(crate) type SharedMetrics = Arc<Mutex<SipMetrics>>;

/// A probed trunk's last outcome (see `ping-interval`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct TrunkHealth {
    /// It answered the last OPTIONS.
    pub(crate) up: bool,
    /// That answer's round trip.
    pub(crate) rtt: Duration,
}

/// The server name to verify per remote address on outbound TLS (default: the address).
pub(crate) type TlsNames = Arc<Mutex<HashMap<SocketAddr, String>>>;

struct Conn {
    transport: TransportKind,
    remote: SocketAddr,
    local: SocketAddr,
    writer: mpsc::Sender<Vec<u8>>,
}

/// The SIP UDP socket. The driver registers it for reading only: a socket registered for
/// writing too is reported writable again each time a sent datagram leaves its buffer (on
/// loopback: when the peer reads it), which turns the event loop once more for nothing. Sends
/// go straight to the socket; a full send buffer drops the datagram as a congested network
/// would, and retransmission covers it.
pub(crate) struct SipSocket(mio::net::UdpSocket);

impl SipSocket {
    /// Takes `socket` over (made non-blocking).
    pub(crate) fn new(socket: std::net::UdpSocket) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(SipSocket(mio::net::UdpSocket::from_std(socket)))
    }

    fn send_to(&self, bytes: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.0.send_to(bytes, to)
    }
}

/// How many datagrams, inputs or app messages one turn of the loop takes from each source
/// before it serves the others.
const BATCH: usize = 256;

const UDP_TOKEN: mio::Token = mio::Token(0);
const WAKE_TOKEN: mio::Token = mio::Token(1);

/// The driver loop's `epoll` instance and the waker registered with it: made before the
/// driver's thread starts, so the server holds its descriptors once it is up, and a failure
/// stops the start-up rather than the thread.
struct LoopIo {
    poll: mio::Poll,
    waker: Arc<mio::Waker>,
}

impl LoopIo {
    fn new() -> std::io::Result<Self> {
        let poll = mio::Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        Ok(LoopIo { poll, waker })
    }
}

/// Wakes the driver's loop from a channel's sender, on any thread.
struct LoopWaker(Arc<mio::Waker>);

impl std::task::Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Err(e) = self.0.wake() {
            tracing::warn!(error = %e, "cannot wake the SIP driver");
        }
    }
}

pub(crate) struct Driver<A> {
    ep: Endpoint,
    app: A,
    udp: SipSocket,
    sip_addr: SocketAddr,
    public_ip: Option<IpAddr>,
    local_ips: HashMap<IpAddr, IpAddr>,
    conns: HashMap<ConnId, Conn>,
    by_remote: HashMap<SocketAddr, ConnId>,
    tx: mpsc::Sender<Input>,
    rx: mpsc::Receiver<Input>,
    next_conn: Arc<AtomicU64>,
    metrics: SharedMetrics,
    /// Outbound TLS: the client config, and the name to verify per remote address.
    tls_client: Option<Arc<rustls::ClientConfig>>,
    tls_names: TlsNames,
    /// The port we accept SIP over TLS on, if we do.
    tls_port: Option<u16>,
    buf: Vec<u8>,
    /// Panics contained by [`contain`] (each lost one input, not the server).
    panics: u64,
    /// Trunk names of our registrations, for logs.
    reg_names: HashMap<phonebridge_sip::endpoint::RegHandle, String>,
    /// Trunk names of our probes, and each one's last outcome.
    ping_names: HashMap<phonebridge_sip::endpoint::PingHandle, String>,
    trunk_health: std::collections::BTreeMap<String, TrunkHealth>,
    /// Locates the next hop of a request whose connection is gone (RFC 3263).
    dns: Option<crate::dns::Resolver>,
    /// The idle timeout of connections we open.
    tcp_idle: Duration,
}

impl<A: App> Driver<A> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ep: Endpoint,
        app: A,
        udp: SipSocket,
        sip_addr: SocketAddr,
        public_ip: Option<IpAddr>,
        tx: mpsc::Sender<Input>,
        rx: mpsc::Receiver<Input>,
        next_conn: Arc<AtomicU64>,
        metrics: SharedMetrics,
    ) -> Self {
        Driver {
            ep,
            app,
            udp,
            sip_addr,
            public_ip,
            local_ips: HashMap::new(),
            conns: HashMap::new(),
            by_remote: HashMap::new(),
            tx,
            rx,
            next_conn,
            metrics,
            tls_client: None,
            tls_names: TlsNames::default(),
            tls_port: None,
            buf: vec![0u8; 65536],
            reg_names: HashMap::new(),
            ping_names: HashMap::new(),
            trunk_health: std::collections::BTreeMap::new(),
            panics: 0,
            dns: None,
            tcp_idle: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// The idle timeout of connections we open (see [`Link::idle`]).
    pub(crate) fn with_tcp_idle(mut self, idle: Duration) -> Self {
        self.tcp_idle = idle;
        self
    }

    /// Locates host names with `dns` when a request must open a new connection.
    pub(crate) fn with_resolver(mut self, dns: crate::dns::Resolver) -> Self {
        self.dns = Some(dns);
        self
    }

    /// Keeps a registration with `trunk` (resolved to `remote`) from the start.
    pub(crate) fn register_trunk(&mut self, trunk: &crate::trunks::Trunk, remote: SocketAddr) {
        let peer = self.trunk_peer(trunk, remote);
        let reg = self.ep.register(
            now(),
            phonebridge_sip::endpoint::Registration {
                aor: trunk.from.clone(),
                registrar: trunk.registrar(),
                peer,
                credentials: trunk.credentials(),
                expires: trunk.register_expires,
            },
        );
        self.reg_names.insert(reg, trunk.name.clone());
    }

    /// Probes `trunk` (resolved to `remote`) with OPTIONS every `ping_interval` seconds.
    pub(crate) fn ping_trunk(&mut self, trunk: &crate::trunks::Trunk, remote: SocketAddr) {
        let peer = self.trunk_peer(trunk, remote);
        let ping = self.ep.keep_pinging(
            now(),
            phonebridge_sip::endpoint::Probe {
                target: trunk.registrar(),
                from: trunk.from.clone(),
                peer,
                interval: Duration::from_secs(u64::from(trunk.ping_interval)),
            },
        );
        self.ping_names.insert(ping, trunk.name.clone());
    }

    /// Our flow to `trunk` at `remote`.
    fn trunk_peer(&mut self, trunk: &crate::trunks::Trunk, remote: SocketAddr) -> Peer {
        let local_ip = self.local_ip_for(remote.ip());
        let port = match trunk.transport {
            TransportKind::Tls => self.tls_port.unwrap_or(self.sip_addr.port()),
            _ => self.sip_addr.port(),
        };
        Peer {
            transport: trunk.transport,
            remote,
            local: SocketAddr::new(local_ip, port),
            conn: None,
        }
    }

    /// A probe's outcome: logged when the trunk's state changes, published for `/metrics`.
    fn trunk_probed(&mut self, ping: phonebridge_sip::endpoint::PingHandle, health: TrunkHealth) {
        let Some(trunk) = self.ping_names.get(&ping) else {
            return;
        };
        let was = self.trunk_health.insert(trunk.clone(), health);
        match (was.map(|h| h.up), health.up) {
            (Some(true), true) => {}
            (_, true) => tracing::info!(
                trunk = %trunk,
                rtt_ms = health.rtt.as_millis() as u64,
                "trunk up: answers OPTIONS"
            ),
            (Some(false), false) => {}
            (_, false) => tracing::warn!(trunk = %trunk, "trunk down: no answer to OPTIONS"),
        }
    }

    /// Records the SIP-over-TLS port, named in Contact and Via on TLS flows.
    pub(crate) fn with_tls_port(mut self, port: u16) -> Self {
        self.tls_port = Some(port);
        self
    }

    /// Enables outbound TLS; `name` is the server name to verify for `remote` (default: its IP).
    pub(crate) fn with_tls_client(
        mut self,
        cfg: Arc<rustls::ClientConfig>,
        names: &[(SocketAddr, String)],
    ) -> Self {
        self.tls_client = Some(cfg);
        if let Ok(mut n) = self.tls_names.lock() {
            n.extend(names.iter().cloned());
        }
        self
    }

    /// Shares `names` as the server names to verify per remote address on outbound TLS, so
    /// others (dial-out) can add to them after the driver has moved to its thread.
    pub(crate) fn with_tls_names(mut self, names: TlsNames) -> Self {
        if let (Ok(mut to), Ok(from)) = (names.lock(), self.tls_names.lock()) {
            to.extend(from.iter().map(|(a, n)| (*a, n.clone())));
        }
        self.tls_names = names;
        self
    }

    /// Our address as `remote` should see it: the public IP if configured, else the bound
    /// address, else the local address the kernel routes towards `remote` from.
    fn local_ip_for(&mut self, remote: IpAddr) -> IpAddr {
        if let Some(ip) = configured_ip(self.public_ip, self.sip_addr.ip()) {
            return ip;
        }
        *self
            .local_ips
            .entry(remote)
            .or_insert_with(|| route_local_ip(remote))
    }

    fn udp_peer(&mut self, from: SocketAddr) -> Peer {
        let ip = self.local_ip_for(from.ip());
        Peer {
            transport: TransportKind::Udp,
            remote: from,
            local: SocketAddr::new(ip, self.sip_addr.port()),
            conn: None,
        }
    }

    /// Runs until `shutdown` flips (then ends every call and drains their BYEs, at most 3 s)
    /// or the app is finished; returns the app. Blocks: run it on a thread of its own with a
    /// runtime entered, where what the app and the driver spawn goes ([`spawn_thread`]).
    ///
    /// The loop waits in one `epoll_wait` with the endpoint's next deadline as its timeout:
    /// a deadline that moves costs nothing, where a runtime timer moved earlier wakes its
    /// driver once more. The socket is registered for reading only (see [`SipSocket`]); the
    /// channels other threads feed wake the loop through a [`mio::Waker`].
    fn run(mut self, io: LoopIo, mut shutdown: watch::Receiver<bool>) -> std::io::Result<A> {
        let LoopIo { mut poll, waker } = io;
        poll.registry()
            .register(&mut self.udp.0, UDP_TOKEN, mio::Interest::READABLE)?;
        let waker = std::task::Waker::from(Arc::new(LoopWaker(waker)));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut events = mio::Events::with_capacity(64);
        let mut stopping: Option<Instant> = None;
        let mut signalled = false;
        self.app.start(&mut self.ep, now());
        let mut messages = self.app.take_messages();
        let mut stop_signal = std::pin::pin!(shutdown.changed());
        // Readable until a read says otherwise: whatever arrived before registration is read.
        let mut readable = true;
        loop {
            if readable {
                readable = self.receive_datagrams();
            }
            // A channel whose batch filled has more waiting and will not wake the loop for it.
            let more = self.take_inputs(&mut cx) | self.take_messages(&mut messages, &mut cx);
            if stopping.is_none() && stop_signal.as_mut().poll(&mut cx).is_ready() {
                tracing::info!(
                    calls = self.ep.active_calls(),
                    "shutting down: ending calls"
                );
                self.app.stopping(&mut self.ep, now());
                self.ep.hangup_all(now());
                self.ep.unregister_all(now());
                stopping = Some(now());
                signalled = true;
            }
            let t = now();
            if self.ep.poll_timeout().is_some_and(|d| d <= t) {
                let ep = &mut self.ep;
                contain(&mut self.panics, "timers", || ep.handle_timeout(t));
            }
            if self.app.poll_timeout().is_some_and(|d| d <= t) {
                let (app, ep) = (&mut self.app, &mut self.ep);
                contain(&mut self.panics, "app timers", || app.handle_timeout(ep, t));
            }
            self.flush();
            if self.app.finished() && stopping.is_none() {
                stopping = Some(now());
            }
            // While stopping, wake up in time to honour the limit.
            let grace = if signalled {
                STOP_GRACE
            } else {
                CONNECTION_LINGER
            };
            if let Some(t) = stopping {
                let answered = self.ep.awaiting_answers() == 0;
                let linger = !signalled && !self.conns.is_empty();
                if (answered && !linger) || now() - t >= grace {
                    break;
                }
            }
            if readable || more {
                // A full batch was taken: serve the rest before sleeping.
                continue;
            }
            let deadline = [
                self.ep.poll_timeout(),
                self.app.poll_timeout(),
                stopping.map(|t| t + grace),
            ]
            .into_iter()
            .flatten()
            .min();
            // mio rounds the wait up to the millisecond epoll counts in: never early.
            let timeout = deadline.map(|d| d.saturating_duration_since(now()));
            match poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            readable = events.iter().any(|e| e.token() == UDP_TOKEN);
        }
        self.publish();
        Ok(self.app)
    }

    /// Handles what the socket tasks and the API queued for the driver (up to a batch). True
    /// when the batch filled (more may wait).
    fn take_inputs(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        (0..BATCH).all(|_| match self.rx.poll_recv(cx) {
            Poll::Ready(Some(input)) => {
                self.handle(input);
                true
            }
            Poll::Ready(None) | Poll::Pending => false,
        })
    }

    /// Hands the app what its own tasks sent (up to a batch); forgets the channel once it has
    /// closed. True when the batch filled (more may wait).
    fn take_messages(
        &mut self,
        messages: &mut Option<mpsc::UnboundedReceiver<A::Message>>,
        cx: &mut std::task::Context<'_>,
    ) -> bool {
        let Some(rx) = messages else {
            return false;
        };
        let mut closed = false;
        let full = (0..BATCH).all(|_| match rx.poll_recv(cx) {
            Poll::Ready(Some(msg)) => {
                let (app, ep) = (&mut self.app, &mut self.ep);
                contain(&mut self.panics, "app message", || {
                    app.on_message(ep, now(), msg)
                });
                true
            }
            Poll::Ready(None) => {
                closed = true;
                false
            }
            Poll::Pending => false,
        });
        if closed {
            *messages = None;
        }
        full
    }

    /// Reads the datagrams the socket holds (up to a batch), straight into the endpoint: no
    /// hand-off between tasks on the hot path. True when the batch filled (more may wait).
    fn receive_datagrams(&mut self) -> bool {
        for _ in 0..BATCH {
            match self.udp.0.recv_from(&mut self.buf) {
                Ok((n, from)) => {
                    let peer = self.udp_peer(from);
                    let (ep, buf) = (&mut self.ep, &self.buf[..n]);
                    contain(&mut self.panics, "datagram", || {
                        ep.handle_datagram(now(), peer, buf)
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                // ICMP errors surface here on some systems; keep serving.
                Err(e) => tracing::trace!(error = %e, "udp recv"),
            }
        }
        true
    }

    fn handle(&mut self, input: Input) {
        let now = now();
        match input {
            Input::Stream { conn, parsed } => {
                let Some(c) = self.conns.get(&conn) else {
                    return;
                };
                let local_ip = self.public_ip.unwrap_or(c.local.ip());
                // Contact and Via name the port we listen on for this transport.
                let port = match c.transport {
                    TransportKind::Tls => self.tls_port.unwrap_or(c.local.port()),
                    _ => self.sip_addr.port(),
                };
                let peer = Peer {
                    transport: c.transport,
                    remote: c.remote,
                    local: SocketAddr::new(local_ip, port),
                    conn: Some(conn),
                };
                let ep = &mut self.ep;
                contain(&mut self.panics, "stream message", || {
                    ep.handle_stream_message(now, peer, *parsed)
                });
            }
            Input::ConnOpened {
                conn,
                transport,
                remote,
                local,
                writer,
            } => {
                self.by_remote.insert(remote, conn);
                self.conns.insert(
                    conn,
                    Conn {
                        transport,
                        remote,
                        local,
                        writer,
                    },
                );
            }
            Input::ConnClosed { conn } => {
                if let Some(c) = self.conns.remove(&conn) {
                    if self.by_remote.get(&c.remote) == Some(&conn) {
                        self.by_remote.remove(&c.remote);
                    }
                }
            }
            Input::ConnectFailed { transport, remote } => {
                let peer = Peer {
                    transport,
                    remote,
                    local: self.sip_addr,
                    conn: None,
                };
                self.ep.handle_transport_error(now, &peer);
            }
            Input::Idle { conn, in_use } => {
                let busy = self
                    .conns
                    .get(&conn)
                    .is_some_and(|c| self.ep.connection_in_use(conn, c.remote));
                let _ = in_use.send(busy);
            }
        }
    }

    /// Sends what the endpoint queued and gives its events to the application.
    fn flush(&mut self) {
        loop {
            let mut progressed = false;
            while let Some((peer, bytes)) = self.ep.poll_transmit() {
                progressed = true;
                self.send(peer, bytes);
            }
            while let Some(ev) = self.ep.poll_event() {
                progressed = true;
                match &ev {
                    phonebridge_sip::Event::Registered { reg, expires } => {
                        let trunk = self.reg_names.get(reg).map_or("?", String::as_str);
                        tracing::info!(trunk, expires, "registered");
                    }
                    phonebridge_sip::Event::RegistrationFailed {
                        reg,
                        status,
                        retry_in,
                    } => {
                        let trunk = self.reg_names.get(reg).map_or("?", String::as_str);
                        tracing::warn!(
                            trunk,
                            ?status,
                            retry_in_s = retry_in.as_secs(),
                            "registration failed"
                        );
                    }
                    phonebridge_sip::Event::PingAnswered { ping, rtt, .. } => {
                        let health = TrunkHealth {
                            up: true,
                            rtt: *rtt,
                        };
                        self.trunk_probed(*ping, health);
                    }
                    phonebridge_sip::Event::PingUnanswered { ping } => {
                        self.trunk_probed(*ping, TrunkHealth::default());
                    }
                    _ => {
                        let (app, ep) = (&mut self.app, &mut self.ep);
                        contain(&mut self.panics, "app event", || {
                            app.on_event(ep, now(), &ev)
                        });
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        self.publish();
    }

    fn send(&mut self, peer: Peer, bytes: Vec<u8>) {
        match peer.transport {
            TransportKind::Udp => {
                if let Err(e) = self.udp.send_to(&bytes, peer.remote) {
                    tracing::debug!(error = %e, "udp send failed");
                }
            }
            TransportKind::Tcp | TransportKind::Tls => {
                let live = |c: &ConnId| self.conns.contains_key(c);
                let to = |a: &SocketAddr| self.by_remote.get(a).copied().filter(live);
                let flow = peer.conn.filter(live).or_else(|| to(&peer.remote));
                // Where the flow had a connection and it is gone (closed by the peer, or by a
                // load balancer idle for minutes), a request goes where its own headers say
                // (RFC 3261 §8.1.2: the first Route, else the Request-URI): a peer that opened
                // the flow did so from a port it need not listen on. A response, a request
                // whose next hop cannot be reached, and a first request to an address the
                // endpoint chose (a trunk, an outbound proxy) go to the flow's address (RFC
                // 3261 §18.2.2).
                let hop = match flow {
                    Some(_) => None,
                    None => peer.conn.and_then(|_| next_hop(&bytes)),
                };
                let conn = flow.or_else(|| {
                    let addr = hop.as_ref()?.address(peer.transport)?;
                    to(&addr)
                });
                if let Some(c) = conn.and_then(|c| self.conns.get(&c)) {
                    if c.writer.try_send(bytes).is_err() {
                        tracing::debug!("tcp connection backlogged or closed; dropping message");
                    }
                    return;
                }
                let tx = self.tx.clone();
                let id = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
                let tls = match peer.transport {
                    TransportKind::Tls => match &self.tls_client {
                        Some(cfg) => {
                            let configured = self
                                .tls_names
                                .lock()
                                .ok()
                                .and_then(|n| n.get(&peer.remote).cloned());
                            let name = configured
                                .or_else(|| hop.as_ref().and_then(NextHop::name).map(str::to_owned))
                                .unwrap_or_else(|| peer.remote.ip().to_string());
                            Some((tokio_rustls::TlsConnector::from(cfg.clone()), name))
                        }
                        None => {
                            tracing::warn!(remote = %crate::redact::Addr(peer.remote), "no TLS client configuration; cannot send over TLS");
                            self.ep.handle_transport_error(now(), &peer);
                            return;
                        }
                    },
                    _ => None,
                };
                let dns = self.dns;
                let link = Link {
                    id,
                    tx: tx.clone(),
                    idle: self.tcp_idle,
                };
                tokio::spawn(async move {
                    let mut bytes = bytes;
                    let located = match (&hop, dns) {
                        (Some(h), Some(dns)) => dns.locate(&h.host, h.port, peer.transport).await,
                        (Some(h), None) => h.address(peer.transport),
                        (None, _) => None,
                    };
                    let mut targets = vec![];
                    targets.extend(located.filter(|a| *a != peer.remote));
                    targets.push(peer.remote);
                    for (i, target) in targets.iter().enumerate() {
                        let last = i + 1 == targets.len();
                        let first = if last {
                            std::mem::take(&mut bytes)
                        } else {
                            bytes.clone()
                        };
                        if connect(*target, tls.clone(), link.clone(), first).await {
                            return;
                        }
                        tracing::debug!(target = %crate::redact::Addr(*target), "connection failed");
                    }
                    let _ = tx
                        .send(Input::ConnectFailed {
                            transport: peer.transport,
                            remote: peer.remote,
                        })
                        .await;
                });
            }
        }
    }

    fn publish(&self) {
        if let Ok(mut m) = self.metrics.lock() {
            m.stats = self.ep.stats();
            if m.trunks != self.trunk_health {
                m.trunks = self.trunk_health.clone();
            }
            m.active_calls = self.ep.active_calls();
            m.active_transactions = self.ep.active_transactions();
            m.tcp_connections = self.conns.len();
            m.echo_calls = self.app.active();
            m.panics = self.panics;
        }
    }
}

/// Runs `driver` on a thread of its own, and resolves when it has stopped. A datagram wakes
/// that one thread, which keeps the endpoint's tables in its core's caches (on the shared
/// runtime the driver moved between workers, and each wake could cross threads). What the
/// driver and the app spawn (connections, media) runs on the runtime this is called from.
pub(crate) fn spawn_thread<A>(
    driver: Driver<A>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<A>>
where
    A: App + Send + 'static,
{
    let (done, wait) = tokio::sync::oneshot::channel();
    let runtime = tokio::runtime::Handle::current();
    let io = LoopIo::new()?;
    std::thread::Builder::new()
        .name("phonebridge-sip".into())
        .spawn(move || {
            let _entered = runtime.enter();
            match driver.run(io, shutdown) {
                Ok(app) => {
                    let _ = done.send(app);
                }
                Err(e) => tracing::error!(error = %e, "SIP driver stopped: its event loop failed"),
            }
        })?;
    Ok(wait)
}

/// Runs `f`; a panic inside is logged and counted instead of ending the server. The input
/// that triggered it is lost, and the call it belonged to may misbehave, but every other call
/// and the listener keep going.
fn contain(panics: &mut u64, what: &'static str, f: impl FnOnce()) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        *panics += 1;
        tracing::error!(what, "bug: a panic was contained; the server keeps running");
    }
}

/// Our address as peers should see it when configuration fixes it: the public IP, else the
/// bound address unless it is the wildcard (then it depends on the peer: [`route_local_ip`]).
pub(crate) fn configured_ip(public: Option<IpAddr>, bound: IpAddr) -> Option<IpAddr> {
    public.or((!bound.is_unspecified()).then_some(bound))
}

/// The local address the kernel would send from towards `remote` (no packet is sent).
pub(crate) fn route_local_ip(remote: IpAddr) -> IpAddr {
    let any = if remote.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    std::net::UdpSocket::bind(any)
        .and_then(|s| {
            s.connect(SocketAddr::new(remote, 9))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(remote)
}

/// Where a request says it goes next: the host and port of its first Route, else of its
/// Request-URI.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NextHop {
    host: String,
    port: Option<u16>,
}

impl NextHop {
    /// The address to connect to over `transport`, when the hop names an IP address.
    fn address(&self, transport: TransportKind) -> Option<SocketAddr> {
        crate::dns::literal_address(&self.host, self.port, transport)
    }

    /// The host name, when it is not an address (the name a TLS certificate shows).
    fn name(&self) -> Option<&str> {
        crate::dns::ip_literal(&self.host)
            .is_none()
            .then_some(self.host.as_str())
    }
}

/// The next hop of `bytes`; `None` for a response or a non-SIP URI.
fn next_hop(bytes: &[u8]) -> Option<NextHop> {
    if bytes.starts_with(b"SIP/") {
        return None;
    }
    let Ok(Message::Request(req)) = phonebridge_sip::parse_datagram(bytes, &Limits::default())
    else {
        return None;
    };
    let route = req
        .headers
        .get(&phonebridge_sip::HeaderName::ROUTE)
        .and_then(|v| phonebridge_sip::NameAddr::parse_list(v).ok())
        .and_then(|list| list.into_iter().next());
    let uri = match route {
        Some(r) => r.uri,
        None => req.uri,
    };
    match uri {
        phonebridge_sip::Uri::Sip(u) => Some(NextHop {
            host: match u.host {
                phonebridge_sip::Host::Name(n) => n,
                phonebridge_sip::Host::Ip(ip) => ip.to_string(),
            },
            port: u.port,
        }),
        phonebridge_sip::Uri::Other { .. } => None,
    }
}

/// Opens a connection (TCP, or TLS when `tls` names the server) and serves it, sending
/// `first` once it is up; false when the connection or handshake failed.
async fn connect(
    remote: SocketAddr,
    tls: Option<(tokio_rustls::TlsConnector, String)>,
    link: Link,
    first: Vec<u8>,
) -> bool {
    let Ok(Ok(stream)) =
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(remote)).await
    else {
        return false;
    };
    let (Ok(remote), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    match tls {
        None => run_conn(stream, TransportKind::Tcp, remote, local, link, Some(first)).await,
        Some((connector, name)) => {
            let Ok(server_name) = rustls::pki_types::ServerName::try_from(name.clone()) else {
                tracing::warn!(%name, "not a valid TLS server name");
                return false;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, stream))
                .await
            {
                Ok(Ok(s)) => {
                    run_conn(s, TransportKind::Tls, remote, local, link, Some(first)).await
                }
                Ok(Err(e)) => {
                    tracing::warn!(remote = %crate::redact::Addr(remote), error = %e, "TLS handshake failed");
                    return false;
                }
                Err(_) => return false,
            }
        }
    }
    true
}

/// Accepts SIP connections (TCP, or TLS with `tls`), within a total and a per-source bound.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    tx: mpsc::Sender<Input>,
    next_conn: Arc<AtomicU64>,
    limits: ConnLimits,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    const PER_SOURCE: usize = 64;
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        {
            let mut m = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(remote.ip()).or_default();
            if open.load(Ordering::Relaxed) >= limits.max || *n >= PER_SOURCE {
                tracing::debug!(%remote, "refusing SIP connection: limit reached");
                continue;
            }
            *n += 1;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let link = Link {
            id: ConnId(next_conn.fetch_add(1, Ordering::Relaxed)),
            tx: tx.clone(),
            idle: limits.idle,
        };
        let (open, per_ip, tls) = (open.clone(), per_ip.clone(), tls.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Ok(local) = stream.local_addr() {
                match tls {
                    None => run_conn(stream, TransportKind::Tcp, remote, local, link, None).await,
                    // The handshake is bounded too: a silent client holds no slot for long.
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        {
                            Ok(Ok(s)) => {
                                run_conn(s, TransportKind::Tls, remote, local, link, None).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                        }
                    }
                }
            }
            open.fetch_sub(1, Ordering::Relaxed);
            let mut m = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = m.get_mut(&remote.ip()) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&remote.ip());
                }
            }
        });
    }
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may sit with an incomplete message, and (by default) with nothing
/// at all.
const PARTIAL_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Serves one connection: frames messages to the driver, writes what the driver sends.
async fn run_conn<S>(
    stream: S,
    transport: TransportKind,
    remote: SocketAddr,
    local: SocketAddr,
    link: Link,
    first: Option<Vec<u8>>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Link { id, tx, idle } = link;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (wtx, mut wrx) = mpsc::channel::<Vec<u8>>(256);
    let opened = Input::ConnOpened {
        conn: id,
        transport,
        remote,
        local,
        writer: wtx.clone(),
    };
    if tx.send(opened).await.is_err() {
        return;
    }
    if let Some(b) = first {
        let _ = wtx.send(b).await;
    }
    let writer = tokio::spawn(async move {
        while let Some(b) = wrx.recv().await {
            if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
    });
    let mut framer = StreamFramer::new(Limits::default());
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let partial = framer.buffered() > 0;
        let wait = if partial {
            PARTIAL_MESSAGE_TIMEOUT
        } else {
            idle
        };
        let n = match tokio::time::timeout(wait, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Err(_) if partial => break,
            Err(_) => {
                // Quiet for the idle timeout: close, unless a call still runs on it.
                let (in_use, answer) = tokio::sync::oneshot::channel();
                let asked = tx.send(Input::Idle { conn: id, in_use }).await.is_ok();
                if asked && answer.await.unwrap_or(false) {
                    continue;
                }
                break;
            }
            Ok(Ok(n)) => n,
        };
        framer.push(&buf[..n]);
        let mut fatal = false;
        loop {
            match framer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Ping)) => {
                    let _ = wtx.try_send(b"\r\n".to_vec());
                }
                Ok(Some(Frame::Message(m))) => {
                    if tx
                        .send(Input::Stream {
                            conn: id,
                            parsed: m,
                        })
                        .await
                        .is_err()
                    {
                        fatal = true;
                        break;
                    }
                }
                Err(e) => {
                    // Answer if we can, then close: the stream cannot be resynchronised.
                    let _ = tx
                        .send(Input::Stream {
                            conn: id,
                            parsed: Box::new(Err(e.0)),
                        })
                        .await;
                    fatal = true;
                    break;
                }
            }
        }
        if fatal {
            tokio::time::sleep(Duration::from_millis(100)).await;
            break;
        }
    }
    let _ = tx.send(Input::ConnClosed { conn: id }).await;
    drop(wtx);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_goes_next_to_its_first_route_else_its_request_uri() {
        let request = |uri: &str, routes: &str| {
            format!(
                "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKx\r\n{routes}\
                 From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\n\
                 CSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes()
        };
        let addr = |b: &[u8], t| next_hop(b).and_then(|h| h.address(t));
        let direct = request("sip:alice@192.0.2.7:5072;transport=tcp", "");
        assert_eq!(
            addr(&direct, TransportKind::Tcp),
            Some("192.0.2.7:5072".parse().unwrap())
        );
        let routed = request(
            "sip:alice@192.0.2.7:5072",
            "Route: <sip:[2001:db8::5];lr>, <sip:edge.example;lr>\r\nRoute: <sip:x.example;lr>\r\n",
        );
        assert_eq!(
            addr(&routed, TransportKind::Tls),
            Some("[2001:db8::5]:5061".parse().unwrap())
        );
        let named = request(
            "sip:alice@192.0.2.7",
            "Route: <sip:edge.example:5070;lr>\r\n",
        );
        let hop = next_hop(&named).unwrap();
        assert_eq!((hop.name(), hop.port), (Some("edge.example"), Some(5070)));
        assert!(next_hop(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n").is_none());
        assert!(next_hop(&request("tel:+15550100", "")).is_none());
    }

    #[test]
    fn a_panic_is_contained_and_counted() {
        let mut panics = 0;
        let mut ran_after = false;
        contain(&mut panics, "test", || panic!("boom"));
        contain(&mut panics, "test", || ran_after = true);
        assert_eq!(panics, 1);
        assert!(ran_after);
    }

    /// Counts its messages and is finished at `want`, or at its deadline (a driver that
    /// stopped short of `want` is then told apart by the count).
    struct Counter {
        rx: Option<mpsc::UnboundedReceiver<u32>>,
        seen: u32,
        want: u32,
        give_up: Instant,
    }

    impl App for Counter {
        type Message = u32;
        fn take_messages(&mut self) -> Option<mpsc::UnboundedReceiver<u32>> {
            self.rx.take()
        }
        fn on_message(&mut self, _ep: &mut Endpoint, _now: Instant, _msg: u32) {
            self.seen += 1;
        }
        fn on_event(&mut self, _ep: &mut Endpoint, _now: Instant, _ev: &phonebridge_sip::Event) {}
        fn poll_timeout(&self) -> Option<Instant> {
            Some(self.give_up)
        }
        fn finished(&self) -> bool {
            self.seen >= self.want || now() >= self.give_up
        }
        fn active(&self) -> usize {
            0
        }
    }

    #[tokio::test]
    async fn messages_beyond_one_batch_are_served_without_another_wake_up() {
        // Queued before the loop starts, so nothing wakes it after the first batch of 256.
        let (msg_tx, msg_rx) = mpsc::unbounded_channel();
        for i in 0..1000 {
            msg_tx.send(i).unwrap();
        }
        let app = Counter {
            rx: Some(msg_rx),
            seen: 0,
            want: 1000,
            give_up: now() + Duration::from_secs(3),
        };
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let (tx, rx) = mpsc::channel(16);
        let driver = Driver::new(
            Endpoint::new(phonebridge_sip::endpoint::EndpointConfig::default()),
            app,
            SipSocket::new(socket).unwrap(),
            addr,
            None,
            tx,
            rx,
            Arc::new(AtomicU64::new(1)),
            SharedMetrics::default(),
        );
        let (_stop_tx, stop_rx) = watch::channel(false);
        let started = now();
        let app = spawn_thread(driver, stop_rx).unwrap().await.unwrap();
        assert_eq!(app.seen, 1000);
        assert!(
            now() - started < Duration::from_secs(2),
            "served only at the deadline"
        );
        drop(msg_tx);
    }
}
