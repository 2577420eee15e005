//! Parsing received bytes into [`Message`]s: one datagram at a time, or framed from a byte
//! stream (TCP/TLS) by Content-Length with RFC 5626 keep-alive CRLFs.
//!
//! This level checks the start line and splits and unfolds header fields; typed header
//! grammar is checked on demand (see [`crate::headers`] and [`crate::validate`]).

use crate::error::ParseError;
use crate::header::HeaderName;
use crate::message::{Headers, Message, Method, Request, Response};
use crate::text::{find_byte, find_in, is_token, split_byte};
use crate::uri::Uri;

/// Bounds on what a peer may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message (start line, headers and body) in bytes.
    pub max_message: usize,
    /// Most header lines a message may carry.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 * 1024,
            max_headers: 200,
        }
    }
}

/// Parses one datagram. Octets after the Content-Length body are ignored (RFC 4475 §3.1.1.8);
/// without Content-Length the body is the rest of the datagram (RFC 3261 §18.3).
pub fn parse_datagram(buf: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    if buf.len() > limits.max_message {
        return Err(ParseError {
            status: 513,
            reason: "Message Too Large".into(),
            request_headers: None,
        });
    }
    let buf = skip_leading_crlf(buf);
    let (head_end, body_start) = match find_head_end(buf) {
        Some(x) => x,
        None => (buf.len(), buf.len()),
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| ParseError::new("header section is not UTF-8"))?;
    let (start, headers) = split_head(head, limits)?;
    let available = buf.len() - body_start;
    let body_len = match content_length(&headers) {
        Err(e) => return Err(attach(e, start, &headers)),
        Ok(Some(n)) if n > available => {
            return Err(attach(
                ParseError::new("Content-Length larger than message"),
                start,
                &headers,
            ))
        }
        Ok(Some(n)) => n,
        Ok(None) => available,
    };
    let body = buf[body_start..body_start + body_len].to_vec();
    build(start, headers, body)
}

/// Gives the stateless answer the headers of a request that failed after its headers split.
fn attach(mut e: ParseError, start: &str, headers: &Headers) -> ParseError {
    if !start.starts_with("SIP/") {
        e.request_headers = Some(Box::new(headers.clone()));
    }
    e
}

fn skip_leading_crlf(mut buf: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = buf {
        buf = rest;
    }
    buf
}

/// Index of the end of the header section and of the body start. Accepts CRLF CRLF and, from
/// sloppy peers, bare LF LF.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(lf) = find_in(buf, from, b'\n') {
        match buf.get(lf + 1) {
            Some(b'\n') => return Some((lf, lf + 2)),
            Some(b'\r') if buf.get(lf + 2) == Some(&b'\n') => return Some((lf, lf + 3)),
            None => return None,
            Some(_) => from = lf + 1,
        }
    }
    None
}

/// Splits the header section into the start line and unfolded header fields.
fn split_head<'a>(head: &'a str, limits: &Limits) -> Result<(&'a str, Headers), ParseError> {
    let mut lines = split_byte(head, b'\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().unwrap_or_default();
    // The values fit in the header section, and header lines average well over 24 bytes:
    // sized once rather than grown (counting the lines first cost more than the sizing saves).
    let fields = (head.len() / 24).clamp(8, limits.max_headers.max(8));
    let mut headers = Headers::with_capacities(fields, head.len() - start.len());
    let mut open = false;
    let mut count = 0;
    let fail = |reason: &str, headers: &Headers| attach(ParseError::new(reason), start, headers);
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if !open {
                return Err(fail("continuation line before any header", &headers));
            }
            let t = line.trim_start_matches([' ', '\t']);
            if !t.is_empty() && headers.last_value().is_some_and(|v| !v.is_empty()) {
                headers.extend_last(" ");
            }
            headers.extend_last(t);
            continue;
        }
        if open {
            headers.trim_last();
            open = false;
        }
        if line.is_empty() {
            continue;
        }
        count += 1;
        if count > limits.max_headers {
            return Err(fail("too many header fields", &headers));
        }
        let Some(colon) = find_byte(line, b':') else {
            return Err(fail("header line without colon", &headers));
        };
        let name = line[..colon].trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(fail("bad header name", &headers));
        }
        headers.begin(HeaderName::from_wire(name));
        headers.extend_last(line[colon + 1..].trim_start_matches([' ', '\t']));
        open = true;
    }
    if open {
        headers.trim_last();
    }
    Ok((start, headers))
}

