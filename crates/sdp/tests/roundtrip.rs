//! Print → parse → print is stable for any description the model can hold, and the parser
//! never panics on arbitrary text.

use phonebridge_sdp::SessionDescription;
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9./+-]{0,12}"
}

fn line_value() -> impl Strategy<Value = String> {
    "[ -~]{0,30}".prop_map(|s| s.trim().to_owned())
}

fn media() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("audio"), Just("video"), Just("application")],
        any::<u16>(),
        prop_oneof![Just("RTP/AVP"), Just("RTP/SAVP"), Just("RTP/AVPF")],
        prop::collection::vec(0u8..128, 1..5),
        prop::collection::vec((token(), prop::option::of(line_value())), 0..5),
        prop::option::of("(1|10|192)\\.0\\.2\\.[0-9]{1,2}"),
    )
        .prop_map(|(kind, port, proto, fmts, attrs, c)| {
            let mut s = format!("m={kind} {port} {proto}");
            for f in fmts {
                s.push_str(&format!(" {f}"));
            }
            s.push_str("\r\n");
            if let Some(c) = c {
                s.push_str(&format!("c=IN IP4 {c}\r\n"));
            }
            for (name, value) in attrs {
                match value {
                    Some(v) => s.push_str(&format!("a={name}:{v}\r\n")),
                    None => s.push_str(&format!("a={name}\r\n")),
                }
            }
            s
        })
}

proptest! {
    #[test]
    fn print_parse_print_is_stable(
        name in line_value(),
        session_attrs in prop::collection::vec(token(), 0..3),
        media in prop::collection::vec(media(), 0..4),
    ) {
        let mut text = format!("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns={name}\r\nt=0 0\r\n");
        for a in session_attrs {
            text.push_str(&format!("a={a}\r\n"));
        }
        for m in media {
            text.push_str(&m);
        }
        let sd = SessionDescription::parse(&text).unwrap();
        let printed = sd.to_string();
        let again = SessionDescription::parse(&printed).unwrap();
        prop_assert_eq!(&again, &sd);
        prop_assert_eq!(again.to_string(), printed);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(v=0\r\n)?([a-z]=[ -~]{0,20}\r?\n){0,12}") {
        let _ = SessionDescription::parse(&text);
    }
}
