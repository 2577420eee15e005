//! Calls we place: the INVITE client side of RFC 3261 §13.2 with early dialogs, reliable
//! provisionals (RFC 3262 PRACK), digest retries on 401/407 (§22.2), CANCEL (§9.1, only
//! after a provisional), ACK for every 2xx retransmission, and forked 2xx answered with
//! ACK + BYE (§13.2.2.4).

use std::time::Instant;

use super::uas::{Call, CommandError, Phase};
use super::{CallHandle, EndReason, Endpoint, Event, Peer};
use crate::auth::Challenge;
use crate::header::HeaderName;
use crate::headers::{parse_u32, NameAddr};
use crate::message::{Method, Request, Response};
use crate::transaction::{Transaction, TxKey};
use crate::uri::Uri;

/// What the application asks for when it places a call.
#[derive(Debug, Clone)]
pub struct Dial {
    /// The Request-URI.
    pub uri: Uri,
    /// Our name-addr for From, without tag (e.g. `"Interview" <sip:phonebridge@192.0.2.1>`).
    pub from: String,
    /// The callee's name-addr for To.
    pub to: String,
    /// Where the INVITE goes (the trunk's address, or the URI's host).
    pub peer: Peer,
    /// The SDP offer.
    pub body: Option<(String, Vec<u8>)>,
    /// Username and password for digest challenges.
    pub credentials: Option<(String, String)>,
    /// Extra header fields (P-Asserted-Identity, …).
    pub headers: Vec<(HeaderName, String)>,
}

#[derive(Debug)]
pub(crate) struct Uac {
    /// The INVITE as last sent, without its Via.
    invite: Request,
    invite_seq: u32,
    branch: String,
    credentials: Option<(String, String)>,
    auth_tries: u32,
    /// A 422 was answered with a larger Session-Expires already.
    min_se_retried: bool,
    got_provisional: bool,
    /// Cancel asked for before any provisional: send CANCEL on the first one.
    cancel_pending: bool,
    last_rseq: Option<u32>,
    /// Remote tag of the confirmed dialog and the ACK sent for its 2xx.
    confirmed: Option<(String, Vec<u8>)>,
}

fn tag_of(to: &str) -> Option<String> {
    NameAddr::parse(to)
        .ok()
        .and_then(|n| n.tag().map(str::to_owned))
}

/// The route set of a dialog we set up: the response's Record-Route, reversed (§12.1.2).
fn route_set(resp: &Response) -> Vec<String> {
    let mut r: Vec<String> = resp
        .headers
        .values(&HeaderName::RECORD_ROUTE)
        .map(str::to_owned)
        .collect();
    r.reverse();
    r
}

fn contact_uri(resp: &Response) -> Option<Uri> {
    let v = resp.headers.get(&HeaderName::CONTACT)?;
    NameAddr::parse_list(v)
        .ok()?
        .into_iter()
        .next()
        .map(|n| n.uri)
}

