//! Checks a parsed message before any layer acts on it, and maps each fault to its answer.
//!
//! [`check_request`]/[`check_response`] enforce the grammar of the header fields every layer
//! relies on (Via, From, To, Call-ID, CSeq, Max-Forwards, Contact) and return them typed as an
//! [`Envelope`]. [`UasPolicy::check`] applies the UAS rules of RFC 3261 §8.2 (method, URI
//! scheme, Require, Content-Type, Accept).

use crate::error::Rejection;
use crate::header::HeaderName;
use crate::headers::{
    check_call_id, parse_max_forwards, parse_media_type, parse_u32, CSeq, Contact, NameAddr, Via,
};
use crate::message::{Method, Request, Response};
use crate::uri::Uri;

/// The typed header fields that identify a message's transaction and dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub vias: Vec<Via>,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: CSeq,
    pub max_forwards: Option<u8>,
    /// The first Contact field line, parsed (every line is checked), in responses and in
    /// the requests that read it (see [`contact_needed`]); `None` in the others.
    pub contact: Option<Contact>,
}

impl Envelope {
    /// The top Via (every checked message has one).
    pub fn top_via(&self) -> &Via {
        &self.vias[0]
    }

    /// The one address the Contact names, as a dialog's remote target: `None` when there
    /// is no Contact, or it is `*` or a list.
    pub fn contact_target(&self) -> Option<&Uri> {
        match &self.contact {
            Some(Contact::Addrs(list)) if list.len() == 1 => Some(&list[0].uri),
            _ => None,
        }
    }
}

fn bad(reason: impl Into<String>) -> Rejection {
    Rejection::new(400, reason)
}

fn single<'a>(
    headers: &'a crate::message::Headers,
    name: &'a HeaderName,
) -> Result<&'a str, Rejection> {
    let mut it = headers.get_all(name);
    let first = it
        .next()
        .ok_or_else(|| bad(format!("Missing {name} header")))?;
    if it.next().is_some() {
        return Err(bad(format!("Multiple {name} headers")));
    }
    Ok(first)
}

/// Whether a request's Contact says where the peer is reached: a new dialog's remote target,
/// a target refresh, or a registration's bindings (RFC 3261 §8.1.1.8, §12.2, §10.2.1).
/// Elsewhere (ACK, BYE, CANCEL, OPTIONS, INFO, PRACK, ...) nothing reads it, and a malformed
/// one is ignored, as RFC 4475 asks of any field an element does not need.
fn contact_needed(m: &Method) -> bool {
    matches!(
        m,
        Method::Invite
            | Method::Update
            | Method::Subscribe
            | Method::Notify
            | Method::Refer
            | Method::Register
    )
}

/// The envelope's fields, typed; `contact`: parse and check the Contact lines too.
fn envelope(headers: &crate::message::Headers, contact: bool) -> Result<Envelope, Rejection> {
    let mut vias = Vec::new();
    for v in headers.values(&HeaderName::VIA) {
        vias.push(Via::parse(v).map_err(|e| bad(format!("Bad Via header: {e}")))?);
    }
    // An empty list item (`Via: a,,b`) is as broken as an empty parameter.
    for line in headers.get_all(&HeaderName::VIA) {
        if crate::text::split_commas(line).any(str::is_empty) {
            return Err(bad("Bad Via header: empty value"));
        }
    }
    if vias.is_empty() {
        return Err(bad("Missing Via header"));
    }
    let from = NameAddr::parse(single(headers, &HeaderName::FROM)?)
        .map_err(|e| bad(format!("Bad From header: {e}")))?;
    let to = NameAddr::parse(single(headers, &HeaderName::TO)?)
        .map_err(|e| bad(format!("Bad To header: {e}")))?;
    let call_id = single(headers, &HeaderName::CALL_ID)?;
    check_call_id(call_id).map_err(|_| bad("Bad Call-ID header"))?;
    let cseq = CSeq::parse(single(headers, &HeaderName::CSEQ)?)
        .map_err(|e| bad(format!("Bad CSeq header: {e}")))?;
    let max_forwards = match headers.count(&HeaderName::MAX_FORWARDS) {
        0 => None,
        1 => Some(
            parse_max_forwards(headers.get(&HeaderName::MAX_FORWARDS).unwrap_or_default())
                .map_err(|_| bad("Bad Max-Forwards header"))?,
        ),
        _ => return Err(bad("Multiple Max-Forwards headers")),
    };
    let mut first_contact = None;
    if contact {
        for c in headers.get_all(&HeaderName::CONTACT) {
            let parsed = Contact::parse(c).map_err(|e| bad(format!("Bad Contact header: {e}")))?;
            first_contact.get_or_insert(parsed);
        }
    }
    if let Some(ct) = headers.get(&HeaderName::CONTENT_TYPE) {
        parse_media_type(ct).map_err(|_| bad("Bad Content-Type header"))?;
    }
    if let Some(e) = headers.get(&HeaderName::EXPIRES) {
        let t = e.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("Bad Expires header"));
        }
    }
    Ok(Envelope {
        vias,
        from,
        to,
        call_id: call_id.to_owned(),
        cseq,
        max_forwards,
        contact: first_contact,
    })
}

