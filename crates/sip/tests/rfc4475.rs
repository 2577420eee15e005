//! RFC 4475 torture messages: each file goes through the same front door as received bytes
//! (`parse_datagram` + `screen`) and must get the treatment its RFC section asks for.
//! The messages are read from `../shared/testdata/rfc4475` (or `$RFC4475_DIR`); a missing
//! folder is a failure, never a skip.

use std::path::PathBuf;

use phonebridge_sip::validate::{screen, Screened};
use phonebridge_sip::{parse_datagram, HeaderName, Limits, Method, NameAddr, UasPolicy, Uri};

fn dir() -> PathBuf {
    match std::env::var_os("RFC4475_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/rfc4475"),
    }
}

fn load(file: &str) -> Vec<u8> {
    let p = dir().join(file);
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("cannot read {}: {e} (set RFC4475_DIR)", p.display()))
}

fn run(file: &str) -> Screened {
    let bytes = load(file);
    screen(
        parse_datagram(&bytes, &Limits::default()),
        &UasPolicy::default(),
    )
}

#[track_caller]
fn rejected(file: &str, status: u16) -> phonebridge_sip::Rejection {
    match run(file) {
        Screened::Reject { rejection, .. } => {
            assert_eq!(rejection.status, status, "{file}: {rejection:?}");
            rejection
        }
        other => panic!("{file}: expected {status}, got {other:?}"),
    }
}

#[track_caller]
fn accepted(file: &str) -> (phonebridge_sip::Request, phonebridge_sip::Envelope) {
    match run(file) {
        Screened::Request(r, e) => (r, e),
        other => panic!("{file}: expected acceptance, got {other:?}"),
    }
}

#[track_caller]
fn dropped(file: &str) {
    match run(file) {
        Screened::Drop(_) => {}
        other => panic!("{file}: expected drop, got {other:?}"),
    }
}

#[test]
fn every_file_is_listed_and_none_panics() {
    let index = std::fs::read_to_string(dir().join("INDEX.tsv")).expect("INDEX.tsv");
    let mut n = 0;
    for line in index.lines().skip(1) {
        let file = line.split('\t').nth(1).expect("file column");
        let bytes = load(file);
        // Also as a stream, in every split position of the first 64 bytes.
        let _ = run(file);
        let mut framer = phonebridge_sip::StreamFramer::new(Limits::default());
        framer.push(&bytes);
        while let Ok(Some(_)) = framer.next_frame() {}
        n += 1;
    }
    assert_eq!(n, 50, "49 RFC messages plus test.dat");
}

// 3.1.1 Valid messages: must parse and be handled normally.

