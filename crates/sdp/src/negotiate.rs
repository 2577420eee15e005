//! RFC 3264 offer/answer for the phone leg: which codec each side sends, where, how often,
//! with which DTMF and comfort-noise payload types, whether SRTP keys were exchanged, and in
//! which direction media flows.
//!
//! One audio stream is negotiated per call; every other media section (a video line, a second
//! audio line) is answered as rejected in its place, as RFC 3264 §6 requires, and kept in the
//! model for the video work to come.

use std::net::{IpAddr, SocketAddr};

use crate::crypto::{Crypto, SrtpSuite, KEY_LEN};
use crate::model::{Attribute, Connection, Direction, Media, Origin, SessionDescription};

/// Audio codecs spoken on the phone leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl Codec {
    /// The encoding name of its rtpmap.
    pub fn encoding(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }

    /// The RTP clock rate. G.722 samples at 16 kHz but is clocked at 8 kHz (RFC 3551 §4.5.2).
    pub fn rtp_clock(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 8_000,
        }
    }

    /// The audio sample rate the codec works at.
    pub fn sample_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8_000,
            Codec::G722 => 16_000,
            Codec::Opus => 48_000,
        }
    }

    /// The payload type phonebridge uses in its own offers.
    pub fn default_pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
            Codec::Opus => 111,
        }
    }

    fn static_pt(self) -> Option<u8> {
        (self != Codec::Opus).then(|| self.default_pt())
    }

    fn channels(self) -> Option<u8> {
        (self == Codec::Opus).then_some(2)
    }

    fn fmtp(self) -> Option<&'static str> {
        (self == Codec::Opus).then_some("minptime=10;useinbandfec=1")
    }

    /// Which codec a payload type of a section stands for, among `allowed`.
    fn of(media: &Media, pt: u8, allowed: &[Codec]) -> Option<Codec> {
        match media.rtpmap(pt) {
            Some(map) => allowed.iter().copied().find(|c| {
                c.encoding().eq_ignore_ascii_case(map.encoding) && c.rtp_clock() == map.clock_rate
            }),
            // Static payload types need no rtpmap (RFC 3551).
            None => allowed.iter().copied().find(|c| c.static_pt() == Some(pt)),
        }
    }
}

/// A payload type bound to a codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    pub pt: u8,
    pub codec: Codec,
}

/// An RFC 4733 telephone-event payload type and its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelephoneEvent {
    pub pt: u8,
    pub clock_rate: u32,
}

/// Whether a leg uses SRTP (per trunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpPolicy {
    /// Plain RTP only: secure offers are refused.
    Off,
    /// Offer plain RTP carrying keys (best effort), accept either.
    #[default]
    Allow,
    /// SRTP only (RTP/SAVP); plain offers are refused.
    Require,
}

/// What phonebridge is able and willing to do on a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Codecs, most preferred first (the order of our own offers).
    pub codecs: Vec<Codec>,
    /// Packetisation we send with unless the peer asks otherwise, in ms.
    pub ptime: u32,
    pub srtp: SrtpPolicy,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            codecs: vec![Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma],
            ptime: 20,
            srtp: SrtpPolicy::Allow,
        }
    }
}

/// Our end of the stream: where we listen and the description's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub ip: IpAddr,
    pub rtp_port: u16,
    pub session_id: u64,
    /// The `o=` version; raise it for every new description in a dialog.
    pub version: u64,
    /// The direction we would like (sendrecv, or e.g. sendonly to put the phone on hold).
    pub direction: Direction,
}

/// SRTP keys agreed for the stream.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub suite: SrtpSuite,
    /// Protects what we send.
    pub local: [u8; KEY_LEN],
    /// Protects what the peer sends.
    pub remote: [u8; KEY_LEN],
}

