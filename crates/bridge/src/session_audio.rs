//! A phone's audio in a session, without I/O: the phone's 20 ms frames go up once, encoded to
//! Opus at the phone's own rate (telephone audio has no band above it to code) for every
//! subscriber of its stream; the other publishers' Opus packets come down, are decoded per
//! source straight to the phone's rate, and mixed N-1 (never the phone's own voice, which is
//! never a source here) or from the chosen subset.
//!
//! Per source, a gap in sequence numbers is concealed by the Opus decoder (at most
//! [`MAX_CONCEALED`] frames, beyond that the mixer's own starvation handling takes over) and a
//! packet older than one already decoded is dropped. The mixer's adaptive input queues absorb
//! the jitter between sources.
//!
//! Drain rule: [`SessionAudio::from_phone`] once per 20 ms frame of the phone, then
//! [`SessionAudio::to_phone`] for what the phone hears in the same tick.

use std::collections::{HashMap, HashSet};

use phonebridge_media::{AudioDecoder, AudioEncoder, CodecKind, Listener, Mixer, Resampler};

/// Samples of a 20 ms frame at 48 kHz.
pub const FRAME_48K: usize = 960;
/// The most lost frames concealed at once for one source.
pub const MAX_CONCEALED: u64 = 5;
/// The mixer's name for the phone (its only listener).
const PHONE: &str = "phone";

struct Source {
    decoder: AudioDecoder,
    /// The sequence number expected next.
    next_seq: Option<u64>,
}

/// Counters of one call's session audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionAudioStats {
    /// Frames of the phone encoded for the session.
    pub frames_up: u64,
    /// Packets of an Opus phone passed to the session as they came.
    pub packets_passed: u64,
    pub packets_down: u64,
    pub concealed: u64,
    pub stale: u64,
    /// Mixer frames that arrived too late to play (dropped to bound the delay).
    pub dropped: u64,
    /// Ticks a playing source had nothing to give.
    pub starvations: u64,
}

/// See the module documentation for the drain rule.
pub struct SessionAudio {
    phone_rate: u32,
    /// Only for phone rates Opus cannot take directly: to 48 kHz first.
    up: Option<Resampler>,
    /// Samples of a 20 ms frame at the encoder's rate.
    up_frame: usize,
    /// The rate sources are decoded and mixed at (the phone's, when Opus decodes to it), and
    /// a 20 ms frame at that rate.
    mix_rate: u32,
    mix_frame: usize,
    subscriptions: Option<HashSet<String>>,
    down: Option<Resampler>,
    encoder: AudioEncoder,
    ts: u32,
    muted: bool,
    /// Loss the subscribers see (percent), for the encoder's FEC.
    uplink_loss: u8,
    sources: HashMap<String, Source>,
    mixer: Mixer,
    scratch: Vec<i16>,
    /// A session packet's decoded audio (kept to spare an allocation per packet).
    decoded: Vec<i16>,
    stats: SessionAudioStats,
}

