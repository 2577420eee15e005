//! The SFU's SDP answers to the real Chrome offers openvidu-browser sends (the samples in
//! `../shared/ref/`, or `$OPENVIDU_REF_DIR`): BUNDLE, rtcp-mux, DTLS setup, mids and payload
//! types taken from the offer, directions, ICE-lite with our candidate, forcedVideoCodec.
#![allow(clippy::disallowed_methods)] // an arbitrary origin for the peer connections' time

use std::time::Instant;

use phonebridge_rooms::rpc::MediaHandler;
use phonebridge_rooms::sfu::Sfu;
use phonebridge_sdp::{Direction, SessionDescription};

fn offer(name: &str) -> String {
    let dir = std::env::var("OPENVIDU_REF_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/ref").to_owned());
    let path = format!("{dir}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e} (set OPENVIDU_REF_DIR)"))
}

fn sfu() -> Sfu {
    let addr = "127.0.0.1:50000".parse().unwrap();
    Sfu::new(Instant::now(), vec![(addr, addr)])
}

fn parse(sdp: &str) -> SessionDescription {
    SessionDescription::parse(sdp).expect("the answer is valid SDP")
}

/// What every answer must have for Chrome to accept it.
fn common(answer: &SessionDescription, mids: &[&str]) {
    assert_eq!(
        answer.attr("group"),
        Some(format!("BUNDLE {}", mids.join(" ")).as_str())
    );
    assert!(answer.attr("ice-lite").is_some(), "ICE-lite is announced");
    let sections: Vec<_> = answer.media.iter().collect();
    assert_eq!(sections.len(), mids.len());
    for (m, mid) in sections.iter().zip(mids) {
        assert_eq!(m.attr("mid"), Some(*mid), "mids follow the offer");
        assert!(m.has("rtcp-mux"));
        let setup = m.attr("setup").or(answer.attr("setup"));
        assert!(
            matches!(setup, Some("passive") | Some("active")),
            "setup answers actpass: {setup:?}"
        );
        assert_eq!(m.proto, "UDP/TLS/RTP/SAVPF");
    }
    let text = answer.to_string();
    assert!(
        text.contains("a=candidate:") && text.contains("127.0.0.1 50000 typ host"),
        "{text}"
    );
    assert!(text.contains("a=fingerprint:sha-256 "));
}

#[test]
fn publish_offer_gets_a_recvonly_opus_answer() {
    let mut sfu = sfu();
    let answer = sfu
        .publish(
            "ses_A",
            "con_A",
            &offer("openvidu2-publish-offer.sdp"),
            "MEDIA_SERVER_PREFERRED",
        )
        .unwrap();
    let a = parse(&answer);
    common(&a, &["0"]);
    let m = &a.media[0];
    assert_eq!(m.kind, "audio");
    assert_eq!(a.direction_of(m), Direction::RecvOnly);
    assert_eq!(
        m.rtpmap(111).unwrap().encoding.to_ascii_lowercase(),
        "opus",
        "opus keeps the offer's payload type"
    );
}

#[test]
fn subscribe_offer_gets_a_sendonly_answer_with_the_publishers_codecs() {
    let mut sfu = sfu();
    // The publisher sends VP8 (the default when nothing is forced).
    let video_offer = offer("openvidu2-subscribe-offer.sdp").replace("a=recvonly", "a=sendonly");
    sfu.publish("ses_A", "con_Pub", &video_offer, "MEDIA_SERVER_PREFERRED")
        .unwrap();
    let answer = sfu
        .subscribe(
            "ses_A",
            "con_Sub",
            "str_CAM_Ab1c_con_Pub",
            &offer("openvidu2-subscribe-offer.sdp"),
        )
        .unwrap();
    let a = parse(&answer);
    common(&a, &["0", "1"]);
    assert!(a
        .media
        .iter()
        .all(|m| a.direction_of(m) == Direction::SendOnly));
    let video = &a.media[1];
    assert_eq!(video.kind, "video");
    let codecs: Vec<String> = video
        .payload_types()
        .filter_map(|pt| video.rtpmap(pt).map(|r| format!("{pt} {}", r.encoding)))
        .collect();
    assert!(
        codecs.iter().any(|c| c == "96 VP8"),
        "VP8 on the offer's payload type: {codecs:?}"
    );
    assert!(
        !codecs
            .iter()
            .any(|c| c.contains("VP9") || c.contains("AV1")),
        "only the publisher's codec: {codecs:?}"
    );
    assert_eq!(a.media[0].rtpmap(111).unwrap().clock_rate, 48000);
}

#[test]
fn forced_video_codec_is_honoured_or_refused_with_800() {
    let mut sfu = sfu();
    let video_offer = offer("openvidu2-subscribe-offer.sdp").replace("a=recvonly", "a=sendonly");
    // The sample offer has no H264: error 800.
    let e = sfu
        .publish("ses_A", "con_H", &video_offer, "H264")
        .unwrap_err();
    assert_eq!(e.code, 800);
    // VP9 is offered: the answer carries VP9 only, on the offer's first VP9 payload type.
    let answer = sfu.publish("ses_A", "con_V", &video_offer, "VP9").unwrap();
    let a = parse(&answer);
    let video = &a.media[1];
    let names: Vec<String> = video
        .payload_types()
        .filter_map(|pt| video.rtpmap(pt).map(|r| r.encoding.to_ascii_uppercase()))
        .filter(|n| n != "RTX")
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n == "VP9"),
        "{names:?}"
    );
    // Garbage is an SDP error, not a panic.
    assert_eq!(
        sfu.publish("ses_A", "con_X", "v=0\r\nnonsense", "VP8")
            .unwrap_err()
            .code,
        302
    );
}
