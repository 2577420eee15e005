//! The phone leg's audio pipeline: RTP in through the transport (latching, SRTP), the
//! normaliser and jitter buffer, the codec, to steady 20 ms frames of PCM; PCM out through
//! the codec at the negotiated packetisation, with RFC 4733 digits spliced in; and digits in
//! every form (RFC 4733, SIP INFO, in-band tones) merged into one stream.
//!
//! Drain rule: after every `handle_*`, `push`, `update` or `send_digits`, drain
//! [`PhoneAudio::poll_transmit`] and [`PhoneAudio::poll_event`]; call
//! [`PhoneAudio::handle_timeout`] at [`PhoneAudio::poll_timeout`]; call
//! [`PhoneAudio::pull`] once per 20 ms.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use phonebridge_media::{AudioDecoder, AudioEncoder, CodecKind, DtmfDetector};
use phonebridge_rtp::{
    Decode, DigitMerger, DigitSource, EventReceiver, EventSender, FrameKind, JitterBuffer,
    JitterStats, RtpSession, SessionEvent, SrtpProfile, SrtpSetup, Transmit, TransportConfig,
    TransportStats,
};
use phonebridge_sdp::{AudioSession, Codec, SrtpSuite};

/// The most audio the jitter buffer may hold.
const MAX_JITTER_DELAY: Duration = Duration::from_millis(300);
/// How long a digit we send lasts, and the pause after it.
const DIGIT_DURATION: Duration = Duration::from_millis(120);
const DIGIT_GAP: Duration = Duration::from_millis(80);

/// The codec of a negotiated format.
pub fn codec_kind(c: Codec) -> CodecKind {
    match c {
        Codec::Pcmu => CodecKind::Pcmu,
        Codec::Pcma => CodecKind::Pcma,
        Codec::G722 => CodecKind::G722,
        Codec::Opus => CodecKind::Opus,
    }
}

/// The transport settings of a negotiated stream.
pub fn transport_config(s: &AudioSession, media_timeout: Option<Duration>) -> TransportConfig {
    TransportConfig {
        remote_rtp: s.remote_rtp,
        remote_rtcp: s.remote_rtcp,
        rtcp_mux: s.rtcp_mux,
        send: s.direction.sends(),
        receive: s.direction.receives(),
        srtp: s.srtp.as_ref().map(|k| SrtpSetup {
            profile: match k.suite {
                SrtpSuite::AesCm128HmacSha1_80 => SrtpProfile::AesCm128HmacSha1_80,
                SrtpSuite::AesCm128HmacSha1_32 => SrtpProfile::AesCm128HmacSha1_32,
            },
            local: k.local,
            remote: k.remote,
        }),
        media_timeout,
        clock: s.send.codec.rtp_clock(),
    }
}

/// What the pipeline reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneEvent {
    /// A key pressed on the phone (once, however many ways it was reported).
    Digit { digit: char, source: DigitSource },
    /// No media for the configured time while receiving.
    MediaTimeout,
    /// The phone said goodbye in RTCP.
    RtcpBye,
}

/// Counters and figures of the leg.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhoneAudioStats {
    pub transport: TransportStats,
    pub jitter: JitterStats,
    pub unknown_payload_type: u64,
    pub comfort_noise: u64,
    pub digits: u64,
    pub dtmf_duplicates: u64,
}

/// An Opus packet of the phone handed on as it came (see [`PhoneAudio::set_pass_through`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassedPacket {
    pub payload: Vec<u8>,
    /// Its length, in 48 kHz clock units.
    pub duration: u32,
    /// Audio missing just before it (lost, or never sent), in 48 kHz clock units.
    pub gap: u32,
}

/// The decoder as the jitter buffer drives it. While passing through, the packets the
/// buffer releases in order are queued as they are (silence stands in for their audio)
/// instead of being decoded.
struct CodecDecoder {
    codec: AudioDecoder,
    passing: Option<Passing>,
}

#[derive(Default)]
struct Passing {
    packets: VecDeque<PassedPacket>,
    gap: u32,
}

