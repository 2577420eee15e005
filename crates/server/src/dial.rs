//! `phonebridge call`: places one call through a trunk or straight to a SIP URI and reports
//! each step — the outbound counterpart of the echo user, for checking a trunk. Media the far
//! end sends (early or after the answer) runs through the real media path, is played back to
//! it and counted.

use std::time::{Duration, Instant};

use phonebridge_bridge::{info_body, PhoneAudio, PhoneEvent};
use phonebridge_sdp::{self as sdp, Capabilities, Direction, SessionDescription};
use phonebridge_sip::endpoint::Dial;
use phonebridge_sip::{CallHandle, EndReason, Endpoint, Event};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::config::DtmfMode;
use crate::media::{
    random_stream_ids, LegEvent, LegEventKind, LegMode, Legs, MediaLeg, SharedLegStats,
};
use crate::ports::{PortPair, PortPool};
use crate::sip_driver::App;

/// How the call went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Answered,
    Failed(EndReason),
}

/// Our end of the call's media.
struct Media {
    port: u16,
    local: sdp::Local,
    key: [u8; sdp::KEY_LEN],
    offer_keys: [[u8; sdp::KEY_LEN]; 2],
    offer: SessionDescription,
    pair: Option<PortPair>,
    leg: Option<MediaLeg>,
}

pub(crate) struct Dialer {
    dial: Option<Dial>,
    hold: Duration,
    ring_timeout: Duration,
    ports: PortPool,
    caps: Capabilities,
    rng: SmallRng,
    call: Option<CallHandle>,
    started: Option<Instant>,
    ring_deadline: Option<Instant>,
    hangup_at: Option<Instant>,
    answered: bool,
    media: Option<Media>,
    stats: SharedLegStats,
    legs: Legs,
    events_rx: Option<mpsc::UnboundedReceiver<LegEvent>>,
    /// Digits to send after the answer, and how.
    digits: Option<(String, DtmfMode)>,
    /// SIP INFO digits still to send, one every [`INFO_SPACING`].
    info_queue: Vec<char>,
    next_info: Option<Instant>,
    pub(crate) outcome: Option<Outcome>,
}

/// Time between two DTMF INFOs (each press is a transaction; spacing keeps them in order).
const INFO_SPACING: Duration = Duration::from_millis(250);
const INFO_DURATION_MS: u32 = 160;

impl Dialer {
    pub(crate) fn new(
        dial: Dial,
        hold: Duration,
        ring_timeout: Duration,
        ports: PortPool,
        caps: Capabilities,
        seed: u64,
    ) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let stats = SharedLegStats::default();
        let legs = Legs::new(ports.returns(), events_tx, stats.clone());
        Dialer {
            dial: Some(dial),
            hold,
            ring_timeout,
            ports,
            caps,
            rng: SmallRng::seed_from_u64(seed),
            call: None,
            started: None,
            ring_deadline: None,
            hangup_at: None,
            answered: false,
            media: None,
            stats,
            legs,
            events_rx: Some(events_rx),
            digits: None,
            info_queue: Vec::new(),
            next_info: None,
            outcome: None,
        }
    }

    /// Sends `digits` once the call is answered.
    pub(crate) fn with_digits(mut self, digits: String, mode: DtmfMode) -> Self {
        self.digits = Some((digits, mode));
        self
    }

    fn send_digits(&mut self, now: Instant) {
        let Some((digits, mode)) = self.digits.take() else {
            return;
        };
        println!("sending digits {digits} by {mode:?}");
        match mode {
            DtmfMode::Rfc4733 => {
                if let Some(leg) = self.media.as_ref().and_then(|m| m.leg.as_ref()) {
                    leg.send_digits(&digits);
                }
            }
            DtmfMode::Info => {
                self.info_queue = digits.chars().rev().collect();
                self.next_info = Some(now);
            }
        }
    }

    fn elapsed_ms(&self, now: Instant) -> u128 {
        self.started.map_or(0, |s| (now - s).as_millis())
    }

    /// Media packets received from the far end so far.
    fn packets(&self) -> u64 {
        let Some(call) = self.call else { return 0 };
        self.stats
            .lock()
            .ok()
            .and_then(|s| s.live.get(&call).map(|x| x.transport.packets_received))
            .unwrap_or(0)
    }

    /// Applies the far end's SDP (in a 183 or the 200): starts the media the first time,
    /// updates it after (a 200 with the 183's SDP changes nothing; another SDP switches).
    fn apply_answer(&mut self, now: Instant, body: &[u8]) -> Result<(), String> {
        let (Some(m), Some(call)) = (&mut self.media, self.call) else {
            return Ok(());
        };
        let text = std::str::from_utf8(body).map_err(|_| "SDP is not UTF-8".to_owned())?;
        let answer = SessionDescription::parse(text).map_err(|e| e.to_string())?;
        let negotiated = sdp::accept_answer(&m.offer, &answer, &self.caps, &m.offer_keys)
            .map_err(|e| e.to_string())?;
        if let Some(leg) = &m.leg {
            leg.update(negotiated);
            return Ok(());
        }
        let Some(pair) = m.pair.take() else {
            return Ok(());
        };
        println!(
            "media: {:?} every {} ms{}",
            negotiated.send.codec,
            negotiated.ptime,
            if negotiated.srtp.is_some() {
                ", SRTP"
            } else {
                ""
            }
        );
        let ids = random_stream_ids(&mut self.rng);
        let audio = PhoneAudio::new(now, &negotiated, ids, "phonebridge", None);
        m.leg = Some(self.legs.spawn(call, LegMode::Caller, pair, audio));
        Ok(())
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(m) = self.media.take() {
            if let Some(leg) = m.leg {
                leg.stop();
            }
            self.ports.release(crate::sip_driver::now(), m.port, m.pair);
        }
        self.outcome = Some(outcome);
    }
}