impl Endpoint {
    /// Places a call; the INVITE goes out at once. Progress comes as [`Event::Progress`],
    /// the answer as [`Event::Answered`], the end as [`Event::Ended`].
    pub fn invite(&mut self, now: Instant, dial: Dial) -> CallHandle {
        let h = CallHandle(self.next_id);
        self.next_id += 1;
        self.stats.calls_started += 1;
        let tag = self.random_token();
        let call_id = format!(
            "{}@{}",
            self.random_token(),
            crate::uri::Host::from(dial.peer.local.ip())
        );
        let mut req = Request::new(Method::Invite, dial.uri.clone());
        req.headers.push(HeaderName::MAX_FORWARDS, "70");
        req.headers
            .push(HeaderName::FROM, format!("{};tag={tag}", dial.from));
        req.headers.push(HeaderName::TO, &dial.to);
        req.headers.push(HeaderName::CALL_ID, &call_id);
        req.headers.push(HeaderName::CSEQ, "1 INVITE");
        req.headers
            .push(HeaderName::CONTACT, Self::contact_for(&dial.peer));
        req.headers
            .push(HeaderName::ALLOW, &self.policy_headers.allow);
        req.headers
            .push(HeaderName::SUPPORTED, &self.policy_headers.supported);
        if self.cfg.session_expires > 0 {
            req.headers.push(
                HeaderName::SESSION_EXPIRES,
                self.cfg.session_expires.to_string(),
            );
        }
        for (n, v) in dial.headers {
            req.headers.push(n, v);
        }
        if let Some((ct, b)) = dial.body {
            req.headers.push(HeaderName::CONTENT_TYPE, ct);
            req.body = b;
        }
        let mut call = Call::new(
            call_id.clone(),
            tag.clone(),
            dial.from,
            dial.to,
            dial.uri,
            dial.peer,
            std::sync::Arc::new(req.clone()),
        );
        call.local_cseq = 1;
        call.remote_allows_update = false;
        call.local_sdp = (!req.body.is_empty()).then(|| {
            let ct = req
                .headers
                .get(&HeaderName::CONTENT_TYPE)
                .unwrap_or("application/sdp")
                .to_owned();
            (ct, req.body.clone())
        });
        call.uac = Some(Box::new(Uac {
            invite: req.clone(),
            invite_seq: 1,
            branch: String::new(),
            credentials: dial.credentials,
            auth_tries: 0,
            min_se_retried: false,
            got_provisional: false,
            cancel_pending: false,
            last_rseq: None,
            confirmed: None,
        }));
        self.calls.insert(h, call);
        self.add_dialog(call_id, tag, h);
        self.send_invite(now, h, req);
        h
    }

    fn send_invite(&mut self, now: Instant, h: CallHandle, req: Request) {
        let Some(peer) = self.calls.get(&h).map(|c| c.peer.clone()) else {
            return;
        };
        let branch = self.send_request(now, req.clone(), peer, Some(h));
        let tx = self
            .tx_index
            .get(&TxKey::for_sent(&branch, &Method::Invite))
            .copied();
        if let Some(c) = self.calls.get_mut(&h) {
            c.invite_tx = tx;
            if let Some(u) = c.uac.as_mut() {
                u.branch = branch;
                u.invite = req;
            }
        }
    }

    /// Cancels a call we placed that is not answered yet (RFC 3261 §9.1). The call ends with
    /// [`EndReason::LocalHangup`] once the INVITE completes.
    pub fn cancel(&mut self, now: Instant, h: CallHandle) -> Result<(), CommandError> {
        let c = self.calls.get_mut(&h).ok_or(CommandError::UnknownCall)?;
        if c.phase != Phase::Incoming {
            return Err(CommandError::WrongState);
        }
        let uac = c.uac.as_mut().ok_or(CommandError::WrongState)?;
        c.phase = Phase::Cancelling;
        if uac.got_provisional {
            self.send_cancel(now, h);
        } else {
            uac.cancel_pending = true;
        }
        Ok(())
    }

    fn send_cancel(&mut self, now: Instant, h: CallHandle) {
        let Some(c) = self.calls.get(&h) else { return };
        let Some(u) = c.uac.as_ref() else { return };
        let inv = &u.invite;
        let mut cancel = Request::new(Method::Cancel, inv.uri.clone());
        cancel.headers.copy_from(&inv.headers, &HeaderName::ROUTE);
        cancel.headers.push(HeaderName::MAX_FORWARDS, "70");
        cancel.headers.copy_from(&inv.headers, &HeaderName::FROM);
        cancel.headers.copy_from(&inv.headers, &HeaderName::TO);
        cancel.headers.copy_from(&inv.headers, &HeaderName::CALL_ID);
        cancel
            .headers
            .push(HeaderName::CSEQ, format!("{} CANCEL", u.invite_seq));
        let (branch, peer) = (u.branch.clone(), c.peer.clone());
        self.send_with_branch(now, cancel, peer, None, &branch);
    }

