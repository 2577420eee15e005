//! Calls we answer: the INVITE server side of RFC 3261 §13.3 with its dialog (§12.1.1),
//! CANCEL (§9.2), BYE (§15), re-INVITE and UPDATE (§14, RFC 3311), INFO, OPTIONS.

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;

use super::session::{OwnRefresh, Reliable1xx, Resend, SessionTimer};
use super::{build, CallHandle, EndReason, Endpoint, Event, Peer};
use crate::header::HeaderName;
use crate::message::{Method, Request, Response};
use crate::transaction::{State, TxKey};
use crate::uri::Uri;
use crate::validate::Envelope;

/// What the application may get wrong when commanding a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no such call")]
    UnknownCall,
    #[error("the call is not in a state that allows this")]
    WrongState,
    #[error("status code not allowed here")]
    BadStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// INVITE received (or sent), no final answer yet.
    Incoming,
    /// We sent INVITE and asked to cancel; waiting for it to complete.
    Cancelling,
    /// 2xx sent, ACK not yet received.
    Answered,
    Confirmed,
}

/// A 2xx retransmitted until its ACK arrives (RFC 3261 §13.3.1.4).
#[derive(Debug)]
pub(super) struct Pending2xx {
    cseq: u32,
    pub(super) resend: Resend,
    pub(super) initial: bool,
}

/// A received re-INVITE or UPDATE waiting for the application's answer.
#[derive(Debug)]
pub(super) struct PendingOffer {
    tx: u64,
    request: Request,
}

/// A message body with its Content-Type.
pub(super) type Body = (String, Vec<u8>);

#[derive(Debug)]
pub(crate) struct Call {
    pub(super) phase: Phase,
    pub(super) call_id: String,
    pub(super) local_tag: String,
    /// Our side as the peer addressed it (the INVITE's To, without tag).
    pub(super) local_uri: String,
    /// The peer's From header value, tag included (our To in requests we send).
    pub(super) remote_party: String,
    pub(super) remote_target: Uri,
    pub(super) route_set: Vec<String>,
    pub(super) local_cseq: u32,
    pub(super) remote_cseq: u32,
    /// The flow the dialog was set up on; in-dialog requests follow it (NAT-safe).
    pub(super) peer: Peer,
    /// Where responses to the INVITE go.
    pub(super) response_target: Peer,
    pub(super) invite: Arc<Request>,
    pub(super) invite_tx: Option<u64>,
    pub(super) pending_2xx: Option<Pending2xx>,
    pub(super) pending_offer: Option<PendingOffer>,
    pub(super) scheduled: Option<Instant>,
    /// The caller side's state when we placed the call.
    pub(super) uac: Option<Box<super::uac::Uac>>,
    /// Last RSeq we used, and the reliable provisional awaiting PRACK.
    pub(super) rseq: u32,
    pub(super) reliable: Option<Reliable1xx>,
    /// A 2xx the application gave while a reliable 1xx with SDP awaited PRACK.
    pub(super) held_2xx: Option<(u16, Option<Body>)>,
    pub(super) timer: Option<SessionTimer>,
    pub(super) refresh: Option<OwnRefresh>,
    /// The last SDP we sent (re-sent in a re-INVITE refresh).
    pub(super) local_sdp: Option<Body>,
    /// The peer listed UPDATE in Allow.
    pub(super) remote_allows_update: bool,
}

impl Call {
    /// A request inside this dialog (RFC 3261 §12.2.1.1): remote target, route set, tags.
    pub(super) fn in_dialog_request(&self, method: Method, seq: u32) -> Request {
        let mut r = Request::new(method.clone(), self.remote_target.clone());
        for route in &self.route_set {
            r.headers.push(HeaderName::ROUTE, route);
        }
        r.headers.push(HeaderName::MAX_FORWARDS, "70");
        r.headers.push(
            HeaderName::FROM,
            format!("{};tag={}", self.local_uri, self.local_tag),
        );
        r.headers.push(HeaderName::TO, &self.remote_party);
        r.headers.push(HeaderName::CALL_ID, &self.call_id);
        r.headers.push(HeaderName::CSEQ, format!("{seq} {method}"));
        r
    }

