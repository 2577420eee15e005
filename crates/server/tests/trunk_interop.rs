//! Trunks from `phonebridge.toml`: registration with SIPp as the trunk's registrar, inbound
//! authentication, and where dial-in calls may come from.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use support::*;

/// Registers with SIPp as the trunk's registrar over `transport` ("u1" UDP, "t1" TCP): the
/// challenge, the refresh with cached credentials, and the un-registration on SIGTERM.
fn register_with_trunk(name: &str, sipp_transport: &str, trunk_transport: &str) {
    let dir = scratch_dir(name);
    let (sipp, port) = carrier(
        &dir,
        &["-sf", &scenario_path("registrar.xml")],
        sipp_transport,
    );
    let config = write_config(&dir, format!(
            "[trunks.carrier]\naddress = \"127.0.0.1:{port}\"\ntransport = \"{trunk_transport}\"\nusername = \"acct\"\npassword = \"trunkpass\"\nregister = true\n"
        ));
    // Connections idle out after 1 s, unless they serve something: a registration does.
    let mut server = Server::start(&[
        "--config",
        config.to_str().unwrap(),
        "--sip-tcp-idle-timeout",
        "1",
    ]);
    // The registrar grants 2 s: the refresh comes after 1.8 s. Wait for it to be accepted.
    wait_for(
        "the refreshed registration",
        Duration::from_secs(10),
        || {
            server
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("registered"))
                .count()
                >= 2
        },
    );
    if trunk_transport == "tcp" {
        // The registrar reaches us down the flow we registered: it stays open while idle.
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(server.metric("phonebridge_sip_tcp_connections"), 1.0);
    }
    let status = server.terminate();
    assert!(status.success());
    assert_eq!(
        finish(sipp, &dir),
        (1, 0),
        "the registrar saw challenge, refresh and un-registration"
    );
}

#[test]
fn registers_with_the_trunk_refreshes_and_unregisters_on_shutdown() {
    register_with_trunk("trunk-register", "u1", "udp");
}

#[test]
fn registers_with_a_tcp_trunk() {
    register_with_trunk("trunk-register-tcp", "t1", "tcp");
}

#[test]
fn a_bad_trunk_table_stops_start_up_naming_the_key() {
    let dir = scratch_dir("trunk-bad");
    let config = write_config(
        &dir,
        "[trunks.carrier]\naddress = \"127.0.0.1:5999\"\nregister = true\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_phonebridge"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trunks.carrier.register"), "{err}");
}

#[test]
fn a_trunk_with_inbound_auth_must_answer_the_challenge() {
    let dir = scratch_dir("trunk-inbound-auth");
    // The trunk is "127.0.0.1": calls from loopback must carry its credentials.
    let config = write_config(&dir, "[trunks.pbx]\naddress = \"127.0.0.1:5999\"\nusername = \"pbx\"\npassword = \"right\"\ninbound-auth = true\n");
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let call = |password: &str| {
        place_call(
            &format!("sip:echo@{}", server.sip),
            "0.2",
            &["--username", "pbx", "--password", password],
        )
    };
    let good = call("right");
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );
    let bad = call("wrong");
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("Rejected(401)"), "{text}");
    assert_eq!(
        server.metric("phonebridge_sip_auth_challenges_total"),
        3.0,
        "one per call, and the wrong answer"
    );
}

