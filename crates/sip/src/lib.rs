//! # phonebridge-sip
//!
//! The SIP protocol without I/O: the message model with its parser and printer, typed header
//! fields, the RFC 3261 transaction machines (with the RFC 6026 Accepted state), the
//! endpoint that runs user-agent dialogs over them, and the DNS SRV messages that locate SIP
//! servers (RFC 3263).
//!
//! Nothing here opens a socket, reads a clock, spawns a task or takes a lock. Every input
//! carries `now`; every output (bytes to send, events, the next deadline) is drained by the
//! caller. Randomness (tags, branches, Call-IDs) comes from a seedable RNG, so a whole call
//! can be replayed deterministically in a test.

pub mod auth;
pub mod dns;
pub mod endpoint;
pub mod error;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod header;
pub mod headers;
pub mod message;
pub mod parse;
mod text;
pub mod transaction;
pub mod uri;
pub mod validate;

pub use endpoint::{
    CallHandle, ConnId, EndReason, Endpoint, EndpointConfig, Event, Peer, TransportKind,
};
pub use error::{ParseError, Rejection, SyntaxError};
pub use header::HeaderName;
pub use headers::{CSeq, Contact, NameAddr, Via};
pub use message::{Headers, Message, Method, Request, Response};
pub use parse::{parse_datagram, Frame, Limits, StreamFramer};
pub use text::{quote, unescape, unquote};
pub use uri::{Host, ParamIter, Params, SipUri, Uri};
pub use validate::{check_request, check_response, Envelope, UasPolicy};
