//! # phonebridge-sdp
//!
//! Session descriptions on the SIP leg: the RFC 4566 model with a lenient parser and a
//! canonical printer that keeps every line it does not interpret, SDES keys for SRTP
//! (RFC 4568), and the RFC 3264 offer/answer that turns a phone's description into the
//! parameters of one audio stream (codec, payload types, packetisation, DTMF, direction,
//! addresses, keys).
//!
//! It never opens a socket or picks a port: the caller says where it listens and supplies
//! fresh key material, so every exchange is reproducible in a test.

pub mod crypto;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod model;
pub mod negotiate;

pub use crypto::{Crypto, SrtpSuite, KEY_LEN};
pub use model::{
    Attribute, Connection, Direction, Line, Media, Origin, RtpMap, SessionDescription,
};
pub use negotiate::{
    accept_answer, answer, offer, same_version, AudioFormat, AudioSession, Capabilities, Codec,
    Local, NegotiationError, SrtpKeys, SrtpPolicy, TelephoneEvent,
};

/// Why a body is not a usable session description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("empty session description")]
    Empty,
    #[error("session description larger than {} bytes", model::MAX_LEN)]
    TooLarge,
    #[error("more than {} media sections", model::MAX_MEDIA)]
    TooManyMedia,
    #[error("malformed session description line {0}")]
    BadLine(usize),
}
