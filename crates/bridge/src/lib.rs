//! # phonebridge-bridge
//!
//! A call's life without I/O:
//!
//! - [`PhoneAudio`], the phone leg's audio pipeline: a negotiated SDP and a stream of
//!   datagrams in, steady 20 ms frames of PCM and a stream of digits out, and PCM back into
//!   packets for the phone;
//! - [`SessionAudio`], the phone's side of a session: its frames up as an Opus stream, the
//!   other publishers down as an N-1 mix (or the chosen subset);
//! - [`VoiceMenu`], the dial-in menu that collects a session code, and [`PinGuard`], the
//!   bounds on guessing codes across calls;
//! - DTMF carried by SIP INFO ([`info_digit`], [`info_body`]).
//!
//! The server's gateway ties these to a SIP call and a session participant.
//!
//! Nothing here opens a socket, reads a clock or spawns: the server's drivers feed
//! datagrams and ticks in and send what comes out.

pub mod info;
pub mod menu;
pub mod phone_audio;
pub mod pin_guard;
pub mod session_audio;

pub use info::{info_body, info_digit};
pub use menu::{MenuConfig, MenuEnd, MenuOutput, Prompt, VoiceMenu};

pub use phone_audio::{
    codec_kind, transport_config, PassedPacket, PhoneAudio, PhoneAudioStats, PhoneEvent, StreamIds,
};
pub use pin_guard::{PinGuard, PinGuardConfig};
pub use session_audio::{SessionAudio, SessionAudioStats};
