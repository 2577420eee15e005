//! # phonebridge-bridge
//!
//! A call's life without I/O. Today: the phone leg's audio pipeline ([`PhoneAudio`]), which
//! turns a negotiated SDP and a stream of datagrams into steady 20 ms frames of PCM and a
//! stream of digits, and PCM back into packets for the phone. The call ⇄ participant bridge,
//! the voice menu and the mixer build on it.
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