impl CodecDecoder {
    fn new(kind: CodecKind) -> Self {
        CodecDecoder {
            codec: AudioDecoder::new(kind),
            passing: None,
        }
    }
}

impl Decode for CodecDecoder {
    fn duration(&self, payload: &[u8]) -> Option<u32> {
        self.codec.duration(payload)
    }
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        match &mut self.passing {
            Some(p) => {
                let duration = self.codec.duration(payload).unwrap_or(0);
                p.packets.push_back(PassedPacket {
                    payload: payload.to_vec(),
                    duration,
                    gap: std::mem::take(&mut p.gap),
                });
                // Opus: clock units are samples at the decoder's rate.
                out.resize(out.len() + duration as usize, 0);
            }
            None => self.codec.decode(payload, out),
        }
    }
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        match &mut self.passing {
            Some(p) => {
                p.gap = p.gap.saturating_add(samples as u32);
                out.resize(out.len() + samples, 0);
            }
            None => self.codec.conceal(samples, out),
        }
    }
}

/// What is left of a held loss figure at each receiver report of less (the phone reports
/// every few seconds).
const LOSS_DECAY: f64 = 0.5;

/// One phone leg's audio. See the module documentation for the drain rule.
pub struct PhoneAudio {
    transport: RtpSession,
    media_timeout: Option<Duration>,
    negotiated: AudioSession,
    decoder: CodecDecoder,
    encoder: AudioEncoder,
    /// The loss the phone reports on what it receives (percent, held at its recent peak).
    phone_loss: f64,
    jitter: JitterBuffer,
    events_in: EventReceiver,
    events_out: Option<EventSender>,
    inband: DtmfDetector,
    merger: DigitMerger,
    pending: Vec<i16>,
    media_ts: u64,
    event_ts: u64,
    marker: bool,
    events: VecDeque<PhoneEvent>,
    unknown_payload_type: u64,
    comfort_noise: u64,
    digits: u64,
}

impl std::fmt::Debug for PhoneAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneAudio")
            .field("codec", &self.negotiated.send.codec)
            .finish_non_exhaustive()
    }
}

/// Identifiers of our outgoing stream, from the caller's seeded RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamIds {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
}

impl PhoneAudio {
    pub fn new(
        now: Instant,
        negotiated: &AudioSession,
        ids: StreamIds,
        cname: &str,
        media_timeout: Option<Duration>,
    ) -> Self {
        let kind = codec_kind(negotiated.send.codec);
        PhoneAudio {
            transport: RtpSession::new(
                now,
                ids.ssrc,
                ids.seq,
                ids.ts,
                cname,
                transport_config(negotiated, media_timeout),
            ),
            media_timeout,
            decoder: CodecDecoder::new(kind),
            encoder: AudioEncoder::new(kind),
            phone_loss: 0.0,
            jitter: JitterBuffer::new(kind.clock_rate(), kind.sample_rate(), MAX_JITTER_DELAY),
            events_in: EventReceiver::default(),
            events_out: event_sender(negotiated),
            inband: DtmfDetector::new(kind.sample_rate()),
            merger: DigitMerger::default(),
            pending: Vec::new(),
            media_ts: 0,
            event_ts: 0,
            marker: true,
            events: VecDeque::new(),
            unknown_payload_type: 0,
            comfort_noise: 0,
            digits: 0,
            negotiated: negotiated.clone(),
        }
    }

    /// Whether any RTP of the phone has arrived.
    pub fn heard(&self) -> bool {
        self.transport.stats().packets_received > 0
    }

    /// The rate of the PCM that [`Self::pull`] gives and [`Self::push`] takes.
    pub fn sample_rate(&self) -> u32 {
        self.decoder.codec.kind().sample_rate()
    }

    pub fn negotiated(&self) -> &AudioSession {
        &self.negotiated
    }