impl App for Dialer {
    type Message = LegEvent;

    fn take_messages(&mut self) -> Option<mpsc::UnboundedReceiver<LegEvent>> {
        self.events_rx.take()
    }

    fn on_message(&mut self, _ep: &mut Endpoint, _now: Instant, msg: LegEvent) {
        if let LegEventKind::Phone(PhoneEvent::Digit { digit, source }) = msg.event {
            println!("digit {digit} ({source:?})");
        }
    }

    fn start(&mut self, ep: &mut Endpoint, now: Instant) {
        let Some(mut dial) = self.dial.take() else {
            return;
        };
        let ip = dial.peer.local.ip();
        let bind = if ip.is_loopback() {
            ip
        } else if ip.is_ipv4() {
            [0, 0, 0, 0].into()
        } else {
            [0u16; 8].into()
        };
        match self.ports.allocate(now, bind) {
            Ok(pair) => {
                let port = pair.port;
                let local = sdp::Local {
                    ip,
                    rtp_port: port,
                    session_id: self.rng.gen_range(1..u32::MAX as u64),
                    version: 1,
                    direction: Direction::SendRecv,
                };
                let offer_keys = [self.rng.gen(), self.rng.gen()];
                let offer = sdp::offer(&self.caps, &local, &offer_keys);
                dial.body = Some(("application/sdp".into(), offer.to_string().into_bytes()));
                self.media = Some(Media {
                    port,
                    local,
                    key: self.rng.gen(),
                    offer_keys,
                    offer,
                    pair: Some(pair),
                    leg: None,
                });
            }
            Err(e) => {
                println!("error: no RTP port: {e}");
                self.outcome = Some(Outcome::Failed(EndReason::TransportError));
                return;
            }
        }
        println!(
            "calling {} via {:?} {}",
            dial.uri, dial.peer.transport, dial.peer.remote
        );
        self.started = Some(now);
        self.ring_deadline = Some(now + self.ring_timeout);
        self.call = Some(ep.invite(now, dial));
    }

    fn on_event(&mut self, ep: &mut Endpoint, now: Instant, ev: &Event) {
        match ev {
            Event::Progress { call, status, body } if Some(*call) == self.call => {
                let sdp = if body.is_empty() {
                    ""
                } else {
                    " with SDP (early media)"
                };
                println!("progress {status} after {} ms{sdp}", self.elapsed_ms(now));
                if !body.is_empty() {
                    if let Err(why) = self.apply_answer(now, body) {
                        println!("early media SDP unusable: {why}");
                    }
                }
            }
            Event::Answered { call, body } if Some(*call) == self.call => {
                self.answered = true;
                if let Err(why) = self.apply_answer(now, body) {
                    println!("answer SDP unusable: {why}; hanging up");
                    let _ = ep.hangup(now, *call);
                }
                self.send_digits(now);
                println!(
                    "answered after {} ms; early media packets {}",
                    self.elapsed_ms(now),
                    self.packets()
                );
                self.hangup_at = Some(now + self.hold);
            }
            Event::Ended { call, reason } if Some(*call) == self.call => {
                println!(
                    "ended after {} ms: {reason:?}; media packets {}",
                    self.elapsed_ms(now),
                    self.packets()
                );
                let outcome = if self.answered {
                    Outcome::Answered
                } else {
                    Outcome::Failed(*reason)
                };
                self.finish(outcome);
            }
            Event::IncomingCall { call, .. } => {
                let _ = ep.respond(now, *call, 403, None);
            }
            Event::Offer { call, body, .. } => {
                let Some(m) = &mut self.media else {
                    let _ = ep.answer_offer(now, *call, 488, None);
                    return;
                };
                m.local.version += 1;
                let answer = std::str::from_utf8(body)
                    .ok()
                    .and_then(|t| SessionDescription::parse(t).ok())
                    .and_then(|o| sdp::answer(&o, &self.caps, &m.local, m.key).ok());
                let _ = match answer {
                    Some((sd, negotiated)) => {
                        if let Some(leg) = &m.leg {
                            leg.update(negotiated);
                        }
                        ep.answer_offer(
                            now,
                            *call,
                            200,
                            Some(("application/sdp", sd.to_string().into_bytes())),
                        )
                    }
                    None => ep.answer_offer(now, *call, 488, None),
                };
            }
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            return None;
        }
        let call_deadline = if self.answered {
            self.hangup_at
        } else {
            self.ring_deadline
        };
        match (call_deadline, self.next_info) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, ep: &mut Endpoint, now: Instant) {
        let Some(call) = self.call else { return };
        if self.next_info.is_some_and(|t| t <= now) {
            if let Some((ct, body)) = self
                .info_queue
                .pop()
                .and_then(|d| info_body(d, INFO_DURATION_MS))
            {
                let _ = ep.send_info(now, call, ct, body);
            }
            self.next_info = (!self.info_queue.is_empty()).then(|| now + INFO_SPACING);
        }
        let due = if self.answered {
            self.hangup_at
        } else {
            self.ring_deadline
        };
        if due.is_none_or(|t| t > now) {
            return;
        }
        if self.answered {
            println!("hanging up after {} ms", self.elapsed_ms(now));
            self.hangup_at = None;
        } else {
            println!("no answer after {} ms; cancelling", self.elapsed_ms(now));
            self.ring_deadline = None;
        }
        let _ = ep.hangup(now, call);
    }

    fn finished(&self) -> bool {
        self.outcome.is_some()
    }

    fn active(&self) -> usize {
        usize::from(self.call.is_some() && self.outcome.is_none())
    }
}
