//! Registering with a trunk or registrar (RFC 3261 §10): REGISTER with our Contact, digest
//! answers to 401/407, 423 Interval Too Brief honoured, refresh before the granted expiry,
//! exponential back-off on failure (RFC 5626 §4.5 style: 30 s doubling to 30 min, or the
//! server's Retry-After), and un-registration (Expires: 0) on request.

use std::time::{Duration, Instant};

use super::{Endpoint, Event, Peer};
use crate::auth::Challenge;
use crate::header::HeaderName;
use crate::headers::{parse_u32, Contact};
use crate::message::{Method, Request, Response};
use crate::uri::Uri;

/// A registration the endpoint keeps up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegHandle(pub u64);

/// What to register.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The address of record (To and From), e.g. `sip:+15550100@trunk.example.com`.
    pub aor: Uri,
    /// The registrar's Request-URI, e.g. `sip:trunk.example.com`.
    pub registrar: Uri,
    /// Where REGISTER goes, and the flow our Contact names.
    pub peer: Peer,
    pub credentials: Option<(String, String)>,
    /// The interval we ask for, seconds.
    pub expires: u32,
}

#[derive(Debug)]
pub(crate) struct RegState {
    spec: Registration,
    call_id: String,
    from_tag: String,
    cseq: u32,
    expires: u32,
    /// The last challenge, answered again (with a new nc) on refreshes.
    challenge: Option<(HeaderName, Challenge, u32)>,
    auth_tries: u32,
    failures: u32,
    /// When to send the next REGISTER (refresh or retry); `None` while one is in flight.
    next: Option<Instant>,
    scheduled: Option<Instant>,
    registered: bool,
    removing: bool,
}

impl RegState {
    /// Where the registration's REGISTERs go.
    pub(crate) fn peer(&self) -> &Peer {
        &self.spec.peer
    }
}

const BACKOFF_BASE: Duration = Duration::from_secs(30);
const BACKOFF_MAX: Duration = Duration::from_secs(1800);

impl Endpoint {
    /// Starts keeping `reg` registered; the first REGISTER goes out at once.
    pub fn register(&mut self, now: Instant, reg: Registration) -> RegHandle {
        let h = RegHandle(self.next_id);
        self.next_id += 1;
        let call_id = format!(
            "{}@{}",
            self.random_token(),
            crate::uri::Host::from(reg.peer.local.ip())
        );
        let state = RegState {
            expires: reg.expires,
            spec: reg,
            call_id,
            from_tag: self.random_token(),
            cseq: 0,
            challenge: None,
            auth_tries: 0,
            failures: 0,
            next: None,
            scheduled: None,
            registered: false,
            removing: false,
        };
        self.regs.insert(h, state);
        self.send_register(now, h);
        h
    }

    /// Removes the registration (REGISTER with Expires: 0); it is forgotten once answered.
    pub fn unregister(&mut self, now: Instant, h: RegHandle) {
        let Some(r) = self.regs.get_mut(&h) else {
            return;
        };
        r.removing = true;
        r.next = None;
        if r.registered {
            self.send_register(now, h);
        } else {
            self.drop_reg(h);
        }
    }

    /// Unregisters everything (server shutdown).
    pub fn unregister_all(&mut self, now: Instant) {
        let all: Vec<RegHandle> = self.regs.keys().copied().collect();
        for h in all {
            self.unregister(now, h);
        }
    }

    /// Registrations currently accepted by their registrar.
    pub fn registered_count(&self) -> usize {
        self.regs.values().filter(|r| r.registered).count()
    }

    fn send_register(&mut self, now: Instant, h: RegHandle) {
        let contact;
        let mut req;
        {
            let Some(r) = self.regs.get_mut(&h) else {
                return;
            };
            r.cseq += 1;
            r.next = None;
            contact = Self::contact_for(&r.spec.peer);
            req = Request::new(Method::Register, r.spec.registrar.clone());
            req.headers.push(HeaderName::MAX_FORWARDS, "70");
            req.headers.push(
                HeaderName::FROM,
                format!("<{}>;tag={}", r.spec.aor, r.from_tag),
            );
            req.headers
                .push(HeaderName::TO, format!("<{}>", r.spec.aor));
            req.headers.push(HeaderName::CALL_ID, &r.call_id);
            req.headers
                .push(HeaderName::CSEQ, format!("{} REGISTER", r.cseq));
            let expires = if r.removing { 0 } else { r.expires };
            req.headers.push(HeaderName::CONTACT, contact);
            req.headers.push(HeaderName::EXPIRES, expires.to_string());
        }
        self.answer_known_challenge(h, &mut req);
        let Some(peer) = self.regs.get(&h).map(|r| r.spec.peer.clone()) else {
            return;
        };
        let branch = self.new_branch();
        self.send_owned(now, req, peer, &branch, super::Owner::Reg(h));
    }

    /// Adds credentials for the last challenge (so refreshes need no new 401).
    fn answer_known_challenge(&mut self, h: RegHandle, req: &mut Request) {
        let cnonce = self.random_token();
        let Some(r) = self.regs.get_mut(&h) else {
            return;
        };
        let (Some((name, ch, nc)), Some((user, pass))) =
            (r.challenge.as_mut(), r.spec.credentials.as_ref())
        else {
            return;
        };
        *nc += 1;
        let answer_name = if *name == HeaderName::WWW_AUTHENTICATE {
            HeaderName::AUTHORIZATION
        } else {
            HeaderName::PROXY_AUTHORIZATION
        };
        let uri = req.uri.to_string();
        req.headers.push(
            answer_name,
            ch.answer("REGISTER", &uri, user, pass, &cnonce, *nc),
        );
    }