    pub fn stats(&self) -> PhoneAudioStats {
        PhoneAudioStats {
            transport: self.transport.stats(),
            jitter: self.jitter.stats(),
            unknown_payload_type: self.unknown_payload_type,
            comfort_noise: self.comfort_noise,
            digits: self.digits,
            dtmf_duplicates: self.events_in.duplicates,
        }
    }

    /// A new offer/answer outcome: the 200 after a 183, a re-INVITE (hold, resume, new
    /// address or codec).
    pub fn update(&mut self, now: Instant, negotiated: &AudioSession) {
        self.transport
            .update(now, transport_config(negotiated, self.media_timeout));
        let kind = codec_kind(negotiated.send.codec);
        if kind != self.encoder.kind() {
            // Another codec: new encoder, decoder and buffer at its rates.
            self.encoder = AudioEncoder::new(kind);
            self.size_fec();
            self.switch_decoder(kind);
            self.pending.clear();
            self.marker = true;
        }
        self.events_out = event_sender(negotiated);
        self.negotiated = negotiated.clone();
    }

    fn switch_decoder(&mut self, kind: CodecKind) {
        self.decoder = CodecDecoder::new(kind);
        self.jitter = JitterBuffer::new(kind.clock_rate(), kind.sample_rate(), MAX_JITTER_DELAY);
        self.inband = DtmfDetector::new(kind.sample_rate());
    }

    /// A datagram from the RTP socket.
    pub fn handle_rtp(&mut self, now: Instant, ntp: u64, from: SocketAddr, mut buf: Vec<u8>) {
        let Some(p) = self.transport.handle_rtp(now, ntp, from, &mut buf) else {
            return;
        };
        let n = &self.negotiated;
        if n.dtmf_receive.iter().any(|t| t.pt == p.pt) {
            if let Some(d) = self.events_in.push(p.ssrc, p.ts, p.payload) {
                self.digit(now, d, DigitSource::Rfc4733);
            }
            return;
        }
        if n.comfort_noise == Some(p.pt) {
            // RFC 3389: the peer went quiet; the buffer's silence covers it.
            self.comfort_noise += 1;
            return;
        }
        let Some(format) = n.receive.iter().find(|f| f.pt == p.pt) else {
            self.unknown_payload_type += 1;
            return;
        };
        let kind = codec_kind(format.codec);
        if kind != self.decoder.codec.kind() {
            self.switch_decoder(kind);
        }
        let (ssrc, seq, ts) = (p.ssrc, p.seq, p.ts);
        self.jitter
            .push(now, ssrc, seq, ts, p.payload, &self.decoder);
    }

    /// A datagram from the RTCP socket.
    pub fn handle_rtcp(&mut self, now: Instant, ntp: u64, from: SocketAddr, mut buf: Vec<u8>) {
        self.transport.handle_rtcp(now, ntp, from, &mut buf);
        // The loss the phone reports, held at its recent peak, sizes an Opus phone's FEC.
        let reported = self.transport.stats().remote_loss_pct;
        self.phone_loss = reported.max(self.phone_loss * LOSS_DECAY);
        self.size_fec();
    }

    /// Sizes an Opus phone's FEC for the loss it reports.
    fn size_fec(&mut self) {
        self.encoder
            .set_expected_loss(self.phone_loss.round().min(100.0) as u8);
    }

    /// A digit the phone sent by SIP INFO.
    pub fn info_digit(&mut self, now: Instant, digit: char) {
        self.digit(now, digit, DigitSource::SipInfo);
    }

    fn digit(&mut self, now: Instant, digit: char, source: DigitSource) {
        if let Some(digit) = self.merger.push(now, digit, source) {
            self.digits += 1;
            self.events.push_back(PhoneEvent::Digit { digit, source });
        }
    }

    /// The next 20 ms of the phone's audio (at [`Self::sample_rate`]), appended to `out`.
    pub fn pull(&mut self, now: Instant, out: &mut Vec<i16>) -> FrameKind {
        let start = out.len();
        let kind = self.jitter.pull(now, &mut self.decoder, out);
        if kind != FrameKind::Silence && self.decoder.passing.is_none() {
            self.inband.push(&out[start..]);
            while let Some(d) = self.inband.poll() {
                self.digit(now, d.digit, DigitSource::InBand);
            }
        }
        kind
    }