    /// A response to a request we sent inside call `h`.
    pub(super) fn on_call_response(
        &mut self,
        now: Instant,
        h: CallHandle,
        method: &Method,
        resp: Response,
    ) {
        let cseq =
            crate::headers::CSeq::parse(resp.headers.get(&HeaderName::CSEQ).unwrap_or_default())
                .map_or(0, |c| c.seq);
        if self
            .calls
            .get(&h)
            .and_then(|c| c.refresh.as_ref())
            .is_some_and(|r| r.cseq == cseq)
        {
            return self.on_refresh_response(now, h, &resp);
        }
        if *method != Method::Invite {
            tracing::debug!(%method, status = resp.status, "in-dialog response");
            return;
        }
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(uac) = c.uac.as_mut() else { return };
        let status = resp.status;
        if status < 200 {
            // Any provisional, 100 included, lets a pending CANCEL go (§9.1).
            uac.got_provisional = true;
            if uac.cancel_pending {
                uac.cancel_pending = false;
                return self.send_cancel(now, h);
            }
        }
        match status {
            100 => {}
            101..=199 => {
                if c.phase == Phase::Cancelling {
                    return;
                }
                let rseq = if resp.headers.has_token(&HeaderName::REQUIRE, "100rel") {
                    resp.headers.get(&HeaderName::RSEQ).and_then(parse_u32)
                } else {
                    None
                };
                if let Some(r) = rseq {
                    if uac.last_rseq.is_some_and(|last| r <= last) {
                        return; // a retransmitted reliable provisional
                    }
                    uac.last_rseq = Some(r);
                }
                let to = resp
                    .headers
                    .get(&HeaderName::TO)
                    .unwrap_or_default()
                    .to_owned();
                if tag_of(&to).is_some() {
                    // An early dialog: in-dialog requests (PRACK) follow its target and routes.
                    c.remote_party = to;
                    if let Some(t) = contact_uri(&resp) {
                        c.remote_target = t;
                    }
                    c.route_set = route_set(&resp);
                }
                if let Some(r) = rseq {
                    let invite_seq = uac.invite_seq;
                    c.local_cseq += 1;
                    let mut prack = c.in_dialog_request(Method::Prack, c.local_cseq);
                    prack
                        .headers
                        .push(HeaderName::RACK, format!("{r} {invite_seq} INVITE"));
                    let peer = c.peer.clone();
                    self.send_request(now, prack, peer, None);
                }
                self.events.push_back(Event::Progress {
                    call: h,
                    status,
                    body: resp.body,
                });
            }
            200..=299 => self.on_invite_2xx(now, h, resp),
            _ => {
                let cancelling = c.phase == Phase::Cancelling;
                if matches!(status, 401 | 407) && self.retry_with_auth(now, h, &resp) {
                    return;
                }
                if status == 422 && self.retry_with_min_se(now, h, &resp) {
                    return;
                }
                let reason = if cancelling {
                    EndReason::LocalHangup
                } else {
                    EndReason::Rejected(status)
                };
                self.end_call(h, reason);
            }
        }
    }

