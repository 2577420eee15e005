//! The tokio shell around one phone leg's [`PhoneAudio`]: a task that owns the leg's RTP and
//! RTCP sockets, ticks every 20 ms, feeds datagrams in, sends what comes out, and reports
//! digits and media timeouts to the SIP driver.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phonebridge_bridge::{PhoneAudio, PhoneAudioStats, PhoneEvent, StreamIds};
use phonebridge_sdp::AudioSession;
use phonebridge_sip::CallHandle;
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::sip_driver::now;

/// Fresh identifiers for a leg's outgoing stream: SSRC, first sequence number and timestamp
/// are all random (RFC 3550 §5.1).
pub(crate) fn random_stream_ids(rng: &mut impl Rng) -> StreamIds {
    StreamIds {
        ssrc: rng.gen(),
        seq: rng.gen(),
        ts: rng.gen(),
    }
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The wall clock as a 64-bit NTP timestamp, for RTCP.
#[allow(clippy::disallowed_methods)] // the shell is where clocks are read
pub(crate) fn ntp_now() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ((d.as_secs() + NTP_UNIX_OFFSET) << 32) | (((d.subsec_nanos() as u64) << 32) / 1_000_000_000)
}

/// What a leg does with the audio it hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegMode {
    /// Play it back to the phone (the echo user).
    Echo,
}

pub(crate) enum Command {
    /// A new offer/answer outcome.
    Update(Box<AudioSession>),
    /// A digit the phone sent by SIP INFO.
    InfoDigit(char),
    /// Digits to send to the phone by RFC 4733.
    SendDigits(String),
    /// End the leg (RTCP BYE, sockets closed).
    Stop,
}

/// What a leg tells the SIP side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LegEvent {
    pub(crate) call: CallHandle,
    pub(crate) event: PhoneEvent,
}

/// Per-leg figures for `/metrics`, refreshed four times a second by each leg.
pub(crate) type SharedLegStats = Arc<Mutex<LegStats>>;

#[derive(Debug, Default)]
pub(crate) struct LegStats {
    /// Live legs by call.
    pub(crate) live: HashMap<CallHandle, PhoneAudioStats>,
    /// Totals of the legs that ended.
    pub(crate) ended: PhoneAudioStats,
    pub(crate) ended_legs: u64,
}

/// A running leg; dropping it does not stop it, [`MediaLeg::stop`] does.
pub(crate) struct MediaLeg {
    tx: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl MediaLeg {
    /// Starts the leg's task on the bound socket pair.
    pub(crate) fn spawn(
        call: CallHandle,
        mode: LegMode,
        rtp: std::net::UdpSocket,
        rtcp: std::net::UdpSocket,
        audio: PhoneAudio,
        events: mpsc::UnboundedSender<LegEvent>,
        stats: SharedLegStats,
    ) -> std::io::Result<MediaLeg> {
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        let rtp = UdpSocket::from_std(rtp)?;
        let rtcp = UdpSocket::from_std(rtcp)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let leg = Leg {
            call,
            mode,
            rtp,
            rtcp,
            audio,
            events,
            stats,
        };
        let task = tokio::spawn(leg.run(rx));
        Ok(MediaLeg { tx, task })
    }

    pub(crate) fn update(&self, negotiated: AudioSession) {
        let _ = self.tx.send(Command::Update(Box::new(negotiated)));
    }

    pub(crate) fn info_digit(&self, digit: char) {
        let _ = self.tx.send(Command::InfoDigit(digit));
    }

    pub(crate) fn send_digits(&self, digits: &str) {
        let _ = self.tx.send(Command::SendDigits(digits.to_owned()));
    }

    /// Ends the leg; its sockets close when the task finishes.
    pub(crate) fn stop(self) -> JoinHandle<()> {
        let _ = self.tx.send(Command::Stop);
        self.task
    }
}

struct Leg {
    call: CallHandle,
    mode: LegMode,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    audio: PhoneAudio,
    events: mpsc::UnboundedSender<LegEvent>,
    stats: SharedLegStats,
}

impl Leg {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let span = tracing::debug_span!("leg", call = ?self.call);
        let _enter = span.enter();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut publish = tokio::time::interval(Duration::from_millis(250));
        let mut rtp_buf = vec![0u8; 2048];
        let mut rtcp_buf = vec![0u8; 2048];
        let mut frame = Vec::with_capacity(960);
        loop {
            let deadline = tokio::time::Instant::from_std(self.audio.poll_timeout());
            tokio::select! {
                r = self.rtp.recv_from(&mut rtp_buf) => match r {
                    Ok((n, from)) => self.audio.handle_rtp(now(), ntp_now(), from, rtp_buf[..n].to_vec()),
                    Err(e) => tracing::trace!(error = %e, "rtp recv"),
                },
                r = self.rtcp.recv_from(&mut rtcp_buf) => match r {
                    Ok((n, from)) => self.audio.handle_rtcp(now(), ntp_now(), from, rtcp_buf[..n].to_vec()),
                    Err(e) => tracing::trace!(error = %e, "rtcp recv"),
                },
                _ = tick.tick() => {
                    frame.clear();
                    self.audio.pull(now(), &mut frame);
                    match self.mode {
                        LegMode::Echo => self.audio.push(&frame),
                    }
                }
                _ = tokio::time::sleep_until(deadline) => self.audio.handle_timeout(now(), ntp_now()),
                _ = publish.tick() => self.publish(),
                cmd = commands.recv() => match cmd {
                    Some(Command::Update(n)) => self.audio.update(now(), &n),
                    Some(Command::InfoDigit(d)) => self.audio.info_digit(now(), d),
                    Some(Command::SendDigits(d)) => {
                        if let Err(c) = self.audio.send_digits(&d) {
                            tracing::warn!(character = ?c, "digits not sent: not a key, or no telephone-event agreed");
                        }
                    }
                    Some(Command::Stop) | None => {
                        self.audio.close(now(), ntp_now());
                        self.flush();
                        break;
                    }
                },
            }
            self.flush();
        }
        let final_stats = self.audio.stats();
        if let Ok(mut s) = self.stats.lock() {
            s.live.remove(&self.call);
            add_into(&mut s.ended, &final_stats);
            s.ended_legs += 1;
        }
        tracing::debug!(stats = ?final_stats, "leg ended");
    }

