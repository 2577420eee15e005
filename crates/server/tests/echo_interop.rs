//! The echo user against real SIP peers (SIPp, baresip) and the binary's start-up and
//! shutdown behaviour, all on loopback.

mod support;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use support::*;

#[test]
fn goertzel_tells_tones_apart() {
    let dir = scratch_dir("goertzel");
    let p = dir.join("t.wav");
    write_tone_wav(&p, 8000, 700.0, 1.0, 0.5);
    let (rate, s) = read_wav(&p);
    assert_eq!(rate, 8000);
    assert!(tone_windows(&s, rate, 700.0).iter().all(|x| *x));
    assert!(tone_windows(&s, rate, 1000.0).iter().all(|x| !*x));
    assert!(tone_windows(&[0i16; 8000], rate, 700.0).iter().all(|x| !*x));
}

#[test]
fn sipp_uac_calls_echo_over_udp() {
    let server = Server::start(&[]);
    let dir = scratch_dir("uac-udp");
    let target = server.sip.to_string();
    let s = sipp_uac(
        &dir,
        "echo",
        &target,
        (200, 100),
        "127.0.0.1",
        &["-l", "50"],
    );
    assert_eq!((s.successful, s.failed), (200, 0), "{s:?}");
    assert!(s.status.success());
    // The gauges are published just after the last answer goes out.
    wait_for("every call to end", Duration::from_secs(5), || {
        server.metric("phonebridge_sip_active_calls") == 0.0
    });
    assert_eq!(server.metric("phonebridge_sip_calls_ended_total"), 200.0);
}

#[test]
fn calls_complete_when_a_tenth_of_the_callers_messages_are_lost() {
    // A shorter T1 than SIPp's (500 ms), so that a 2xx whose ACK and BYE were both lost
    // stops waiting (64·T1 = 16 s) sooner, but not before SIPp's last BYE retransmission
    // (11.5 s) could have arrived: the BYE must find the call, not a 481.
    let server = Server::start(&["--sip-t1-ms", "250"]);
    let dir = scratch_dir("uac-lossy");
    let target = server.sip.to_string();
    // SIPp drops 10 % of what it sends (INVITEs, ACKs, BYEs): its retransmissions, and ours
    // of the 2xx whose ACK was lost, have to carry every call through.
    let s = sipp_uac(
        &dir,
        "echo",
        &target,
        (100, 50),
        "127.0.0.1",
        &["-lost", "10"],
    );
    assert_eq!((s.successful, s.failed), (100, 0), "{s:?}");
    assert!(
        server.metric("phonebridge_sip_retransmissions_absorbed_total")
            + server.metric("phonebridge_sip_responses_retransmitted_total")
            > 0.0,
        "the loss was made up for by retransmissions"
    );
    // Nothing is left hanging on our side: every call ends, every transaction winds down.
    wait_for(
        "every call and transaction to end",
        Duration::from_secs(60),
        || {
            server.metric("phonebridge_sip_active_calls") == 0.0
                && server.metric("phonebridge_sip_active_transactions") == 0.0
        },
    );
    assert_eq!(server.metric("phonebridge_sip_calls_ended_total"), 100.0);
}

#[test]
fn offerless_invite_hold_resume_and_reoffer_are_answered_in_kind() {
    // The scenario checks each 200's SDP itself (see its header): an offer where one was
    // asked for, else an answer whose direction follows the offer's.
    let server = Server::start(&[]);
    let dir = scratch_dir("uac-hold");
    let s = one_scenario_call(&server, &dir, "uac_offerless_hold.xml");
    let errors = std::fs::read_to_string(dir.join("errors.log")).unwrap_or_default();
    assert_eq!((s.successful, s.failed), (1, 0), "{s:?}\n{errors}");
    wait_for("the call to end", Duration::from_secs(5), || {
        server.metric("phonebridge_sip_calls_ended_total") == 1.0
    });
}

#[test]
fn our_bye_follows_the_record_route_of_a_compact_invite() {
    // The scenario checks the BYE's Request-URI and Route headers (see its header).
    let server = Server::start(&["--media-timeout", "1"]);
    let dir = scratch_dir("uac-rr");
    let s = one_scenario_call(&server, &dir, "uac_compact_record_route.xml");
    let errors = std::fs::read_to_string(dir.join("errors.log")).unwrap_or_default();
    assert_eq!((s.successful, s.failed), (1, 0), "{s:?}\n{errors}");
}

/// Reads one SIP message from `s`: the header section and as much body as its
/// Content-Length says. `None` when the stream ends or stays silent for 10 s.
fn read_sip(s: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(head + &String::from_utf8(body).ok()?)
}