/// The Content-Length, if present. Several lines or values that disagree, or a value that is
/// not a non-negative decimal, are errors (RFC 4475 §3.1.2.3, §3.3.9).
fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let mut found: Option<usize> = None;
    for v in headers.get_all(&HeaderName::CONTENT_LENGTH) {
        let v = v.trim();
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::new("bad Content-Length"));
        }
        let n: usize = v
            .parse()
            .map_err(|_| ParseError::new("Content-Length out of range"))?;
        if found.is_some() {
            return Err(ParseError::new("multiple Content-Length values"));
        }
        found = Some(n);
    }
    Ok(found)
}

fn build(start: &str, headers: Headers, body: Vec<u8>) -> Result<Message, ParseError> {
    if let Some(rest) = start.strip_prefix("SIP/") {
        return parse_status_line(rest, headers, body);
    }
    let fail = |reason: &str, headers: Headers| ParseError {
        status: 400,
        reason: reason.into(),
        request_headers: Some(Box::new(headers)),
    };
    let parts: Vec<&str> = start.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        let reason = if start.ends_with([' ', '\t']) {
            "whitespace at end of Request-Line"
        } else if parts.len() > 3 && parts.iter().any(|p| p.is_empty()) {
            "Request-Line elements must be separated by a single SP"
        } else {
            "malformed Request-Line"
        };
        return Err(fail(reason, headers));
    }
    let (method, uri, version) = (parts[0], parts[1], parts[2]);
    if !is_token(method) {
        return Err(fail("bad method", headers));
    }
    match check_version(version) {
        Ok(()) => {}
        Err(505) => {
            return Err(ParseError {
                status: 505,
                reason: "Version Not Supported".into(),
                request_headers: Some(Box::new(headers)),
            })
        }
        Err(_) => return Err(fail("bad SIP-Version", headers)),
    }
    let uri = match Uri::parse(uri) {
        Ok(u) => u,
        Err(e) => return Err(fail(&format!("bad Request-URI: {e}"), headers)),
    };
    Ok(Message::Request(Request {
        method: Method::parse(method),
        uri,
        headers,
        body,
    }))
}

/// `Ok` for SIP/2.0; `Err(505)` for another well-formed version; `Err(400)` otherwise.
fn check_version(v: &str) -> Result<(), u16> {
    let Some(num) = v
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("SIP/"))
        .map(|_| &v[4..])
    else {
        return Err(400);
    };
    let Some((maj, min)) = num.split_once('.') else {
        return Err(400);
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(maj) || !digits(min) {
        return Err(400);
    }
    if maj.trim_start_matches('0') == "2" && min.trim_start_matches('0').is_empty() {
        Ok(())
    } else {
        Err(505)
    }
}

