//! Property tests: printed messages parse back to the same message (print → parse → print),
//! and the fuzz target bodies hold on the RFC 4475 corpus and on random bytes.
// Virtual time needs an arbitrary origin; nothing below reads the clock after that.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use phonebridge_sip::{
    parse_datagram, HeaderName, Headers, Limits, Message, Method, Request, Response, Uri,
};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,11}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}(\\.[a-z][a-z0-9-]{0,8}){0,2}",
        (0u8..=255, 0u8..=255, 0u8..=255, 1u8..=254)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        Just("[2001:db8::1]".to_owned()),
    ]
}

fn sip_uri() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        prop::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,10}|[a-z]{1,4}%[0-9A-F]{2}"),
        host(),
        prop::option::of(1u16..),
        prop::collection::vec(("[a-z]{1,8}", prop::option::of("[a-z0-9]{1,6}")), 0..3),
    )
        .prop_map(|(secure, user, host, port, params)| {
            let mut s = String::from(if secure { "sips:" } else { "sip:" });
            if let Some(u) = user {
                s.push_str(&u);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            for (n, v) in params {
                s.push(';');
                s.push_str(&n);
                if let Some(v) = v {
                    s.push('=');
                    s.push_str(&v);
                }
            }
            s
        })
}

fn display_name() -> impl Strategy<Value = String> {
    // Any printable text with quotes and backslashes, quoted with escapes.
    "[ -~]{0,16}".prop_map(|s| phonebridge_sip::quote(&s))
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}".prop_map(|s| s.trim().to_owned()),
        (display_name(), sip_uri(), token()).prop_map(|(d, u, t)| format!("{d} <{u}>;tag={t}")),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((token(), header_value()), 0..8)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..64)
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (token(), sip_uri(), headers(), body()).prop_map(|(m, u, h, b)| {
            let mut r = Request::new(Method::parse(&m), Uri::parse(&u).unwrap());
            r.headers = to_headers(h);
            r.body = b;
            Message::Request(r)
        }),
        (100u16..700, "[ -~]{0,20}", headers(), body()).prop_map(|(s, reason, h, b)| {
            let mut r = Response::new(s);
            r.reason = reason.trim().to_owned().into();
            r.headers = to_headers(h);
            r.body = b;
            Message::Response(r)
        }),
    ]
}

fn to_headers(list: Vec<(String, String)>) -> Headers {
    let mut h = Headers::new();
    for (n, v) in list {
        let name = HeaderName::from_wire(&n);
        if name != HeaderName::CONTENT_LENGTH {
            h.push(name, v);
        }
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn print_parse_print_is_stable(msg in message()) {
        let printed = msg.encode();
        let parsed = parse_datagram(&printed, &Limits::default()).unwrap();
        prop_assert_eq!(parsed.body(), msg.body());
        prop_assert_eq!(parsed.encode(), printed);
    }

    #[test]
    fn uris_round_trip(u in sip_uri()) {
        let parsed = Uri::parse(&u).unwrap();
        prop_assert_eq!(parsed.to_string(), u);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        phonebridge_sip::fuzz_targets::parse_message(&data);
    }

    #[test]
    fn mutated_messages_never_panic(msg in message(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut b = msg.encode();
        let i = pos.index(b.len());
        b[i] = byte;
        phonebridge_sip::fuzz_targets::parse_message(&b);
    }
}

/// Inputs the fuzzer once broke the parse target with (a Content-Length near usize::MAX on
/// a stream; a message at the header limit whose print adds Content-Length).
#[test]
fn fuzz_regressions() {
    let mut huge = b":\nL:".to_vec();
    huge.extend_from_slice(&[b'0'; 60]);
    huge.extend_from_slice(b"18446744073709551614\n\nJ");
    phonebridge_sip::fuzz_targets::parse_message(&huge);
    let mut at_limit = b"SIP/2.0 691 x\n".to_vec();
    for _ in 0..Limits::default().max_headers {
        at_limit.extend_from_slice(b"F:x\n");
    }
    at_limit.extend_from_slice(b"\n");
    assert!(parse_datagram(&at_limit, &Limits::default()).is_ok());
    phonebridge_sip::fuzz_targets::parse_message(&at_limit);
}

#[test]
fn fuzz_bodies_hold_on_the_rfc4475_corpus() {
    let dir = std::env::var_os("RFC4475_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/testdata/rfc4475")
        });
    let mut all = Vec::new();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("RFC 4475 folder") {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "dat") {
            let b = std::fs::read(&p).unwrap();
            phonebridge_sip::fuzz_targets::parse_message(&b);
            all.extend_from_slice(&b);
            all.push(0);
            n += 1;
        }
    }
    assert_eq!(n, 50);
    phonebridge_sip::fuzz_targets::endpoint(&all, Instant::now());
}
