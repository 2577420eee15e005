//! Building responses and requests from received messages (RFC 3261 §8.2.6, §12, §18.2.1).

use std::net::SocketAddr;

use crate::header::HeaderName;
use crate::headers::Via;
use crate::message::{Headers, Request, Response};
use crate::uri::Host;

use super::Peer;

/// A response to a request with these header fields: Via, From, To, Call-ID and CSeq copied,
/// and a To tag added when the request had none and `to_tag` is given.
pub(crate) fn response_from_headers(
    req: &Headers,
    status: u16,
    reason: Option<&str>,
    to_tag: Option<&str>,
) -> Response {
    let mut r = Response::new(status);
    if let Some(reason) = reason {
        r.reason = reason.to_owned().into();
    }
    r.headers.copy_from(req, &HeaderName::VIA);
    r.headers.copy_from(req, &HeaderName::FROM);
    if let Some(to) = req.get(&HeaderName::TO) {
        match to_tag {
            Some(tag) if status != 100 && !has_tag(to) => {
                let mut tagged = String::with_capacity(to.len() + 5 + tag.len());
                tagged.push_str(to);
                tagged.push_str(";tag=");
                tagged.push_str(tag);
                r.headers.push(HeaderName::TO, tagged)
            }
            _ => r.headers.push(HeaderName::TO, to),
        }
    }
    r.headers.copy_from(req, &HeaderName::CALL_ID);
    r.headers.copy_from(req, &HeaderName::CSEQ);
    r
}

/// True when a To value carries a tag. Parsed only when the letters `tag` appear at all:
/// most requests that need a tag added have none.
fn has_tag(to: &str) -> bool {
    let maybe = to
        .as_bytes()
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"tag"));
    maybe && crate::headers::NameAddr::parse(to).is_ok_and(|t| t.tag().is_some())
}

pub(crate) fn response(req: &Request, status: u16, to_tag: Option<&str>) -> Response {
    response_from_headers(&req.headers, status, None, to_tag)
}

/// RFC 3261 §18.2.1 and RFC 3581: note the source address in the top Via (`received`, and
/// `rport` when the peer asked for it) before any response copies it.
pub(crate) fn stamp_via(req: &mut Request, parsed_top: &Via, source: SocketAddr) {
    // Most requests need nothing: decide from the Via screening already parsed.
    let needs_received = parsed_top.host != Host::Ip(source.ip());
    let wants_rport = parsed_top.params.get("rport") == Some(None);
    if !needs_received && !wants_rport {
        return;
    }
    let Some(mut top) = req
        .headers
        .get(&HeaderName::VIA)
        .map(crate::text::split_commas)
    else {
        return;
    };
    let Some(first) = top.next() else {
        return;
    };
    let Ok(mut via) = Via::parse(first) else {
        return;
    };
    let mut changed = false;
    if via.host != Host::Ip(source.ip()) {
        via.params.set("received", Some(&source.ip().to_string()));
        changed = true;
    }
    if via.params.get("rport") == Some(None) {
        via.params.set("rport", Some(&source.port().to_string()));
        via.params.set("received", Some(&source.ip().to_string()));
        changed = true;
    }
    if !changed {
        return;
    }
    let rest: Vec<String> = top.map(str::to_owned).collect();
    let mut value = via.to_string();
    for r in rest {
        value.push_str(", ");
        value.push_str(&r);
    }
    // Replace the first Via line, keeping any further Via lines.
    let mut new = Headers::new();
    let mut done = false;
    for (n, v) in req.headers.iter() {
        if !done && *n == HeaderName::VIA {
            new.push(n.clone(), value.clone());
            done = true;
        } else {
            new.push(n.clone(), v);
        }
    }
    req.headers = new;
}

/// Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4): back on the connection for
/// reliable transports; over UDP to the source IP, at `rport` if the peer asked for it,
/// else at the Via port (5060 by default).
pub(crate) fn response_target(source: &Peer, top_via: Option<&Via>) -> Peer {
    let mut to = source.clone();
    if source.transport.is_reliable() {
        return to;
    }
    if let Some(via) = top_via {
        let port = match via.params.get("rport") {
            Some(_) => source.remote.port(),
            None => via.port.unwrap_or(5060),
        };
        to.remote.set_port(port);
    }
    to
}

/// The top Via of a stamped request, parsed.
pub(crate) fn top_via(headers: &Headers) -> Option<Via> {
    let v = headers.get(&HeaderName::VIA)?;
    Via::parse(crate::text::split_commas(v).next()?).ok()
}
