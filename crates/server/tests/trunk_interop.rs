//! Trunks from `phonebridge.toml`: registration with SIPp as the trunk's registrar.

mod support;

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
    let config = dir.join("phonebridge.toml");
    std::fs::write(
        &config,
        format!(
            "[trunks.carrier]\naddress = \"127.0.0.1:{port}\"\ntransport = \"{trunk_transport}\"\nusername = \"acct\"\npassword = \"trunkpass\"\nregister = true\n"
        ),
    )
    .unwrap();
    let mut server = Server::start(&["--config", config.to_str().unwrap()]);
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
    let config = dir.join("phonebridge.toml");
    std::fs::write(
        &config,
        "[trunks.carrier]\naddress = \"127.0.0.1:5999\"\nregister = true\n",
    )
    .unwrap();
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
    let config = dir.join("phonebridge.toml");
    // The trunk is "127.0.0.1": calls from loopback must carry its credentials.
    std::fs::write(&config, "[trunks.pbx]\naddress = \"127.0.0.1:5999\"\nusername = \"pbx\"\npassword = \"right\"\ninbound-auth = true\n").unwrap();
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