/// Checks a request's essential header fields; the error is the answer to send.
pub fn check_request(req: &Request) -> Result<Envelope, Rejection> {
    if let Uri::Sip(u) = &req.uri {
        // RFC 3261 §19.1.1: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        if !u.headers.is_empty() {
            return Err(bad("Headers not allowed in Request-URI"));
        }
    }
    let env = envelope(&req.headers, contact_needed(&req.method))?;
    // An extension method is answered 501 by the UAS before its CSeq matters
    // (RFC 4475 §3.1.2.18 prefers 501 to 400); for methods we know, a mismatch is a 400.
    if !matches!(req.method, Method::Other(_)) && env.cseq.method != req.method {
        return Err(bad("CSeq method does not match Request-Line"));
    }
    Ok(env)
}

/// Checks a response; `None` means drop it (nobody to answer a broken response).
pub fn check_response(resp: &Response) -> Option<Envelope> {
    envelope(&resp.headers, true).ok()
}

/// What a user agent server supports, for the RFC 3261 §8.2 checks.
#[derive(Debug, Clone)]
pub struct UasPolicy {
    /// Methods this UAS processes (others it knows get 405, unknown ones 501).
    pub allow: Vec<Method>,
    /// Option tags this UAS supports (`Require` outside this set gets 420).
    pub supported: Vec<&'static str>,
    /// Body types accepted (`Content-Type` outside this set gets 415).
    pub accept: Vec<&'static str>,
}

impl Default for UasPolicy {
    fn default() -> Self {
        UasPolicy {
            allow: vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Prack,
                Method::Update,
                Method::Info,
            ],
            supported: vec!["100rel", "timer", "replaces"],
            accept: vec![
                "application/sdp",
                "multipart/mixed",
                "application/dtmf-relay",
                "application/dtmf",
            ],
        }
    }
}

/// Methods RFC 3261 and its common extensions define; others are "unknown" (501).
fn known_method(m: &Method) -> bool {
    !matches!(m, Method::Other(_))
}

