//! The SFU: one str0m peer connection per published stream and one per subscription, as
//! OpenVidu/Kurento does, all on one UDP port with ICE-lite. Media is forwarded as RTP
//! (str0m's RTP mode): each packet a publisher sends is written to every subscription of its
//! stream with the subscriber's payload type for the codec. Keyframe requests (PLI/FIR) from
//! subscribers go to the publisher, and a new subscription asks for one at once, so late
//! joiners see video within a frame interval. str0m answers NACKs from its send buffers
//! (video is nackable) and keeps the browsers' bandwidth estimation fed.
//!
//! Sans-IO like everything under it: datagrams and time in, datagrams out.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use phonebridge_sdp::SessionDescription;
use serde_json::Value;
use str0m::media::{KeyframeRequestKind, Mid, Pt};
use str0m::net::{Protocol, Receive};

use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::rooms::Output as RoomsOutput;
use crate::rpc::{code, MediaHandler, RpcError};

/// A datagram to send from `from` (one of our sockets) to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// Which peer connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// The publisher peer connection of a participant.
    Pub(String),
    /// A subscription: (subscriber, publisher).
    Sub(String, String),
}

/// What the negotiated SDP says about one m-section.
#[derive(Debug, Clone)]
struct Section {
    mid: String,
    video: bool,
    /// Payload type → lower-case codec name.
    codecs: Vec<(u8, String)>,
}

struct Peer {
    rtc: Rtc,
    sections: Vec<Section>,
    timeout: Instant,
    connected: bool,
}

impl Peer {
    /// Payload type → (is video, codec) for a packet this peer sent.
    fn codec_of(&self, pt: u8) -> Option<(bool, &str)> {
        self.sections.iter().find_map(|s| {
            s.codecs
                .iter()
                .find(|(p, _)| *p == pt)
                .map(|(_, c)| (s.video, c.as_str()))
        })
    }

    /// The (mid, payload type) this peer receives `codec` on.
    fn route_for(&self, video: bool, codec: &str) -> Option<(&str, u8)> {
        self.sections
            .iter()
            .filter(|s| s.video == video)
            .find_map(|s| {
                s.codecs
                    .iter()
                    .find(|(_, c)| c == codec)
                    .map(|(p, _)| (s.mid.as_str(), *p))
            })
    }

    fn video_mid(&self) -> Option<&str> {
        self.sections
            .iter()
            .find(|s| s.video)
            .map(|s| s.mid.as_str())
    }
}

/// A packet of a publisher's audio copied out for the phones that hear it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TappedAudio {
    /// The publisher's connection id.
    pub publisher: String,
    /// The packet's extended sequence number (gaps and repeats show loss and duplicates).
    pub seq: u64,
    /// The Opus payload (shared by every phone that hears it).
    pub payload: std::sync::Arc<[u8]>,
}

/// A publisher that is not a browser (a phone): its Opus packets are written in by the
/// gateway rather than received over a peer connection.
#[derive(Debug, Clone, Default)]
struct LocalPublisher {
    seq: u64,
    /// Loss each subscriber reports (RTCP receiver reports), as a fraction held at its
    /// recent peak: a report of more raises it at once, each report of less halves it.
    loss: HashMap<String, f32>,
}

/// How often str0m reports a subscription's send statistics (and its receiver reports).
const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// What is left of a held loss figure at a report of less. Browsers report audio loss about
/// every five seconds: a burst of 10 % keeps FEC on for some 20 seconds of clean reports.
const LOSS_DECAY: f32 = 0.5;

/// One packet to forward, whoever sent it.
struct Packet {
    seq: SeqNo,
    ts: u32,
    time: Instant,
    marker: bool,
    payload: std::sync::Arc<[u8]>,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub publishers: usize,
    pub subscriptions: usize,
    pub packets_in: u64,
    pub packets_forwarded: u64,
    pub keyframe_requests: u64,
    pub unroutable_datagrams: u64,
}

