//! RFC 3264 offer/answer on the phone leg, against descriptions as real peers write them.

use std::net::SocketAddr;

use phonebridge_sdp::*;

const KEY_A: [u8; KEY_LEN] = [7; KEY_LEN];
const KEY_B: [u8; KEY_LEN] = [9; KEY_LEN];

fn local() -> Local {
    Local {
        ip: "192.0.2.10".parse().unwrap(),
        rtp_port: 20000,
        session_id: 42,
        version: 1,
        direction: Direction::SendRecv,
    }
}

fn sdp(media: &str) -> SessionDescription {
    SessionDescription::parse(&format!(
        "v=0\r\no=pbx 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n{media}"
    ))
    .unwrap()
}

fn answer_with(
    offer: &SessionDescription,
    caps: &Capabilities,
) -> Result<(SessionDescription, AudioSession), NegotiationError> {
    answer(offer, caps, &local(), KEY_A)
}

fn addr(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn g711_trunk_offer_gets_pcmu_dtmf_and_symmetric_addresses() {
    let offer = sdp("m=audio 17304 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n");
    let (ans, s) = answer_with(&offer, &Capabilities::default()).unwrap();
    assert_eq!(
        s.send,
        AudioFormat {
            pt: 0,
            codec: Codec::Pcmu
        }
    );
    assert_eq!(
        s.dtmf_send,
        Some(TelephoneEvent {
            pt: 101,
            clock_rate: 8000
        })
    );
    assert_eq!(s.remote_rtp, addr("198.51.100.7:17304"));
    assert_eq!(s.remote_rtcp, addr("198.51.100.7:17305"));
    assert_eq!(
        (s.ptime, s.direction, s.srtp.is_none()),
        (20, Direction::SendRecv, true)
    );
    let text = ans.to_string();
    assert!(text.contains("c=IN IP4 192.0.2.10\r\n"), "{text}");
    assert!(text.contains("m=audio 20000 RTP/AVP 0 101\r\n"), "{text}");
    assert!(text.contains("a=fmtp:101 0-16\r\n"), "{text}");
    assert!(text.contains("a=sendrecv\r\n"), "{text}");
    // The answer parses back to itself.
    assert_eq!(SessionDescription::parse(&text).unwrap(), ans);
}

#[test]
fn offerers_codec_order_wins_among_what_we_support() {
    let offer = sdp("m=audio 4000 RTP/AVP 18 9 0 8\r\na=rtpmap:18 G729/8000\r\n");
    let (_, s) = answer_with(&offer, &Capabilities::default()).unwrap();
    assert_eq!(s.send.codec, Codec::G722);
    let only_alaw = Capabilities {
        codecs: vec![Codec::Pcma],
        ..Capabilities::default()
    };
    let (ans, s) = answer_with(&offer, &only_alaw).unwrap();
    assert_eq!(s.send.pt, 8);
    assert_eq!(ans.media[0].formats, ["8"]);
}

#[test]
fn opus_on_a_dynamic_payload_type_with_48k_dtmf() {
    let offer = sdp("m=audio 4000 RTP/AVP 96 0 97 98\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:97 telephone-event/8000\r\na=rtpmap:98 telephone-event/48000\r\n");
    let (ans, s) = answer_with(&offer, &Capabilities::default()).unwrap();
    assert_eq!(
        s.send,
        AudioFormat {
            pt: 96,
            codec: Codec::Opus
        }
    );
    assert_eq!(s.dtmf_send.unwrap().pt, 98);
    let m = &ans.media[0];
    assert_eq!(m.rtpmap(96).unwrap().channels, Some(2));
    assert_eq!(m.rtpmap(98).unwrap().clock_rate, 48000);
    assert!(m.fmtp(96).unwrap().contains("useinbandfec=1"));
}

#[test]
fn telephone_event_of_another_clock_is_still_used() {
    let offer = sdp("m=audio 4000 RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n");
    let (_, s) = answer_with(&offer, &Capabilities::default()).unwrap();
    assert_eq!(s.dtmf_send.unwrap().clock_rate, 8000);
}

#[test]
fn packetisation_follows_ptime_within_maxptime() {
    let offer = sdp("m=audio 4000 RTP/AVP 8\r\na=ptime:30\r\n");
    let (ans, s) = answer_with(&offer, &Capabilities::default()).unwrap();
    assert_eq!(s.ptime, 30);
    assert_eq!(ans.media[0].ptime(), Some(30));
    let offer = sdp("m=audio 4000 RTP/AVP 8\r\na=ptime:60\r\na=maxptime:40\r\n");
    assert_eq!(
        answer_with(&offer, &Capabilities::default())
            .unwrap()
            .1
            .ptime,
        40
    );
    let offer = sdp("m=audio 4000 RTP/AVP 8\r\na=ptime:25\r\n");
    assert_eq!(
        answer_with(&offer, &Capabilities::default())
            .unwrap()
            .1
            .ptime,
        20
    );
    let offer = sdp("m=audio 4000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=ptime:30\r\n");
    assert_eq!(
        answer_with(&offer, &Capabilities::default())
            .unwrap()
            .1
            .ptime,
        20
    );
}

#[test]
fn hold_and_resume_mirror_the_direction() {
    let cases = [
        ("a=sendonly\r\n", Direction::RecvOnly),
        ("a=recvonly\r\n", Direction::SendOnly),
        ("a=inactive\r\n", Direction::Inactive),
        ("", Direction::SendRecv),
    ];
    for (attr, want) in cases {
        let offer = sdp(&format!("m=audio 4000 RTP/AVP 0\r\n{attr}"));
        let (ans, s) = answer_with(&offer, &Capabilities::default()).unwrap();
        assert_eq!(s.direction, want, "{attr}");
        assert_eq!(ans.direction_of(&ans.media[0]), want);
    }
    // RFC 2543 hold: a zero connection address.
    let offer = SessionDescription::parse(
        "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
    )
    .unwrap();
    let (_, s) = answer_with(&offer, &Capabilities::default()).unwrap();
    assert_eq!((s.remote_rtp, s.remote_rtcp), (None, None));
    // Our own wish limits the answer: on hold we only send.
    let mut ours = local();
    ours.direction = Direction::SendOnly;
    let offer = sdp("m=audio 4000 RTP/AVP 0\r\n");
    let (_, s) = answer(&offer, &Capabilities::default(), &ours, KEY_A).unwrap();
    assert_eq!(s.direction, Direction::SendOnly);
}

#[test]
fn video_and_extra_sections_are_rejected_in_place() {
    let offer = sdp("m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 0 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 8\r\nm=audio 4004 RTP/AVP 0\r\n");
    let (ans, s) = answer_with(&offer, &Capabilities::default()).unwrap();
    assert_eq!(s.index, 2);
    assert_eq!(ans.media.len(), 4);
    let ports: Vec<u16> = ans.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, 0, 20000, 0]);
    assert_eq!(ans.media[0].kind, "video");
    assert_eq!(ans.media[0].formats, ["96"]);
}