    fn on_invite_2xx(&mut self, now: Instant, h: CallHandle, resp: Response) {
        let Some(c) = self.calls.get_mut(&h) else {
            return;
        };
        let Some(uac) = c.uac.as_mut() else { return };
        let to = resp
            .headers
            .get(&HeaderName::TO)
            .unwrap_or_default()
            .to_owned();
        let tag = tag_of(&to).unwrap_or_default();
        if let Some((confirmed_tag, ack)) = &uac.confirmed {
            if *confirmed_tag == tag {
                // Our ACK was lost: the 2xx is retransmitted; ACK again.
                let ack = ack.clone();
                let peer = c.peer.clone();
                self.transmits.push_back((peer, ack));
            } else {
                self.ack_and_bye_fork(now, h, &resp);
            }
            return;
        }
        c.remote_party = to;
        if let Some(t) = contact_uri(&resp) {
            c.remote_target = t;
        }
        c.route_set = route_set(&resp);
        c.invite_tx = None;
        let seq = uac.invite_seq;
        let ack = c.in_dialog_request(Method::Ack, seq);
        let peer = c.peer.clone();
        let cancelling = c.phase == Phase::Cancelling;
        let bytes = self.send_ack(ack, peer);
        if let Some(u) = self.calls.get_mut(&h).and_then(|c| c.uac.as_mut()) {
            u.confirmed = Some((tag, bytes));
        }
        if cancelling {
            // The 200 crossed our CANCEL: the call is up, so end it with BYE.
            self.send_bye(now, h);
            self.end_call(h, EndReason::LocalHangup);
            return;
        }
        if let Some(c) = self.calls.get_mut(&h) {
            c.phase = Phase::Confirmed;
            c.remote_allows_update = resp.headers.has_token(&HeaderName::ALLOW, "UPDATE");
        }
        // RFC 4028 §7.2: the 2xx says whether a session timer runs and who refreshes.
        if let Some((n, refresher)) = resp
            .headers
            .get(&HeaderName::SESSION_EXPIRES)
            .and_then(super::session::parse_session_expires)
        {
            self.set_session_timer(now, h, n, refresher.as_deref() != Some("uas"));
        }
        self.events.push_back(Event::Answered {
            call: h,
            body: resp.body,
        });
    }

    /// Sends an ACK for a 2xx (not a transaction); returns its bytes for resending.
    pub(super) fn send_ack(&mut self, mut ack: Request, peer: Peer) -> Vec<u8> {
        let branch = self.new_branch();
        ack.headers
            .push_front(HeaderName::VIA, Self::via_header(&peer, &branch));
        ack.headers
            .push(HeaderName::USER_AGENT, &self.cfg.user_agent);
        let bytes = ack.encode();
        self.transmits.push_back((peer, bytes.clone()));
        bytes
    }

    /// A second dialog from a forking proxy: acknowledge it and end it at once.
    fn ack_and_bye_fork(&mut self, now: Instant, h: CallHandle, resp: &Response) {
        let Some(c) = self.calls.get(&h) else { return };
        let Some(u) = c.uac.as_ref() else { return };
        let mut fork = Call::new(
            c.call_id.clone(),
            c.local_tag.clone(),
            c.local_uri.clone(),
            resp.headers
                .get(&HeaderName::TO)
                .unwrap_or_default()
                .to_owned(),
            contact_uri(resp).unwrap_or_else(|| c.remote_target.clone()),
            c.peer.clone(),
            c.invite.clone(),
        );
        fork.route_set = route_set(resp);
        let ack = fork.in_dialog_request(Method::Ack, u.invite_seq);
        fork.local_cseq = u.invite_seq + 1;
        let bye = fork.in_dialog_request(Method::Bye, fork.local_cseq);
        let peer = c.peer.clone();
        self.send_ack(ack, peer.clone());
        self.send_request(now, bye, peer, None);
    }

    /// The next INVITE of a retry on the same dialog (same Call-ID and tags, CSeq + 1), if
    /// the call is still being set up and `allow` agrees (it may update the caller state).
    fn retry_invite(
        &mut self,
        h: CallHandle,
        allow: impl FnOnce(&mut Uac) -> bool,
    ) -> Option<Request> {
        let c = self.calls.get_mut(&h)?;
        if c.phase == Phase::Cancelling {
            return None;
        }
        let u = c.uac.as_mut()?;
        if !allow(u) {
            return None;
        }
        c.local_cseq += 1;
        u.invite_seq = c.local_cseq;
        u.got_provisional = false;
        let mut req = u.invite.clone();
        req.headers
            .set(HeaderName::CSEQ, format!("{} INVITE", c.local_cseq));
        Some(req)
    }