impl UasPolicy {
    pub fn allow_header(&self) -> String {
        self.allow
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn supported_header(&self) -> String {
        self.supported.join(", ")
    }

    pub fn accept_header(&self) -> String {
        self.accept.join(", ")
    }

    /// RFC 3261 §8.2.1–§8.2.3 in order: method, URI scheme, Require, Content-Type, Accept.
    pub fn check(&self, req: &Request) -> Result<(), Rejection> {
        if !self.allow.contains(&req.method) {
            if known_method(&req.method) {
                return Err(Rejection::new(405, "Method Not Allowed")
                    .with_header(HeaderName::ALLOW, self.allow_header()));
            }
            return Err(Rejection::new(501, "Not Implemented")
                .with_header(HeaderName::ALLOW, self.allow_header()));
        }
        if !matches!(req.uri, Uri::Sip(_)) {
            return Err(Rejection::new(416, "Unsupported URI Scheme"));
        }
        if !matches!(req.method, Method::Ack | Method::Cancel) {
            let unsupported: Vec<&str> = req
                .headers
                .values(&HeaderName::REQUIRE)
                .filter(|t| !self.supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
                .collect();
            if !unsupported.is_empty() {
                return Err(Rejection::new(420, "Bad Extension")
                    .with_header(HeaderName::UNSUPPORTED, unsupported.join(", ")));
            }
        }
        if !req.body.is_empty() {
            let ct = req
                .headers
                .get(&HeaderName::CONTENT_TYPE)
                .unwrap_or("application/sdp");
            let ok = parse_media_type(ct).is_ok_and(|(t, _)| self.accept.iter().any(|a| *a == t));
            if !ok {
                return Err(Rejection::new(415, "Unsupported Media Type")
                    .with_header(HeaderName::ACCEPT, self.accept_header()));
            }
        }
        if req.method == Method::Invite && req.headers.count(&HeaderName::ACCEPT) > 0 {
            // Our answer to an INVITE carries application/sdp; a peer that accepts none of it
            // gets 406 (RFC 4475 §3.3.15).
            let ok = req.headers.values(&HeaderName::ACCEPT).any(|v| {
                let t = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                t == "application/sdp" || t == "application/*" || t == "*/*"
            });
            if !ok {
                return Err(Rejection::new(406, "Not Acceptable")
                    .with_header(HeaderName::ACCEPT, "application/sdp"));
            }
        }
        Ok(())
    }
}

/// The `Expires` of a message in seconds, saturating at u32::MAX for overlarge values.
pub fn expires(headers: &crate::message::Headers) -> Option<u32> {
    let v = headers.get(&HeaderName::EXPIRES)?.trim();
    if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
        Some(parse_u32(v).unwrap_or(u32::MAX))
    } else {
        None
    }
}

/// What the front door made of received bytes.
#[derive(Debug)]
pub enum Screened {
    /// A request that passed every check, with its typed envelope.
    Request(Request, Envelope),
    /// A response with a well-formed envelope (transaction matching decides what follows).
    Response(Response, Envelope),
    /// A request to answer statelessly: the status, reason, extra header fields, and the
    /// request's own header fields to copy Via/From/To/Call-ID/CSeq from.
    Reject {
        rejection: Rejection,
        headers: Box<crate::message::Headers>,
    },
    /// Nothing can or should be answered (broken response, ACK, unframeable bytes).
    Drop(String),
}

/// Parses one datagram (or one framed stream message) and applies [`check_request`] and,
/// for requests outside a dialog, `policy` — the single entry point for received bytes.
/// The CSeq header names the ACK method.
fn is_ack_cseq(headers: &crate::message::Headers) -> bool {
    headers
        .get(&HeaderName::CSEQ)
        .and_then(|v| v.split_ascii_whitespace().nth(1))
        == Some("ACK")
}

pub fn screen(
    parsed: Result<crate::message::Message, crate::error::ParseError>,
    policy: &UasPolicy,
) -> Screened {
    use crate::message::Message;
    match parsed {
        Err(e) => match e.request_headers {
            // An ACK never gets a response (RFC 3261 §17.1.1.3, §17.2.1), even one we cannot
            // read: its CSeq tells what it is when the request line does not.
            Some(headers) if is_ack_cseq(&headers) => Screened::Drop("malformed ACK".into()),
            Some(headers) => Screened::Reject {
                rejection: Rejection::new(e.status, e.reason),
                headers,
            },
            None => Screened::Drop(e.reason),
        },
        Ok(Message::Response(r)) => match check_response(&r) {
            Some(env) => Screened::Response(r, env),
            None => Screened::Drop("malformed response".into()),
        },
        Ok(Message::Request(req)) => {
            // The policy applies in and out of dialogs alike: a method or extension we do
            // not support is refused the same way wherever it arrives.
            let checked = check_request(&req).and_then(|env| policy.check(&req).map(|()| env));
            match checked {
                Ok(env) => Screened::Request(req, env),
                Err(_) if req.method == Method::Ack => Screened::Drop("malformed ACK".into()),
                Err(rejection) => Screened::Reject {
                    rejection,
                    headers: Box::new(req.headers),
                },
            }
        }
    }
}