#[test]
fn s3_1_1_1_short_tortuous_invite() {
    let (req, env) = accepted("wsinv.dat");
    assert_eq!(req.method, Method::Invite);
    assert_eq!(env.to.tag(), Some("1918181833n"));
    assert_eq!(env.from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(env.from.tag(), Some("98asjd8"));
    assert_eq!(env.max_forwards, Some(68));
    assert_eq!(env.cseq.seq, 9);
    assert_eq!(env.vias.len(), 3);
    assert_eq!(env.vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(env.vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(req.headers.get(&HeaderName::SUBJECT), Some(""));
    assert_eq!(
        req.headers.get(&HeaderName::from_wire("NewFangledHeader")),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        req.headers
            .get(&HeaderName::from_wire("UnknownHeaderWithUnusualValue")),
        Some(";;,,;;,;")
    );
    let contact = NameAddr::parse(req.headers.get(&HeaderName::CONTACT).unwrap()).unwrap();
    assert_eq!(contact.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(contact.params.value("newparam"), Some("newvalue"));
    assert_eq!(contact.params.value("q"), Some("0.33"));
    assert_eq!(req.body.len(), 150);
}

#[test]
fn s3_1_1_2_wide_range_of_valid_characters() {
    let bytes = load("intmeth.dat");
    let msg = parse_datagram(&bytes, &Limits::default()).unwrap();
    let phonebridge_sip::Message::Request(req) = msg else {
        panic!("request expected")
    };
    assert_eq!(
        req.method.as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    let uri = req.uri.as_sip().unwrap();
    assert_eq!(
        uri.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        uri.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    let env = phonebridge_sip::check_request(&req).unwrap();
    assert_eq!(env.to.display.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
    assert_eq!(
        env.from.display.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(env.call_id, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    // An extension method the UAS does not implement: 501 (RFC 3261 §8.2.1).
    rejected("intmeth.dat", 501);
}

#[test]
fn s3_1_1_3_valid_percent_escaping() {
    let (req, env) = accepted("esc01.dat");
    let uri = req.uri.as_sip().unwrap();
    assert_eq!(
        uri.user_unescaped().as_deref(),
        Some("sips:user@example.com")
    );
    let to = env.to.uri.as_sip().unwrap();
    assert_eq!(to.user_unescaped().as_deref(), Some("user"));
    let from = env.from.uri.as_sip().unwrap();
    assert_eq!(from.user_unescaped().as_deref(), Some("I have spaces"));
}

#[test]
fn s3_1_1_4_escaped_nulls_in_uris() {
    // REGISTER parses fully; we are not a registrar, so it ends at the method check (405).
    let r = rejected("escnull.dat", 405);
    assert!(r.headers.iter().any(|(n, _)| *n == HeaderName::ALLOW));
    let bytes = load("escnull.dat");
    let phonebridge_sip::Message::Request(req) =
        parse_datagram(&bytes, &Limits::default()).unwrap()
    else {
        panic!()
    };
    let env = phonebridge_sip::check_request(&req).unwrap();
    assert_eq!(
        env.to.uri.as_sip().unwrap().user_unescaped().unwrap(),
        "null-\0-null"
    );
    assert_eq!(req.headers.count(&HeaderName::CONTACT), 2);
}

#[test]
fn s3_1_1_5_percent_that_is_not_an_escape() {
    // The method is the literal token RE%47IST%45R, not REGISTER: unknown, so 501.
    let bytes = load("esc02.dat");
    let phonebridge_sip::Message::Request(req) =
        parse_datagram(&bytes, &Limits::default()).unwrap()
    else {
        panic!()
    };
    assert_eq!(req.method, Method::Other("RE%47IST%45R".into()));
    assert_eq!(req.headers.count(&HeaderName::CONTACT), 2);
    assert_eq!(req.headers.count(&HeaderName::from_wire("C%6Fntact")), 1);
    assert_eq!(
        phonebridge_sip::check_request(&req)
            .unwrap()
            .to
            .display
            .as_deref(),
        Some("%Z%45")
    );
    rejected("esc02.dat", 501);
}

#[test]
fn s3_1_1_6_no_lws_between_display_name_and_angle() {
    let (_, env) = accepted("lwsdisp.dat");
    assert_eq!(env.from.display.as_deref(), Some("caller"));
    assert_eq!(env.from.tag(), Some("323"));
}

#[test]
fn s3_1_1_7_long_values_in_header_fields() {
    let (req, env) = accepted("longreq.dat");
    assert!(env.to.display.as_ref().unwrap().len() > 100);
    assert!(env.from.tag().unwrap().len() > 100);
    assert_eq!(env.vias.len(), 34);
    assert!(req.headers.get(&HeaderName::CALL_ID).unwrap().len() > 100);
}

#[test]
fn s3_1_1_8_extra_trailing_octets_in_udp_datagram() {
    // The second request in the datagram is ignored; the first has an empty body.
    let bytes = load("dblreq.dat");
    let phonebridge_sip::Message::Request(req) =
        parse_datagram(&bytes, &Limits::default()).unwrap()
    else {
        panic!()
    };
    assert!(req.body.is_empty());
    assert_eq!(req.method, Method::Register);
    rejected("dblreq.dat", 405);
}

#[test]
fn s3_1_1_9_semicolon_separated_params_in_user_part() {
    let (req, _) = accepted("semiuri.dat");
    let uri = req.uri.as_sip().unwrap();
    assert_eq!(uri.user.as_deref(), Some("user;par=u%40example.net"));
    assert!(uri.params.is_empty());
    assert_eq!(req.headers.values(&HeaderName::ACCEPT).count(), 6);
}

#[test]
fn s3_1_1_10_varied_and_unknown_transports() {
    let (_, env) = accepted("transports.dat");
    let t: Vec<&str> = env.vias.iter().map(|v| &*v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn s3_1_1_11_multipart_mime_message() {
    // MESSAGE is a known method we do not serve: 405 after a full parse with the body intact.
    let bytes = load("mpart01.dat");
    let phonebridge_sip::Message::Request(req) =
        parse_datagram(&bytes, &Limits::default()).unwrap()
    else {
        panic!()
    };
    assert_eq!(req.body.len(), 553);
    assert!(req
        .headers
        .get(&HeaderName::CONTENT_TYPE)
        .unwrap()
        .starts_with("multipart/mixed"));
    rejected("mpart01.dat", 405);
}

#[test]
fn s3_1_1_12_unusual_reason_phrase() {
    match run("unreason.dat") {
        Screened::Response(r, _) => {
            assert_eq!(r.status, 200);
            assert!(r.reason.contains("простое"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn s3_1_1_13_empty_reason_phrase() {
    match run("noreason.dat") {
        Screened::Response(r, _) => {
            assert_eq!(r.status, 100);
            assert_eq!(r.reason, "");
        }
        other => panic!("{other:?}"),
    }
}

// 3.1.2 Invalid messages: never crash; answer 400 (or what the section says) where possible.

#[test]
fn s3_1_2_1_extraneous_header_field_separators() {
    rejected("badinv01.dat", 400);
}

#[test]
fn s3_1_2_2_content_length_larger_than_message() {
    rejected("clerr.dat", 400);
}

#[test]
fn s3_1_2_3_negative_content_length() {
    rejected("ncl.dat", 400);
}

#[test]
fn s3_1_2_4_request_scalar_fields_with_overlarge_values() {
    rejected("scalar02.dat", 400);
}

#[test]
fn s3_1_2_5_response_scalar_fields_with_overlarge_values() {
    dropped("scalarlg.dat");
}

#[test]
fn s3_1_2_6_unterminated_quoted_string_in_display_name() {
    rejected("quotbal.dat", 400);
}

#[test]
fn s3_1_2_7_angle_brackets_enclosing_request_uri() {
    rejected("ltgtruri.dat", 400);
}

#[test]
fn s3_1_2_8_embedded_lws_in_request_uri() {
    rejected("lwsruri.dat", 400);
}

#[test]
fn s3_1_2_9_multiple_sp_separating_request_line_elements() {
    rejected("lwsstart.dat", 400);
}

#[test]
fn s3_1_2_10_sp_at_end_of_request_line() {
    rejected("trws.dat", 400);
}

#[test]
fn s3_1_2_11_escaped_headers_in_request_uri() {
    rejected("escruri.dat", 400);
}

#[test]
fn s3_1_2_12_invalid_time_zone_in_date() {
    // Date is not used by a UAS; the request is processed (the section allows ignoring it).
    let (req, _) = accepted("baddate.dat");
    assert_eq!(req.method, Method::Invite);
}

#[test]
fn s3_1_2_13_name_addr_uri_not_in_angle_brackets() {
    rejected("regbadct.dat", 400);
}

#[test]
fn s3_1_2_14_spaces_within_addr_spec() {
    rejected("badaspec.dat", 400);
}

#[test]
fn s3_1_2_15_non_token_characters_in_display_name() {
    rejected("baddn.dat", 400);
}

#[test]
fn s3_1_2_16_unknown_protocol_version() {
    rejected("badvers.dat", 505);
}

#[test]
fn s3_1_2_17_start_line_and_cseq_method_mismatch() {
    rejected("mismatch01.dat", 400);
}

#[test]
fn s3_1_2_18_unknown_method_with_cseq_mismatch() {
    rejected("mismatch02.dat", 501);
}

#[test]
fn s3_1_2_19_overlarge_response_code() {
    dropped("bigcode.dat");
}

// 3.2 Transaction layer.

#[test]
fn s3_2_1_missing_transaction_identifier() {
    // A branch that is only the magic cookie still parses and is processed.
    let (_, env) = accepted("badbranch.dat");
    assert_eq!(env.top_via().branch(), Some("z9hG4bK"));
}

// 3.3 Application layer.

#[test]
fn s3_3_1_missing_required_header_fields() {
    rejected("insuf.dat", 400);
}

#[test]
fn s3_3_2_request_uri_with_unknown_scheme() {
    rejected("unkscm.dat", 416);
}

#[test]
fn s3_3_3_request_uri_with_atypical_scheme() {
    rejected("novelsc.dat", 416);
}

#[test]
fn s3_3_4_unknown_uri_schemes_in_header_fields() {
    let bytes = load("unksm2.dat");
    let phonebridge_sip::Message::Request(req) =
        parse_datagram(&bytes, &Limits::default()).unwrap()
    else {
        panic!()
    };
    let env = phonebridge_sip::check_request(&req).unwrap();
    assert_eq!(env.to.uri.scheme(), "isbn");
    assert_eq!(env.from.uri.scheme(), "http");
    rejected("unksm2.dat", 405);
}

#[test]
fn s3_3_5_proxy_require_and_require() {
    let r = rejected("bext01.dat", 420);
    let unsupported = &r
        .headers
        .iter()
        .find(|(n, _)| *n == HeaderName::UNSUPPORTED)
        .unwrap()
        .1;
    assert_eq!(
        unsupported,
        "nothingSupportsThis, nothingSupportsThisEither"
    );
}

#[test]
fn s3_3_6_unknown_content_type() {
    let r = rejected("invut.dat", 415);
    assert!(r
        .headers
        .iter()
        .any(|(n, v)| *n == HeaderName::ACCEPT && v.contains("application/sdp")));
}

#[test]
fn s3_3_7_unknown_authorization_scheme() {
    rejected("regaut01.dat", 405);
}

#[test]
fn s3_3_8_multiple_values_in_single_value_fields() {
    rejected("multi01.dat", 400);
}

#[test]
fn s3_3_9_multiple_content_length_values() {
    rejected("mcl01.dat", 400);
}

#[test]
fn s3_3_10_200_with_broadcast_via() {
    // Parses; it matches no client transaction of ours, which drops it (see the endpoint tests).
    match run("bcast.dat") {
        Screened::Response(r, env) => {
            assert_eq!(r.status, 200);
            assert_eq!(env.vias[1].host.to_string(), "255.255.255.255");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn s3_3_11_max_forwards_of_zero() {
    // A UAS processes OPTIONS with Max-Forwards 0 normally.
    let (_, env) = accepted("zeromf.dat");
    assert_eq!(env.max_forwards, Some(0));
}

#[test]
fn s3_3_12_register_with_contact_header_parameter() {
    let bytes = load("cparam01.dat");
    let phonebridge_sip::Message::Request(req) =
        parse_datagram(&bytes, &Limits::default()).unwrap()
    else {
        panic!()
    };
    let c = NameAddr::parse(req.headers.get(&HeaderName::CONTACT).unwrap()).unwrap();
    assert!(c.params.contains("unknownparam"));
    assert!(c.uri.as_sip().unwrap().params.is_empty());
    rejected("cparam01.dat", 405);
}

#[test]
fn s3_3_13_register_with_url_parameter() {
    let bytes = load("cparam02.dat");
    let phonebridge_sip::Message::Request(req) =
        parse_datagram(&bytes, &Limits::default()).unwrap()
    else {
        panic!()
    };
    let c = NameAddr::parse(req.headers.get(&HeaderName::CONTACT).unwrap()).unwrap();
    assert!(c.params.is_empty());
    assert!(c.uri.as_sip().unwrap().params.contains("unknownparam"));
    rejected("cparam02.dat", 405);
}

#[test]
fn s3_3_14_register_with_url_escaped_header() {
    let bytes = load("regescrt.dat");
    let phonebridge_sip::Message::Request(req) =
        parse_datagram(&bytes, &Limits::default()).unwrap()
    else {
        panic!()
    };
    let c = NameAddr::parse(req.headers.get(&HeaderName::CONTACT).unwrap()).unwrap();
    let Uri::Sip(u) = &c.uri else { panic!() };
    assert_eq!(
        u.headers,
        vec![("Route".to_owned(), "%3Csip:sip.example.com%3E".to_owned())]
    );
    rejected("regescrt.dat", 405);
}

#[test]
fn s3_3_15_unacceptable_accept_offering() {
    rejected("sdp01.dat", 406);
}

// 3.4 Backward compatibility.

#[test]
fn s3_4_1_invite_with_rfc2543_syntax() {
    let (req, env) = accepted("inv2543.dat");
    assert_eq!(req.method, Method::Invite);
    assert!(env.top_via().branch().is_none());
    assert_eq!(env.max_forwards, None);
}

#[test]
fn request_line_without_version_is_rejected() {
    rejected("test.dat", 400);
}