    fn flush(&mut self) {
        while let Some(t) = self.audio.poll_transmit() {
            let socket = if t.rtcp_socket { &self.rtcp } else { &self.rtp };
            send(socket, t.to, &t.bytes);
        }
        while let Some(event) = self.audio.poll_event() {
            let _ = self.events.send(LegEvent {
                call: self.call,
                event,
            });
        }
    }

    fn publish(&self) {
        if let Ok(mut s) = self.stats.lock() {
            s.live.insert(self.call, self.audio.stats());
        }
    }
}

fn send(socket: &UdpSocket, to: SocketAddr, bytes: &[u8]) {
    // A full socket buffer loses this packet, as the network would; media must not wait.
    if let Err(e) = socket.try_send_to(bytes, to) {
        tracing::trace!(error = %e, %to, "rtp send");
    }
}

/// Adds a leg's counters to the totals of ended legs.
fn add_into(total: &mut PhoneAudioStats, s: &PhoneAudioStats) {
    let (t, x) = (&mut total.transport, &s.transport);
    t.packets_received += x.packets_received;
    t.packets_sent += x.packets_sent;
    t.octets_sent += x.octets_sent;
    t.malformed += x.malformed;
    t.srtp_failures += x.srtp_failures;
    t.srtcp_failures += x.srtcp_failures;
    t.ignored_source += x.ignored_source;
    t.latched += x.latched;
    t.rtcp_received += x.rtcp_received;
    t.rtcp_sent += x.rtcp_sent;
    let (j, y) = (&mut total.jitter, &s.jitter);
    j.received += y.received;
    j.duplicates += y.duplicates;
    j.late += y.late;
    j.lost += y.lost;
    j.undecodable += y.undecodable;
    j.underruns += y.underruns;
    j.shrinks += y.shrinks;
    j.overflows += y.overflows;
    j.source.ssrc_switches += y.source.ssrc_switches;
    j.source.timestamp_jumps += y.source.timestamp_jumps;
    j.source.sequence_restarts += y.source.sequence_restarts;
    j.source.stale += y.source.stale;
    total.unknown_payload_type += s.unknown_payload_type;
    total.comfort_noise += s.comfort_noise;
    total.digits += s.digits;
    total.dtmf_duplicates += s.dtmf_duplicates;
}

/// The totals over ended and live legs, for counters.
pub(crate) fn totals(stats: &LegStats) -> PhoneAudioStats {
    let mut t = PhoneAudioStats::default();
    add_into(&mut t, &stats.ended);
    for s in stats.live.values() {
        add_into(&mut t, s);
    }
    t
}
