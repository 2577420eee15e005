//! The SIP message model: requests, responses, header lists and the printer.

use std::borrow::Cow;
use std::fmt;

use crate::header::HeaderName;
use crate::text::split_commas;
use crate::uri::Uri;

/// A request method. Methods are case-sensitive (RFC 3261 §7.1); extension methods are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Prack,
    Update,
    Info,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "INFO" => Method::Info,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header fields in received order. One entry per header line; comma-separated values of
/// list headers are split on demand by [`Headers::values`].
///
/// Every value lives in one text buffer and each field points into it, so a parsed message
/// costs one allocation for all its values rather than one per field. Replacing a value
/// appends the new text (the old bytes stay unused until the list is dropped).
#[derive(Debug, Clone, Default)]
pub struct Headers {
    text: String,
    fields: Vec<Field>,
}

#[derive(Debug, Clone)]
struct Field {
    name: HeaderName,
    start: u32,
    end: u32,
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    pub fn with_capacity(fields: usize) -> Self {
        Headers {
            text: String::with_capacity(fields * 32),
            fields: Vec::with_capacity(fields),
        }
    }

    /// Room for `fields` fields whose values take `text` bytes in all (the parser knows both).
    pub(crate) fn with_capacities(fields: usize, text: usize) -> Self {
        Headers {
            text: String::with_capacity(text),
            fields: Vec::with_capacity(fields),
        }
    }

    fn value_of(&self, f: &Field) -> &str {
        &self.text[f.start as usize..f.end as usize]
    }

    /// The first field named `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == *name)
            .map(|f| self.value_of(f))
    }

    /// Every field line named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |f| f.name == *name)
            .map(|f| self.value_of(f))
    }

    /// Every comma-separated value of list header `name`, across all its lines.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .flat_map(split_commas)
            .filter(|v| !v.is_empty())
    }

    /// True when list header `name` holds `token` (case-insensitive), e.g. `Supported: 100rel`.
    pub fn has_token(&self, name: &HeaderName, token: &str) -> bool {
        self.values(name).any(|v| v.eq_ignore_ascii_case(token))
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.fields.iter().filter(|f| f.name == *name).count()
    }

    /// Appends `value` to the text buffer and returns the field pointing at it.
    fn store(&mut self, name: HeaderName, value: &str) -> Field {
        let start = self.text.len();
        self.text.push_str(value);
        Field {
            name,
            start: offset(start),
            end: offset(self.text.len()),
        }
    }

    pub fn push(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let f = self.store(name, value.as_ref());
        self.fields.push(f);
    }

    /// Starts a field whose value the parser writes piece by piece with [`Headers::extend_last`].
    pub(crate) fn begin(&mut self, name: HeaderName) {
        let at = offset(self.text.len());
        self.fields.push(Field {
            name,
            start: at,
            end: at,
        });
    }

    /// Appends to the value of the field [`Headers::begin`] started.
    pub(crate) fn extend_last(&mut self, piece: &str) {
        self.text.push_str(piece);
        let end = offset(self.text.len());
        if let Some(f) = self.fields.last_mut() {
            f.end = end;
        }
    }

    /// The value of the last field (for the parser, which folds continuation lines into it).
    pub(crate) fn last_value(&self) -> Option<&str> {
        self.fields.last().map(|f| self.value_of(f))
    }

    /// Drops trailing blanks from the value of the field the parser wrote last.
    pub(crate) fn trim_last(&mut self) {
        let Some(f) = self.fields.last_mut() else {
            return;
        };
        let value = &self.text[f.start as usize..f.end as usize];
        let end = f.start as usize + value.trim_end_matches([' ', '\t']).len();
        if f.end as usize == self.text.len() {
            self.text.truncate(end);
        }
        f.end = offset(end);
    }

    /// Inserts a field before all others (used for Via).
    pub fn push_front(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let f = self.store(name, value.as_ref());
        self.fields.insert(0, f);
    }

    /// Replaces every field named `name` with one field (placed where the first one was).
    pub fn set(&mut self, name: HeaderName, value: impl AsRef<str>) {
        match self.fields.iter().position(|f| f.name == name) {
            Some(i) => {
                self.fields[i] = self.store(name.clone(), value.as_ref());
                let mut seen = 0;
                self.fields.retain(|f| {
                    if f.name == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.push(name, value),
        }
    }

    pub fn remove(&mut self, name: &HeaderName) {
        self.fields.retain(|f| f.name != *name);
    }

    /// Removes the first field named `name` and returns its value.
    pub fn remove_first(&mut self, name: &HeaderName) -> Option<String> {
        let i = self.fields.iter().position(|f| f.name == *name)?;
        let f = self.fields.remove(i);
        Some(self.value_of(&f).to_owned())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &str)> {
        self.fields.iter().map(|f| (&f.name, self.value_of(f)))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Copies every field named `name` from `other`, in order.
    pub fn copy_from(&mut self, other: &Headers, name: &HeaderName) {
        for v in other.get_all(name) {
            self.push(name.clone(), v);
        }
    }
}

/// A position in a header list's text: messages are bounded far below 4 GiB
/// ([`crate::Limits::max_message`]), and the list of a message we build is as small.
fn offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: Cow<'static, str>,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Request {
    pub fn new(method: Method, uri: Uri) -> Self {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    /// The wire form. Content-Length is always written last and always matches the body.
    pub fn encode(&self) -> Vec<u8> {
        encode(&self.headers, &self.body, |out| {
            use std::fmt::Write as _;
            let _ = write!(out, "{} {} SIP/2.0\r\n", self.method, self.uri);
        })
    }
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            reason: Cow::Borrowed(default_reason(status)),
            // Via, From, To, Call-ID, CSeq and a few of ours: sized once.
            headers: Headers::with_capacity(12),
            body: Vec::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(&self.headers, &self.body, |out| {
            out.push_str("SIP/2.0 ");
            crate::text::push_decimal(out, self.status.into());
            out.push(' ');
            out.push_str(&self.reason);
            out.push_str("\r\n");
        })
    }

    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.encode(),
            Message::Response(r) => r.encode(),
        }
    }
}

