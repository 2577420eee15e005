//! One leg's RTP transport: where packets go, which ones are accepted, SRTP, RTCP reports,
//! and inactivity.
//!
//! - **Symmetric RTP**: media is sent to the address in the SDP until the first valid packet
//!   arrives, then to wherever that packet came from (the peer's NAT binding). A new source
//!   is only latched when the current one has been silent for [`RELATCH_AFTER`].
//! - **Address changes** (an early-media 183 followed by a 200 with other SDP, a re-INVITE):
//!   [`RtpSession::update`] switches at once, and packets from the old addresses are ignored
//!   from then on.
//! - **SRTP**: packets that fail authentication are dropped and counted, never latched to.
//! - **RTCP**: an SR (when sending) or RR every [`RTCP_INTERVAL`] (randomised ±50 %),
//!   reception statistics for our reports, round-trip time from the peer's.
//! - **Inactivity**: no packet for the configured time while receiving raises
//!   [`SessionEvent::MediaTimeout`]; on hold (not receiving) the clock is paused.
//!
//! Drain rule: after any `handle_*`, `send` or `update`, drain [`RtpSession::poll_transmit`]
//! and [`RtpSession::poll_event`], then call [`RtpSession::handle_timeout`] at
//! [`RtpSession::poll_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::packet::{is_rtcp, RtpPacket};
use crate::rtcp::{self, ReceptionStats, Rtcp, SenderInfo};
use crate::srtp::{SrtpContext, SrtpProfile, MASTER_LEN};

/// How long the latched source must be silent before another is latched.
pub const RELATCH_AFTER: Duration = Duration::from_secs(1);
/// Mean interval between our RTCP reports.
pub const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// SRTP keys for both directions.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpSetup {
    pub profile: SrtpProfile,
    pub local: [u8; MASTER_LEN],
    pub remote: [u8; MASTER_LEN],
}

impl std::fmt::Debug for SrtpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSetup")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// What the offer/answer decided for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    pub remote_rtp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    pub rtcp_mux: bool,
    pub send: bool,
    pub receive: bool,
    pub srtp: Option<SrtpSetup>,
    /// Raise [`SessionEvent::MediaTimeout`] after this long without media; `None` never.
    pub media_timeout: Option<Duration>,
    /// The RTP clock, for jitter in reports.
    pub clock: u32,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    /// Send from the RTCP socket (false: the RTP socket, also for multiplexed RTCP).
    pub rtcp_socket: bool,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// No media for the configured time while receiving.
    MediaTimeout,
    /// The peer said BYE in RTCP.
    RtcpBye,
}

/// Counters of the transport.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TransportStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub octets_sent: u64,
    pub malformed: u64,
    /// SRTP packets refused (authentication, replay, malformed).
    pub srtp_failures: u64,
    /// SRTCP packets refused (also plain RTCP some phones send before their keys apply).
    pub srtcp_failures: u64,
    pub ignored_source: u64,
    pub latched: u64,
    pub rtcp_received: u64,
    pub rtcp_sent: u64,
    /// Loss the peer reports about our stream, in percent.
    pub remote_loss_pct: f64,
    /// Loss we see on the peer's stream, cumulative.
    pub local_lost: i64,
    /// Interarrival jitter of the peer's stream, ms.
    pub jitter_ms: f64,
    /// Round-trip time from the last report, ms.
    pub rtt_ms: Option<f64>,
}

/// One leg. See the module documentation for the drain rule.
pub struct RtpSession {
    ssrc: u32,
    seq: u16,
    ts_base: u32,
    cname: String,
    config: TransportConfig,
    latched: Option<(SocketAddr, Instant)>,
    latched_rtcp: Option<SocketAddr>,
    ignored: Vec<SocketAddr>,
    /// Boxed: a context is kilobytes (key schedules, replay window) and plain RTP calls,
    /// the common case, need none.
    srtp_tx: Option<Box<SrtpContext>>,
    srtp_rx: Option<Box<SrtpContext>>,
    reception: ReceptionStats,
    last_sent_ts: u32,
    sent_since_report: bool,
    activity: Instant,
    timed_out: bool,
    next_rtcp: Instant,
    jitter_seed: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent>,
    stats: TransportStats,
}

impl std::fmt::Debug for RtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpSession")
            .field("ssrc", &self.ssrc)
            .field("latched", &self.latched)
            .finish_non_exhaustive()
    }
}