    /// Hands the phone's Opus packets on as they come ([`Self::poll_passed`]) instead of
    /// decoding them (`on`), or decodes again. Only an Opus phone passes through: its audio
    /// reaches the session without a second encoding (no loss of quality, no encoder), still
    /// in order, without duplicates and on the buffer's timing. While passing, [`Self::pull`]
    /// gives silence and in-band digits are not detected (RFC 4733 and SIP INFO still are).
    /// Returns whether the leg passes through.
    pub fn set_pass_through(&mut self, on: bool) -> bool {
        let on = on && self.decoder.codec.kind() == CodecKind::Opus;
        match (on, self.decoder.passing.is_some()) {
            (true, false) => self.decoder.passing = Some(Passing::default()),
            (false, true) => self.decoder.passing = None,
            _ => {}
        }
        on
    }

    /// The next packet passed through, in order.
    #[must_use]
    pub fn poll_passed(&mut self) -> Option<PassedPacket> {
        self.decoder.passing.as_mut()?.packets.pop_front()
    }

    /// Audio for the phone (any length, at [`Self::sample_rate`]); sent in packets of the
    /// negotiated packetisation, with queued digits taking the place of audio packets.
    pub fn push(&mut self, pcm: &[i16]) {
        self.pending.extend_from_slice(pcm);
        let kind = self.encoder.kind();
        let ptime = self.negotiated.ptime.max(10);
        let per_packet = (kind.sample_rate() * ptime / 1000) as usize;
        let clock_per_packet = (kind.clock_rate() * ptime / 1000) as u64;
        let mut payload = Vec::with_capacity(per_packet);
        while self.pending.len() >= per_packet {
            if let (Some(tx), Some(te)) = (&mut self.events_out, self.negotiated.dtmf_send) {
                if let Some(tick) = tx.tick() {
                    if tick.start {
                        self.event_ts = self.media_ts;
                    }
                    self.transport
                        .send(te.pt, tick.start, self.event_ts, &tick.payload.to_bytes());
                    self.pending.drain(..per_packet);
                    self.media_ts += clock_per_packet;
                    // The audio after a digit is a new talkspurt.
                    self.marker = true;
                    continue;
                }
            }
            payload.clear();
            self.encoder
                .encode(&self.pending[..per_packet], &mut payload);
            self.pending.drain(..per_packet);
            self.transport.send(
                self.negotiated.send.pt,
                self.marker,
                self.media_ts,
                &payload,
            );
            self.marker = false;
            self.media_ts += clock_per_packet;
        }
    }

    /// Queues digits to send by RFC 4733. `Err` with the first character that is not a key,
    /// or `Err('\0')` when the phone did not negotiate telephone-event.
    pub fn send_digits(&mut self, digits: &str) -> Result<(), char> {
        match &mut self.events_out {
            Some(tx) => tx.queue(digits),
            None => Err('\0'),
        }
    }

    /// Ends the leg: an RTCP BYE.
    pub fn close(&mut self, now: Instant, ntp: u64) {
        self.transport.close(now, ntp);
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transport.poll_transmit()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<PhoneEvent> {
        if let Some(e) = self.transport.poll_event() {
            return Some(match e {
                SessionEvent::MediaTimeout => PhoneEvent::MediaTimeout,
                SessionEvent::RtcpBye => PhoneEvent::RtcpBye,
            });
        }
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.transport.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant, ntp: u64) {
        self.transport.handle_timeout(now, ntp);
    }
}

fn event_sender(n: &AudioSession) -> Option<EventSender> {
    let te = n.dtmf_send?;
    Some(EventSender::new(
        te.clock_rate,
        Duration::from_millis(n.ptime.max(10) as u64),
        DIGIT_DURATION,
        DIGIT_GAP,
    ))
}