/// A message's bytes: the start line `start` writes, the header fields, a Content-Length
/// computed from `body`, then the body, in one buffer sized up front.
fn encode(headers: &Headers, body: &[u8], start: impl FnOnce(&mut String)) -> Vec<u8> {
    // The start line is under 128 bytes but for a long Request-URI; each field adds its
    // name, ": " and CRLF to its value.
    let size = 128 + headers.text.len() + 24 * headers.len() + body.len() + 24;
    let mut out = String::with_capacity(size);
    start(&mut out);
    for (n, v) in headers.iter() {
        if *n == HeaderName::CONTENT_LENGTH {
            continue;
        }
        out.push_str(n.as_str());
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: ");
    crate::text::push_decimal(&mut out, u32::try_from(body.len()).unwrap_or(u32::MAX));
    out.push_str("\r\n\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.encode()))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.encode()))
    }
}

/// The reason phrase RFC 3261 §21 (and the extensions we use) give a status code.
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaced_and_removed_fields_leave_no_trace_in_values_or_equality() {
        let mut h = Headers::new();
        h.push(HeaderName::VIA, "SIP/2.0/UDP a");
        h.push(HeaderName::SUPPORTED, "timer");
        h.push(HeaderName::VIA, "SIP/2.0/UDP b");
        h.set(HeaderName::VIA, "SIP/2.0/UDP c");
        assert_eq!(
            h.get_all(&HeaderName::VIA).collect::<Vec<_>>(),
            ["SIP/2.0/UDP c"]
        );
        assert_eq!(
            h.remove_first(&HeaderName::SUPPORTED).as_deref(),
            Some("timer")
        );
        h.push_front(HeaderName::TO, "<sip:x@y>");
        let mut fresh = Headers::new();
        fresh.push(HeaderName::TO, "<sip:x@y>");
        fresh.push(HeaderName::VIA, "SIP/2.0/UDP c");
        assert_eq!(
            h, fresh,
            "equal fields compare equal whatever text was replaced"
        );
        assert_eq!(
            h.iter()
                .map(|(n, v)| format!("{n}: {v}"))
                .collect::<Vec<_>>(),
            ["To: <sip:x@y>", "Via: SIP/2.0/UDP c"]
        );
    }
}