/// Whether the server closes `s` within `secs` seconds (sending nothing before).
fn closed_within(s: &mut std::net::TcpStream, secs: u64) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    matches!(s.read(&mut [0u8; 1]), Ok(0))
}

/// A caller over TCP: its connection to the server and the dialog it set up with the echo
/// user (listening, for its Contact, on `port`).
struct TcpCaller {
    conn: std::net::TcpStream,
    port: u16,
    /// The dialog's To (with our tag) and the remote target, from our 200.
    to: String,
    target: String,
}

const TCP_DIALOG: &str =
    "From: <sip:caller@127.0.0.1>;tag=tc1\r\nCall-ID: tcp-contact-1\r\nMax-Forwards: 70\r\n";

impl TcpCaller {
    /// Calls the echo user and acknowledges its answer.
    fn call(server: &Server, port: u16) -> TcpCaller {
        let mut conn = std::net::TcpStream::connect(server.sip).unwrap();
        let sip = server.sip;
        let sdp = "v=0\r\no=tcp 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
        let invite = format!(
            "INVITE sip:echo@{sip} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bKtc1\r\n\
             {TCP_DIALOG}To: <sip:echo@{sip}>\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:caller@127.0.0.1:{port};transport=tcp>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        std::io::Write::write_all(&mut conn, invite.as_bytes()).unwrap();
        let ok = loop {
            let m = read_sip(&mut conn).expect("an answer to the INVITE");
            if m.starts_with("SIP/2.0 200") {
                break m;
            }
            assert!(m.starts_with("SIP/2.0 1"), "{m}");
        };
        let mut caller = TcpCaller {
            conn,
            port,
            to: header(&ok, "To").to_owned(),
            target: header(&ok, "Contact")
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned(),
        };
        caller.send("ACK", 1, "tc2");
        caller
    }

    /// Sends `method` inside the dialog.
    fn send(&mut self, method: &str, cseq: u32, branch: &str) {
        let (target, port, to) = (&self.target, self.port, &self.to);
        let req = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK{branch}\r\n\
             {TCP_DIALOG}To: {to}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
        );
        std::io::Write::write_all(&mut self.conn, req.as_bytes()).unwrap();
    }
}

#[test]
fn our_bye_reaches_a_tcp_caller_at_its_contact_after_its_connection_closed() {
    use std::io::Write;
    // The caller listens on its Contact port and calls from another (as every TCP client
    // does); after the ACK it closes its connection (as a restart, or a load balancer's idle
    // timeout, would). The echo user's media timeout then ends the call: the BYE has to open
    // a connection to the Contact, since the port the call came from is gone.
    let server = Server::start(&["--media-timeout", "1"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(TcpCaller::call(&server, port));

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let bye = read_sip(&mut s);
            let _ = tx.send(bye.clone());
            if let Some(bye) = bye {
                let _ = s.write_all(ok_to(&bye).as_bytes());
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    });
    let bye = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("a connection to the caller's Contact")
        .expect("a request on it");
    assert!(
        bye.starts_with(&format!(
            "BYE sip:caller@127.0.0.1:{port};transport=tcp SIP/2.0"
        )),
        "{bye}"
    );
    assert_eq!(header(&bye, "Call-ID"), "tcp-contact-1");
    wait_for("the call to end", Duration::from_secs(5), || {
        server.metric("phonebridge_sip_active_calls") == 0.0
    });
    assert_eq!(server.metric("phonebridge_sip_calls_ended_total"), 1.0);
}

#[test]
fn an_idle_tcp_connection_closes_unless_a_call_runs_on_it() {
    // Idle timeout 1 s. A connection that carries nothing is closed; one whose call is up
    // stays open through several idle periods, and the caller's BYE still goes over it.
    let server = Server::start(&["--sip-tcp-idle-timeout", "1", "--media-timeout", "0"]);
    let mut idle = std::net::TcpStream::connect(server.sip).unwrap();
    assert!(closed_within(&mut idle, 5), "the idle connection is closed");

    let mut caller = TcpCaller::call(&server, 5999);
    std::thread::sleep(Duration::from_millis(3500));
    caller.send("BYE", 2, "tc3");
    let ok = read_sip(&mut caller.conn).expect("the connection is still open");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(header(&ok, "CSeq").ends_with("BYE"), "{ok}");
    // With the call over, the connection idles out too.
    assert!(closed_within(&mut caller.conn, 5));
    assert_eq!(server.metric("phonebridge_sip_calls_ended_total"), 1.0);
}

#[test]
fn sipp_uac_calls_echo_over_tcp() {
    let server = Server::start(&[]);
    let dir = scratch_dir("uac-tcp");
    let target = server.sip.to_string();
    let s = sipp_uac(&dir, "echo", &target, (50, 50), "127.0.0.1", &["-t", "t1"]);
    assert_eq!((s.successful, s.failed), (50, 0), "{s:?}");
}

#[test]
fn unknown_users_are_refused() {
    let server = Server::start(&[]);
    let dir = scratch_dir("uac-404");
    let target = server.sip.to_string();
    // SIPp's uac expects a 200; every call to a user that does not exist must fail.
    let s = sipp_uac(&dir, "nobody", &target, (5, 10), "127.0.0.1", &[]);
    assert_eq!((s.successful, s.failed), (0, 5), "{s:?}");
    let errors = std::fs::read_to_string(dir.join("errors.log")).unwrap_or_default();
    assert!(errors.contains("404"), "{errors}");
}

#[test]
fn baresip_hears_its_tone_back() {
    let server = Server::start(&[]);
    let dir = scratch_dir("baresip");
    let (log, samples, rate) = baresip_echo_call(&dir, &format!("sip:echo@{}", server.sip), "", "");
    assert!(log.contains("Call established"), "{log}");
    assert_echoed_tone(&samples, rate);
}

fn recv_until(sock: &UdpSocket, start: &str) -> String {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {start}: {e}"));
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.starts_with(start) {
            return m;
        }
    }
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

/// A 200 OK to the request `req`, no body.
fn ok_to(req: &str) -> String {
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
        ok.push_str(&format!("{h}: {}\r\n", header(req, h)));
    }
    ok.push_str("Content-Length: 0\r\n\r\n");
    ok
}

