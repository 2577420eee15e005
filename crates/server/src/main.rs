//! # phonebridge
//!
//! The `phonebridge` binary: configuration, logging, and the tokio drivers for every socket
//! and timer. Protocol logic lives in the sans-IO crates (`phonebridge-sip`, …); this crate
//! owns I/O, clocks and tasks, and nothing else.

mod calls;
mod config;
mod dial;
mod dns;
mod gateway;
mod http;
mod media;
mod outbox;
mod page;
mod ports;
mod redact;
mod rest;
mod rest_calls;
mod sessions;
mod sip_driver;
mod store;
mod tls;
mod trunks;
mod ws;

/// The allocator: SIP handling allocates many small, short-lived strings per message, where
/// mimalloc's per-thread free lists cost a fraction of the system allocator's. Built without
/// transparent huge pages (see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use phonebridge_sip::endpoint::GuardConfig;
use phonebridge_sip::transaction::TimerConfig;
use phonebridge_sip::{Endpoint, EndpointConfig};
use tokio::sync::{mpsc, watch};

use config::{Cli, Command, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a.or(cli.serve),
        Some(Command::Call(c)) => return call(*c),
        None => cli.serve,
    };
    let cfg = match Config::load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("phonebridge: {e:#}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cfg.log))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let Some(result) = block_on(true, serve(cfg)) else {
        return ExitCode::FAILURE;
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("phonebridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where dial-in calls may come from: `dialin-sources` and the `sources` of every trunk that
/// lists them; any address (`None`) when neither is set.
fn dialin_sources(
    own: Option<&[phonebridge_sip::endpoint::Cidr]>,
    trunks: &[trunks::Trunk],
) -> Option<Vec<phonebridge_sip::endpoint::Cidr>> {
    let from_trunks = trunks.iter().flat_map(|t| t.sources.iter().copied());
    match (own, trunks.iter().all(|t| t.sources.is_empty())) {
        (None, true) => None,
        (own, _) => Some(
            own.into_iter()
                .flatten()
                .copied()
                .chain(from_trunks)
                .collect(),
        ),
    }
}

/// Runs `f` to completion on a new runtime (multi-threaded for the server); `None` when the
/// runtime cannot start (the reason is printed).
fn block_on<F: std::future::Future>(multi_thread: bool, f: F) -> Option<F::Output> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    match builder.enable_all().build() {
        Ok(rt) => Some(rt.block_on(f)),
        Err(e) => {
            eprintln!("phonebridge: cannot start the runtime: {e}");
            None
        }
    }
}

/// `phonebridge call`: exit 0 when the call was answered, 1 when it failed, 2 for bad options.
fn call(args: config::CallArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("PHONEBRIDGE_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let Some(result) = block_on(false, place_call(args)) else {
        return ExitCode::FAILURE;
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("phonebridge call: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn place_call(args: config::CallArgs) -> anyhow::Result<bool> {
    use phonebridge_sip::{Peer, TransportKind, Uri};
    let uri =
        Uri::parse(&args.uri).map_err(|e| anyhow::anyhow!("invalid URI '{}': {e}", args.uri))?;
    let sip = uri
        .as_sip()
        .ok_or_else(|| anyhow::anyhow!("'{}' is not a sip: or sips: URI", args.uri))?;
    let hop = match &args.proxy {
        Some(p) => p.clone(),
        None => format!("{}:{}", sip.host, sip.port.unwrap_or(5060)),
    };
    let remote = tokio::net::lookup_host(hop.trim_start_matches('[').replace("]:", ":").as_str())
        .await
        .ok()
        .and_then(|mut a| a.next())
        .or_else(|| hop.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot resolve '{hop}'"))?;
    let rtp_ports = config::parse_port_range(&args.rtp_ports).ok_or_else(|| {
        anyhow::anyhow!(
            "invalid value for `rtp-ports`: expected LO-HI, got '{}'",
            args.rtp_ports
        )
    })?;
    let udp = std::net::UdpSocket::bind(args.bind)
        .with_context(|| format!("cannot bind {}", args.bind))?;
    let bound = udp.local_addr()?;
    let local_ip = args.public_ip.unwrap_or_else(|| {
        if bound.ip().is_unspecified() {
            sip_driver::route_local_ip(remote.ip())
        } else {
            bound.ip()
        }
    });
    let transport = match args.transport {
        config::CallTransport::Udp => TransportKind::Udp,
        config::CallTransport::Tcp => TransportKind::Tcp,
        config::CallTransport::Tls => TransportKind::Tls,
    };
    let peer = Peer {
        transport,
        remote,
        local: SocketAddr::new(local_ip, bound.port()),
        conn: None,
    };
    let from = args
        .from
        .clone()
        .unwrap_or_else(|| format!("sip:phonebridge@{}", phonebridge_sip::Host::from(local_ip)));
    let dial = phonebridge_sip::endpoint::Dial {
        uri: uri.clone(),
        from: format!("<{from}>"),
        to: format!("<{uri}>"),
        peer,
        body: None,
        credentials: args.username.clone().zip(args.password.clone()),
        headers: Vec::new(),
    };
    let ep = Endpoint::new(EndpointConfig {
        guard: GuardConfig {
            trusted: vec![phonebridge_sip::endpoint::Cidr::from(remote.ip())],
            ..GuardConfig::default()
        },
        seed: rand_seed(),
        ..EndpointConfig::default()
    });
    let hold = std::time::Duration::from_secs_f64(args.hold.max(0.0));
    let ring = std::time::Duration::from_secs_f64(args.ring_timeout.max(0.0));
    let caps = phonebridge_sdp::Capabilities {
        srtp: args.srtp,
        ..phonebridge_sdp::Capabilities::default()
    };
    let mut app = dial::Dialer::new(
        dial,
        hold,
        ring,
        ports::PortPool::new(rtp_ports),
        caps,
        rand_seed(),
    );
    if let Some(digits) = &args.digits {
        if digits.is_empty()
            || !digits
                .chars()
                .all(|c| matches!(c.to_ascii_uppercase(), '0'..='9' | '*' | '#' | 'A'..='D'))
        {
            anyhow::bail!("invalid value for `digits`: expected keys 0-9 * # A-D, got '{digits}'");
        }
        app = app.with_digits(digits.clone(), args.dtmf);
    }
    let (tx, rx) = mpsc::channel(1024);
    let next_conn = Arc::new(AtomicU64::new(1));
    let mut driver = sip_driver::Driver::new(
        ep,
        app,
        sip_driver::SipSocket::new(udp)?,
        bound,
        args.public_ip,
        tx.clone(),
        rx,
        next_conn,
        sip_driver::SharedMetrics::default(),
    );
    if transport == TransportKind::Tls {
        let name = match &sip.host {
            phonebridge_sip::Host::Name(n) => n.clone(),
            phonebridge_sip::Host::Ip(ip) => ip.to_string(),
        };
        driver = driver.with_tls_client(
            tls::client_config(args.tls_ca.as_deref())?,
            &[(remote, name)],
        );
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut signals = StopSignals::install()?;
    let run = sip_driver::spawn_thread(driver, stop_rx)?;
    tokio::select! {
        app = run => Ok(app?.outcome == Some(dial::Outcome::Answered)),
        _ = signals.recv() => {
            let _ = stop_tx.send(true);
            Ok(false)
        }
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let (udp, tcp) = bind_sip(cfg.sip).await?;
    let sip_addr = udp.local_addr()?;
    let mut tls_cert = None;
    let sip_tls = match &cfg.sip_tls {
        Some((addr, cert, key)) => {
            let cert = tls::ServerCert::load(cert, key)?;
            let server = tls::server_config(&cert);
            tls_cert = Some(cert);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind SIP TLS {addr}"))?;
            Some((listener, server))
        }
        None => None,
    };
    let sip_tls_addr = match &sip_tls {
        Some((l, _)) => Some(l.local_addr()?),
        None => None,
    };
    let http = tokio::net::TcpListener::bind(cfg.http)
        .await
        .with_context(|| format!("cannot bind HTTP {}", cfg.http))?;

    // Trunk addresses are resolved once at start; where trunks send from (their `sources`,
    // else their address) is trusted by the flood limits.
    let dns = dns::Resolver::new(cfg.dns_server);
    let mut trunks = Vec::new();
    for t in &cfg.trunks {
        trunks.push((t.clone(), t.resolve(&dns).await?));
    }
    let mut trusted = cfg.trusted_sources.clone();
    trusted.extend(trunks.iter().flat_map(|(t, a)| t.source_cidrs(*a)));
    let ep = Endpoint::new(EndpointConfig {
        timers: TimerConfig {
            t1: cfg.t1,
            t2: cfg.t2,
            t4: cfg.t4,
        },
        guard: GuardConfig {
            rate: cfg.sip_rate,
            burst: cfg.sip_burst,
            trusted,
            ignore_user_agents: cfg.ignore_user_agents.clone(),
        },
        max_calls: cfg.max_calls,
        seed: rand_seed(),
        // Trunks with inbound-auth must answer a digest challenge from where they send.
        inbound_auth: trunks
            .iter()
            .filter(|(t, _)| t.inbound_auth)
            .filter_map(|(t, addr)| {
                let (username, password) = t.credentials()?;
                Some(phonebridge_sip::endpoint::InboundAuth {
                    sources: t.source_cidrs(*addr),
                    realm: "phonebridge".into(),
                    username,
                    password,
                })
            })
            .collect(),
        ..EndpointConfig::default()
    });
    let media_stats = media::SharedLegStats::default();
    let prompts = match &cfg.prompts {
        Some(dir) => gateway::Prompts::from_dir(dir)?,
        None => gateway::Prompts::builtin()?,
    };
    let gateway = gateway::Gateway::new(
        gateway::GatewayConfig {
            bind_ip: sip_addr.ip(),
            sip_port: sip_addr.port(),
            sip_tls_port: sip_tls_addr.map(|a| a.port()),
            public_ip: cfg.public_ip,
            caps: phonebridge_sdp::Capabilities {
                srtp: cfg.srtp,
                ..phonebridge_sdp::Capabilities::default()
            },
            trunk_srtp: trunks
                .iter()
                .filter_map(|(t, addr)| Some((t.source_cidrs(*addr), t.srtp?)))
                .collect(),
            media_timeout: cfg.media_timeout,
            seed: rand_seed(),
            dialin_numbers: cfg.dialin_numbers.clone(),
            dialin_sources: dialin_sources(cfg.dialin_sources.as_deref(), &cfg.trunks),
            caller_id: cfg.caller_id,
            menu: phonebridge_bridge::MenuConfig::default(),
            prompts,
        },
        ports::PortPool::new(cfg.rtp_ports),
        media_stats.clone(),
    );
    let to_gateway = gateway.sender();
    let metrics = sip_driver::SharedMetrics::default();
    let (tx, rx) = mpsc::channel(8192);
    let next_conn = Arc::new(AtomicU64::new(1));
    let (stop_tx, stop_rx) = watch::channel(false);

    let http_addr = http.local_addr()?;
    // Sessions: the durable store, the rooms task, and the webhook outbox when a receiver is
    // configured.
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create `data-dir` {}", cfg.data_dir.display()))?;
    let store = Arc::new(store::Store::open(
        &cfg.data_dir.join("phonebridge.db"),
        rand_seed(),
    )?);
    let outbox = match &cfg.webhook {
        Some(url) => {
            let outbox = outbox::Outbox::open(&cfg.data_dir.join("phonebridge.db"))?;
            let endpoint: hyper::Uri = url
                .parse()
                .with_context(|| format!("invalid value for `webhook`: '{url}'"))?;
            tokio::spawn(outbox::run(
                outbox.clone(),
                outbox::Delivery {
                    endpoint,
                    secret: cfg.webhook_secret.clone(),
                },
                stop_rx.clone(),
            ));
            Some(outbox)
        }
        None => None,
    };
    let public_host = match (cfg.public_ip, http_addr.ip()) {
        (Some(ip), _) => phonebridge_sip::Host::from(ip).to_string(),
        (None, ip) if ip.is_unspecified() => "localhost".to_owned(),
        (None, ip) => phonebridge_sip::Host::from(ip).to_string(),
    };
    let public_url = format!("http://{public_host}:{}", http_addr.port());
    let rooms = phonebridge_rooms::Rooms::new(
        rand_seed(),
        &format!("ws://{public_host}:{}", http_addr.port()),
        cfg.unused_session_timeout.as_millis() as u64,
    );
    let webrtc = bind_webrtc(cfg.webrtc, cfg.public_ip).await?;
    let webrtc_addrs: Vec<String> = webrtc.iter().map(|w| w.advertised.to_string()).collect();
    let sfu_stats = sessions::SharedSfuStats::default();
    let notice_tx = to_gateway.clone();
    let notices: sessions::Notices = Box::new(move |n| {
        let _ = notice_tx.send(gateway::GatewayMsg::Hub(n));
    });
    let (rooms, rooms_task) = sessions::spawn(
        rooms,
        outbox.clone(),
        webrtc,
        sfu_stats.clone(),
        Some(notices),
        stop_rx.clone(),
    )?;
    // Calls a previous run left live end now, as `serverRestart`.
    for c in store.end_stale_calls(sessions::now_ms()) {
        let body = c.ended_webhook(sessions::now_ms()).to_string();
        if let Some(o) = &outbox {
            if let Err(e) = o.push(sessions::now_ms(), &body) {
                tracing::error!(error = %e, "webhook event not stored");
            }
        }
    }
    let gateway = gateway.with_links(gateway::Links {
        hub: rooms.clone(),
        store: store.clone(),
        outbox: outbox.clone(),
    });
    let driver_tx = tx.clone();
    let driver_conns = next_conn.clone();
    let driver_metrics = metrics.clone();
    let public_ip = cfg.public_ip;
    // Outbound TLS verifies against the system roots: trunks by their host names, other
    // peers by the names dial-out resolved (or their addresses).
    let trunk_names: Vec<(SocketAddr, String)> = trunks
        .iter()
        .filter(|(t, _)| t.transport == phonebridge_sip::TransportKind::Tls)
        .filter(|(t, _)| {
            t.host().parse::<std::net::IpAddr>().is_err() && !t.host().starts_with('[')
        })
        .map(|(t, addr)| (*addr, t.host().to_owned()))
        .collect();
    let tls_client = tls::client_config(None)?;
    let tls_names = sip_driver::TlsNames::default();
    let driver_tls_names = tls_names.clone();
    let mut tls_port = None;
    let conn_limits = sip_driver::ConnLimits {
        max: cfg.tcp_max_connections,
        idle: cfg.tcp_idle_timeout,
    };
    tokio::spawn(sip_driver::accept_loop(
        tcp,
        None,
        tx.clone(),
        next_conn.clone(),
        conn_limits,
    ));
    if let Some((listener, server)) = sip_tls {
        let bound = listener.local_addr()?;
        tls_port = Some(bound.port());
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        tokio::spawn(sip_driver::accept_loop(
            listener,
            Some(acceptor),
            tx.clone(),
            next_conn,
            conn_limits,
        ));
    }

    let app = http::app(http::AppState {
        sip: metrics,
        media: media_stats,
        outbox: outbox.clone(),
        sfu: sfu_stats,
    })
    .merge(rest::router(
        rest::RestState::new(
            rooms.clone(),
            &cfg.secret,
            outbox,
            &public_url,
            store,
            to_gateway,
        )
        .with_trunks(trunks.clone(), tls_names, dns),
    ))
    .merge(ws::router(rooms))
    .merge(page::router());
    page::ensure_installed();
    let mut http_stop = stop_rx.clone();
    let http_task = tokio::spawn(async move {
        let _ = axum::serve(
            http,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop.changed().await;
        })
        .await;
    });
    let registering: Vec<_> = trunks.iter().filter(|(t, _)| t.register).cloned().collect();
    let probed: Vec<_> = trunks
        .iter()
        .filter(|(t, _)| t.ping_interval > 0)
        .cloned()
        .collect();
    let build = move |udp| {
        let mut driver = sip_driver::Driver::new(
            ep,
            gateway,
            udp,
            sip_addr,
            public_ip,
            driver_tx,
            rx,
            driver_conns,
            driver_metrics,
        )
        .with_tls_client(tls_client, &trunk_names)
        .with_tls_names(driver_tls_names)
        .with_resolver(dns)
        .with_tcp_idle(conn_limits.idle);
        if let Some(port) = tls_port {
            driver = driver.with_tls_port(port);
        }
        for (t, addr) in &registering {
            driver.register_trunk(t, *addr);
        }
        for (t, addr) in &probed {
            driver.ping_trunk(t, *addr);
        }
        driver
    };
    let mut signals = StopSignals::install()?;
    reload_on_hangup(tls_cert)?;
    let driver_task = sip_driver::spawn_thread(build(sip_driver::SipSocket::new(udp)?), stop_rx)?;
    // Reported once every socket, thread and descriptor the server runs with is in place, so
    // what waits for this line (a supervisor, the tests) sees the server as it will stay.
    tracing::info!(
        sip = %sip_addr,
        http = %http_addr,
        sip_tls = %sip_tls_addr.map_or("off".to_owned(), |a| a.to_string()),
        rtp_ports = %format!("{}-{}", cfg.rtp_ports.0, cfg.rtp_ports.1),
        "phonebridge listening (SIP UDP+TCP, HTTP)"
    );
    tracing::info!(
        public_url = %public_url,
        webrtc = %webrtc_addrs.join(","),
        data_dir = %cfg.data_dir.display(),
        webhook = cfg.webhook.is_some(),
        signed = cfg.webhook_secret.is_some(),
        "sessions: REST at /openvidu/api"
    );
    signals.recv().await;
    tracing::info!("signal received");
    let _ = stop_tx.send(true);
    let _ = driver_task.await;
    let _ = http_task.await;
    let _ = rooms_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Binds the WebRTC port: on the given address, or, for an unspecified one, on loopback and
/// on the address of the default route (same port), so browsers on this machine and on the
/// network both reach it. Browsers are told `public-ip` instead of a non-loopback address.
async fn bind_webrtc(
    addr: SocketAddr,
    public_ip: Option<IpAddr>,
) -> anyhow::Result<Vec<sessions::WebRtcSocket>> {
    let ips: Vec<IpAddr> = if addr.ip().is_unspecified() {
        let loopback: IpAddr = if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        let probe: IpAddr = if addr.is_ipv4() {
            [192, 0, 2, 1].into()
        } else {
            "2001:db8::1".parse().expect("a valid IPv6 literal")
        };
        let routed = sip_driver::route_local_ip(probe);
        let mut v = vec![loopback];
        if !routed.is_loopback() && !routed.is_unspecified() {
            v.push(routed);
        }
        v
    } else {
        vec![addr.ip()]
    };
    let mut port = addr.port();
    let mut out = Vec::new();
    for ip in ips {
        let socket = tokio::net::UdpSocket::bind(SocketAddr::new(ip, port))
            .await
            .with_context(|| {
                format!("cannot bind the WebRTC port {}", SocketAddr::new(ip, port))
            })?;
        let local = socket.local_addr()?;
        port = local.port();
        let advertised = match public_ip {
            Some(p) if !ip.is_loopback() => SocketAddr::new(p, port),
            _ => local,
        };
        out.push(sessions::WebRtcSocket { socket, advertised });
    }
    Ok(out)
}

/// Binds SIP over UDP and TCP on one port. With port 0 the system picks the UDP port; if
/// that port is taken for TCP, another is tried.
async fn bind_sip(
    addr: SocketAddr,
) -> anyhow::Result<(std::net::UdpSocket, tokio::net::TcpListener)> {
    let attempts = if addr.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = std::net::UdpSocket::bind(addr)
            .with_context(|| format!("cannot bind SIP UDP {addr}"))?;
        let bound = udp.local_addr()?;
        match tokio::net::TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some((bound, e)),
        }
    }
    let (bound, e) = last.expect("at least one attempt");
    Err(anyhow::Error::new(e).context(format!("cannot bind SIP TCP {bound}")))
}

/// A seed for tags and branches that differs per process.
fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

/// SIGHUP reads the TLS certificate and key again (a certificate renewed on disk is taken up
/// without a restart); without TLS it only logs. Registered even then: the default action of
/// SIGHUP would end the server without a BYE to its calls.
fn reload_on_hangup(cert: Option<Arc<tls::ServerCert>>) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match cert.as_ref().map(|c| c.reload()) {
                    Some(Ok(())) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Some(Err(e)) => tracing::warn!(
                        error = format!("{e:#}"),
                        "SIGHUP: TLS certificate not reloaded; the one in use stays"
                    ),
                    None => tracing::info!("SIGHUP: nothing to reload (no TLS)"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = cert;
    Ok(())
}

/// SIGINT and SIGTERM, registered when made: the registration opens descriptors (the
/// runtime's signal pipe), so the server makes this before it reports itself up.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Resolves at the first SIGINT or SIGTERM.
    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
