//! Calls placed by `phonebridge call` to SIPp acting as the far end (a carrier): plain
//! answer over UDP and TCP, a 401 digest challenge, and 183 early media before the 200.

mod support;

use std::process::Output;

use support::*;

fn place(port: u16, hold: &str, extra: &[&str]) -> Output {
    place_call(&format!("sip:+15550100@127.0.0.1:{port}"), hold, extra)
}

/// The dialer's report, with its exit status and stderr for failure messages.
fn report(out: &Output) -> String {
    format!(
        "{}\n[{}] {}",
        String::from_utf8_lossy(&out.stdout),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn call_answered_by_sipp_uas_over_udp_and_tcp() {
    for (t, flag) in [("u1", "udp"), ("t1", "tcp")] {
        let dir = scratch_dir(&format!("out-{flag}"));
        let (sipp, port) = carrier(&dir, &["-sn", "uas"], t);
        let out = place(port, "1", &["--transport", flag]);
        let text = report(&out);
        assert!(out.status.success(), "{flag}: {text}");
        assert!(text.contains("answered after"), "{text}");
        assert_eq!(finish(sipp, &dir), (1, 0), "{flag}: {text}");
    }
}

#[test]
fn digest_challenge_from_carrier_is_answered() {
    let dir = scratch_dir("out-auth");
    let (sipp, port) = carrier(&dir, &["-sf", &scenario_path("uas_auth.xml")], "u1");
    let out = place(
        port,
        "1",
        &["--username", "trunkuser", "--password", "trunkpass"],
    );
    let text = report(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(finish(sipp, &dir), (1, 0), "{text}");
}

#[test]
fn wrong_password_ends_with_the_carriers_status() {
    let dir = scratch_dir("out-auth-bad");
    let (sipp, port) = carrier(&dir, &["-sf", &scenario_path("uas_auth.xml")], "u1");
    let out = place(
        port,
        "1",
        &["--username", "trunkuser", "--password", "nope"],
    );
    let text = report(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Rejected(403)"), "{text}");
    assert_eq!(finish(sipp, &dir), (0, 1));
}

#[test]
fn early_media_from_183_flows_before_the_answer() {
    let dir = scratch_dir("out-early");
    let (sipp, port) = carrier(&dir, &["-sf", &scenario_path("uas_early_media.xml")], "u1");
    let out = place(port, "2", &[]);
    let text = report(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("progress 183") && text.contains("with SDP (early media)"),
        "{text}"
    );
    let count = |key: &str| -> u64 {
        // "answered …; early media packets N" and "ended …; media packets N".
        let line = text
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("{key} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // 1.5 s of 30 ms packets before the 200: about 50.
    let early = count("early media packets");
    assert!(early >= 30, "early media packets {early}: {text}");
    assert!(
        count("; media packets") > early,
        "media continues after the answer: {text}"
    );
    assert_eq!(finish(sipp, &dir), (1, 0), "{text}");
}

#[test]
fn reliable_183_from_carrier_is_pracked_before_the_answer() {
    let dir = scratch_dir("out-prack");
    let (sipp, port) = carrier(&dir, &["-sf", &scenario_path("uas_prack.xml")], "u1");
    let out = place(port, "1", &[]);
    let text = report(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("progress 183") && text.contains("answered after"),
        "{text}"
    );
    // The carrier answers only after a PRACK naming its RSeq and our INVITE's CSeq.
    assert_eq!(finish(sipp, &dir), (1, 0), "{text}");
}
