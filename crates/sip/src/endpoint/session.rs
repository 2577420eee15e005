//! What keeps an answered call healthy: reliable provisionals (RFC 3262, UAS side), session
//! timers (RFC 4028) with refreshes we send (UPDATE, or re-INVITE when the peer lacks UPDATE),
//! and glare between our refresh and the peer's offer (RFC 3261 §14.1: 491, retry later).

use std::time::{Duration, Instant};

use rand::Rng;

use super::{build, CallHandle, EndReason, Endpoint};
use crate::header::HeaderName;
use crate::headers::{parse_u32, CSeq};
use crate::message::{Method, Request, Response};

/// A message resent on T1-doubling intervals capped at T2 until acknowledged or `give_up`.
#[derive(Debug)]
pub(super) struct Resend {
    pub(super) bytes: Vec<u8>,
    interval: Duration,
    pub(super) next: Instant,
    pub(super) give_up: Instant,
}

impl Resend {
    pub(super) fn new(now: Instant, bytes: Vec<u8>, t1: Duration) -> Self {
        Resend {
            bytes,
            interval: t1,
            next: now + t1,
            give_up: now + 64 * t1,
        }
    }

    pub(super) fn deadline(&self) -> Instant {
        self.next.min(self.give_up)
    }

    /// `Some(true)`: resend now; `Some(false)`: give up; `None`: nothing due.
    pub(super) fn step(&mut self, now: Instant, t2: Duration) -> Option<bool> {
        if self.give_up <= now {
            return Some(false);
        }
        if self.next <= now {
            self.interval = (self.interval * 2).min(t2);
            self.next = now + self.interval;
            return Some(true);
        }
        None
    }
}

/// Resends `r` when due (over UDP only: reliable transports retransmit themselves); false
/// once it has been resent for 64*T1 without an acknowledgement.
fn resend_due(
    r: &mut Resend,
    now: Instant,
    t2: Duration,
    target: &super::Peer,
    transmits: &mut std::collections::VecDeque<(super::Peer, Vec<u8>)>,
    stats: &mut super::Stats,
) -> bool {
    match r.step(now, t2) {
        Some(false) => false,
        Some(true) => {
            if !target.transport.is_reliable() {
                transmits.push_back((target.clone(), r.bytes.clone()));
                stats.responses_retransmitted += 1;
            }
            true
        }
        None => true,
    }
}

/// An unacknowledged reliable provisional response.
#[derive(Debug)]
pub(super) struct Reliable1xx {
    pub(super) rseq: u32,
    pub(super) resend: Resend,
    pub(super) has_sdp: bool,
}

/// A negotiated session timer (RFC 4028).
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionTimer {
    pub(super) interval: u32,
    pub(super) we_refresh: bool,
    /// When we refresh (if refresher) or give up waiting for the peer's refresh.
    pub(super) deadline: Instant,
}

impl SessionTimer {
    pub(super) fn start(now: Instant, interval: u32, we_refresh: bool) -> Self {
        let i = Duration::from_secs(u64::from(interval));
        // Refresh at half the interval; without a refresh, end the session a little before
        // it expires: interval - min(32 s, interval / 3) (RFC 4028 §10).
        let deadline = if we_refresh {
            now + i / 2
        } else {
            now + i - Duration::from_secs(32).min(i / 3)
        };
        SessionTimer {
            interval,
            we_refresh,
            deadline,
        }
    }
}

/// Our own pending refresh or offer inside the dialog.
#[derive(Debug)]
pub(super) struct OwnRefresh {
    pub(super) method: Method,
    pub(super) cseq: u32,
    /// After a 491: when to try again.
    pub(super) retry_at: Option<Instant>,
    /// The ACK sent for its 2xx (re-INVITE), resent on 2xx retransmissions.
    pub(super) ack: Option<Vec<u8>>,
}