    pub(super) fn on_register_response(&mut self, now: Instant, h: RegHandle, resp: &Response) {
        if resp.status < 200 {
            return;
        }
        let Some(r) = self.regs.get_mut(&h) else {
            return;
        };
        match resp.status {
            200..=299 => {
                r.auth_tries = 0;
                r.failures = 0;
                if r.removing {
                    self.drop_reg(h);
                    return;
                }
                let granted = granted_expires(resp, &Self::contact_for(&r.spec.peer))
                    .unwrap_or(r.expires)
                    .max(1);
                r.registered = true;
                // Refresh at 90% of the granted interval.
                r.next = Some(now + Duration::from_secs(u64::from(granted)) * 9 / 10);
                self.events.push_back(Event::Registered {
                    reg: h,
                    expires: granted,
                });
            }
            401 | 407 if !r.removing || r.registered => {
                let name = if resp.status == 401 {
                    HeaderName::WWW_AUTHENTICATE
                } else {
                    HeaderName::PROXY_AUTHENTICATE
                };
                let ch = Challenge::best(resp.headers.get_all(&name));
                match ch {
                    // A fresh challenge is answered once; a stale nonce again.
                    Some(ch)
                        if r.spec.credentials.is_some()
                            && (r.auth_tries == 0 || ch.stale)
                            && r.auth_tries < 3 =>
                    {
                        r.auth_tries += 1;
                        r.challenge = Some((name, ch, 0));
                        self.send_register(now, h);
                        return;
                    }
                    _ => self.register_failed(now, h, Some(resp.status), retry_after(resp)),
                }
            }
            423 => {
                // Interval Too Brief: ask again with the registrar's minimum.
                match resp
                    .headers
                    .get(&HeaderName::MIN_EXPIRES)
                    .and_then(parse_u32)
                {
                    Some(min) if min > r.expires => {
                        r.expires = min;
                        self.send_register(now, h);
                        return;
                    }
                    _ => self.register_failed(now, h, Some(423), retry_after(resp)),
                }
            }
            status => self.register_failed(now, h, Some(status), retry_after(resp)),
        }
        self.reschedule_reg(h);
    }

    pub(super) fn on_register_failure(&mut self, now: Instant, h: RegHandle) {
        self.register_failed(now, h, None, None);
        self.reschedule_reg(h);
    }

    fn register_failed(
        &mut self,
        now: Instant,
        h: RegHandle,
        status: Option<u16>,
        retry_after: Option<Duration>,
    ) {
        let Some(r) = self.regs.get_mut(&h) else {
            return;
        };
        if r.removing {
            self.drop_reg(h);
            return;
        }
        r.registered = false;
        r.auth_tries = 0;
        r.failures += 1;
        let backoff = BACKOFF_BASE
            .saturating_mul(1 << (r.failures - 1).min(6))
            .min(BACKOFF_MAX);
        let wait = retry_after.map_or(backoff, |ra| ra.max(backoff).min(BACKOFF_MAX));
        r.next = Some(now + wait);
        self.events.push_back(Event::RegistrationFailed {
            reg: h,
            status,
            retry_in: wait,
        });
    }

    /// Forgets registration `h` and its deadline.
    fn drop_reg(&mut self, h: RegHandle) {
        if let Some(mut r) = self.regs.remove(&h) {
            self.timers
                .set(super::TimerRef::Reg(h), &mut r.scheduled, None);
        }
    }

    fn reschedule_reg(&mut self, h: RegHandle) {
        let Some(r) = self.regs.get_mut(&h) else {
            return;
        };
        self.timers
            .set(super::TimerRef::Reg(h), &mut r.scheduled, r.next);
    }

    /// The registration's deadline came (it has just left the deadline set).
    pub(super) fn reg_timeout(&mut self, now: Instant, h: RegHandle) {
        let Some(r) = self.regs.get_mut(&h) else {
            return;
        };
        r.scheduled = None;
        if r.next.is_some_and(|t| t <= now) {
            self.send_register(now, h);
        }
        self.reschedule_reg(h);
    }
}

/// The interval the registrar granted our Contact: its `expires` parameter, else Expires.
fn granted_expires(resp: &Response, our_contact: &str) -> Option<u32> {
    let ours = crate::headers::NameAddr::parse(our_contact).ok()?.uri;
    for v in resp.headers.get_all(&HeaderName::CONTACT) {
        if let Ok(Contact::Addrs(list)) = Contact::parse(v) {
            for c in list {
                if c.uri == ours {
                    if let Some(e) = c.params.value("expires").and_then(parse_u32) {
                        return Some(e);
                    }
                }
            }
        }
    }
    crate::validate::expires(&resp.headers)
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers.get(&HeaderName::RETRY_AFTER)?;
    parse_u32(v.split(['(', ';']).next()?).map(|s| Duration::from_secs(u64::from(s)))
}