    /// Answers a 401/407 with credentials once (again only for a stale nonce).
    fn retry_with_auth(&mut self, now: Instant, h: CallHandle, resp: &Response) -> bool {
        let (challenge_name, answer_name) = if resp.status == 401 {
            (HeaderName::WWW_AUTHENTICATE, HeaderName::AUTHORIZATION)
        } else {
            (
                HeaderName::PROXY_AUTHENTICATE,
                HeaderName::PROXY_AUTHORIZATION,
            )
        };
        let Some(ch) = Challenge::best(resp.headers.get_all(&challenge_name)) else {
            return false;
        };
        let mut creds = None;
        let retry = self.retry_invite(h, |u| {
            if u.auth_tries >= 2 || (u.auth_tries == 1 && !ch.stale) {
                return false;
            }
            creds = u.credentials.clone();
            u.auth_tries += 1;
            creds.is_some()
        });
        let (Some(mut req), Some((user, pass))) = (retry, creds) else {
            return false;
        };
        let cnonce = self.random_token();
        req.headers.remove(&answer_name);
        let uri = req.uri.to_string();
        req.headers.push(
            answer_name,
            ch.answer("INVITE", &uri, &user, &pass, &cnonce, 1),
        );
        self.send_invite(now, h, req);
        true
    }

    /// A 422 names the smallest interval the callee accepts: ask again with it, once.
    fn retry_with_min_se(&mut self, now: Instant, h: CallHandle, resp: &Response) -> bool {
        let Some(min) = resp
            .headers
            .get(&HeaderName::MIN_SE)
            .and_then(|v| parse_u32(v.split(';').next().unwrap_or("")))
        else {
            return false;
        };
        let retry = self.retry_invite(h, |u| !std::mem::replace(&mut u.min_se_retried, true));
        let Some(mut req) = retry else {
            return false;
        };
        req.headers
            .set(HeaderName::SESSION_EXPIRES, min.to_string());
        req.headers.set(HeaderName::MIN_SE, min.to_string());
        self.send_invite(now, h, req);
        true
    }

    /// A request of ours inside call `h` failed (timeout or transport).
    pub(super) fn on_call_failure(
        &mut self,
        _now: Instant,
        h: CallHandle,
        method: &Method,
        reason: EndReason,
    ) {
        tracing::debug!(%method, ?reason, "request failed");
        // A session refresh that gets no answer ends the session (RFC 4028 §10).
        if !matches!(method, Method::Invite | Method::Update) {
            return;
        }
        let cancelling = self
            .calls
            .get(&h)
            .is_some_and(|c| c.phase == Phase::Cancelling);
        self.end_call(
            h,
            if cancelling {
                EndReason::LocalHangup
            } else {
                reason
            },
        );
    }

    /// Starts a client transaction for `req` with a given branch (CANCEL reuses the INVITE's).
    pub(super) fn send_with_branch(
        &mut self,
        now: Instant,
        req: Request,
        target: Peer,
        call: Option<CallHandle>,
        branch: &str,
    ) {
        self.send_owned(now, req, target, branch, call.into());
    }

    /// Starts a client transaction whose responses go to `owner`.
    pub(super) fn send_owned(
        &mut self,
        now: Instant,
        mut req: Request,
        target: Peer,
        branch: &str,
        owner: super::Owner,
    ) {
        req.headers
            .push_front(HeaderName::VIA, Self::via_header(&target, branch));
        if req.headers.get(&HeaderName::USER_AGENT).is_none() {
            req.headers
                .push(HeaderName::USER_AGENT, &self.cfg.user_agent);
        }
        let key = TxKey::for_sent(branch, &req.method);
        let tx = Transaction::client(now, req, target.transport.is_reliable(), self.cfg.timers);
        let id = self.insert_tx(key, tx, target, owner);
        self.drive_tx(now, id);
    }
}
