//! The built-in `echo` user: answers, and plays back what it hears through the real media
//! path (SRTP, jitter buffer, decode, re-encode), so an operator can check a trunk, NAT
//! traversal, codecs and round-trip latency end to end. Digits the caller types are logged.

use std::collections::HashMap;
use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use phonebridge_bridge::{info_digit, PhoneAudio, PhoneEvent};
use phonebridge_sdp::{self as sdp, AudioSession, Capabilities, Direction, SessionDescription};
use phonebridge_sip::endpoint::request_user;
use phonebridge_sip::{CallHandle, Endpoint, Event};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::media::{random_stream_ids, LegEvent, LegMode, MediaLeg, SharedLegStats};
use crate::ports::PortPool;

/// How the echo user is set up.
#[derive(Debug, Clone)]
pub(crate) struct EchoConfig {
    pub(crate) bind_ip: IpAddr,
    /// Address advertised in SDP instead of the local one.
    pub(crate) public_ip: Option<IpAddr>,
    pub(crate) caps: Capabilities,
    /// SRTP policies of trunks by address; calls from other sources use `caps.srtp`.
    pub(crate) trunk_srtp: Vec<(IpAddr, sdp::SrtpPolicy)>,
    pub(crate) media_timeout: Option<Duration>,
    pub(crate) seed: u64,
}

struct EchoCall {
    /// What we can do on this call (the SRTP policy depends on where it came from).
    caps: Capabilities,
    port: u16,
    ip: IpAddr,
    session_id: u64,
    version: u64,
    key: [u8; sdp::KEY_LEN],
    offer_keys: [[u8; sdp::KEY_LEN]; 2],
    /// Our offer, waiting for its answer in the ACK (offerless INVITE or re-INVITE).
    offered: Option<SessionDescription>,
    /// The socket pair until the leg takes it.
    sockets: Option<(UdpSocket, UdpSocket)>,
    leg: Option<MediaLeg>,
}

/// The echo user's calls, each with its own port pair and media leg.
pub(crate) struct Echo {
    cfg: EchoConfig,
    ports: PortPool,
    rng: SmallRng,
    calls: HashMap<CallHandle, EchoCall>,
    events_tx: mpsc::UnboundedSender<LegEvent>,
    events_rx: Option<mpsc::UnboundedReceiver<LegEvent>>,
    stats: SharedLegStats,
}

impl EchoCall {
    /// This call's side of the SDP, at its current version.
    fn local(&self) -> sdp::Local {
        sdp::Local {
            ip: self.ip,
            rtp_port: self.port,
            session_id: self.session_id,
            version: self.version,
            direction: Direction::SendRecv,
        }
    }
}