#[test]
fn sdes_srtp_per_policy() {
    let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    let savp = sdp(&format!(
        "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AEAD_AES_256_GCM {key}\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 {key}\r\n"
    ));
    let (ans, s) = answer_with(&savp, &Capabilities::default()).unwrap();
    let keys = s.srtp.unwrap();
    assert_eq!(keys.suite, SrtpSuite::AesCm128HmacSha1_32);
    assert_eq!(keys.local, KEY_A);
    assert_eq!(&keys.remote[..4], b"=-n@");
    let m = &ans.media[0];
    assert_eq!(m.proto, "RTP/SAVP");
    let mine = Crypto::parse(m.attr("crypto").unwrap()).unwrap();
    assert_eq!(
        (mine.tag, mine.suite, mine.key),
        (2, SrtpSuite::AesCm128HmacSha1_32, KEY_A)
    );

    let off = Capabilities {
        srtp: SrtpPolicy::Off,
        ..Capabilities::default()
    };
    assert_eq!(answer_with(&savp, &off), Err(NegotiationError::SrtpOff));

    // Best effort: keys on a plain profile are taken when allowed, ignored when off.
    let best_effort = sdp(&format!(
        "m=audio 4000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 {key}\r\n"
    ));
    assert!(answer_with(&best_effort, &Capabilities::default())
        .unwrap()
        .1
        .srtp
        .is_some());
    let (ans, s) = answer_with(&best_effort, &off).unwrap();
    assert!(s.srtp.is_none() && ans.media[0].attr("crypto").is_none());

    let require = Capabilities {
        srtp: SrtpPolicy::Require,
        ..Capabilities::default()
    };
    let plain = sdp("m=audio 4000 RTP/AVP 0\r\n");
    assert_eq!(
        answer_with(&plain, &require),
        Err(NegotiationError::SrtpRequired)
    );
    assert!(answer_with(&best_effort, &require)
        .unwrap()
        .1
        .srtp
        .is_some());

    let unusable = sdp(&format!(
        "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AEAD_AES_256_GCM {key}\r\n"
    ));
    assert_eq!(
        answer_with(&unusable, &Capabilities::default()),
        Err(NegotiationError::NoUsableKey)
    );
}