/// The SFU. Drain rule: after every input, drain [`Sfu::poll_datagram`]; call
/// [`Sfu::handle_timeout`] at [`Sfu::poll_timeout`].
pub struct Sfu {
    /// Our sockets as candidates: (socket address, address advertised to browsers).
    sockets: Vec<(SocketAddr, SocketAddr)>,
    peers: HashMap<Key, Peer>,
    /// Where each remote address's traffic goes, once known.
    routes: HashMap<SocketAddr, Key>,
    /// Candidates that arrived before their peer connection.
    early_candidates: HashMap<Key, Vec<Candidate>>,
    /// Publishers fed by the gateway (phones), by connection.
    local: HashMap<String, LocalPublisher>,
    /// Whether publishers' audio is copied out ([`Sfu::poll_audio`]).
    tap: bool,
    tapped: VecDeque<TappedAudio>,
    now: Instant,
    out: VecDeque<Datagram>,
    stats: SfuStats,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Sfu {
    /// An SFU answering on `sockets`: (local socket address, address to advertise).
    pub fn new(now: Instant, sockets: Vec<(SocketAddr, SocketAddr)>) -> Self {
        // One crypto provider for the process (aws-lc-rs, as for TLS).
        static INIT: std::sync::Once = std::sync::Once::new();
        INIT.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
        Sfu {
            sockets,
            peers: HashMap::new(),
            routes: HashMap::new(),
            early_candidates: HashMap::new(),
            local: HashMap::new(),
            tap: false,
            tapped: VecDeque::new(),
            now,
            out: VecDeque::new(),
            stats: SfuStats::default(),
        }
    }

    pub fn stats(&self) -> SfuStats {
        SfuStats {
            publishers: self
                .peers
                .keys()
                .filter(|k| matches!(k, Key::Pub(_)))
                .count()
                + self.local.len(),
            subscriptions: self
                .peers
                .keys()
                .filter(|k| matches!(k, Key::Sub(..)))
                .count(),
            ..self.stats
        }
    }

    /// Moves time forward (the signalling calls carry no time of their own).
    pub fn set_time(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    #[must_use]
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.out.pop_front()
    }

    /// Copies every publisher's audio out from now on (`true`), or stops (`false`).
    pub fn set_audio_tap(&mut self, on: bool) {
        self.tap = on;
        if !on {
            self.tapped.clear();
        }
    }

    /// The next packet of publisher audio copied out while the tap is on.
    #[must_use]
    pub fn poll_audio(&mut self) -> Option<TappedAudio> {
        self.tapped.pop_front()
    }

    /// Registers `connection` as a publisher fed by [`Sfu::write_local_audio`].
    pub fn add_local_publisher(&mut self, connection: &str) {
        self.local
            .insert(connection.to_owned(), LocalPublisher::default());
    }

    /// Whether `connection` publishes through [`Sfu::write_local_audio`] (until its stream or
    /// participant ends).
    #[must_use]
    pub fn is_local_publisher(&self, connection: &str) -> bool {
        self.local.contains_key(connection)
    }

    /// The loss, in percent, that the subscribers of local publisher `connection` see on
    /// its stream: the worst subscriber's recent figure (0 without subscribers or reports).
    #[must_use]
    pub fn local_loss_percent(&self, connection: &str) -> u8 {
        self.local.get(connection).map_or(0, |l| {
            let worst = l.loss.values().copied().fold(0.0, f32::max);
            (worst * 100.0).round() as u8
        })
    }

    /// One Opus packet (`ts` at 48 kHz) of a local publisher, forwarded to its subscribers.
    pub fn write_local_audio(&mut self, now: Instant, connection: &str, ts: u32, payload: &[u8]) {
        self.set_time(now);
        let Some(l) = self.local.get_mut(connection) else {
            return;
        };
        l.seq += 1;
        let packet = Packet {
            seq: SeqNo::from(l.seq),
            ts,
            time: self.now,
            marker: false,
            payload: payload.into(),
        };
        self.stats.packets_in += 1;
        self.forward(connection, false, "opus", &packet);
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers.values().map(|p| p.timeout).min()
    }

    /// A datagram arrived on our socket `local` from `source`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        source: SocketAddr,
        bytes: &[u8],
    ) {
        self.set_time(now);
        let Some(advertised) = self
            .sockets
            .iter()
            .find(|(l, _)| *l == local)
            .map(|(_, a)| *a)
        else {
            return;
        };
        let Ok(receive) = Receive::new(Protocol::Udp, source, advertised, bytes) else {
            self.stats.unroutable_datagrams += 1;
            return;
        };
        let input = Input::Receive(now, receive);
        let key = match self.routes.get(&source) {
            Some(k) if self.peers.get(k).is_some_and(|p| p.rtc.accepts(&input)) => k.clone(),
            _ => {
                let Some(k) = self
                    .peers
                    .iter()
                    .find(|(_, p)| p.rtc.accepts(&input))
                    .map(|(k, _)| k.clone())
                else {
                    self.stats.unroutable_datagrams += 1;
                    return;
                };
                self.routes.insert(source, k.clone());
                k
            }
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(error = %e, ?key, "peer connection failed");
            self.drop_peer(&key);
            return;
        }
        self.drive(&key);
    }