impl std::fmt::Debug for SessionAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionAudio")
            .field("phone_rate", &self.phone_rate)
            .field("sources", &self.sources.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl SessionAudio {
    /// For a phone whose PCM is at `phone_rate`; `first_ts` starts the Opus timestamps.
    pub fn new(phone_rate: u32, first_ts: u32) -> Self {
        let (encoder, up, up_frame) = Self::uplink(phone_rate);
        let (mix_rate, down) = Self::downlink(phone_rate);
        let mix_frame = mix_rate as usize / 50;
        SessionAudio {
            phone_rate,
            up,
            up_frame,
            mix_rate,
            mix_frame,
            subscriptions: None,
            down,
            encoder,
            ts: first_ts,
            muted: false,
            uplink_loss: 0,
            sources: HashMap::new(),
            mixer: Self::mixer(mix_frame, None),
            scratch: Vec::with_capacity(FRAME_48K),
            decoded: Vec::with_capacity(FRAME_48K * 3),
            stats: SessionAudioStats::default(),
        }
    }

    /// The Opus encoder for a phone at `rate`: at that rate when Opus takes it, else at
    /// 48 kHz behind a resampler; and the samples of a 20 ms frame it takes.
    fn uplink(rate: u32) -> (AudioEncoder, Option<Resampler>, usize) {
        match AudioEncoder::opus_at(rate) {
            Some(e) => (e, None, rate as usize / 50),
            None => (
                AudioEncoder::new(CodecKind::Opus),
                Resampler::new(rate, 48_000),
                FRAME_48K,
            ),
        }
    }

    /// The rate to decode and mix at for a phone at `rate` (its own when Opus decodes to
    /// it, else 48 kHz), and the resampler to the phone's rate it then needs.
    fn downlink(rate: u32) -> (u32, Option<Resampler>) {
        if AudioDecoder::opus_at(rate).is_some() {
            (rate, None)
        } else {
            (48_000, Resampler::new(48_000, rate))
        }
    }

    fn mixer(frame: usize, subscriptions: Option<HashSet<String>>) -> Mixer {
        let mut mixer = Mixer::new(frame);
        mixer.set_listener(
            PHONE,
            Listener {
                own: None,
                subscriptions,
            },
        );
        mixer
    }

    /// The phone's codec changed rate (a re-INVITE to another codec): the uplink follows,
    /// and the sources start again at the new mixing rate.
    pub fn set_phone_rate(&mut self, rate: u32) {
        if rate != self.phone_rate {
            self.phone_rate = rate;
            (self.encoder, self.up, self.up_frame) = Self::uplink(rate);
            self.encoder.set_expected_loss(self.uplink_loss);
            (self.mix_rate, self.down) = Self::downlink(rate);
            self.mix_frame = self.mix_rate as usize / 50;
            self.sources.clear();
            self.mixer = Self::mixer(self.mix_frame, self.subscriptions.clone());
        }
    }

    /// Which streams the phone hears: `None` for every other publisher.
    pub fn set_subscriptions(&mut self, streams: Option<HashSet<String>>) {
        self.subscriptions = streams.clone();
        self.mixer.set_listener(
            PHONE,
            Listener {
                own: None,
                subscriptions: streams,
            },
        );
    }

    /// The share of the phone's packets (percent) the session's subscribers lose: above
    /// zero the phone's Opus carries in-band FEC sized for it, at zero none (on a clean
    /// path FEC only takes bits from the speech).
    pub fn set_uplink_loss(&mut self, percent: u8) {
        self.uplink_loss = percent;
        self.encoder.set_expected_loss(percent);
    }

    /// Silences what the phone sends to the session (the packets keep flowing as silence).
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    pub fn muted(&self) -> bool {
        self.muted
    }

    pub fn stats(&self) -> SessionAudioStats {
        self.stats
    }

    /// One 20 ms frame of the phone at its rate; appends its Opus payload to `out` and
    /// returns the payload's RTP timestamp (48 kHz).
    pub fn from_phone(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> u32 {
        self.scratch.clear();
        if !self.muted {
            match &mut self.up {
                Some(r) => r.process(pcm, &mut self.scratch),
                None => self.scratch.extend_from_slice(pcm),
            }
        }
        self.scratch.resize(self.up_frame, 0);
        self.encoder.encode(&self.scratch, out);
        let ts = self.ts;
        self.ts = self.ts.wrapping_add(FRAME_48K as u32);
        self.stats.frames_up += 1;
        ts
    }

    /// A packet of an Opus phone passed on as it came, `duration` long (48 kHz clock) after
    /// `gap` of missing audio; returns its RTP timestamp in the phone's session stream.
    pub fn passed_from_phone(&mut self, gap: u32, duration: u32) -> u32 {
        let ts = self.ts.wrapping_add(gap);
        self.ts = ts.wrapping_add(duration);
        self.stats.packets_passed += 1;
        ts
    }

    /// An Opus packet of another publisher's stream `stream`, with its extended sequence
    /// number.
    pub fn from_session(&mut self, stream: &str, seq: u64, payload: &[u8]) {
        let rate = self.mix_rate;
        let s = self
            .sources
            .entry(stream.to_owned())
            .or_insert_with(|| Source {
                decoder: AudioDecoder::opus_at(rate)
                    .unwrap_or_else(|| AudioDecoder::new(CodecKind::Opus)),
                next_seq: None,
            });
        self.stats.packets_down += 1;
        let frame = self.mix_frame;
        let pcm = &mut self.decoded;
        pcm.clear();
        if let Some(next) = s.next_seq {
            if seq < next {
                self.stats.stale += 1;
                return;
            }
            let missing = (seq - next).min(MAX_CONCEALED);
            for _ in 0..missing {
                s.decoder.conceal(frame, pcm);
                self.stats.concealed += 1;
            }
        }
        s.next_seq = Some(seq + 1);
        s.decoder.decode(payload, pcm);
        for f in pcm.chunks(frame) {
            self.mixer.push(stream, f);
        }
    }

    /// A publisher left: its queue and decoder go.
    pub fn remove_source(&mut self, stream: &str) {
        self.sources.remove(stream);
        self.mixer.remove_source(stream);
    }

    /// What the phone hears for this tick, at its rate, appended to `out`.
    pub fn to_phone(&mut self, out: &mut Vec<i16>) {
        self.mixer.tick();
        let mixed = self.mixer.frame_for(PHONE).unwrap_or(&[]);
        match &mut self.down {
            Some(r) => r.process(mixed, out),
            None => out.extend_from_slice(mixed),
        }
        let (mut dropped, mut starvations) = (0, 0);
        for id in self.sources.keys() {
            if let Some(s) = self.mixer.source_stats(id) {
                dropped += s.dropped_backlog;
                starvations += s.starvations;
            }
        }
        self.stats.dropped = self.stats.dropped.max(dropped);
        self.stats.starvations = self.stats.starvations.max(starvations);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonebridge_media::goertzel::power;
    use phonebridge_media::Tone;

    fn share(pcm: &[i16], rate: u32, freq: f64) -> f64 {
        let x: Vec<f32> = pcm.iter().map(|&s| s as f32 / 32768.0).collect();
        let total: f64 = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64;
        if total == 0.0 {
            return 0.0;
        }
        power(&x, rate as f64, freq) / total
    }

    /// Two publishers' tones encoded as browsers would send them, mixed for an 8 kHz phone:
    /// both are heard; the phone's own tone goes up as Opus and is never mixed back.
    #[test]
    fn the_phone_hears_the_others_and_sends_its_own_voice_up() {
        let mut a = Tone::sine(48_000, 440.0, 8000.0);
        let mut b = Tone::sine(48_000, 1000.0, 8000.0);
        let mut phone = Tone::sine(8_000, 700.0, 8000.0);
        let (mut enc_a, mut enc_b) = (
            AudioEncoder::new(CodecKind::Opus),
            AudioEncoder::new(CodecKind::Opus),
        );
        let mut s = SessionAudio::new(8_000, 1000);
        let mut up_dec = AudioDecoder::new(CodecKind::Opus);
        let (mut heard, mut sent) = (Vec::new(), Vec::new());
        let mut last_ts = None;
        for seq in 0..100u64 {
            for (enc, tone, id) in [(&mut enc_a, &mut a, "A"), (&mut enc_b, &mut b, "B")] {
                let (mut pcm, mut pkt) = (Vec::new(), Vec::new());
                tone.fill(FRAME_48K, &mut pcm);
                enc.encode(&pcm, &mut pkt);
                s.from_session(id, seq, &pkt);
            }
            let (mut pcm, mut pkt) = (Vec::new(), Vec::new());
            phone.fill(160, &mut pcm);
            let ts = s.from_phone(&pcm, &mut pkt);
            if let Some(prev) = last_ts {
                assert_eq!(ts, u32::wrapping_add(prev, 960));
            }
            last_ts = Some(ts);
            up_dec.decode(&pkt, &mut sent);
            s.to_phone(&mut heard);
        }
        assert_eq!(heard.len(), 100 * 160);
        let tail = &heard[heard.len() - 4000..];
        assert!(share(tail, 8_000, 440.0) > 0.2, "A heard");
        assert!(share(tail, 8_000, 1000.0) > 0.2, "B heard");
        assert!(share(tail, 8_000, 700.0) < 0.01, "own voice not heard");
        let tail = &sent[sent.len() - 24_000..];
        assert!(share(tail, 48_000, 700.0) > 0.5, "own voice sent up");
        assert_eq!(s.stats().frames_up, 100);
        assert_eq!(s.stats().packets_down, 200);
    }

    /// A re-INVITE from G.711 to G.722: the mix follows the phone to 16 kHz, the uplink too.
    #[test]
    fn a_new_phone_rate_mid_call_keeps_both_directions() {
        let mut a = Tone::sine(48_000, 440.0, 8000.0);
        let mut enc = AudioEncoder::new(CodecKind::Opus);
        let mut phone16 = Tone::sine(16_000, 700.0, 8000.0);
        let mut s = SessionAudio::new(8_000, 0);
        let mut up_dec = AudioDecoder::new(CodecKind::Opus);
        let (mut heard, mut sent) = (Vec::new(), Vec::new());
        for seq in 0..100u64 {
            let rate = if seq < 20 { 8_000 } else { 16_000 };
            s.set_phone_rate(rate);
            let (mut pcm, mut pkt) = (Vec::new(), Vec::new());
            a.fill(FRAME_48K, &mut pcm);
            enc.encode(&pcm, &mut pkt);
            s.from_session("A", seq, &pkt);
            let (mut pcm, mut pkt) = (Vec::new(), Vec::new());
            if rate == 16_000 {
                phone16.fill(320, &mut pcm);
            } else {
                pcm.resize(160, 0);
            }
            s.from_phone(&pcm, &mut pkt);
            sent.clear();
            up_dec.decode(&pkt, &mut sent);
            heard.clear();
            s.to_phone(&mut heard);
            assert_eq!(heard.len(), rate as usize / 50);
        }
        let mut tail = Vec::new();
        for _ in 0..10 {
            let (mut pcm, mut pkt) = (Vec::new(), Vec::new());
            a.fill(FRAME_48K, &mut pcm);
            enc.encode(&pcm, &mut pkt);
            s.from_session("A", 100 + tail.len() as u64 / 320, &pkt);
            s.to_phone(&mut tail);
        }
        assert!(share(&tail, 16_000, 440.0) > 0.3, "A heard at 16 kHz");
        assert!(
            share(&sent, 48_000, 700.0) > 0.5,
            "the 16 kHz voice sent up"
        );
    }

    #[test]
    fn subsets_mute_gaps_and_stale_packets() {
        let mut enc = AudioEncoder::new(CodecKind::Opus);
        let mut tone = Tone::sine(48_000, 440.0, 8000.0);
        let mut packet = || {
            let (mut pcm, mut pkt) = (Vec::new(), Vec::new());
            tone.fill(FRAME_48K, &mut pcm);
            enc.encode(&pcm, &mut pkt);
            pkt
        };
        let mut s = SessionAudio::new(16_000, 0);
        s.set_subscriptions(Some(HashSet::from(["B".to_owned()])));
        let mut heard = Vec::new();
        for seq in 0..50 {
            s.from_session("A", seq, &packet());
            s.to_phone(&mut heard);
        }
        assert!(heard.iter().all(|&x| x == 0), "A is not in the subset");
        s.set_subscriptions(None);
        heard.clear();
        // A gap of three packets is concealed; a repeat is dropped.
        s.from_session("A", 53, &packet());
        s.from_session("A", 52, &packet());
        assert_eq!(s.stats().concealed, 3);
        assert_eq!(s.stats().stale, 1);
        for _ in 0..10 {
            s.to_phone(&mut heard);
        }
        let loudest = heard.iter().map(|x| x.unsigned_abs()).max().unwrap_or(0);
        assert!(loudest > 4000, "A heard once subscribed (peak {loudest})");
        s.set_muted(true);
        let mut pkt = Vec::new();
        s.from_phone(&[10_000; 320], &mut pkt);
        let mut dec = AudioDecoder::new(CodecKind::Opus);
        let mut out = Vec::new();
        dec.decode(&pkt, &mut out);
        assert!(
            out.iter().all(|x| x.abs() < 100),
            "muted phone sends silence"
        );
    }
}
