//! Keeping a registration with a trunk: digest challenge, refresh before expiry with the
//! cached credentials, 423 Min-Expires, back-off with Retry-After, un-registration.

mod common;

use std::time::Duration;

use common::*;
use phonebridge_sip::auth::Credentials;
use phonebridge_sip::endpoint::{RegHandle, Registration};
use phonebridge_sip::{Event, Uri};

fn start(h: &mut Harness, expires: u32) -> (RegHandle, String) {
    let reg = h.ep.register(
        h.now,
        Registration {
            aor: Uri::parse("sip:+15550100@trunk.example.com").unwrap(),
            registrar: Uri::parse("sip:trunk.example.com").unwrap(),
            peer: h.peer.clone(),
            credentials: Some(("acct".into(), "pw".into())),
            expires,
        },
    );
    h.drain();
    let r = h.sent_starting("REGISTER ").pop().expect("REGISTER").1;
    (reg, r)
}

fn last_register(h: &Harness) -> String {
    h.sent_starting("REGISTER ").pop().expect("REGISTER").1
}

#[test]
fn challenge_then_refresh_before_expiry_with_cached_credentials() {
    let mut h = Harness::udp();
    let (reg, first) = start(&mut h, 3600);
    assert!(first.starts_with("REGISTER sip:trunk.example.com SIP/2.0"));
    assert_eq!(header(&first, "Expires"), Some("3600"));
    assert_eq!(
        header(&first, "Contact"),
        Some("<sip:phonebridge@127.0.0.1:5060>")
    );
    h.recv(&reply(
        &first,
        401,
        Some("r"),
        "WWW-Authenticate: Digest realm=\"trunk\", nonce=\"n1\", qop=\"auth\"\n",
        "",
    ));
    let second = last_register(&h);
    assert_eq!(header(&second, "CSeq"), Some("2 REGISTER"));
    assert_eq!(header(&second, "Call-ID"), header(&first, "Call-ID"));
    let creds = Credentials::parse(header(&second, "Authorization").unwrap()).unwrap();
    assert!(creds.verify("REGISTER", "pw"));
    h.recv(&reply(
        &second,
        200,
        Some("r"),
        "Contact: <sip:phonebridge@127.0.0.1:5060>;expires=600\n",
        "",
    ));
    assert_eq!(h.take_events(), [Event::Registered { reg, expires: 600 }]);
    assert_eq!(h.ep.registered_count(), 1);
    // Refresh at 90% of 600 s, answering the known challenge without waiting for a 401.
    h.run_until(539.0);
    assert_eq!(h.sent_starting("REGISTER ").len(), 2);
    h.run_until(540.0);
    let refresh = last_register(&h);
    assert_eq!(header(&refresh, "CSeq"), Some("3 REGISTER"));
    assert!(header(&refresh, "Authorization")
        .unwrap()
        .contains("nc=00000002"));
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let mut h = Harness::udp();
    let (_reg, first) = start(&mut h, 60);
    h.recv(&reply(&first, 423, Some("r"), "Min-Expires: 1800\n", ""));
    assert_eq!(header(&last_register(&h), "Expires"), Some("1800"));
}

#[test]
fn failures_back_off_doubling_and_honour_retry_after() {
    let mut h = Harness::udp();
    let (reg, first) = start(&mut h, 3600);
    h.recv(&reply(&first, 403, Some("r"), "", ""));
    assert_eq!(
        h.take_events(),
        [Event::RegistrationFailed {
            reg,
            status: Some(403),
            retry_in: Duration::from_secs(30)
        }]
    );
    h.run_until(30.0);
    let second = last_register(&h);
    assert_eq!(h.sent_starting("REGISTER ").len(), 2);
    h.recv(&reply(&second, 503, Some("r"), "Retry-After: 300\n", ""));
    assert_eq!(
        h.take_events(),
        [Event::RegistrationFailed {
            reg,
            status: Some(503),
            retry_in: Duration::from_secs(300)
        }]
    );
    h.run_until(329.0);
    assert_eq!(h.sent_starting("REGISTER ").len(), 2);
    h.run_until(330.0);
    assert_eq!(h.sent_starting("REGISTER ").len(), 3);
    // A third failure without Retry-After doubles again: 30, 60, 120 s.
    h.recv(&reply(&last_register(&h), 500, Some("r"), "", ""));
    assert!(
        matches!(h.take_events()[..], [Event::RegistrationFailed { retry_in, .. }] if retry_in == Duration::from_secs(120))
    );
}

#[test]
fn no_answer_counts_as_a_failure() {
    let mut h = Harness::udp();
    let (reg, _first) = start(&mut h, 3600);
    h.run_until(33.0);
    assert_eq!(
        h.events,
        [(
            32.0,
            Event::RegistrationFailed {
                reg,
                status: None,
                retry_in: Duration::from_secs(30)
            }
        )]
    );
    h.run_until(62.0);
    assert_eq!(h.sent_starting("REGISTER ").last().unwrap().0, 62.0);
}

#[test]
fn wrong_password_is_not_retried_in_a_loop() {
    let mut h = Harness::udp();
    let (reg, first) = start(&mut h, 3600);
    let ch = "WWW-Authenticate: Digest realm=\"trunk\", nonce=\"n1\"\n";
    h.recv(&reply(&first, 401, Some("r"), ch, ""));
    h.recv(&reply(&last_register(&h), 401, Some("r"), ch, ""));
    assert_eq!(h.sent_starting("REGISTER ").len(), 2);
    assert!(
        matches!(h.take_events()[..], [Event::RegistrationFailed { reg: r, status: Some(401), .. }] if r == reg)
    );
}

#[test]
fn unregister_sends_expires_zero_and_forgets() {
    let mut h = Harness::udp();
    let (_reg, first) = start(&mut h, 3600);
    h.recv(&reply(&first, 200, Some("r"), "Expires: 3600\n", ""));
    h.take_events();
    h.ep.unregister_all(h.now);
    h.drain();
    let bye = last_register(&h);
    assert_eq!(header(&bye, "Expires"), Some("0"));
    h.recv(&reply(&bye, 200, Some("r"), "", ""));
    assert_eq!(h.ep.registered_count(), 0);
    h.run_until(4000.0);
    assert_eq!(
        h.sent_starting("REGISTER ").len(),
        2,
        "no refresh after un-registration"
    );
}
