//! # phonebridge-media
//!
//! Audio processing for the phone leg, on plain sample buffers: the codecs (G.711 µ-law and
//! A-law, G.722, Opus) with loss concealment,
//! resampling between 8, 16 and 48 kHz with low, fixed delay, Goertzel analysis, in-band DTMF
//! detection, tone generation, and the N-1 mixer for phones.
//!
//! Everything here is synchronous, allocation-light and free of I/O, clocks and threads: a
//! caller hands in samples and takes samples or findings out.

pub mod codec;
pub mod dtmf;
pub mod g711;
pub mod goertzel;
pub mod mixer;
pub mod opus_band;
pub mod plc;
pub mod resample;
pub mod tone;
pub mod wav;

pub use codec::{AudioDecoder, AudioEncoder, CodecKind};
pub use dtmf::{Detected, DtmfDetector};
pub use g711::Law;
pub use mixer::{Listener, Mixer};
pub use plc::{G711Decoder, Plc};
pub use resample::Resampler;
pub use tone::Tone;
