//! Trunks from `phonebridge.toml`: registration with SIPp as the trunk's registrar.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn registers_with_the_trunk_refreshes_and_unregisters_on_shutdown() {
    let dir = scratch_dir("trunk-register");
    let (sipp, port) = carrier(&dir, &["-sf", &scenario_path("registrar.xml")], "u1");
    let config = dir.join("phonebridge.toml");
    std::fs::write(
        &config,
        format!(
            "[trunks.carrier]\naddress = \"127.0.0.1:{port}\"\nusername = \"acct\"\npassword = \"trunkpass\"\nregister = true\n"
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