fn parse_status_line(rest: &str, headers: Headers, body: Vec<u8>) -> Result<Message, ParseError> {
    let (version, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if check_version(&format!("SIP/{version}")).is_err() {
        return Err(ParseError::new("bad SIP-Version in Status-Line"));
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new("bad status code"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| ParseError::new("bad status code"))?;
    if !(100..=699).contains(&status) {
        return Err(ParseError::new("status code out of range"));
    }
    Ok(Message::Response(Response {
        status,
        reason: reason.to_owned().into(),
        headers,
        body,
    }))
}

/// What a stream carried next.
#[derive(Debug)]
pub enum Frame {
    /// A complete message, or the error that makes it unusable (the stream stays in sync).
    Message(Box<Result<Message, ParseError>>),
    /// An RFC 5626 keep-alive ping (CRLF CRLF); answer with a single CRLF.
    Ping,
}

/// The stream cannot be resynchronised (no usable Content-Length, or over the size limit):
/// answer if possible, then close the connection.
#[derive(Debug, Clone, thiserror::Error)]
#[error("stream framing failed: {0}")]
pub struct FramingError(pub ParseError);

/// Cuts a TCP/TLS byte stream into messages by Content-Length (RFC 3261 §18.3).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    limits: Limits,
}

impl StreamFramer {
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            buf: Vec::new(),
            limits,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        // Keep-alives: CRLFCRLF is a ping, a lone CRLF (a pong, or noise) is skipped.
        loop {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.buf.drain(..4);
                return Ok(Some(Frame::Ping));
            }
            if self.buf.starts_with(b"\r\n") && self.buf.len() >= 4 || self.buf == b"\r\n" {
                self.buf.drain(..2);
                continue;
            }
            if self.buf.starts_with(b"\n") {
                self.buf.drain(..1);
                continue;
            }
            break;
        }
        if self.buf.is_empty() || self.buf.starts_with(b"\r") && self.buf.len() < 4 {
            return Ok(None);
        }
        let Some((head_end, body_start)) = find_head_end(&self.buf) else {
            if self.buf.len() > self.limits.max_message {
                return Err(FramingError(ParseError {
                    status: 513,
                    reason: "Message Too Large".into(),
                    request_headers: None,
                }));
            }
            return Ok(None);
        };
        let head = match std::str::from_utf8(&self.buf[..head_end]) {
            Ok(h) => h,
            Err(_) => return Err(FramingError(ParseError::new("header section is not UTF-8"))),
        };
        let (start, headers) = split_head(head, &self.limits).map_err(FramingError)?;
        let len = match content_length(&headers) {
            Ok(n) => n.unwrap_or(0),
            Err(e) => return Err(FramingError(attach(e, start, &headers))),
        };
        // Content-Length comes from the peer: compare without overflowing.
        if len > self.limits.max_message.saturating_sub(body_start) {
            return Err(FramingError(attach(
                ParseError {
                    status: 513,
                    reason: "Message Too Large".into(),
                    request_headers: None,
                },
                start,
                &headers,
            )));
        }
        if self.buf.len() < body_start + len {
            return Ok(None);
        }
        let start = start.to_owned();
        let body = self.buf[body_start..body_start + len].to_vec();
        self.buf.drain(..body_start + len);
        Ok(Some(Frame::Message(Box::new(build(&start, headers, body)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-ID: x\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn frames_split_and_pipelined_messages() {
        let mut f = StreamFramer::new(Limits::default());
        let mut data = b"\r\n\r\n".to_vec();
        data.extend_from_slice(OPTS);
        data.extend_from_slice(OPTS);
        f.push(&data[..10]);
        assert!(matches!(f.next_frame().unwrap(), Some(Frame::Ping)));
        assert!(f.next_frame().unwrap().is_none());
        f.push(&data[10..]);
        for _ in 0..2 {
            match f.next_frame().unwrap() {
                Some(Frame::Message(m)) => match *m {
                    Ok(Message::Request(r)) => assert_eq!(r.body, b"body"),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            }
        }
        assert!(f.next_frame().unwrap().is_none());
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn stream_over_limit_is_fatal() {
        let mut f = StreamFramer::new(Limits {
            max_message: 100,
            max_headers: 10,
        });
        f.push(&[b'A'; 200]);
        assert_eq!(f.next_frame().unwrap_err().0.status, 513);
    }

    #[test]
    fn huge_content_length_on_a_stream_is_refused_not_overflowed() {
        // Found by fuzzing: Content-Length near usize::MAX.
        let mut f = StreamFramer::new(Limits::default());
        f.push(b":\nL:00000000000000000000000000000000000000000000000000000000000000000018446744073709551614\n\nJ");
        assert_eq!(f.next_frame().unwrap_err().0.status, 513);
    }

    #[test]
    fn too_many_headers() {
        let mut m = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        for i in 0..20 {
            m.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        m.extend_from_slice(b"\r\n");
        let e = parse_datagram(
            &m,
            &Limits {
                max_message: 10_000,
                max_headers: 10,
            },
        )
        .unwrap_err();
        assert_eq!(e.reason, "too many header fields");
        assert!(e.request_headers.is_some());
    }

    #[test]
    fn folded_lines_unfold_to_one_space() {
        let m = parse_datagram(
            b"OPTIONS sip:a@b SIP/2.0\r\nSubject: a\r\n  b\r\n\tc\r\n\r\n",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(m.headers().get(&HeaderName::SUBJECT), Some("a b c"));
    }
}