/// `Session-Expires: <delta>[;refresher=uac|uas]`.
pub(super) fn parse_session_expires(v: &str) -> Option<(u32, Option<String>)> {
    let mut parts = v.split(';');
    let n = parse_u32(parts.next()?)?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((n, refresher))
}

impl Endpoint {
    /// The session timer to use for an initial INVITE we answer, and the header values to add
    /// (Session-Expires, and Require: timer when the caller supports it).
    pub(super) fn negotiate_uas_timer(&self, invite: &Request) -> Option<(u32, bool, bool)> {
        let supports = invite.headers.has_token(&HeaderName::SUPPORTED, "timer")
            || invite.headers.has_token(&HeaderName::REQUIRE, "timer");
        match invite
            .headers
            .get(&HeaderName::SESSION_EXPIRES)
            .and_then(parse_session_expires)
        {
            Some((n, refresher)) => {
                let we_refresh = match refresher.as_deref() {
                    Some("uas") => true,
                    Some(_) => false,
                    None => !supports,
                };
                Some((n, we_refresh, supports))
            }
            None if self.cfg.session_expires > 0 => {
                Some((self.cfg.session_expires, !supports, supports))
            }
            None => None,
        }
    }

    /// A caller's Session-Expires below our Min-SE gets 422 (RFC 4028 §8.1).
    pub(super) fn session_interval_too_small(&self, invite: &Request) -> bool {
        invite
            .headers
            .get(&HeaderName::SESSION_EXPIRES)
            .and_then(parse_session_expires)
            .is_some_and(|(n, _)| n < self.cfg.min_se)
    }

    pub(super) fn set_session_timer(
        &mut self,
        now: Instant,
        h: CallHandle,
        interval: u32,
        we_refresh: bool,
    ) {
        if let Some(c) = self.calls.get_mut(&h) {
            c.timer = Some(SessionTimer::start(now, interval, we_refresh));
        }
        self.reschedule_call(h);
    }

    /// Sends a provisional reliably (RFC 3262 §3): Require: 100rel, RSeq, resent until PRACK.
    pub(super) fn send_reliable(
        &mut self,
        now: Instant,
        h: CallHandle,
        tx: u64,
        mut resp: Response,
    ) {
        let t1 = self.cfg.timers.t1;
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        c.rseq += 1;
        resp.headers.push(HeaderName::REQUIRE, "100rel");
        resp.headers.push(HeaderName::RSEQ, c.rseq.to_string());
        self.decorate(&mut resp.headers);
        let has_sdp = !resp.body.is_empty();
        let c = self.calls.get_mut(&h).expect("call looked up above");
        c.reliable = Some(Reliable1xx {
            rseq: c.rseq,
            resend: Resend::new(now, resp.encode(), t1),
            has_sdp,
        });
        self.respond_tx(now, tx, resp);
        self.reschedule_call(h);
    }

    /// A PRACK in the early dialog: acknowledge the reliable provisional it names (RAck), and
    /// release a 2xx that waited for it.
    pub(super) fn on_prack(&mut self, now: Instant, h: CallHandle, tx: u64, req: &Request) {
        let rack = req.headers.get(&HeaderName::RACK).unwrap_or_default();
        let mut it = rack.split_whitespace();
        let rseq = it.next().and_then(parse_u32);
        let cseq = it.next().and_then(parse_u32);
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        let invite_seq = CSeq::parse(c.invite.headers.get(&HeaderName::CSEQ).unwrap_or_default())
            .map_or(0, |s| s.seq);
        let matches =
            c.reliable.as_ref().is_some_and(|r| Some(r.rseq) == rseq) && cseq == Some(invite_seq);
        if !matches {
            let r = build::response(req, 481, None);
            return self.respond_tx(now, tx, r);
        }
        c.reliable = None;
        let held = c.held_2xx.take();
        let r = build::response(req, 200, None);
        self.respond_tx(now, tx, r);
        if let Some((status, body)) = held {
            let _ = self.respond(
                now,
                h,
                status,
                body.as_ref().map(|(ct, b)| (ct.as_str(), b.clone())),
            );
        }
        self.reschedule_call(h);
    }