    /// Fires what is due; harmless when called early.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set_time(now);
        let due: Vec<Key> = self
            .peers
            .iter()
            .filter(|(_, p)| p.timeout <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(error = %e, ?key, "peer connection failed");
                self.drop_peer(&key);
                continue;
            }
            self.drive(&key);
        }
    }

    /// Tears down what the rooms ended (whoever ended it).
    pub fn on_rooms_output(&mut self, o: &RoomsOutput) {
        match o {
            RoomsOutput::StreamEnded { stream } => {
                if let Some(publisher) = publisher_of(stream) {
                    self.local.remove(publisher);
                    self.drop_peers_where(|k| match k {
                        Key::Pub(c) => c == publisher,
                        Key::Sub(_, p) => p == publisher,
                    });
                }
            }
            RoomsOutput::SubscriptionEnded { connection, stream } => {
                if let Some(publisher) = publisher_of(stream) {
                    self.drop_peer(&Key::Sub(connection.clone(), publisher.to_owned()));
                }
            }
            RoomsOutput::ParticipantGone { connection, .. } => {
                self.local.remove(connection);
                self.drop_peers_where(|k| match k {
                    Key::Pub(c) => c == connection,
                    Key::Sub(s, _) => s == connection,
                });
            }
            _ => {}
        }
    }

    fn drop_peers_where(&mut self, doomed: impl Fn(&Key) -> bool) {
        let keys: Vec<Key> = self.peers.keys().filter(|k| doomed(k)).cloned().collect();
        for k in keys {
            self.drop_peer(&k);
        }
    }

    fn drop_peer(&mut self, key: &Key) {
        if let Some(mut peer) = self.peers.remove(key) {
            peer.rtc.disconnect();
        }
        if let Key::Sub(subscriber, publisher) = key {
            if let Some(l) = self.local.get_mut(publisher) {
                l.loss.remove(subscriber);
            }
        }
        self.routes.retain(|_, k| k != key);
        self.early_candidates.remove(key);
    }

    /// A new peer connection answering `offer` with `video_codecs` enabled.
    fn negotiate(
        &mut self,
        key: Key,
        offer: &str,
        video_codecs: &[&str],
    ) -> Result<String, RpcError> {
        let sdp_offer = str0m::change::SdpOffer::from_sdp_string(offer).map_err(|e| {
            RpcError::new(code::MEDIA_SDP, format!("the SDP offer is not valid: {e}"))
        })?;
        let mut cfg = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true);
        for c in video_codecs {
            cfg = match *c {
                "vp8" => cfg.enable_vp8(true),
                "h264" => cfg.enable_h264(true),
                "vp9" => cfg.enable_vp9(true),
                _ => cfg,
            };
        }
        // Subscribers of a phone report their loss, which sets the phone's Opus FEC.
        if matches!(&key, Key::Sub(_, p) if self.local.contains_key(p)) {
            cfg = cfg.set_stats_interval(Some(STATS_INTERVAL));
        }
        let mut rtc = cfg.build(self.now);
        for (_, advertised) in &self.sockets {
            if let Ok(c) = Candidate::host(*advertised, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        let answer = rtc.sdp_api().accept_offer(sdp_offer).map_err(|e| {
            RpcError::new(
                code::MEDIA_SDP,
                format!("the SDP offer cannot be answered: {e}"),
            )
        })?;
        let answer = answer.to_sdp_string();
        let sections = sections_of(&answer);
        if let Some(early) = self.early_candidates.remove(&key) {
            for c in early {
                rtc.add_remote_candidate(c);
            }
        }
        self.drop_peer(&key);
        self.peers.insert(
            key.clone(),
            Peer {
                rtc,
                sections,
                timeout: self.now,
                connected: false,
            },
        );
        self.drive(&key);
        Ok(answer)
    }

    /// Drains a peer connection: datagrams out, events handled, next timeout kept.
    fn drive(&mut self, key: &Key) {
        loop {
            let Some(peer) = self.peers.get_mut(key) else {
                return;
            };
            if !peer.rtc.is_alive() {
                self.drop_peer(key);
                return;
            }
            let out = match peer.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(error = %e, ?key, "peer connection failed");
                    self.drop_peer(key);
                    return;
                }
            };
            match out {
                Output::Timeout(t) => {
                    peer.timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    let from = self
                        .sockets
                        .iter()
                        .find(|(_, a)| *a == t.source)
                        .map(|(l, _)| *l)
                        .unwrap_or(t.source);
                    self.out.push_back(Datagram {
                        from,
                        to: t.destination,
                        bytes: t.contents.to_vec(),
                    });
                }
                Output::Event(e) => self.on_event(key, e),
            }
        }
    }

    fn on_event(&mut self, key: &Key, e: Event) {
        match (key, e) {
            (Key::Pub(publisher), Event::RtpPacket(p)) => {
                self.stats.packets_in += 1;
                let Some((video, codec)) = self
                    .peers
                    .get(key)
                    .and_then(|s| s.codec_of(*p.header.payload_type))
                    .map(|(v, c)| (v, c.to_owned()))
                else {
                    return;
                };
                if self.tap && !video && codec == "opus" {
                    self.tapped.push_back(TappedAudio {
                        publisher: publisher.clone(),
                        seq: *p.seq_no,
                        payload: p.payload.clone(),
                    });
                }
                let packet = Packet {
                    seq: p.seq_no,
                    ts: p.header.timestamp,
                    time: p.timestamp,
                    marker: p.header.marker,
                    payload: p.payload.clone(),
                };
                self.forward(publisher, video, &codec, &packet);
            }
            (Key::Sub(subscriber, publisher), Event::MediaEgressStats(stats)) => {
                if let Some(l) = self.local.get_mut(publisher) {
                    let held = l.loss.entry(subscriber.clone()).or_default();
                    if let Some(reported) = stats.loss {
                        *held = reported.clamp(0.0, 1.0).max(*held * LOSS_DECAY);
                    }
                }
            }
            (Key::Sub(_, publisher), Event::KeyframeRequest(req)) => {
                self.request_keyframe(&publisher.clone(), req.kind);
            }
            (Key::Sub(_, publisher), Event::Connected) => {
                if let Some(p) = self.peers.get_mut(key) {
                    p.connected = true;
                }
                // A late joiner needs a key frame to decode anything.
                self.request_keyframe(&publisher.clone(), KeyframeRequestKind::Fir);
            }
            (_, Event::Connected) => {
                if let Some(p) = self.peers.get_mut(key) {
                    p.connected = true;
                }
            }
            (_, Event::IceConnectionStateChange(s)) => {
                tracing::debug!(?key, state = ?s, "ice");
            }
            _ => {}
        }
    }

    fn request_keyframe(&mut self, publisher: &str, kind: KeyframeRequestKind) {
        let Some(p) = self.peers.get_mut(&Key::Pub(publisher.to_owned())) else {
            return;
        };
        let Some(mid) = p.video_mid().map(Mid::from) else {
            return;
        };
        if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(mid, None) {
            rx.request_keyframe(kind);
            self.stats.keyframe_requests += 1;
        }
        self.drive(&Key::Pub(publisher.to_owned()));
    }

    /// Writes a publisher's packet to every subscription of its stream.
    fn forward(&mut self, publisher: &str, video: bool, codec: &str, p: &Packet) {
        let subs: Vec<Key> = self
            .peers
            .keys()
            .filter(|k| matches!(k, Key::Sub(_, pubc) if pubc == publisher))
            .cloned()
            .collect();
        for key in subs {
            let Some(sub) = self.peers.get_mut(&key) else {
                continue;
            };
            let Some((mid, pt)) = sub
                .route_for(video, codec)
                .map(|(m, pt)| (Mid::from(m), pt))
            else {
                continue;
            };
            let mut api = sub.rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                continue;
            };
            tx.write_rtp(
                RtpWrite::new(Pt::from(pt), p.seq, p.ts, p.time, p.payload.clone())
                    .marker(p.marker)
                    .nackable(video),
            );
            self.stats.packets_forwarded += 1;
            self.drive(&key);
        }
    }
}

