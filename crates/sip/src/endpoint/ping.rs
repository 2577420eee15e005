//! Health probes of trunks: an OPTIONS sent to a peer the application names, again at an
//! interval after each outcome. Any final answer, whatever its status, shows the peer is
//! up (as a qualify check reads it); no answer before the transaction's Timer F, or a
//! transport error, shows it is down. For a UDP trunk the probes also keep a NAT binding to
//! it open.

use std::time::{Duration, Instant};

use super::{Endpoint, Event, Peer};
use crate::header::HeaderName;
use crate::message::{Method, Request, Response};
use crate::uri::Uri;

/// A probe kept up with [`Endpoint::keep_pinging`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PingHandle(pub u64);

/// What to probe.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The OPTIONS Request-URI (and To), e.g. `sip:trunk.example.com`.
    pub target: Uri,
    /// Our address of record (From).
    pub from: Uri,
    pub peer: Peer,
    /// From one outcome to the next OPTIONS.
    pub interval: Duration,
}

#[derive(Debug)]
pub(crate) struct PingState {
    spec: Probe,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// When the OPTIONS in flight went out.
    sent_at: Option<Instant>,
    /// When the next one goes out.
    next: Option<Instant>,
    scheduled: Option<Instant>,
}

impl Endpoint {
    /// Starts probing `probe.peer`; the first OPTIONS goes out at once. Each outcome is an
    /// [`Event::PingAnswered`] or [`Event::PingUnanswered`].
    pub fn keep_pinging(&mut self, now: Instant, probe: Probe) -> PingHandle {
        let h = PingHandle(self.next_id);
        self.next_id += 1;
        let call_id = format!(
            "{}@{}",
            self.random_token(),
            crate::uri::Host::from(probe.peer.local.ip())
        );
        let state = PingState {
            spec: probe,
            call_id,
            from_tag: self.random_token(),
            cseq: 0,
            sent_at: None,
            next: None,
            scheduled: None,
        };
        self.pings.insert(h, state);
        self.send_ping(now, h);
        h
    }

    /// Stops probing.
    pub fn stop_pinging(&mut self, h: PingHandle) {
        if let Some(mut p) = self.pings.remove(&h) {
            self.timers
                .set(super::TimerRef::Ping(h), &mut p.scheduled, None);
        }
    }

    fn send_ping(&mut self, now: Instant, h: PingHandle) {
        let Some(p) = self.pings.get_mut(&h) else {
            return;
        };
        p.cseq += 1;
        p.sent_at = Some(now);
        p.next = None;
        let mut req = Request::new(Method::Options, p.spec.target.clone());
        req.headers.push(HeaderName::MAX_FORWARDS, "70");
        req.headers.push(
            HeaderName::FROM,
            format!("<{}>;tag={}", p.spec.from, p.from_tag),
        );
        req.headers
            .push(HeaderName::TO, format!("<{}>", p.spec.target));
        req.headers.push(HeaderName::CALL_ID, &p.call_id);
        req.headers
            .push(HeaderName::CSEQ, format!("{} OPTIONS", p.cseq));
        req.headers.push(HeaderName::ACCEPT, "application/sdp");
        let peer = p.spec.peer.clone();
        let branch = self.new_branch();
        self.send_owned(now, req, peer, &branch, super::Owner::Ping(h));
        self.reschedule_ping(h);
    }

    /// A response to the OPTIONS in flight; a final one is the outcome.
    pub(super) fn on_ping_response(&mut self, now: Instant, h: PingHandle, resp: &Response) {
        if resp.status < 200 {
            return;
        }
        let Some(p) = self.pings.get_mut(&h) else {
            return;
        };
        let rtt = p
            .sent_at
            .take()
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        p.next = Some(now + p.spec.interval);
        self.events.push_back(Event::PingAnswered {
            ping: h,
            status: resp.status,
            rtt,
        });
        self.reschedule_ping(h);
    }

    /// The OPTIONS in flight got no answer (Timer F) or could not be sent.
    pub(super) fn on_ping_failure(&mut self, now: Instant, h: PingHandle) {
        let Some(p) = self.pings.get_mut(&h) else {
            return;
        };
        p.sent_at = None;
        p.next = Some(now + p.spec.interval);
        self.events.push_back(Event::PingUnanswered { ping: h });
        self.reschedule_ping(h);
    }

    fn reschedule_ping(&mut self, h: PingHandle) {
        let Some(p) = self.pings.get_mut(&h) else {
            return;
        };
        self.timers
            .set(super::TimerRef::Ping(h), &mut p.scheduled, p.next);
    }

    pub(super) fn ping_timeout(&mut self, now: Instant, h: PingHandle) {
        let Some(p) = self.pings.get_mut(&h) else {
            return;
        };
        p.scheduled = None;
        if p.next.is_some_and(|t| t <= now) {
            self.send_ping(now, h);
        } else {
            self.reschedule_ping(h);
        }
    }
}