impl std::fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The outcome of an offer/answer exchange: everything the media layer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSession {
    /// Index of the audio section in the descriptions.
    pub index: usize,
    /// Where to send RTP; `None` when the peer gave no address (`0.0.0.0` hold).
    pub remote_rtp: Option<SocketAddr>,
    /// Where to send RTCP (the RTP address when multiplexed).
    pub remote_rtcp: Option<SocketAddr>,
    pub rtcp_mux: bool,
    /// What we send.
    pub send: AudioFormat,
    /// Every format the peer may send us.
    pub receive: Vec<AudioFormat>,
    /// The telephone-event type we send DTMF with.
    pub dtmf_send: Option<TelephoneEvent>,
    /// Telephone-event types the peer may send.
    pub dtmf_receive: Vec<TelephoneEvent>,
    /// Comfort-noise payload type (RFC 3389), when agreed.
    pub comfort_noise: Option<u8>,
    /// Packetisation we send with, in ms.
    pub ptime: u32,
    /// Our direction: whether we send, receive, both or neither.
    pub direction: Direction,
    pub srtp: Option<SrtpKeys>,
}

/// Why no audio stream could be agreed. Every case is answered 488 on the SIP leg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("no audio stream offered")]
    NoAudio,
    #[error("no audio codec in common")]
    NoCommonCodec,
    #[error("the offer is not secure and SRTP is required")]
    SrtpRequired,
    #[error("the offer requires SRTP, which is off")]
    SrtpOff,
    #[error("no usable SRTP key offered")]
    NoUsableKey,
    #[error("transport profile not supported")]
    UnsupportedProfile,
    #[error("the answer does not match the offer: {0}")]
    AnswerMismatch(&'static str),
}

impl NegotiationError {
    /// The SIP status that reports it (RFC 3261 §21.4.26).
    pub fn sip_status(&self) -> u16 {
        488
    }
}

const DTMF_FMTP: &str = "0-16";
const TE_PT_8K: u8 = 101;
const TE_PT_48K: u8 = 110;