impl MediaHandler for Sfu {
    fn publish(
        &mut self,
        _session: &str,
        connection: &str,
        offer: &str,
        forced: &str,
    ) -> Result<String, RpcError> {
        let offered = video_codecs_in(offer);
        let video: Vec<&str> = match forced {
            "VP8" | "H264" | "VP9" => {
                let want = forced.to_ascii_lowercase();
                if !offered.is_empty() && !offered.contains(&want) {
                    return Err(RpcError::new(
                        code::FORCED_CODEC_NOT_FOUND,
                        format!("the session forces {forced}, which the offer lacks"),
                    ));
                }
                vec![match forced {
                    "VP8" => "vp8",
                    "H264" => "h264",
                    _ => "vp9",
                }]
            }
            // VP8 by default, as OpenVidu/Kurento prefers it.
            _ => vec!["vp8"],
        };
        self.negotiate(Key::Pub(connection.to_owned()), offer, &video)
    }

    fn subscribe(
        &mut self,
        _session: &str,
        connection: &str,
        stream: &str,
        offer: &str,
    ) -> Result<String, RpcError> {
        let publisher = publisher_of(stream)
            .ok_or_else(|| RpcError::new(code::USER_NOT_FOUND, "no such stream"))?
            .to_owned();
        let video: Vec<String> = self
            .peers
            .get(&Key::Pub(publisher.clone()))
            .map(|p| {
                p.sections
                    .iter()
                    .filter(|s| s.video)
                    .flat_map(|s| s.codecs.iter().map(|(_, c)| c.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let video: Vec<&str> = video.iter().map(String::as_str).collect();
        let key = Key::Sub(connection.to_owned(), publisher);
        let answer = self.negotiate(key, offer, &video)?;
        Ok(answer)
    }

    fn candidate(&mut self, connection: &str, endpoint: &str, c: &Value) {
        let Some(text) = c
            .get("candidate")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        else {
            return;
        };
        let text = text.strip_prefix("a=").unwrap_or(text);
        let Ok(candidate) = Candidate::from_sdp_string(text) else {
            tracing::debug!(%text, "unusable ICE candidate");
            return;
        };
        let key = if endpoint == connection {
            Key::Pub(connection.to_owned())
        } else {
            Key::Sub(connection.to_owned(), endpoint.to_owned())
        };
        match self.peers.get_mut(&key) {
            Some(p) => {
                p.rtc.add_remote_candidate(candidate);
                self.drive(&key);
            }
            None => self
                .early_candidates
                .entry(key)
                .or_default()
                .push(candidate),
        }
    }
}

/// The publisher's connection id inside a stream id (`str_<TYP>_<4>_<connectionId>`).
pub fn publisher_of(stream: &str) -> Option<&str> {
    let parts: Vec<&str> = stream.splitn(4, '_').collect();
    (parts.len() == 4 && parts[0] == "str").then(|| parts[3])
}

/// Video codecs an offer lists (lower case).
fn video_codecs_in(offer: &str) -> Vec<String> {
    let Ok(sd) = SessionDescription::parse(offer) else {
        return Vec::new();
    };
    sd.media
        .iter()
        .filter(|m| m.kind == "video")
        .flat_map(|m| {
            m.payload_types()
                .filter_map(|pt| m.rtpmap(pt))
                .map(|r| r.encoding.to_ascii_lowercase())
        })
        .collect()
}

/// The m-sections of a negotiated SDP: mid, kind and codecs by payload type.
fn sections_of(sdp: &str) -> Vec<Section> {
    let Ok(sd) = SessionDescription::parse(sdp) else {
        return Vec::new();
    };
    sd.media
        .iter()
        .filter(|m| !m.is_rejected() && (m.kind == "audio" || m.kind == "video"))
        .filter_map(|m| {
            Some(Section {
                mid: m.attr("mid")?.to_owned(),
                video: m.kind == "video",
                codecs: m
                    .payload_types()
                    .filter_map(|pt| m.rtpmap(pt).map(|r| (pt, r.encoding.to_ascii_lowercase())))
                    .filter(|(_, c)| c != "rtx" && c != "red" && c != "ulpfec")
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publisher_connection_from_stream_id() {
        assert_eq!(
            publisher_of("str_CAM_Ab1c_con_Q2w3E4r5T6"),
            Some("con_Q2w3E4r5T6")
        );
        assert_eq!(publisher_of("str_MIC_Zz9y_con_A"), Some("con_A"));
        assert_eq!(publisher_of("nonsense"), None);
    }
}