    /// Our session timer fired: refresh, or end the session the peer stopped refreshing.
    pub(super) fn session_timer_due(&mut self, now: Instant, h: CallHandle) {
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(t) = c.timer else { return };
        if t.deadline > now {
            return;
        }
        if !t.we_refresh {
            tracing::info!(
                interval = t.interval,
                "session timer expired without a refresh"
            );
            self.send_bye(now, h);
            self.end_call(h, EndReason::SessionExpired);
            return;
        }
        // Do not refresh again until this one is answered.
        c.timer = Some(SessionTimer {
            deadline: now + Duration::from_secs(u64::from(t.interval)),
            ..t
        });
        self.send_refresh(now, h);
    }

    /// Sends UPDATE (no body) when the peer allows it, else a re-INVITE with our last SDP.
    pub(super) fn send_refresh(&mut self, now: Instant, h: CallHandle) {
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        let in_flight = c
            .refresh
            .as_ref()
            .is_some_and(|r| r.retry_at.is_none() && r.ack.is_none());
        if in_flight || c.pending_offer.is_some() {
            return; // an exchange is already under way; it refreshes the session too
        }
        let method = if c.remote_allows_update {
            Method::Update
        } else {
            Method::Invite
        };
        c.local_cseq += 1;
        let cseq = c.local_cseq;
        let mut req = c.in_dialog_request(method.clone(), cseq);
        req.headers
            .push(HeaderName::CONTACT, Self::contact_for(&c.peer));
        req.headers.push(HeaderName::SUPPORTED, "timer");
        if let Some(t) = c.timer {
            req.headers.push(
                HeaderName::SESSION_EXPIRES,
                format!("{};refresher=uac", t.interval),
            );
        }
        if method == Method::Invite {
            if let Some((ct, body)) = &c.local_sdp {
                req.headers.push(HeaderName::CONTENT_TYPE, ct.clone());
                req.body = body.clone();
            }
        }
        c.refresh = Some(OwnRefresh {
            method,
            cseq,
            retry_at: None,
            ack: None,
        });
        let peer = c.peer.clone();
        self.send_request(now, req, peer, Some(h));
    }

    /// The answer to our refresh (or its failure).
    pub(super) fn on_refresh_response(&mut self, now: Instant, h: CallHandle, resp: &Response) {
        let cseq = CSeq::parse(resp.headers.get(&HeaderName::CSEQ).unwrap_or_default())
            .map_or(0, |c| c.seq);
        let is_uac = self.calls.get(&h).is_some_and(|c| c.uac.is_some());
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(r) = c.refresh.as_mut() else { return };
        if r.cseq != cseq || resp.status < 200 {
            return;
        }
        match resp.status {
            200..=299 => {
                if r.method == Method::Invite {
                    if let Some(ack) = &r.ack {
                        // A retransmitted 2xx: ACK again.
                        let (peer, ack) = (c.peer.clone(), ack.clone());
                        self.transmits.push_back((peer, ack));
                        return;
                    }
                    let ack = c.in_dialog_request(Method::Ack, cseq);
                    let peer = c.peer.clone();
                    let bytes = self.send_ack(ack, peer);
                    if let Some(r) = self.calls.get_mut(&h).and_then(|c| c.refresh.as_mut()) {
                        r.ack = Some(bytes);
                    }
                } else {
                    c.refresh = None;
                }
                if let Some(n) = self.session_interval(h, &resp.headers) {
                    self.set_session_timer(now, h, n, true);
                }
            }
            491 => {
                // Glare: the owner of the Call-ID (the caller) waits 2.1–4 s, the other 0–2 s.
                let wait_ms = if is_uac {
                    self.rng.gen_range(2100..=4000)
                } else {
                    self.rng.gen_range(0..=2000)
                };
                if let Some(r) = self.calls.get_mut(&h).and_then(|c| c.refresh.as_mut()) {
                    r.retry_at = Some(now + Duration::from_millis(wait_ms));
                }
                self.reschedule_call(h);
            }
            408 | 481 => {
                self.end_call(h, EndReason::Timeout);
            }
            status => {
                tracing::info!(status, "session refresh refused");
                c.refresh = None;
            }
        }
    }