impl Echo {
    pub(crate) fn new(cfg: EchoConfig, ports: PortPool, stats: SharedLegStats) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Echo {
            rng: SmallRng::seed_from_u64(cfg.seed),
            cfg,
            ports,
            calls: HashMap::new(),
            events_tx,
            events_rx: Some(events_rx),
            stats,
        }
    }

    /// Starts the leg (first answer) or updates it (later ones).
    fn apply(&mut self, h: CallHandle, now: Instant, negotiated: AudioSession) -> bool {
        let Some(c) = self.calls.get_mut(&h) else {
            return false;
        };
        if let Some(leg) = &c.leg {
            leg.update(negotiated);
            return true;
        }
        let Some((rtp, rtcp)) = c.sockets.take() else {
            return false;
        };
        tracing::info!(
            codec = ?negotiated.send.codec,
            ptime = negotiated.ptime,
            srtp = negotiated.srtp.is_some(),
            "echo call media"
        );
        let ids = random_stream_ids(&mut self.rng);
        let audio = PhoneAudio::new(now, &negotiated, ids, "phonebridge", self.cfg.media_timeout);
        match MediaLeg::spawn(
            h,
            LegMode::Echo,
            rtp,
            rtcp,
            audio,
            self.events_tx.clone(),
            self.stats.clone(),
        ) {
            Ok(leg) => {
                c.leg = Some(leg);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the echo call's media");
                false
            }
        }
    }

    /// The capabilities for a call from `source`: a trunk's SRTP policy when it is one.
    fn caps_for(&self, source: IpAddr) -> Capabilities {
        let mut caps = self.cfg.caps.clone();
        if let Some((_, p)) = self.cfg.trunk_srtp.iter().find(|(ip, _)| *ip == source) {
            caps.srtp = *p;
        }
        caps
    }

    fn incoming(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        h: CallHandle,
        (local_ip, source): (IpAddr, IpAddr),
        body: &[u8],
    ) {
        let (port, rtp, rtcp) = match self.ports.allocate(self.cfg.bind_ip) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "no RTP ports for an echo call");
                let _ = ep.respond(now, h, 503, None);
                return;
            }
        };
        let mut call = EchoCall {
            caps: self.caps_for(source),
            port,
            ip: self.cfg.public_ip.unwrap_or(local_ip),
            session_id: self.rng.gen_range(1..u32::MAX as u64),
            version: 1,
            key: self.rng.gen(),
            offer_keys: [self.rng.gen(), self.rng.gen()],
            offered: None,
            sockets: Some((rtp, rtcp)),
            leg: None,
        };
        let sdp_out = if body.iter().all(u8::is_ascii_whitespace) {
            // No offer: we offer in the 200, the answer comes in the ACK.
            let offer = sdp::offer(&call.caps, &call.local(), &call.offer_keys);
            let text = offer.to_string();
            call.offered = Some(offer);
            self.calls.insert(h, call);
            text
        } else {
            let answer = parse(body).and_then(|offer| {
                sdp::answer(&offer, &call.caps, &call.local(), call.key).map_err(|e| e.to_string())
            });
            match answer {
                Ok((sd, negotiated)) => {
                    self.calls.insert(h, call);
                    if !self.apply(h, now, negotiated) {
                        self.forget(h);
                        let _ = ep.respond(now, h, 500, None);
                        return;
                    }
                    sd.to_string()
                }
                Err(why) => {
                    tracing::info!(%why, "echo call refused: unusable offer");
                    self.ports.release(port);
                    let _ = ep.respond(now, h, 488, None);
                    return;
                }
            }
        };
        tracing::debug!(port, "echo call answered");
        let _ = ep.respond(now, h, 200, Some(("application/sdp", sdp_out.into_bytes())));
    }

    /// A re-INVITE or UPDATE: answer its offer, or offer when it has none.
    fn reoffer(&mut self, ep: &mut Endpoint, now: Instant, h: CallHandle, body: &[u8]) {
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        c.version += 1;
        let local = c.local();
        if body.iter().all(u8::is_ascii_whitespace) {
            let offer = sdp::offer(&c.caps, &local, &c.offer_keys);
            let text = offer.to_string();
            c.offered = Some(offer);
            let _ = ep.answer_offer(now, h, 200, Some(("application/sdp", text.into_bytes())));
            return;
        }
        let key = c.key;
        let caps = c.caps.clone();
        let answer = parse(body)
            .and_then(|offer| sdp::answer(&offer, &caps, &local, key).map_err(|e| e.to_string()));
        match answer {
            Ok((sd, negotiated)) => {
                self.apply(h, now, negotiated);
                let _ = ep.answer_offer(
                    now,
                    h,
                    200,
                    Some(("application/sdp", sd.to_string().into_bytes())),
                );
            }
            Err(why) => {
                tracing::info!(%why, "echo re-offer refused");
                let _ = ep.answer_offer(now, h, 488, None);
            }
        }
    }

    /// The ACK: when we offered, it carries the answer.
    fn confirmed(&mut self, ep: &mut Endpoint, now: Instant, h: CallHandle, body: &[u8]) {
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(offer) = c.offered.take() else {
            return;
        };
        let keys = c.offer_keys;
        let caps = c.caps.clone();
        let negotiated = parse(body).and_then(|answer| {
            sdp::accept_answer(&offer, &answer, &caps, &keys).map_err(|e| e.to_string())
        });
        match negotiated {
            Ok(n) => {
                if !self.apply(h, now, n) {
                    let _ = ep.hangup(now, h);
                }
            }
            Err(why) => {
                tracing::info!(%why, "echo call ended: unusable answer in the ACK");
                let _ = ep.hangup(now, h);
            }
        }
    }

    fn forget(&mut self, h: CallHandle) {
        if let Some(c) = self.calls.remove(&h) {
            if let Some(leg) = c.leg {
                // The leg's task closes the sockets; the port is free once it has.
                drop(leg.stop());
            }
            self.ports.release(c.port);
        }
    }
}

fn parse(body: &[u8]) -> Result<SessionDescription, String> {
    let text = std::str::from_utf8(body).map_err(|_| "SDP is not UTF-8".to_owned())?;
    SessionDescription::parse(text).map_err(|e| e.to_string())
}

impl crate::sip_driver::App for Echo {
    type Message = LegEvent;

    fn take_messages(&mut self) -> Option<mpsc::UnboundedReceiver<LegEvent>> {
        self.events_rx.take()
    }

    fn on_message(&mut self, ep: &mut Endpoint, now: Instant, msg: LegEvent) {
        if !self.calls.contains_key(&msg.call) {
            return;
        }
        match msg.event {
            PhoneEvent::Digit { digit, source } => {
                // Echo calls carry no codes: the digit itself is useful to an operator.
                tracing::info!(%digit, ?source, "echo call digit");
            }
            PhoneEvent::MediaTimeout => {
                tracing::info!(reason = "mediaTimeout", "echo call hung up: no media");
                let _ = ep.hangup(now, msg.call);
            }
            PhoneEvent::RtcpBye => tracing::debug!("echo caller sent RTCP BYE"),
        }
    }

    fn active(&self) -> usize {
        self.calls.len()
    }

    fn on_event(&mut self, ep: &mut Endpoint, now: Instant, ev: &Event) {
        match ev {
            Event::IncomingCall {
                call,
                request,
                peer,
            } => {
                if request_user(&request.uri).as_deref() != Some("echo") {
                    // Every unknown user gets the same answer: nothing about who exists leaks.
                    let _ = ep.respond(now, *call, 404, None);
                    return;
                }
                let addrs = (peer.local.ip(), peer.remote.ip());
                self.incoming(ep, now, *call, addrs, &request.body);
            }
            Event::Offer { call, body, .. } => self.reoffer(ep, now, *call, body),
            Event::Confirmed { call, body } => self.confirmed(ep, now, *call, body),
            Event::Info {
                call,
                content_type,
                body,
            } => {
                if let (Some(c), Some(d)) = (
                    self.calls.get(call),
                    info_digit(content_type.as_deref(), body),
                ) {
                    if let Some(leg) = &c.leg {
                        leg.info_digit(d);
                    }
                }
            }
            Event::Ended { call, reason } => {
                if self.calls.contains_key(call) {
                    tracing::debug!(?reason, "echo call ended");
                    self.forget(*call);
                }
            }
            // Registration events are the driver's; the rest needs nothing from the echo user.
            Event::Progress { .. }
            | Event::Answered { .. }
            | Event::Registered { .. }
            | Event::RegistrationFailed { .. } => {}
        }
    }
}