    fn next_deadline(&self) -> Option<Instant> {
        [
            self.pending_2xx.as_ref().map(|p| p.resend.deadline()),
            self.reliable.as_ref().map(|r| r.resend.deadline()),
            self.timer.map(|t| t.deadline),
            self.refresh.as_ref().and_then(|r| r.retry_at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// A call record with the dialog fields set and every optional part empty.
    pub(super) fn new(
        call_id: String,
        local_tag: String,
        local_uri: String,
        remote_party: String,
        remote_target: Uri,
        peer: Peer,
        invite: Arc<Request>,
    ) -> Call {
        Call {
            phase: Phase::Incoming,
            call_id,
            local_tag,
            local_uri,
            remote_party,
            remote_target,
            route_set: Vec::new(),
            local_cseq: 0,
            remote_cseq: 0,
            response_target: peer.clone(),
            peer,
            remote_allows_update: invite.headers.has_token(&HeaderName::ALLOW, "UPDATE"),
            invite,
            invite_tx: None,
            pending_2xx: None,
            pending_offer: None,
            scheduled: None,
            uac: None,
            rseq: 0,
            reliable: None,
            held_2xx: None,
            timer: None,
            refresh: None,
            local_sdp: None,
        }
    }
}

impl Endpoint {
    pub(super) fn on_new_request(
        &mut self,
        now: Instant,
        from: Peer,
        req: Request,
        env: Envelope,
        key: TxKey,
    ) {
        if let Some(tag) = env.to.tag() {
            let tag = tag.to_owned();
            return self.on_in_dialog(now, from, req, env, key, &tag);
        }
        match req.method {
            Method::Invite => self.on_invite(now, from, req, env, key),
            Method::Cancel => self.on_cancel(now, from, req, env, key),
            Method::Options => self.answer_options(now, from, req, &env, key),
            Method::Ack => self.stats.dropped_malformed += 1,
            _ => {
                let id = self.new_server_tx(now, key, &req, &env, &from, None);
                let r = build::response(&req, 481, Some(&self.random_token()));
                self.respond_tx(now, id, r);
            }
        }
    }

    /// A merged request (RFC 3261 §8.2.2.2): an INVITE without To tag whose Call-ID, From
    /// (tag included) and CSeq are those of a call we are answering, but which its
    /// transaction did not match — a copy that a forking proxy or a loop delivered by another
    /// path. Answering it too would set up a second call for one caller.
    fn is_merged(&self, req: &Request, env: &Envelope) -> bool {
        let Some(list) = self.dialogs.get(&env.call_id) else {
            return false;
        };
        let from = req.headers.get(&HeaderName::FROM);
        let cseq = req.headers.get(&HeaderName::CSEQ);
        list.iter().any(|(_, h)| {
            self.calls.get(h).is_some_and(|c| {
                c.uac.is_none()
                    && Some(c.remote_party.as_str()) == from
                    && c.invite.headers.get(&HeaderName::CSEQ) == cseq
            })
        })
    }

    fn answer_options(
        &mut self,
        now: Instant,
        from: Peer,
        req: Request,
        env: &Envelope,
        key: TxKey,
    ) {
        let id = self.new_server_tx(now, key, &req, env, &from, None);
        let mut r = build::response(&req, 200, Some(&self.random_token()));
        r.headers
            .push(HeaderName::ALLOW, &self.policy_headers.allow);
        r.headers
            .push(HeaderName::ACCEPT, &self.policy_headers.accept);
        r.headers
            .push(HeaderName::SUPPORTED, &self.policy_headers.supported);
        self.respond_tx(now, id, r);
    }

    fn on_invite(&mut self, now: Instant, from: Peer, req: Request, env: Envelope, key: TxKey) {
        // One copy of the INVITE, shared by its transaction, the call and the event.
        let req = Arc::new(req);
        let id = self.open_server_tx(
            now,
            key,
            &Method::Invite,
            Some(req.clone()),
            (&env, &from),
            None,
        );
        if self.is_merged(&req, &env) {
            self.stats.rejected_merged += 1;
            let r = build::response(&req, 482, Some(&self.random_token()));
            return self.respond_tx(now, id, r);
        }
        if let Some(challenge) = self.inbound_challenge(now, from.remote.ip(), &req) {
            self.stats.auth_challenges += 1;
            let mut r = build::response(&req, 401, Some(&self.random_token()));
            r.headers.push(HeaderName::WWW_AUTHENTICATE, challenge);
            return self.respond_tx(now, id, r);
        }
        if self.calls.len() >= self.cfg.max_calls {
            self.stats.rejected_busy += 1;
            let mut r = build::response(&req, 503, Some(&self.random_token()));
            r.headers.push(HeaderName::RETRY_AFTER, "5");
            return self.respond_tx(now, id, r);
        }
        let remote_target = match env.contact_target() {
            Some(uri) => uri.clone(),
            None => {
                let r = build::response(&req, 400, Some(&self.random_token()));
                let mut r = r;
                r.reason = "Missing or bad Contact".into();
                return self.respond_tx(now, id, r);
            }
        };
        if self.session_interval_too_small(&req) {
            let mut r = build::response(&req, 422, Some(&self.random_token()));
            r.headers
                .push(HeaderName::MIN_SE, self.cfg.min_se.to_string());
            return self.respond_tx(now, id, r);
        }
        let handle = CallHandle(self.next_id);
        self.next_id += 1;
        self.stats.calls_started += 1;
        if let Some(e) = self.txs.get_mut(&id) {
            e.owner = super::Owner::Call(handle);
        }
        let local_tag = self.random_token();
        let mut local = env.to.clone();
        local.params.remove("tag");
        let response_target = self
            .txs
            .get(&id)
            .map(|e| e.target.clone())
            .unwrap_or_else(|| from.clone());
        let mut call = Call::new(
            env.call_id.clone(),
            local_tag.clone(),
            req.headers
                .get(&HeaderName::TO)
                .unwrap_or_default()
                .to_owned(),
            req.headers
                .get(&HeaderName::FROM)
                .unwrap_or_default()
                .to_owned(),
            remote_target,
            from.clone(),
            req.clone(),
        );
        call.route_set = req
            .headers
            .values(&HeaderName::RECORD_ROUTE)
            .map(str::to_owned)
            .collect();
        call.remote_cseq = env.cseq.seq;
        call.response_target = response_target;
        call.invite_tx = Some(id);
        self.calls.insert(handle, call);
        self.add_dialog(env.call_id.clone(), local_tag, handle);
        self.events.push_back(Event::IncomingCall {
            call: handle,
            request: req,
            peer: from,
        });
    }

    fn on_cancel(&mut self, now: Instant, from: Peer, req: Request, env: Envelope, key: TxKey) {
        let invite_key = TxKey::server(&req, &env, Some(&Method::Invite));
        let id = self.new_server_tx(now, key, &req, &env, &from, None);
        let target = self
            .tx_index
            .get(&invite_key)
            .and_then(|tid| self.txs.get(tid).map(|e| (*tid, e.call(), e.tx.state())));
        let Some((invite_tx, call, state)) = target else {
            let r = build::response(&req, 481, Some(&self.random_token()));
            return self.respond_tx(now, id, r);
        };
        let tag = call
            .and_then(|c| self.calls.get(&c))
            .map(|c| c.local_tag.clone());
        let ok = build::response(&req, 200, tag.as_deref());
        self.respond_tx(now, id, ok);
        if state == State::Proceeding {
            if let Some(h) = call {
                if self
                    .calls
                    .get(&h)
                    .is_some_and(|c| c.phase == Phase::Incoming)
                {
                    self.reject_invite(now, h, invite_tx, 487);
                    self.end_call(h, EndReason::Cancelled);
                }
            }
        }
    }

    fn on_in_dialog(
        &mut self,
        now: Instant,
        from: Peer,
        req: Request,
        env: Envelope,
        key: TxKey,
        tag: &str,
    ) {
        let handle = self.find_dialog(&env.call_id, tag);
        let Some(h) = handle else {
            match req.method {
                Method::Ack => {}
                Method::Options => self.answer_options(now, from, req, &env, key),
                _ => {
                    let id = self.new_server_tx(now, key, &req, &env, &from, None);
                    let r = build::response(&req, 481, None);
                    self.respond_tx(now, id, r);
                }
            }
            return;
        };
        if req.method == Method::Ack {
            return self.on_ack(h, &env, req.body);
        }
        // RFC 3261 §12.2.2: a lower or equal CSeq than the last one is out of order.
        let in_order = self
            .calls
            .get(&h)
            .is_some_and(|c| env.cseq.seq > c.remote_cseq);
        let id = self.new_server_tx(now, key, &req, &env, &from, Some(h));

        if !in_order {
            let r = build::response(&req, 500, None);
            return self.respond_tx(now, id, r);
        }
        if let Some(c) = self.calls.get_mut(&h) {
            c.remote_cseq = env.cseq.seq;
        }
        match req.method {
            Method::Bye => {
                let r = build::response(&req, 200, None);
                self.respond_tx(now, id, r);
                let invite_tx = self.calls.get(&h).and_then(|c| {
                    (c.phase == Phase::Incoming)
                        .then_some(c.invite_tx)
                        .flatten()
                });
                if let Some(itx) = invite_tx {
                    self.reject_invite(now, h, itx, 487);
                }
                self.end_call(h, EndReason::RemoteBye);
            }
            Method::Invite | Method::Update if self.own_offer_pending(h) => {
                // Glare with our own re-INVITE (RFC 3261 §14.2).
                let r = build::response(&req, 491, None);
                self.respond_tx(now, id, r);
            }
            Method::Invite | Method::Update => {
                // A target refresh (RFC 3261 §12.2.2, RFC 3311 §5.2): the peer's Contact in
                // the request is where the dialog's requests go from now on.
                if let (Some(uri), Some(c)) = (env.contact_target(), self.calls.get_mut(&h)) {
                    c.remote_target = uri.clone();
                }
                self.on_offer(now, h, id, req)
            }
            Method::Prack => self.on_prack(now, h, id, &req),
            Method::Info => {
                let r = build::response(&req, 200, None);
                self.respond_tx(now, id, r);
                self.events.push_back(Event::Info {
                    call: h,
                    content_type: req
                        .headers
                        .get(&HeaderName::CONTENT_TYPE)
                        .map(str::to_owned),
                    body: req.body,
                });
            }
            Method::Options => {
                let mut r = build::response(&req, 200, None);
                r.headers
                    .push(HeaderName::ALLOW, &self.policy_headers.allow);
                self.respond_tx(now, id, r);
            }
            _ => {
                // PRACK without a reliable provisional of ours, or another method we accept
                // out of dialog only.
                let r = build::response(&req, 481, None);
                self.respond_tx(now, id, r);
            }
        }
    }

    fn on_ack(&mut self, h: CallHandle, env: &Envelope, body: Vec<u8>) {
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(p) = &c.pending_2xx else { return };
        if p.cseq != env.cseq.seq {
            return;
        }
        c.pending_2xx = None;
        c.phase = Phase::Confirmed;
        self.events.push_back(Event::Confirmed { call: h, body });
    }

    fn on_offer(&mut self, now: Instant, h: CallHandle, id: u64, req: Request) {
        let busy = self.calls.get(&h).is_some_and(|c| {
            c.pending_offer.is_some() || c.phase == Phase::Incoming || c.pending_2xx.is_some()
        });
        if busy {
            // RFC 3261 §14.2 and RFC 3311 §5.2: an offer while another is being handled.
            let mut r = build::response(&req, 500, None);
            let secs = self.rng.gen_range(0..=10);
            r.headers.push(HeaderName::RETRY_AFTER, secs.to_string());
            return self.respond_tx(now, id, r);
        }
        let method = req.method.clone();
        let body = req.body.clone();
        if let Some(c) = self.calls.get_mut(&h) {
            c.pending_offer = Some(PendingOffer {
                tx: id,
                request: req,
            });
        }
        self.events.push_back(Event::Offer {
            call: h,
            method,
            body,
        });
    }

    /// Answers the INVITE of an incoming call: 180/183 (with an optional SDP), 2xx (with the
    /// SDP answer, or an offer when the INVITE had none), or a failure status (ends the call).
    pub fn respond(
        &mut self,
        now: Instant,
        h: CallHandle,
        status: u16,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(), CommandError> {
        let c = self.calls.get(&h).ok_or(CommandError::UnknownCall)?;
        if c.phase != Phase::Incoming || c.uac.is_some() {
            return Err(CommandError::WrongState);
        }
        let tx = c.invite_tx.ok_or(CommandError::WrongState)?;
        if status <= 100 || status > 699 {
            return Err(CommandError::BadStatus);
        }
        if status >= 300 {
            self.reject_invite(now, h, tx, status);
            self.end_call(h, EndReason::Rejected(status));
            return Ok(());
        }
        let c = &self.calls[&h];
        let peer_100rel = c.invite.headers.has_token(&HeaderName::SUPPORTED, "100rel")
            || c.invite.headers.has_token(&HeaderName::REQUIRE, "100rel");
        if status >= 200 && c.reliable.as_ref().is_some_and(|r| r.has_sdp) {
            // RFC 3262 §3: no 2xx before the PRACK of a reliable 1xx that carried SDP.
            let held = body.map(|(ct, b)| (ct.to_owned(), b));
            if let Some(c) = self.calls.get_mut(&h) {
                c.held_2xx = Some((status, held));
            }
            return Ok(());
        }
        let reliable = status < 200 && peer_100rel && c.reliable.is_none();
        let timer = if status >= 200 {
            self.negotiate_uas_timer(&c.invite)
        } else {
            None
        };
        let mut resp = self.dialog_response(h, status, body);
        if let Some(c) = self.calls.get_mut(&h) {
            if !resp.body.is_empty() {
                let ct = resp
                    .headers
                    .get(&HeaderName::CONTENT_TYPE)
                    .unwrap_or("application/sdp")
                    .to_owned();
                c.local_sdp = Some((ct, resp.body.clone()));
            }
        }
        if let Some((n, we_refresh, caller_supports)) = timer {
            let who = if we_refresh { "uas" } else { "uac" };
            let mut se = String::with_capacity(24);
            crate::text::push_decimal(&mut se, n);
            se.push_str(";refresher=");
            se.push_str(who);
            resp.headers.push(HeaderName::SESSION_EXPIRES, se);
            if caller_supports {
                resp.headers.push(HeaderName::REQUIRE, "timer");
            }
            self.set_session_timer(now, h, n, we_refresh);
        }
        if reliable {
            self.send_reliable(now, h, tx, resp);
            return Ok(());
        }
        if (200..300).contains(&status) {
            if let Some(c) = self.calls.get_mut(&h) {
                c.phase = Phase::Answered;
                c.invite_tx = None;
                c.reliable = None;
            }
            self.send_2xx(now, h, tx, resp, true);
            return Ok(());
        }
        self.respond_tx(now, tx, resp);
        Ok(())
    }

    /// Answers a pending re-INVITE or UPDATE ([`Event::Offer`]).
    pub fn answer_offer(
        &mut self,
        now: Instant,
        h: CallHandle,
        status: u16,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(), CommandError> {
        let c = self.calls.get_mut(&h).ok_or(CommandError::UnknownCall)?;
        let pending = c.pending_offer.take().ok_or(CommandError::WrongState)?;
        if !(200..=699).contains(&status) {
            c.pending_offer = Some(pending);
            return Err(CommandError::BadStatus);
        }
        let mut resp = build::response(&pending.request, status, None);
        if (200..300).contains(&status) {
            resp.headers
                .push(HeaderName::CONTACT, Self::contact_for(&c.peer));
            if let Some((ct, b)) = body {
                resp.headers.push(HeaderName::CONTENT_TYPE, ct);
                resp.body = b.clone();
                c.local_sdp = Some((ct.to_owned(), b));
            }
            if let Some(t) = c.timer {
                // The peer sent this refresh, so the peer refreshes next (RFC 4028 §9).
                resp.headers.push(
                    HeaderName::SESSION_EXPIRES,
                    format!("{};refresher=uac", t.interval),
                );
                if pending
                    .request
                    .headers
                    .has_token(&HeaderName::SUPPORTED, "timer")
                {
                    resp.headers.push(HeaderName::REQUIRE, "timer");
                }
            }
            self.peer_refreshed(now, h, &pending.request);
            if pending.request.method == Method::Invite {
                self.send_2xx(now, h, pending.tx, resp, false);
                return Ok(());
            }
        }
        self.respond_tx(now, pending.tx, resp);
        Ok(())
    }

    /// Sends an INFO inside an answered call (e.g. `application/dtmf-relay` digits). Its
    /// answer is not reported, and an INFO that goes unanswered does not end the call.
    pub fn send_info(
        &mut self,
        now: Instant,
        h: CallHandle,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(), CommandError> {
        let c = self.calls.get_mut(&h).ok_or(CommandError::UnknownCall)?;
        if !matches!(c.phase, Phase::Answered | Phase::Confirmed) {
            return Err(CommandError::WrongState);
        }
        c.local_cseq += 1;
        let mut info = c.in_dialog_request(Method::Info, c.local_cseq);
        info.headers.push(HeaderName::CONTENT_TYPE, content_type);
        info.body = body;
        let peer = c.peer.clone();
        self.send_request(now, info, peer, Some(h));
        Ok(())
    }

    /// The flow a call runs on.
    pub fn call_peer(&self, h: CallHandle) -> Option<&Peer> {
        self.calls.get(&h).map(|c| &c.peer)
    }

    /// Ends a call: a BYE when answered, 480 to an INVITE not yet answered.
    pub fn hangup(&mut self, now: Instant, h: CallHandle) -> Result<(), CommandError> {
        let c = self.calls.get(&h).ok_or(CommandError::UnknownCall)?;
        match (c.phase, c.invite_tx, c.uac.is_some()) {
            (Phase::Cancelling, ..) => return Ok(()),
            (Phase::Incoming, _, true) => return self.cancel(now, h),
            (Phase::Incoming, Some(tx), false) => self.reject_invite(now, h, tx, 480),
            _ => self.send_bye(now, h),
        }
        self.end_call(h, EndReason::LocalHangup);
        Ok(())
    }

    /// Ends every call (server shutdown): BYE to answered calls, 503 to ringing ones, CANCEL
    /// to calls we placed that are not answered yet (those end when their INVITE completes).
    pub fn hangup_all(&mut self, now: Instant) {
        let handles: Vec<CallHandle> = self.calls.keys().copied().collect();
        for h in handles {
            let placed_ringing = self
                .calls
                .get(&h)
                .is_some_and(|c| c.uac.is_some() && c.phase == Phase::Incoming);
            if placed_ringing {
                let _ = self.cancel(now, h);
                continue;
            }
            let ringing = self.calls.get(&h).and_then(|c| {
                (c.phase == Phase::Incoming)
                    .then_some(c.invite_tx)
                    .flatten()
            });
            match ringing {
                Some(tx) => self.reject_invite(now, h, tx, 503),
                None => self.send_bye(now, h),
            }
            self.end_call(h, EndReason::LocalHangup);
        }
    }

    pub(super) fn send_bye(&mut self, now: Instant, h: CallHandle) {
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        c.local_cseq += 1;
        let bye = c.in_dialog_request(Method::Bye, c.local_cseq);
        let peer = c.peer.clone();
        self.send_request(now, bye, peer, None);
    }

    /// A response to the INVITE carrying the dialog's Contact and Record-Route.
    fn dialog_response(
        &self,
        h: CallHandle,
        status: u16,
        body: Option<(&str, Vec<u8>)>,
    ) -> Response {
        let c = &self.calls[&h];
        let mut r = build::response(&c.invite, status, Some(&c.local_tag));
        r.headers
            .copy_from(&c.invite.headers, &HeaderName::RECORD_ROUTE);
        r.headers
            .push(HeaderName::CONTACT, Self::contact_for(&c.peer));
        r.headers
            .push(HeaderName::ALLOW, &self.policy_headers.allow);
        r.headers
            .push(HeaderName::SUPPORTED, &self.policy_headers.supported);
        if let Some((ct, b)) = body {
            r.headers.push(HeaderName::CONTENT_TYPE, ct);
            r.body = b;
        }
        r
    }

    pub(super) fn reject_invite(&mut self, now: Instant, h: CallHandle, tx: u64, status: u16) {
        let tag = self.calls.get(&h).map(|c| c.local_tag.clone());
        let Some(req) = self.txs.get(&tx).and_then(|e| e.tx.request().cloned()) else {
            return;
        };
        let r = build::response(&req, status, tag.as_deref());
        self.respond_tx(now, tx, r);
    }

    /// Sends a 2xx to an INVITE on transaction `tx` and keeps resending it until the ACK
    /// (the transaction stops at Accepted; the dialog owns 2xx retransmission).
    fn send_2xx(&mut self, now: Instant, h: CallHandle, tx: u64, resp: Response, initial: bool) {
        let t1 = self.cfg.timers.t1;
        let cseq =
            crate::headers::CSeq::parse(resp.headers.get(&HeaderName::CSEQ).unwrap_or_default())
                .map_or(0, |c| c.seq);
        self.respond_tx(now, tx, resp);
        // The bytes the transaction just sent, encoded once.
        let Some(bytes) = self.txs.get_mut(&tx).and_then(|e| e.tx.take_last_sent()) else {
            return;
        };
        if let Some(c) = self.calls.get_mut(&h) {
            c.pending_2xx = Some(Pending2xx {
                cseq,
                resend: Resend::new(now, bytes, t1),
                initial,
            });
        }
        self.reschedule_call(h);
    }

    pub(super) fn reschedule_call(&mut self, h: CallHandle) {
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        let next = c.next_deadline();
        self.timers
            .set(super::TimerRef::Call(h), &mut c.scheduled, next);
    }

    /// The call's deadline came (it has just left the deadline set).
    pub(super) fn call_timeout(&mut self, now: Instant, h: CallHandle) {
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        c.scheduled = None;
        self.call_timers_due(now, h);
        self.reschedule_call(h);
    }

    pub(super) fn end_call(&mut self, h: CallHandle, reason: EndReason) {
        if let Some(mut c) = self.calls.remove(&h) {
            self.timers
                .set(super::TimerRef::Call(h), &mut c.scheduled, None);
            self.remove_dialog(&c.call_id, &c.local_tag);
            self.stats.calls_ended += 1;
            self.events.push_back(Event::Ended { call: h, reason });
        }
    }
}