/// Answers `offer`. `key` is fresh key material, used only when SRTP is agreed.
pub fn answer(
    offer: &SessionDescription,
    caps: &Capabilities,
    local: &Local,
    key: [u8; KEY_LEN],
) -> Result<(SessionDescription, AudioSession), NegotiationError> {
    let mut first_error = None;
    let mut chosen = None;
    for (index, m) in offer.media.iter().enumerate() {
        if !m.kind.eq_ignore_ascii_case("audio") || m.is_rejected() {
            continue;
        }
        match answer_audio(offer, index, caps, local, key) {
            Ok(ok) => {
                chosen = Some(ok);
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some((section, session)) = chosen else {
        return Err(first_error.unwrap_or(NegotiationError::NoAudio));
    };
    let mut sdp = skeleton(local);
    let mut section = Some(section);
    for (index, m) in offer.media.iter().enumerate() {
        let answered = if index == session.index {
            section.take()
        } else {
            None
        };
        sdp.media.push(answered.unwrap_or_else(|| rejected(m)));
    }
    Ok((sdp, session))
}

fn answer_audio(
    offer: &SessionDescription,
    index: usize,
    caps: &Capabilities,
    local: &Local,
    key: [u8; KEY_LEN],
) -> Result<(Media, AudioSession), NegotiationError> {
    let m = &offer.media[index];
    let secure_profile = profile(&m.proto)?;
    let remote_crypto = if secure_profile {
        if caps.srtp == SrtpPolicy::Off {
            return Err(NegotiationError::SrtpOff);
        }
        Some(first_usable_crypto(m).ok_or(NegotiationError::NoUsableKey)?)
    } else {
        match caps.srtp {
            SrtpPolicy::Off => None,
            // Best-effort SRTP: keys offered on a plain profile are taken when usable.
            SrtpPolicy::Allow => first_usable_crypto(m),
            SrtpPolicy::Require => {
                Some(first_usable_crypto(m).ok_or(NegotiationError::SrtpRequired)?)
            }
        }
    };

    let send = m
        .payload_types()
        .find_map(|pt| Codec::of(m, pt, &caps.codecs).map(|codec| AudioFormat { pt, codec }))
        .ok_or(NegotiationError::NoCommonCodec)?;
    let offered_te = telephone_events(m);
    let dtmf = offered_te
        .iter()
        .find(|t| t.clock_rate == send.codec.rtp_clock())
        .or(offered_te.first())
        .copied();
    let comfort_noise = m.payload_types().find(|&pt| is_comfort_noise(m, pt));
    let ptime = send_ptime(m, caps.ptime, send.codec);
    let direction = offer.direction_of(m).reversed().intersect(local.direction);
    let (remote_rtp, remote_rtcp, rtcp_mux) = remote_addresses(offer, m);

    let mut formats = vec![send.pt.to_string()];
    let mut attributes = vec![rtpmap(send.pt, send.codec)];
    if let Some(f) = send.codec.fmtp() {
        attributes.push(Attribute::new("fmtp", format!("{} {f}", send.pt)));
    }
    if let Some(te) = dtmf {
        formats.push(te.pt.to_string());
        attributes.push(te_rtpmap(te));
        attributes.push(Attribute::new("fmtp", format!("{} {DTMF_FMTP}", te.pt)));
    }
    if let Some(cn) = comfort_noise {
        formats.push(cn.to_string());
        attributes.push(Attribute::new("rtpmap", format!("{cn} CN/8000")));
    }
    attributes.push(Attribute::new("ptime", ptime.to_string()));
    if rtcp_mux {
        attributes.push(Attribute::flag("rtcp-mux"));
    }
    let srtp = remote_crypto.map(|c| {
        let mine = Crypto {
            tag: c.tag,
            suite: c.suite,
            key,
        };
        attributes.push(Attribute::new("crypto", mine.value()));
        SrtpKeys {
            suite: c.suite,
            local: key,
            remote: c.key,
        }
    });
    attributes.push(Attribute::flag(direction.as_str()));

    let section = Media {
        kind: m.kind.clone(),
        port: local.rtp_port,
        port_count: None,
        proto: m.proto.clone(),
        formats,
        connection: None,
        extra: Vec::new(),
        attributes,
    };
    let session = AudioSession {
        index,
        remote_rtp,
        remote_rtcp,
        rtcp_mux,
        send,
        receive: vec![send],
        dtmf_send: dtmf,
        dtmf_receive: dtmf.into_iter().collect(),
        comfort_noise,
        ptime,
        direction,
        srtp,
    };
    Ok((section, session))
}

/// Our offer: one audio section with every codec of `caps`, telephone-event at 8 and 48 kHz
/// as the codecs need, and SRTP keys per the policy (`keys` holds one per offered suite).
pub fn offer(caps: &Capabilities, local: &Local, keys: &[[u8; KEY_LEN]; 2]) -> SessionDescription {
    let mut formats = Vec::new();
    let mut attributes = Vec::new();
    for &c in &caps.codecs {
        formats.push(c.default_pt().to_string());
        attributes.push(rtpmap(c.default_pt(), c));
        if let Some(f) = c.fmtp() {
            attributes.push(Attribute::new("fmtp", format!("{} {f}", c.default_pt())));
        }
    }
    let clocks = [(8_000, TE_PT_8K), (48_000, TE_PT_48K)];
    for (clock, pt) in clocks {
        if caps.codecs.iter().any(|c| c.rtp_clock() == clock) {
            let te = TelephoneEvent {
                pt,
                clock_rate: clock,
            };
            formats.push(pt.to_string());
            attributes.push(te_rtpmap(te));
            attributes.push(Attribute::new("fmtp", format!("{pt} {DTMF_FMTP}")));
        }
    }
    attributes.push(Attribute::new("ptime", caps.ptime.to_string()));
    if caps.srtp != SrtpPolicy::Off {
        for (i, (suite, key)) in SrtpSuite::ALL.into_iter().zip(keys).enumerate() {
            let c = Crypto {
                tag: i as u32 + 1,
                suite,
                key: *key,
            };
            attributes.push(Attribute::new("crypto", c.value()));
        }
    }
    attributes.push(Attribute::flag(local.direction.as_str()));
    let mut sdp = skeleton(local);
    sdp.media.push(Media {
        kind: "audio".into(),
        port: local.rtp_port,
        port_count: None,
        proto: if caps.srtp == SrtpPolicy::Require {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        }
        .into(),
        formats,
        connection: None,
        extra: Vec::new(),
        attributes,
    });
    sdp
}

/// Reads the answer to our `offer` (made with `caps` and `keys`).
pub fn accept_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
    caps: &Capabilities,
    keys: &[[u8; KEY_LEN]; 2],
) -> Result<AudioSession, NegotiationError> {
    let mismatch = NegotiationError::AnswerMismatch;
    if answer.media.len() != offer.media.len() {
        return Err(mismatch("number of media sections"));
    }
    let (index, ours) = offer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.kind == "audio")
        .ok_or(NegotiationError::NoAudio)?;
    let m = &answer.media[index];
    if m.is_rejected() {
        return Err(NegotiationError::NoCommonCodec);
    }
    let secure_profile = profile(&m.proto)?;
    let offered: Vec<AudioFormat> = ours
        .payload_types()
        .filter_map(|pt| Codec::of(ours, pt, &caps.codecs).map(|codec| AudioFormat { pt, codec }))
        .collect();
    // The answerer sends with the first format it lists; any format both list may arrive.
    let answered: Vec<AudioFormat> = m
        .payload_types()
        .filter_map(|pt| {
            let codec = Codec::of(m, pt, &caps.codecs)?;
            offered
                .iter()
                .any(|o| o.codec == codec)
                .then_some(AudioFormat { pt, codec })
        })
        .collect();
    let send = *answered.first().ok_or(NegotiationError::NoCommonCodec)?;
    // We receive on the numbers we offered; a peer that sends on the numbers of its own
    // answer instead (RFC 3264 §6.1 only says SHOULD keep them) is understood too, where its
    // number does not already mean something else to us.
    let ours_taken = |pt: u8| {
        offered.iter().any(|o| o.pt == pt) || telephone_events(ours).iter().any(|t| t.pt == pt)
    };
    let mut receive: Vec<AudioFormat> = offered
        .iter()
        .copied()
        .filter(|o| answered.iter().any(|a| a.codec == o.codec))
        .collect();
    receive.extend(answered.iter().filter(|a| !ours_taken(a.pt)));
    let te_answer = telephone_events(m);
    let dtmf_send = te_answer
        .iter()
        .find(|t| t.clock_rate == send.codec.rtp_clock())
        .or(te_answer.first())
        .copied();
    let dtmf_receive = telephone_events(ours)
        .into_iter()
        .filter(|t| te_answer.iter().any(|a| a.clock_rate == t.clock_rate))
        .collect();
    let srtp = match m.attrs("crypto").find_map(Crypto::parse) {
        Some(theirs) => {
            let slot = (theirs.tag as usize)
                .checked_sub(1)
                .filter(|&i| i < keys.len() && caps.srtp != SrtpPolicy::Off)
                .ok_or(mismatch("crypto tag we did not offer"))?;
            if SrtpSuite::ALL[slot] != theirs.suite {
                return Err(mismatch("crypto suite differs from the offer's"));
            }
            Some(SrtpKeys {
                suite: theirs.suite,
                local: keys[slot],
                remote: theirs.key,
            })
        }
        None if secure_profile || caps.srtp == SrtpPolicy::Require => {
            return Err(NegotiationError::SrtpRequired)
        }
        None => None,
    };
    let (remote_rtp, remote_rtcp, rtcp_mux) = remote_addresses(answer, m);
    Ok(AudioSession {
        index,
        remote_rtp,
        remote_rtcp,
        rtcp_mux,
        send,
        receive,
        dtmf_send,
        dtmf_receive,
        comfort_noise: m.payload_types().find(|&pt| is_comfort_noise(m, pt)),
        ptime: send_ptime(m, caps.ptime, send.codec),
        direction: answer.direction_of(m).reversed(),
        srtp,
    })
}

/// Whether two descriptions from the same peer are the same version (RFC 3264 §8: an
/// unchanged `o=` version means an unchanged description).
pub fn same_version(a: &SessionDescription, b: &SessionDescription) -> bool {
    a.origin == b.origin
}

/// `true` for SAVP profiles, `false` for AVP ones; an error for anything else (DTLS, …).
fn profile(proto: &str) -> Result<bool, NegotiationError> {
    match proto.to_ascii_uppercase().as_str() {
        "RTP/AVP" | "RTP/AVPF" => Ok(false),
        "RTP/SAVP" | "RTP/SAVPF" => Ok(true),
        _ => Err(NegotiationError::UnsupportedProfile),
    }
}

fn first_usable_crypto(m: &Media) -> Option<Crypto> {
    m.attrs("crypto").find_map(Crypto::parse)
}

fn telephone_events(m: &Media) -> Vec<TelephoneEvent> {
    m.payload_types()
        .filter_map(|pt| {
            let map = m.rtpmap(pt)?;
            map.encoding
                .eq_ignore_ascii_case("telephone-event")
                .then_some(TelephoneEvent {
                    pt,
                    clock_rate: map.clock_rate,
                })
        })
        .collect()
}

fn is_comfort_noise(m: &Media, pt: u8) -> bool {
    match m.rtpmap(pt) {
        Some(map) => map.encoding.eq_ignore_ascii_case("CN") && map.clock_rate == 8_000,
        None => pt == 13,
    }
}

/// The packetisation to send with: the peer's `ptime` when the codec can do it, never above
/// its `maxptime`.
fn send_ptime(m: &Media, default: u32, codec: Codec) -> u32 {
    let fits = |ms: u32| match codec {
        Codec::Opus => matches!(ms, 10 | 20 | 40 | 60),
        _ => ms.is_multiple_of(10) && (10..=60).contains(&ms),
    };
    let mut ptime = m.ptime().filter(|&p| fits(p)).unwrap_or(default);
    if let Some(max) = m.maxptime() {
        while ptime > max && ptime > 10 {
            ptime -= 10;
        }
        if !fits(ptime) {
            ptime = 20.min(max.max(10));
        }
    }
    ptime
}

fn remote_addresses(
    sd: &SessionDescription,
    m: &Media,
) -> (Option<SocketAddr>, Option<SocketAddr>, bool) {
    let ip = sd
        .connection_of(m)
        .and_then(Connection::ip)
        .filter(|ip| !ip.is_unspecified());
    let mux = m.has("rtcp-mux");
    let rtp = ip.map(|ip| SocketAddr::new(ip, m.port));
    let rtcp = if mux {
        rtp
    } else {
        match m.rtcp() {
            Some((port, conn)) => conn
                .as_ref()
                .and_then(Connection::ip)
                .or(ip)
                .map(|ip| SocketAddr::new(ip, port)),
            None => ip.map(|ip| SocketAddr::new(ip, m.port.wrapping_add(1))),
        }
    };
    (rtp, rtcp, mux)
}

fn rtpmap(pt: u8, c: Codec) -> Attribute {
    let mut v = format!("{pt} {}/{}", c.encoding(), c.rtp_clock());
    if let Some(ch) = c.channels() {
        v.push_str(&format!("/{ch}"));
    }
    Attribute::new("rtpmap", v)
}

fn te_rtpmap(te: TelephoneEvent) -> Attribute {
    Attribute::new(
        "rtpmap",
        format!("{} telephone-event/{}", te.pt, te.clock_rate),
    )
}

fn skeleton(local: &Local) -> SessionDescription {
    let conn = Connection::from_ip(local.ip);
    SessionDescription {
        origin: Origin {
            username: "phonebridge".into(),
            session_id: local.session_id.to_string(),
            version: local.version.to_string(),
            address: conn.clone(),
        },
        name: "phonebridge".into(),
        connection: Some(conn),
        timing: vec!["0 0".into()],
        extra: Vec::new(),
        attributes: Vec::new(),
        media: Vec::new(),
    }
}

/// A section answered as rejected: port 0, same media and profile, its formats kept.
fn rejected(m: &Media) -> Media {
    Media {
        kind: m.kind.clone(),
        port: 0,
        port_count: None,
        proto: m.proto.clone(),
        formats: if m.formats.is_empty() {
            vec!["0".into()]
        } else {
            m.formats.clone()
        },
        connection: None,
        extra: Vec::new(),
        attributes: Vec::new(),
    }
}