/// Sends an INVITE for `user` from `local_ip` and returns the final status (after an ACK, and
/// a BYE for a 200, so the call ends).
fn invite_from(local_ip: &str, server: SocketAddr, user: &str) -> u16 {
    let sock = UdpSocket::bind(format!("{local_ip}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n",
        ip = me.ip(),
        port = me.port() + 2
    );
    let head = |method: &str, cseq: u32, to_tag: &str| {
        format!(
            "{method} sip:{user}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{method}{cseq}{port}\r\nFrom: <sip:caller@{me}>;tag=src{port}\r\nTo: <sip:{user}@{server}>{to_tag}\r\nCall-ID: sources-{port}@{ip}\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@{me}>\r\nMax-Forwards: 70\r\n",
            port = me.port(),
            ip = me.ip()
        )
    };
    let invite = format!(
        "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        head("INVITE", 1, ""),
        sdp.len()
    );
    sock.send_to(invite.as_bytes(), server).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("a response");
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let status: u16 = text[8..11].parse().unwrap();
        if status < 200 {
            continue;
        }
        let to_tag = text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("to:"))
            .and_then(|l| l.split_once(";tag="))
            .map(|(_, t)| format!(";tag={}", t.trim()))
            .unwrap_or_default();
        let ack = format!("{}Content-Length: 0\r\n\r\n", head("ACK", 1, &to_tag));
        let ack = ack.replace("branch=z9hG4bKACK1", "branch=z9hG4bKINVITE1");
        sock.send_to(ack.as_bytes(), server).unwrap();
        if status == 200 {
            let bye = format!("{}Content-Length: 0\r\n\r\n", head("BYE", 2, &to_tag));
            sock.send_to(bye.as_bytes(), server).unwrap();
        }
        return status;
    }
}

#[test]
fn dial_in_calls_come_only_from_the_listed_sources() {
    // A trunk whose INVITEs come from 127.0.0.2 (its signalling range), not its address.
    let dir = scratch_dir("trunk-sources");
    let config = write_config(
        &dir,
        "[trunks.carrier]\naddress = \"127.0.0.3:5999\"\nsources = [\"127.0.0.2/32\"]\n",
    );
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(invite_from("127.0.0.2", server.sip, "dialin"), 200);
    // From anywhere else the number does not exist, exactly as an unknown one.
    assert_eq!(invite_from("127.0.0.1", server.sip, "dialin"), 404);
    assert_eq!(invite_from("127.0.0.1", server.sip, "nobody"), 404);
    assert_eq!(invite_from("127.0.0.3", server.sip, "dialin"), 404);
    // The echo user is not a dial-in number: operators can check the path from anywhere.
    assert_eq!(invite_from("127.0.0.1", server.sip, "echo"), 200);

    // `dialin-sources` alone does the same.
    let server = Server::start(&["--dialin-sources", "127.0.0.4/32"]);
    assert_eq!(invite_from("127.0.0.4", server.sip, "dialin"), 200);
    assert_eq!(invite_from("127.0.0.1", server.sip, "dialin"), 404);
    // Without either, dial-in is open to any source.
    let server = Server::start(&[]);
    assert_eq!(invite_from("127.0.0.1", server.sip, "dialin"), 200);
}

#[test]
fn a_probed_trunk_is_up_while_it_answers_and_down_once_it_stops() {
    let dir = scratch_dir("trunk-ping");
    let (sipp, port) = carrier(&dir, &["-sf", &scenario_path("trunk_options.xml")], "u1");
    let config = write_config(
        &dir,
        format!("[trunks.carrier]\naddress = \"127.0.0.1:{port}\"\nping-interval = 1\n"),
    );
    // T1 of 50 ms: an unanswered probe gives up after 64·T1 = 3.2 s.
    let server = Server::start(&["--config", config.to_str().unwrap(), "--sip-t1-ms", "50"]);
    let up = r#"phonebridge_trunk_up{trunk="carrier"}"#;
    wait_for("the trunk to be up", Duration::from_secs(5), || {
        server.metrics().contains(&format!("{up} 1"))
    });
    assert!(server
        .metrics()
        .contains(r#"phonebridge_trunk_ping_rtt_seconds{trunk="carrier"} "#));
    // Three probes answered, a second apart; then the trunk is gone.
    assert_eq!(
        finish(sipp, &dir),
        (1, 0),
        "the trunk answered three probes"
    );
    wait_for("the trunk to be down", Duration::from_secs(10), || {
        server.metric(up) == 0.0
    });
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("trunk up") && log.contains("trunk down"),
        "{log}"
    );
}