#[test]
fn sigterm_ends_calls_with_bye_then_exits() {
    let mut server = Server::start(&[]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let me = sock.local_addr().unwrap();
    let sdp = format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\n", me.port() + 2);
    let invite = format!(
        "INVITE sip:echo@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKterm1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:t@{me}>;tag=t1\r\nTo: <sip:echo@{sip}>\r\nCall-ID: term-1\r\nCSeq: 1 INVITE\r\nContact: <sip:t@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len(),
        sip = server.sip
    );
    sock.send_to(invite.as_bytes(), server.sip).unwrap();
    let ok = recv_until(&sock, "SIP/2.0 200");
    let to = header(&ok, "To").to_owned();
    let ack = format!(
        "ACK sip:phonebridge@{sip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKterm2;rport\r\nMax-Forwards: 70\r\nFrom: <sip:t@{me}>;tag=t1\r\nTo: {to}\r\nCall-ID: term-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        sip = server.sip
    );
    sock.send_to(ack.as_bytes(), server.sip).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.metric("phonebridge_sip_active_calls"), 1.0);
    // SIGHUP (sent by habit to reload) is not a way to stop: with no TLS to reload, the
    // server logs it and the call goes on.
    let _ = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status();
    wait_for("the SIGHUP to be logged", Duration::from_secs(5), || {
        let log = server.log.lock().unwrap();
        log.iter().any(|l| l.contains("SIGHUP: nothing to reload"))
    });
    assert_eq!(server.metric("phonebridge_sip_active_calls"), 1.0);
    let _ = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status();
    let bye = recv_until(&sock, "BYE ");
    assert_eq!(header(&bye, "Call-ID"), "term-1");
    sock.send_to(ok_to(&bye).as_bytes(), server.sip).unwrap();
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn bad_config_value_stops_start_up_naming_the_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_phonebridge"))
        .args(["--config", "/dev/null", "--rtp-ports", "9-3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`rtp-ports`") && err.contains("9-3"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_phonebridge"))
        .args(["--config", "/dev/null"])
        .env("PHONEBRIDGE_SIP", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`sip`"));
}

#[test]
fn tcp_connections_per_source_are_bounded() {
    use std::io::{Read, Write};
    let server = Server::start(&[]);
    let options = |i: usize| {
        format!(
            "OPTIONS sip:x@{0} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKc{i}\r\nMax-Forwards: 70\r\nFrom: <sip:t@127.0.0.1>;tag=t{i}\r\nTo: <sip:x@{0}>\r\nCall-ID: conn-{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            server.sip
        )
    };
    let mut open = Vec::new();
    let mut answered = 0;
    for i in 0..70 {
        let mut s = std::net::TcpStream::connect(server.sip).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(options(i).as_bytes());
        let mut buf = [0u8; 2048];
        match s.read(&mut buf) {
            Ok(n) if n > 0 && buf.starts_with(b"SIP/2.0 200") => answered += 1,
            _ => {}
        }
        open.push(s);
    }
    // 64 connections per source are served; the rest are closed unanswered.
    assert_eq!(answered, 64);
    drop(open);
    // Once they close, new connections are served again.
    wait_for(
        "connection slots to free up",
        Duration::from_secs(5),
        || {
            let Ok(mut s) = std::net::TcpStream::connect(server.sip) else {
                return false;
            };
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let _ = s.write_all(options(99).as_bytes());
            let mut buf = [0u8; 64];
            matches!(s.read(&mut buf), Ok(n) if n > 0 && buf.starts_with(b"SIP/2.0 200"))
        },
    );
}

#[test]
fn transactions_descriptors_threads_and_cpu_return_to_baseline_after_calls() {
    // Short timers so every transaction's absorb window ends within a few seconds.
    let server = Server::start(&[
        "--sip-t1-ms",
        "50",
        "--sip-t2-ms",
        "400",
        "--sip-t4-ms",
        "500",
    ]);
    // Each open descriptor and what it is (socket, eventfd, file...), for the failure message.
    let fds = || -> Vec<String> {
        let dir = format!("/proc/{}/fd", server.pid());
        let mut open: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| {
                let target = std::fs::read_link(e.path()).unwrap_or_default();
                format!(
                    "{} -> {}",
                    e.file_name().to_string_lossy(),
                    target.display()
                )
            })
            .collect();
        open.sort();
        open
    };
    let baseline = fds();
    let threads = server.threads();
    let dir = scratch_dir("baseline");
    let target = server.sip.to_string();
    let s = sipp_uac(&dir, "echo", &target, (200, 100), "127.0.0.1", &[]);
    assert_eq!((s.successful, s.failed), (200, 0), "{s:?}");
    wait_for("transactions to end", Duration::from_secs(10), || {
        server.metric("phonebridge_sip_active_transactions") == 0.0
    });
    assert_eq!(server.metric("phonebridge_sip_active_calls"), 0.0);
    assert_eq!(server.metric("phonebridge_echo_active_calls"), 0.0);
    // Exactly the baseline again, once the server has closed our last /metrics connection,
    // but for the port pairs of ended calls kept open for reuse (two sockets each). A leg's
    // task gives its pair back when it has wound down, which may be after the call is gone
    // from the gauges: the count is read with the descriptors, each time.
    let resting = || server.metric("phonebridge_rtp_port_pairs_resting") as usize;
    wait_for_or(
        "file descriptors back to the baseline",
        Duration::from_secs(10),
        || {
            let pairs = resting();
            let expected = baseline.len() + 2 * pairs;
            // The /metrics connection that read the count closes a moment later.
            let mut now_open = Vec::new();
            for _ in 0..10 {
                std::thread::sleep(Duration::from_millis(50));
                now_open = fds();
                if now_open.len() == expected {
                    return Ok(());
                }
            }
            let gone: Vec<_> = baseline.iter().filter(|d| !now_open.contains(d)).collect();
            let (sockets, other): (Vec<_>, Vec<_>) = now_open
                .iter()
                .filter(|d| !baseline.contains(d))
                .partition(|d| d.contains("socket:"));
            Err(format!(
                "{} open at the start, {} now, {pairs} pairs resting; gone {gone:?}; new: {} \
                 sockets and {other:?}",
                baseline.len(),
                now_open.len(),
                sockets.len()
            ))
        },
    );
    let pairs = resting();
    assert!((1..=200).contains(&pairs), "{pairs} pairs resting");
    assert_eq!(server.metric("phonebridge_media_legs"), 0.0);
    // No thread started for a call outlives it. (Counted: a new thread names itself a moment
    // after it starts, so the names read at start-up may still be the parent's.)
    let after = server.threads();
    assert_eq!(
        after.len(),
        threads.len(),
        "threads before {threads:?} and after the calls {after:?}"
    );
    // Nothing keeps running for an ended call: idle again, the server uses next to no CPU
    // (a leg still ticking, or a loop spinning, shows here). Measured idle: about 1 tick in
    // 12 s; the bound leaves room for a loaded test machine.
    let before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let used = server.cpu_ticks() - before;
    assert!(used <= 20, "{used} ticks of CPU in 2 s with no call");
}

#[test]
fn sipp_uac_calls_echo_over_ipv6() {
    let server = Server::start(&["--sip", "[::1]:0"]);
    assert!(server.sip.is_ipv6());
    let dir = scratch_dir("uac-v6");
    let target = server.sip.to_string();
    let s = sipp_uac(&dir, "echo", &target, (20, 20), "::1", &[]);
    assert_eq!((s.successful, s.failed), (20, 0), "{s:?}");
}
