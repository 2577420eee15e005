//! SIP over TLS: the server's TLS listener with a certificate from a test CA, reached by
//! `phonebridge call --transport tls` and by baresip.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

/// A self-signed certificate for 127.0.0.1 and localhost; returns (cert, key) paths.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

fn tls_server(dir: &Path) -> (Server, PathBuf) {
    let (cert, key) = certificate(dir);
    let server = Server::start(&[
        "--sip-tls",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(server.sip_tls.is_some(), "TLS listener reported");
    (server, cert)
}

fn call_over_tls(server: &Server, ca: Option<&Path>) -> std::process::Output {
    let ca = ca.map(|p| p.to_str().unwrap().to_owned());
    let mut extra = vec!["--transport", "tls"];
    if let Some(ca) = &ca {
        extra.extend(["--tls-ca", ca.as_str()]);
    }
    place_call(
        &format!("sip:echo@{}", server.sip_tls.unwrap()),
        "1",
        &extra,
    )
}

#[test]
fn echo_answers_over_tls_for_a_client_that_trusts_the_certificate() {
    let dir = scratch_dir("tls-call");
    let (server, cert) = tls_server(&dir);
    let out = call_over_tls(&server, Some(&cert));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("via Tls") && text.contains("answered after"),
        "{text}"
    );
    // The counters are published just after the last answer goes out.
    wait_for(
        "the call to be counted as ended",
        Duration::from_secs(5),
        || server.metric("phonebridge_sip_calls_ended_total") == 1.0,
    );
}

#[test]
fn a_client_that_does_not_trust_the_certificate_never_reaches_sip() {
    let dir = scratch_dir("tls-untrusted");
    let (server, _cert) = tls_server(&dir);
    let out = call_over_tls(&server, None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("TransportError"), "{text}");
    assert_eq!(
        server.metric("phonebridge_sip_messages_received_total"),
        0.0
    );
}

#[test]
fn tls_without_a_key_stops_start_up_naming_the_key() {
    let dir = scratch_dir("tls-config");
    let (cert, _key) = certificate(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_phonebridge"))
        .args([
            "--config",
            "/dev/null",
            "--tls-cert",
            cert.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`tls-key`"));
}

#[test]
fn baresip_hears_its_tone_back_over_tls() {
    let dir = scratch_dir("tls-baresip");
    let (server, cert) = tls_server(&dir);
    let target = format!("sip:echo@{};transport=tls", server.sip_tls.unwrap());
    let (log, samples, rate) = baresip_echo_call(
        &dir,
        &target,
        ";transport=tls",
        &format!("sip_cafile {}\n", cert.display()),
    );
    assert!(log.contains("Call established"), "{log}");
    assert_echoed_tone(&samples, rate);
}

#[test]
fn sighup_takes_up_a_renewed_certificate_and_keeps_the_old_one_on_a_bad_file() {
    let dir = scratch_dir("tls-reload");
    let (server, cert) = tls_server(&dir);
    let key = dir.join("key.pem");
    let old_ca = dir.join("old.pem");
    std::fs::copy(&cert, &old_ca).unwrap();
    let answered = |ca: &Path| call_over_tls(&server, Some(ca)).status.success();
    let hangup = |count: usize, line: &str| {
        let _ = Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status();
        wait_for(line, Duration::from_secs(5), || {
            let log = server.log.lock().unwrap();
            log.iter().filter(|l| l.contains(line)).count() >= count
        });
    };
    assert!(answered(&old_ca));

    // The certificate is renewed on disk: taken up at the SIGHUP, not before.
    let renewed = dir.join("renewed");
    std::fs::create_dir_all(&renewed).unwrap();
    let (new_cert, new_key) = certificate(&renewed);
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    assert!(answered(&old_ca), "the old certificate until the SIGHUP");
    hangup(1, "TLS certificate reloaded");
    assert!(answered(&new_cert), "the renewed certificate after it");
    assert!(!answered(&old_ca));

    // A key file caught half-written: the certificate in use stays, and so does the server.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\ntruncated").unwrap();
    hangup(1, "TLS certificate not reloaded");
    assert!(answered(&new_cert));
}