impl RtpSession {
    /// A leg sending as `ssrc`, its first sequence number and timestamp from `seq` and
    /// `ts_base` (random, from the caller's seeded RNG).
    pub fn new(
        now: Instant,
        ssrc: u32,
        seq: u16,
        ts_base: u32,
        cname: &str,
        config: TransportConfig,
    ) -> Self {
        let mut s = RtpSession {
            ssrc,
            seq,
            ts_base,
            cname: cname.to_owned(),
            reception: ReceptionStats::new(config.clock),
            config: config.clone(),
            latched: None,
            latched_rtcp: None,
            ignored: Vec::new(),
            srtp_tx: None,
            srtp_rx: None,
            last_sent_ts: ts_base,
            sent_since_report: false,
            activity: now,
            timed_out: false,
            next_rtcp: now + RTCP_INTERVAL / 2,
            jitter_seed: ssrc | 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: TransportStats::default(),
        };
        s.apply_srtp(config.srtp.as_ref());
        s
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    pub fn stats(&self) -> TransportStats {
        TransportStats {
            local_lost: self.reception.cumulative_lost(),
            jitter_ms: self.reception.jitter_ms(),
            ..self.stats
        }
    }

    /// Where media goes now.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.map(|(a, _)| a).or(self.config.remote_rtp)
    }

    fn apply_srtp(&mut self, srtp: Option<&SrtpSetup>) {
        self.srtp_tx = srtp.map(|s| Box::new(SrtpContext::new(s.profile, &s.local)));
        self.srtp_rx = srtp.map(|s| Box::new(SrtpContext::new(s.profile, &s.remote)));
    }

    /// A new offer/answer outcome (200 after 183, re-INVITE, hold, resume).
    pub fn update(&mut self, now: Instant, config: TransportConfig) {
        let moved = config.remote_rtp != self.config.remote_rtp;
        if moved {
            // Everything the old description pointed at is now foreign.
            let old = [
                self.config.remote_rtp,
                self.config.remote_rtcp,
                self.latched.map(|(a, _)| a),
                self.latched_rtcp,
            ];
            for a in old.into_iter().flatten() {
                if Some(a) != config.remote_rtp
                    && Some(a) != config.remote_rtcp
                    && !self.ignored.contains(&a)
                {
                    self.ignored.push(a);
                }
            }
            self.latched = None;
            self.latched_rtcp = None;
        }
        if config.srtp != self.config.srtp {
            self.apply_srtp(config.srtp.as_ref());
        }
        if config.receive && !self.config.receive {
            self.activity = now;
        }
        if moved {
            self.activity = now;
        }
        self.timed_out = false;
        self.config = config;
    }

