//! Error types of the SIP layer, grouped by who is at fault.

use std::fmt;

use crate::message::Headers;

/// A grammar violation inside one element (URI, header value, start line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError(pub &'static str);

impl SyntaxError {
    pub const fn new(what: &'static str) -> Self {
        SyntaxError(what)
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for SyntaxError {}

/// Why a received byte string is not a usable SIP message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// The status a request with this fault is answered with (400 or 505). Responses are dropped.
    pub status: u16,
    pub reason: String,
    /// The header fields of a request whose start line and headers could still be split, so
    /// that a stateless error answer can be built; `None` for responses and unframeable input.
    pub request_headers: Option<Box<Headers>>,
}

impl ParseError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        ParseError {
            status: 400,
            reason: reason.into(),
            request_headers: None,
        }
    }
}

/// A request that parses but cannot be processed; carries the answer to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct Rejection {
    pub status: u16,
    pub reason: String,
    /// Extra header fields the answer must carry (`Unsupported`, `Accept`, `Allow`…).
    pub headers: Vec<(crate::header::HeaderName, String)>,
}

impl Rejection {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Rejection {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(
        mut self,
        name: crate::header::HeaderName,
        value: impl Into<String>,
    ) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}