#[test]
fn unacceptable_offers_say_why() {
    let e = answer_with(
        &sdp("m=audio 4000 RTP/AVP 18\r\n"),
        &Capabilities::default(),
    )
    .unwrap_err();
    assert_eq!(e, NegotiationError::NoCommonCodec);
    assert_eq!(e.sip_status(), 488);
    let dtls = sdp("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n");
    assert_eq!(
        answer_with(&dtls, &Capabilities::default()),
        Err(NegotiationError::UnsupportedProfile)
    );
    assert_eq!(
        answer_with(
            &sdp("m=video 4000 RTP/AVP 96\r\n"),
            &Capabilities::default()
        ),
        Err(NegotiationError::NoAudio)
    );
}

#[test]
fn rtcp_mux_and_explicit_rtcp_port() {
    let offer = sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp-mux\r\n");
    let (ans, s) = answer_with(&offer, &Capabilities::default()).unwrap();
    assert!(s.rtcp_mux && ans.media[0].has("rtcp-mux"));
    assert_eq!(s.remote_rtcp, addr("198.51.100.7:4000"));
    let offer = sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp:4444 IN IP4 203.0.113.1\r\n");
    assert_eq!(
        answer_with(&offer, &Capabilities::default())
            .unwrap()
            .1
            .remote_rtcp,
        addr("203.0.113.1:4444")
    );
}

#[test]
fn comfort_noise_is_accepted_when_offered() {
    let offer = sdp("m=audio 4000 RTP/AVP 8 13\r\n");
    let (ans, s) = answer_with(&offer, &Capabilities::default()).unwrap();
    assert_eq!(s.comfort_noise, Some(13));
    assert_eq!(ans.media[0].formats, ["8", "13"]);
}

#[test]
fn our_offer_answered_by_a_peer_agrees_on_both_sides() {
    let keys = [KEY_A, KEY_B];
    for policy in [SrtpPolicy::Off, SrtpPolicy::Allow, SrtpPolicy::Require] {
        let caps = Capabilities {
            srtp: policy,
            ..Capabilities::default()
        };
        let ours = offer(&caps, &local(), &keys);
        let text = ours.to_string();
        // The peer only does G.722 and PCMU and picks the 32-bit tag when it can.
        let peer_caps = Capabilities {
            codecs: vec![Codec::Pcmu, Codec::G722],
            ..caps.clone()
        };
        let peer_local = Local {
            ip: "198.51.100.7".parse().unwrap(),
            rtp_port: 30000,
            session_id: 9,
            version: 1,
            direction: Direction::SendRecv,
        };
        let parsed = SessionDescription::parse(&text).unwrap();
        let (their_answer, theirs) =
            answer(&parsed, &peer_caps, &peer_local, [3; KEY_LEN]).unwrap();
        let mine = accept_answer(&ours, &their_answer, &caps, &keys).unwrap();
        assert_eq!(mine.send.codec, Codec::G722, "{policy:?}");
        assert_eq!(theirs.send.codec, Codec::G722);
        assert_eq!(mine.remote_rtp, addr("198.51.100.7:30000"));
        assert_eq!(theirs.remote_rtp, addr("192.0.2.10:20000"));
        assert_eq!(mine.dtmf_send.unwrap().pt, 101);
        match policy {
            SrtpPolicy::Off => assert!(mine.srtp.is_none() && theirs.srtp.is_none()),
            _ => {
                let (m, t) = (mine.srtp.unwrap(), theirs.srtp.unwrap());
                assert_eq!((m.local, m.remote), (t.remote, t.local), "{policy:?}");
                assert_eq!(m.suite, t.suite);
            }
        }
        let expected_proto = if policy == SrtpPolicy::Require {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        };
        assert_eq!(ours.media[0].proto, expected_proto);
    }
}