    /// A datagram from the RTP socket. Returns the packet when it is RTP that should be
    /// played (authenticated, decrypted, from an accepted source); RTCP multiplexed on the
    /// RTP port is handled here too.
    pub fn handle_rtp<'a>(
        &mut self,
        now: Instant,
        ntp: u64,
        from: SocketAddr,
        buf: &'a mut Vec<u8>,
    ) -> Option<RtpPacket<'a>> {
        if is_rtcp(buf) {
            self.handle_rtcp(now, ntp, from, buf);
            return None;
        }
        if self.ignored.contains(&from) {
            self.stats.ignored_source += 1;
            return None;
        }
        if RtpPacket::parse(buf).is_none() {
            self.stats.malformed += 1;
            return None;
        }
        if let Some((current, last)) = self.latched {
            if current != from && now.duration_since(last) < RELATCH_AFTER {
                self.stats.ignored_source += 1;
                return None;
            }
        }
        if let Some(rx) = &mut self.srtp_rx {
            if let Err(e) = rx.unprotect_rtp(buf) {
                self.stats.srtp_failures += 1;
                tracing::debug!(?e, source = %from, len = buf.len(), "srtp packet refused");
                return None;
            }
        }
        let packet = RtpPacket::parse(buf)?;
        if self.latched.is_none_or(|(a, _)| a != from) {
            self.stats.latched += 1;
            tracing::debug!(source = %from, "rtp source latched");
        }
        self.latched = Some((from, now));
        self.stats.packets_received += 1;
        self.activity = now;
        self.timed_out = false;
        self.reception
            .on_packet(now, packet.ssrc, packet.seq, packet.ts);
        if !self.config.receive {
            return None;
        }
        Some(packet)
    }

    /// A datagram from the RTCP socket (or multiplexed).
    pub fn handle_rtcp(&mut self, now: Instant, ntp: u64, from: SocketAddr, buf: &mut Vec<u8>) {
        if self.ignored.contains(&from) {
            self.stats.ignored_source += 1;
            return;
        }
        if let Some(rx) = &mut self.srtp_rx {
            if let Err(e) = rx.unprotect_rtcp(buf) {
                self.stats.srtcp_failures += 1;
                tracing::debug!(?e, source = %from, len = buf.len(), "srtcp packet refused");
                return;
            }
            if let Some(tx) = &mut self.srtp_tx {
                tx.follow_srtcp_tag_len(rx);
            }
        }
        let Some(packets) = rtcp::parse(buf) else {
            self.stats.malformed += 1;
            return;
        };
        self.stats.rtcp_received += 1;
        self.latched_rtcp = Some(from);
        for p in packets {
            match p {
                Rtcp::SenderReport {
                    ntp: their, blocks, ..
                } => {
                    self.reception.on_sender_report(now, their);
                    self.read_blocks(ntp, &blocks);
                }
                Rtcp::ReceiverReport { blocks, .. } => self.read_blocks(ntp, &blocks),
                Rtcp::Bye { .. } => self.events.push_back(SessionEvent::RtcpBye),
                Rtcp::Other { .. } => {}
            }
        }
    }

    fn read_blocks(&mut self, ntp: u64, blocks: &[rtcp::ReportBlock]) {
        for b in blocks.iter().filter(|b| b.ssrc == self.ssrc) {
            self.stats.remote_loss_pct = b.fraction_lost as f64 * 100.0 / 256.0;
            if let Some(rtt) = rtcp::round_trip(b, ntp) {
                self.stats.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
            }
        }
    }

    /// Sends one packet: `media_ts` is the stream position in clock units from its start.
    pub fn send(&mut self, pt: u8, marker: bool, media_ts: u64, payload: &[u8]) {
        if !self.config.send {
            return;
        }
        let Some(to) = self.destination() else { return };
        let ts = self.ts_base.wrapping_add(media_ts as u32);
        let mut bytes = Vec::with_capacity(12 + payload.len() + 10);
        RtpPacket {
            marker,
            pt,
            seq: self.seq,
            ts,
            ssrc: self.ssrc,
            payload,
        }
        .write(&mut bytes);
        if let Some(tx) = &mut self.srtp_tx {
            if tx.protect_rtp(&mut bytes).is_err() {
                return;
            }
        }
        self.seq = self.seq.wrapping_add(1);
        self.last_sent_ts = ts;
        self.sent_since_report = true;
        self.stats.packets_sent += 1;
        self.stats.octets_sent += payload.len() as u64;
        self.transmits.push_back(Transmit {
            to,
            rtcp_socket: false,
            bytes,
        });
    }

    /// Sends a final RTCP BYE (the call is ending). A transport that never sent anything
    /// stays silent: RFC 3550 §6.3.7 forbids a BYE from a member that sent no RTP or RTCP.
    pub fn close(&mut self, now: Instant, ntp: u64) {
        if self.stats.packets_sent == 0 && self.stats.rtcp_sent == 0 {
            return;
        }
        let mut bytes = Vec::new();
        self.report(now, ntp, &mut bytes);
        rtcp::write_bye(self.ssrc, &mut bytes);
        self.queue_rtcp(bytes);
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        match self.media_deadline() {
            Some(d) if !self.timed_out => d.min(self.next_rtcp),
            _ => self.next_rtcp,
        }
    }

    fn media_deadline(&self) -> Option<Instant> {
        let t = self.config.media_timeout?;
        self.config.receive.then(|| self.activity + t)
    }

    /// Fires what is due; harmless when called early.
    pub fn handle_timeout(&mut self, now: Instant, ntp: u64) {
        if let Some(d) = self.media_deadline() {
            if now >= d && !self.timed_out {
                self.timed_out = true;
                self.events.push_back(SessionEvent::MediaTimeout);
            }
        }
        if now >= self.next_rtcp {
            let mut bytes = Vec::new();
            self.report(now, ntp, &mut bytes);
            self.queue_rtcp(bytes);
            // Randomised interval (RFC 3550 §6.3.1): 0.5 to 1.5 times the mean.
            self.jitter_seed ^= self.jitter_seed << 13;
            self.jitter_seed ^= self.jitter_seed >> 17;
            self.jitter_seed ^= self.jitter_seed << 5;
            let factor = 0.5 + (self.jitter_seed % 1000) as f64 / 1000.0;
            self.next_rtcp = now + RTCP_INTERVAL.mul_f64(factor);
        }
    }

    fn report(&mut self, now: Instant, ntp: u64, out: &mut Vec<u8>) {
        let sender = self.sent_since_report.then_some(SenderInfo {
            rtp_ts: self.last_sent_ts,
            packets: self.stats.packets_sent as u32,
            octets: self.stats.octets_sent as u32,
        });
        self.sent_since_report = false;
        let block = self.reception.report_block(now);
        rtcp::write_report(self.ssrc, ntp, sender, block, &self.cname, out);
    }

    fn queue_rtcp(&mut self, mut bytes: Vec<u8>) {
        let to = if self.config.rtcp_mux {
            self.destination()
        } else {
            self.latched_rtcp.or(self.config.remote_rtcp)
        };
        let Some(to) = to else { return };
        if let Some(tx) = &mut self.srtp_tx {
            if tx.protect_rtcp(&mut bytes).is_err() {
                return;
            }
        }
        self.stats.rtcp_sent += 1;
        self.transmits.push_back(Transmit {
            to,
            rtcp_socket: !self.config.rtcp_mux,
            bytes,
        });
    }
}
