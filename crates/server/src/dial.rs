//! `phonebridge call`: places one call through a trunk or straight to a SIP URI and reports
//! each step — the outbound counterpart of the echo user, for checking a trunk. Media the far
//! end sends (early or after the answer) is reflected back and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use phonebridge_sip::endpoint::Dial;
use phonebridge_sip::{CallHandle, EndReason, Endpoint, Event};
use tokio::task::JoinHandle;

use crate::echo::{answer, ep_local_ip, offer, parse_offer, spawn_reflector};
use crate::ports::PortPool;
use crate::sip_driver::App;

/// How the call went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Answered,
    Failed(EndReason),
}

pub(crate) struct Dialer {
    dial: Option<Dial>,
    hold: Duration,
    ring_timeout: Duration,
    ports: PortPool,
    call: Option<CallHandle>,
    started: Option<Instant>,
    ring_deadline: Option<Instant>,
    hangup_at: Option<Instant>,
    answered: bool,
    media: Option<(u16, JoinHandle<()>, Arc<AtomicU64>)>,
    pub(crate) outcome: Option<Outcome>,
}

impl Dialer {
    pub(crate) fn new(dial: Dial, hold: Duration, ring_timeout: Duration, ports: PortPool) -> Self {
        Dialer {
            dial: Some(dial),
            hold,
            ring_timeout,
            ports,
            call: None,
            started: None,
            ring_deadline: None,
            hangup_at: None,
            answered: false,
            media: None,
            outcome: None,
        }
    }

    fn elapsed_ms(&self, now: Instant) -> u128 {
        self.started.map_or(0, |s| (now - s).as_millis())
    }

    fn packets(&self) -> u64 {
        self.media
            .as_ref()
            .map_or(0, |m| m.2.load(Ordering::Relaxed))
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some((port, task, _)) = self.media.take() {
            task.abort();
            self.ports.release(port);
        }
        self.outcome = Some(outcome);
    }
}

impl App for Dialer {
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
        match self.ports.allocate(bind).and_then(|(port, rtp, rtcp)| {
            let counter = Arc::new(AtomicU64::new(0));
            let task = spawn_reflector(rtp, rtcp, Some(counter.clone()))?;
            Ok((port, task, counter))
        }) {
            Ok(m) => {
                dial.body = Some(("application/sdp".into(), offer(ip, m.0, 1).into_bytes()));
                self.media = Some(m);
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
            }
            Event::Answered { call, .. } if Some(*call) == self.call => {
                self.answered = true;
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
                let port = self.media.as_ref().map(|m| m.0).unwrap_or(0);
                let ip = ep_local_ip(ep, *call);
                let text = String::from_utf8_lossy(body);
                let sdp = match (ip, parse_offer(&text)) {
                    (Some(ip), Some(o)) => answer(&o, ip, port, 2),
                    (Some(ip), None) if text.trim().is_empty() => Some(offer(ip, port, 2)),
                    _ => None,
                };
                let _ = match sdp {
                    Some(s) => {
                        ep.answer_offer(now, *call, 200, Some(("application/sdp", s.into_bytes())))
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
        if self.answered {
            self.hangup_at
        } else {
            self.ring_deadline
        }
    }

    fn handle_timeout(&mut self, ep: &mut Endpoint, now: Instant) {
        let Some(call) = self.call else { return };
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