#[test]
fn a_peer_sending_on_its_own_answers_numbers_is_understood() {
    let caps = Capabilities::default();
    let keys = [KEY_A, KEY_B];
    let ours = offer(&caps, &local(), &keys);
    let opus_pt = ours.media[0]
        .attrs("rtpmap")
        .find_map(|r| r.strip_suffix(" opus/48000/2"))
        .and_then(|pt| pt.parse::<u8>().ok())
        .expect("we offer Opus");
    assert_ne!(opus_pt, 96);
    // Opus answered as 96; and 0 (PCMU), whose number is ours too.
    let theirs = sdp("m=audio 4000 RTP/AVP 96 0\r\na=rtpmap:96 opus/48000/2\r\n");
    let mine = accept_answer(&ours, &theirs, &caps, &keys).unwrap();
    assert_eq!((mine.send.pt, mine.send.codec), (96, Codec::Opus));
    let received: Vec<(u8, Codec)> = mine.receive.iter().map(|f| (f.pt, f.codec)).collect();
    assert!(received.contains(&(opus_pt, Codec::Opus)), "{received:?}");
    assert!(received.contains(&(96, Codec::Opus)), "{received:?}");
    assert_eq!(
        received.iter().filter(|(pt, _)| *pt == 0).count(),
        1,
        "{received:?}"
    );
    // A number of the answer that means something else in our offer keeps our meaning.
    let te = ours.media[0]
        .attrs("rtpmap")
        .find_map(|r| r.strip_suffix(" telephone-event/8000"))
        .and_then(|pt| pt.parse::<u8>().ok())
        .expect("we offer telephone-event");
    let clash = sdp(&format!(
        "m=audio 4000 RTP/AVP {te}\r\na=rtpmap:{te} opus/48000/2\r\n"
    ));
    let mine = accept_answer(&ours, &clash, &caps, &keys).unwrap();
    assert!(
        mine.receive.iter().all(|f| f.pt != te),
        "{:?}",
        mine.receive
    );
}

#[test]
fn answers_that_do_not_fit_our_offer_are_refused() {
    let caps = Capabilities::default();
    let keys = [KEY_A, KEY_B];
    let ours = offer(&caps, &local(), &keys);
    let two = sdp("m=audio 4000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n");
    assert!(matches!(
        accept_answer(&ours, &two, &caps, &keys),
        Err(NegotiationError::AnswerMismatch(_))
    ));
    let rejected = sdp("m=audio 0 RTP/AVP 0\r\n");
    assert_eq!(
        accept_answer(&ours, &rejected, &caps, &keys),
        Err(NegotiationError::NoCommonCodec)
    );
    let foreign = sdp("m=audio 4000 RTP/AVP 18\r\n");
    assert_eq!(
        accept_answer(&ours, &foreign, &caps, &keys),
        Err(NegotiationError::NoCommonCodec)
    );
    let bad_tag = sdp("m=audio 4000 RTP/AVP 0\r\na=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n");
    assert!(matches!(
        accept_answer(&ours, &bad_tag, &caps, &keys),
        Err(NegotiationError::AnswerMismatch(_))
    ));
}

#[test]
fn same_version_detects_a_repeated_description() {
    let a = sdp("m=audio 4000 RTP/AVP 0\r\n");
    let mut b = a.clone();
    assert!(same_version(&a, &b));
    b.origin.version = "2".into();
    assert!(!same_version(&a, &b));
}