    /// A retry after glare is due.
    pub(super) fn refresh_retry_due(&mut self, now: Instant, h: CallHandle) {
        let due = self
            .calls
            .get(&h)
            .and_then(|c| c.refresh.as_ref())
            .and_then(|r| r.retry_at)
            .is_some_and(|t| t <= now);
        if due {
            if let Some(c) = self.calls.get_mut(&h) {
                c.refresh = None;
            }
            self.send_refresh(now, h);
        }
    }

    /// True when our own offer is outstanding: an incoming offer now is glare (491).
    pub(super) fn own_offer_pending(&self, h: CallHandle) -> bool {
        self.calls
            .get(&h)
            .and_then(|c| c.refresh.as_ref())
            .is_some_and(|r| {
                r.retry_at.is_none() && r.ack.is_none() && (r.method == Method::Invite)
            })
    }

    /// The session interval a refresh exchange settled on: its Session-Expires, else the
    /// interval already running.
    fn session_interval(&self, h: CallHandle, headers: &crate::message::Headers) -> Option<u32> {
        headers
            .get(&HeaderName::SESSION_EXPIRES)
            .and_then(parse_session_expires)
            .map(|(n, _)| n)
            .or(self.calls.get(&h).and_then(|c| c.timer.map(|t| t.interval)))
    }

    /// After we answer the peer's re-INVITE/UPDATE with 2xx, the peer is the refresher.
    pub(super) fn peer_refreshed(&mut self, now: Instant, h: CallHandle, req: &Request) {
        if let Some(n) = self.session_interval(h, &req.headers) {
            let we = req
                .headers
                .get(&HeaderName::SESSION_EXPIRES)
                .and_then(parse_session_expires)
                .is_some_and(|(_, r)| r.as_deref() == Some("uas"));
            self.set_session_timer(now, h, n, we);
        }
    }

    /// Every timer of call `h` that is due.
    pub(super) fn call_timers_due(&mut self, now: Instant, h: CallHandle) {
        let t2 = self.cfg.timers.t2;
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        // Reliable provisional: resend until PRACK; without one the INVITE fails (RFC 3262 §3).
        let target = c.response_target.clone();
        let prack_missing = c.reliable.as_mut().is_some_and(|r| {
            !resend_due(
                &mut r.resend,
                now,
                t2,
                &target,
                &mut self.transmits,
                &mut self.stats,
            )
        });
        if prack_missing {
            c.reliable = None;
            c.held_2xx = None;
            if let Some(tx) = c.invite_tx {
                tracing::info!("no PRACK for a reliable provisional");
                self.reject_invite(now, h, tx, 504);
                self.end_call(h, EndReason::Timeout);
                return;
            }
        }
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        // 2xx: resend until ACK; an initial INVITE never ACKed ends the call (RFC 3261 §13.3.1.4).
        let ack_missing = c.pending_2xx.as_mut().is_some_and(|p| {
            !resend_due(
                &mut p.resend,
                now,
                t2,
                &target,
                &mut self.transmits,
                &mut self.stats,
            )
        });
        if ack_missing {
            let initial = c.pending_2xx.take().is_some_and(|p| p.initial);
            if initial {
                tracing::info!("no ACK for 2xx; ending call");
                self.send_bye(now, h);
                self.end_call(h, EndReason::NoAck);
                return;
            }
        }
        self.session_timer_due(now, h);
        self.refresh_retry_due(now, h);
    }
}
