//! # phonebridge-rtp
//!
//! RTP on the phone leg without I/O: packet parsing and writing, 64-bit extension of
//! sequence numbers and timestamps, the stream normaliser that turns SSRC switches,
//! timestamp jumps and sequence restarts into one continuous timeline, the adaptive jitter
//! buffer that delivers steady 20 ms frames, and RFC 4733 telephone events.
//!
//! Every input carries `now`; nothing here reads a clock, opens a socket or spawns a task,
//! so a call's media can be replayed through a seeded network emulator in a test.

pub mod events;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod jitter;
pub mod normalise;
pub mod packet;
pub mod rtcp;
pub mod seq;
pub mod session;
pub mod srtp;

pub use events::{DigitMerger, DigitSource, EventPayload, EventReceiver, EventSender, EventTick};
pub use jitter::{Decode, FrameKind, JitterBuffer, JitterStats, Pushed, FRAME};
pub use normalise::{Normaliser, NormaliserStats, SegmentCause};
pub use packet::{is_rtcp, RtpPacket};
pub use session::{RtpSession, SessionEvent, SrtpSetup, Transmit, TransportConfig, TransportStats};
pub use srtp::{SrtpContext, SrtpError, SrtpProfile};
