//! The tokio shell around one phone leg's [`PhoneAudio`]: a task that owns the leg's RTP and
//! RTCP sockets, ticks every 20 ms, feeds datagrams in, sends what comes out, and reports
//! digits and media timeouts to the SIP driver.
//!
//! Every leg ticks on one shared 20 ms clock ([`MediaClock`]) rather than on timers of its
//! own, and reads what the SIP side asks of it at its tick: starting, commanding or ending a
//! leg never wakes a task or moves the runtime's next timer, so a burst of short calls costs
//! no thread wake-ups beyond the clock's 50 a second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phonebridge_bridge::{
    PhoneAudio, PhoneAudioStats, PhoneEvent, SessionAudio, SessionAudioStats, StreamIds,
};
use phonebridge_sdp::AudioSession;
use phonebridge_sip::CallHandle;
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::ports::{PortPair, Returns};
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
    /// Play it back to the phone once the phone was heard, nothing before (the echo user).
    Echo,
    /// Play it back to the far end, with silence until there is something to play back
    /// (`phonebridge call`: the far end hears us from the answer on, digits included).
    Caller,
    /// Nothing: the phone hears prompts (or silence) while the voice menu listens for digits.
    Menu,
}

/// Where a bridged leg's audio goes: the session, through the hub.
pub(crate) struct Bridge {
    pub(crate) connection: String,
    pub(crate) hub: crate::sessions::RoomsHandle,
    /// First Opus timestamp of the phone's stream.
    pub(crate) first_ts: u32,
}

/// Audio a prompt plays, at 16 kHz.
pub(crate) type PromptAudio = Arc<Vec<i16>>;

/// What the session sends a bridged leg: other publishers' packets and their departures.
#[derive(Debug)]
pub(crate) enum SessionInput {
    /// An Opus packet of another publisher in the session.
    Audio {
        stream: Arc<str>,
        seq: u64,
        payload: Arc<[u8]>,
    },
    /// A publisher in the session stopped: forget its source.
    Gone(Arc<str>),
    /// The share of the phone's packets (percent) its subscribers lose.
    Loss(u8),
}

/// Session input waiting for a leg's next 20 ms tick. The hub appends without waking the leg
/// (the mix is made at the tick anyway), so a call costs one wake-up per tick rather than one
/// per packet of every publisher.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionInbox(Arc<Mutex<Vec<SessionInput>>>);

/// Packets held for a leg that stopped ticking (about a second of five publishers) before
/// new ones are dropped; the other inputs are always kept.
const INBOX_LIMIT: usize = 256;

impl SessionInbox {
    pub(crate) fn push(&self, input: SessionInput) {
        if let Ok(mut q) = self.0.lock() {
            if q.len() < INBOX_LIMIT || !matches!(input, SessionInput::Audio { .. }) {
                q.push(input);
            }
        }
    }

    /// Moves everything waiting into `into` (emptied first).
    fn take(&self, into: &mut Vec<SessionInput>) {
        into.clear();
        if let Ok(mut q) = self.0.lock() {
            std::mem::swap(&mut *q, into);
        }
    }
}

pub(crate) enum Command {
    /// Join the session: from now on the phone's audio goes up and the mix comes down.
    Bridge(Box<Bridge>),
    /// Play a prompt (replacing whatever plays); `PromptDone` follows when it ends.
    Play(PromptAudio),
    StopPrompt,
    /// Which streams the phone hears (`None`: all others).
    Subscriptions(Option<std::collections::HashSet<String>>),
    Mute(bool),
    /// A new offer/answer outcome.
    Update(Box<AudioSession>),
    /// A digit the phone sent by SIP INFO.
    InfoDigit(char),
    /// Digits to send to the phone by RFC 4733.
    SendDigits(String),
    /// End the leg (RTCP BYE; the sockets go back to the pool).
    Stop,
}

/// What a leg tells the SIP side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LegEvent {
    pub(crate) call: CallHandle,
    pub(crate) event: LegEventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegEventKind {
    Phone(PhoneEvent),
    /// The prompt that was playing finished.
    PromptDone,
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
    /// The session side of live legs, and the totals of ended ones.
    pub(crate) mixing: HashMap<CallHandle, MixingStats>,
    pub(crate) ended_mixing: MixingStats,
    /// Port pairs resting in the pool (see [`crate::ports`]).
    pub(crate) resting_pairs: Arc<std::sync::atomic::AtomicUsize>,
}

/// A leg's session side: the mix it hears, and how punctual its 20 ms clock was.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MixingStats {
    pub(crate) session: SessionAudioStats,
    /// 20 ms ticks that ran more than a frame late (the task fell behind).
    pub(crate) ticks_late: u64,
}

impl MixingStats {
    fn add(&mut self, o: &MixingStats) {
        let (s, x) = (&mut self.session, &o.session);
        s.frames_up += x.frames_up;
        s.packets_passed += x.packets_passed;
        s.packets_down += x.packets_down;
        s.concealed += x.concealed;
        s.stale += x.stale;
        s.dropped += x.dropped;
        s.starvations += x.starvations;
        self.ticks_late += o.ticks_late;
    }
}

/// The totals of the session side over ended and live legs.
pub(crate) fn mixing_totals(stats: &LegStats) -> MixingStats {
    let mut t = stats.ended_mixing;
    for m in stats.mixing.values() {
        t.add(m);
    }
    t
}

/// The 20 ms period of every leg.
const TICK: Duration = Duration::from_millis(20);

/// How often a leg refreshes its figures in [`LegStats`].
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// One beat of the [`MediaClock`]: the number of 20 ms periods since the clock's origin,
/// and when that beat was due.
#[derive(Debug, Clone, Copy)]
struct Beat {
    n: u64,
    due: tokio::time::Instant,
}

/// The 20 ms clock the legs of one app tick on, and where legs wait to start. The clock's
/// task starts the legs at its beat (so that starting one from the SIP side never wakes
/// another thread) and runs only while there are legs: it starts with the first one and ends
/// a beat after the last.
#[derive(Clone)]
pub(crate) struct MediaClock(Arc<ClockShared>);

struct ClockShared {
    beats: watch::Sender<Beat>,
    origin: tokio::time::Instant,
    state: Mutex<ClockState>,
    /// Where the clock's task runs (see [`spawn_on`]).
    runtime: Option<tokio::runtime::Handle>,
}

/// The runtime the clock and its legs run on: the one the clock was made in, whichever
/// thread starts a leg (the SIP driver has a thread and runtime of its own).
fn spawn_on(
    runtime: &Option<tokio::runtime::Handle>,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) {
    match runtime {
        Some(r) => drop(r.spawn(task)),
        None => drop(tokio::spawn(task)),
    }
}

#[derive(Default)]
struct ClockState {
    running: bool,
    /// Legs to start at the next beat.
    starting: Vec<(Box<Leg>, mpsc::UnboundedReceiver<Command>)>,
}

impl MediaClock {
    pub(crate) fn new() -> MediaClock {
        let origin = tokio::time::Instant::now();
        let (beats, _) = watch::channel(Beat { n: 0, due: origin });
        MediaClock(Arc::new(ClockShared {
            beats,
            origin,
            state: Mutex::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }))
    }

    /// Queues `leg` to start at the next beat, starting the clock's task when it is not
    /// running. Must be called within the runtime.
    fn start(&self, leg: Box<Leg>, commands: mpsc::UnboundedReceiver<Command>) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.starting.push((leg, commands));
        if !state.running {
            state.running = true;
            spawn_on(&self.0.runtime, Self::run(self.0.clone()));
        }
    }

    async fn run(shared: Arc<ClockShared>) {
        let period = |n: u64| Duration::from_millis(n.saturating_mul(TICK.as_millis() as u64));
        let since = |t: tokio::time::Instant| {
            (t.saturating_duration_since(shared.origin).as_nanos() / TICK.as_nanos()) as u64
        };
        let first = since(tokio::time::Instant::now()) + 1;
        let mut interval = tokio::time::interval_at(shared.origin + period(first), TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            let starting = {
                let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                if shared.beats.receiver_count() == 0 && state.starting.is_empty() {
                    state.running = false;
                    return;
                }
                std::mem::take(&mut state.starting)
            };
            // The new legs listen before the beat goes out, so it is their first tick. A leg
            // whose call ended before it started ends here, without a task.
            for (mut leg, mut commands) in starting {
                if leg.take_commands(&mut commands) {
                    tokio::spawn(leg.run(commands, shared.beats.subscribe()));
                } else {
                    leg.end();
                }
            }
            // Counted from the clock's origin, so a beat the task was too late for shows as
            // a jump the legs make up for.
            let n = since(tokio::time::Instant::now());
            let due = shared.origin + period(n);
            shared.beats.send_if_modified(|b| {
                let newer = n > b.n;
                if newer {
                    *b = Beat { n, due };
                }
                newer
            });
        }
    }
}

/// What the legs an app starts share: where their sockets go back, where their events go,
/// the figures they keep and the clock they tick on.
#[derive(Clone)]
pub(crate) struct Legs {
    returns: Returns,
    events: mpsc::UnboundedSender<LegEvent>,
    stats: SharedLegStats,
    clock: MediaClock,
}

impl Legs {
    pub(crate) fn new(
        returns: Returns,
        events: mpsc::UnboundedSender<LegEvent>,
        stats: SharedLegStats,
    ) -> Legs {
        Legs {
            returns,
            events,
            stats,
            clock: MediaClock::new(),
        }
    }

    /// Starts a leg on the bound socket pair, which goes back to the pool when the leg
    /// ends. The leg starts, and has its first tick, at the clock's next beat.
    pub(crate) fn spawn(
        &self,
        call: CallHandle,
        mode: LegMode,
        pair: PortPair,
        audio: PhoneAudio,
    ) -> MediaLeg {
        let (tx, rx) = mpsc::unbounded_channel();
        let inbox = SessionInbox::default();
        let leg = Box::new(Leg {
            call,
            mode,
            pair,
            returns: self.returns.clone(),
            audio,
            events: self.events.clone(),
            stats: self.stats.clone(),
            prompt: None,
            bridge: None,
            inbox: inbox.clone(),
            ticks_late: 0,
            published: None,
        });
        self.clock.start(leg, rx);
        MediaLeg { tx, inbox }
    }
}

/// A running leg; [`MediaLeg::stop`] (or dropping it) ends it at its next tick.
#[derive(Debug)]
pub(crate) struct MediaLeg {
    tx: mpsc::UnboundedSender<Command>,
    inbox: SessionInbox,
}

impl MediaLeg {
    pub(crate) fn update(&self, negotiated: AudioSession) {
        let _ = self.tx.send(Command::Update(Box::new(negotiated)));
    }

    pub(crate) fn info_digit(&self, digit: char) {
        let _ = self.tx.send(Command::InfoDigit(digit));
    }

    pub(crate) fn send_digits(&self, digits: &str) {
        let _ = self.tx.send(Command::SendDigits(digits.to_owned()));
    }

    pub(crate) fn command(&self, c: Command) {
        let _ = self.tx.send(c);
    }

    /// A sender for the gateway's messages to the leg.
    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<Command> {
        self.tx.clone()
    }

    /// Where the hub leaves the session's audio for the leg.
    pub(crate) fn inbox(&self) -> SessionInbox {
        self.inbox.clone()
    }

    /// Ends the leg at its next tick; its sockets go back to the pool once it has sent its
    /// RTCP BYE.
    pub(crate) fn stop(self) {
        let _ = self.tx.send(Command::Stop);
    }
}

/// A leg's working buffers, kept across ticks.
struct Buffers {
    rtp: Vec<u8>,
    rtcp: Vec<u8>,
    /// The phone's frame, what goes up to the session and what the phone hears.
    frame: Vec<i16>,
    up: Vec<u8>,
    down: Vec<i16>,
    session: Vec<SessionInput>,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            rtp: vec![0; 2048],
            rtcp: vec![0; 2048],
            frame: Vec::with_capacity(960),
            up: Vec::with_capacity(400),
            down: Vec::with_capacity(960),
            session: Vec::new(),
        }
    }
}

struct Leg {
    call: CallHandle,
    mode: LegMode,
    pair: PortPair,
    returns: Returns,
    audio: PhoneAudio,
    events: mpsc::UnboundedSender<LegEvent>,
    stats: SharedLegStats,
    /// The prompt playing (at the phone's rate) and how far it got.
    prompt: Option<(Vec<i16>, usize)>,
    bridge: Option<(Bridge, SessionAudio)>,
    inbox: SessionInbox,
    ticks_late: u64,
    /// When the leg last refreshed its figures.
    published: Option<tokio::time::Instant>,
}

impl Leg {
    async fn run(
        mut self: Box<Self>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut beats: watch::Receiver<Beat>,
    ) {
        let span = tracing::debug_span!("leg", call = ?self.call);
        let _enter = span.enter();
        let mut bufs = Buffers::default();
        // The period of the last beat ticked; none before the first, which is one tick
        // however long the clock sat idle before this leg.
        let mut seen: Option<u64> = None;
        beats.borrow_and_update();
        loop {
            tokio::select! {
                r = self.pair.rtp.recv_from(&mut bufs.rtp) => match r {
                    Ok((n, from)) => self.audio.handle_rtp(now(), ntp_now(), from, bufs.rtp[..n].to_vec()),
                    Err(e) => tracing::trace!(error = %e, "rtp recv"),
                },
                r = self.pair.rtcp.recv_from(&mut bufs.rtcp) => match r {
                    Ok((n, from)) => self.audio.handle_rtcp(now(), ntp_now(), from, bufs.rtcp[..n].to_vec()),
                    Err(e) => tracing::trace!(error = %e, "rtcp recv"),
                },
                r = beats.changed() => {
                    // The clock ends only with the runtime: the leg ends with it.
                    let Some(beat) = r.ok().map(|()| *beats.borrow_and_update()) else { break };
                    if !self.take_commands(&mut commands) {
                        break;
                    }
                    self.on_beat(beat, &mut seen, &mut bufs);
                }
            }
            self.flush();
        }
        self.end();
    }

    /// Ends the leg: RTCP BYE when it sent media, its figures to the totals, its sockets
    /// back to the pool.
    fn end(mut self: Box<Self>) {
        self.audio.close(now(), ntp_now());
        self.flush();
        let final_stats = self.audio.stats();
        let mixing = self.mixing();
        if let Ok(mut s) = self.stats.lock() {
            s.live.remove(&self.call);
            add_into(&mut s.ended, &final_stats);
            s.ended_legs += 1;
            s.mixing.remove(&self.call);
            s.ended_mixing.add(&mixing);
        }
        tracing::debug!(call = ?self.call, stats = ?final_stats, "leg ended");
        let Leg { returns, pair, .. } = *self;
        returns.give(now(), pair);
    }

    /// Carries out what the SIP side asked since the last tick; false when the leg is to end.
    fn take_commands(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> bool {
        loop {
            let cmd = match commands.try_recv() {
                Ok(c) => c,
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            };
            match cmd {
                Command::Update(n) => self.audio.update(now(), &n),
                Command::InfoDigit(d) => self.audio.info_digit(now(), d),
                Command::SendDigits(d) => {
                    if let Err(c) = self.audio.send_digits(&d) {
                        tracing::warn!(character = ?c, "digits not sent: not a key, or no telephone-event agreed");
                    }
                }
                Command::Bridge(b) => {
                    let rate = self.audio.sample_rate();
                    let first_ts = b.first_ts;
                    self.bridge = Some((*b, SessionAudio::new(rate, first_ts)));
                }
                Command::Play(p) => self.play(&p),
                Command::StopPrompt => self.prompt = None,
                Command::Subscriptions(subs) => {
                    if let Some((_, sa)) = &mut self.bridge {
                        sa.set_subscriptions(subs);
                    }
                }
                Command::Mute(m) => {
                    if let Some((_, sa)) = &mut self.bridge {
                        sa.set_muted(m);
                    }
                }
                Command::Stop => return false,
            }
        }
    }

    /// A beat of the clock: one tick for each 20 ms period since the last beat (a leg that
    /// fell behind catches up at once), then the RTP session's timers and the figures.
    fn on_beat(&mut self, beat: Beat, seen: &mut Option<u64>, bufs: &mut Buffers) {
        let periods = seen.map_or(1, |s| beat.n.saturating_sub(s).max(1));
        *seen = Some(beat.n);
        let at = tokio::time::Instant::now();
        for k in (0..periods).rev() {
            // Period `k` before this beat was due that much earlier.
            let due = beat.due.checked_sub(TICK * k as u32).unwrap_or(beat.due);
            if at.saturating_duration_since(due) > TICK {
                self.ticks_late += 1;
            }
            self.tick(bufs);
        }
        let now = now();
        if now >= self.audio.poll_timeout() {
            self.audio.handle_timeout(now, ntp_now());
        }
        if self
            .published
            .is_none_or(|p| at.duration_since(p) >= PUBLISH_EVERY)
        {
            self.published = Some(at);
            self.publish();
        }
    }

    /// One 20 ms tick: the phone's frame in, what it hears out.
    fn tick(&mut self, bufs: &mut Buffers) {
        let Buffers {
            frame,
            up,
            down,
            session,
            ..
        } = bufs;
        let now = now();
        frame.clear();
        self.audio.pull(now, frame);
        down.clear();
        match (&mut self.bridge, self.mode) {
            (Some((b, sa)), _) => {
                sa.set_phone_rate(self.audio.sample_rate());
                let up_to_session = |ts: u32, payload: Vec<u8>| {
                    let conn = b.connection.clone();
                    b.hub
                        .post(move |hub, _| hub.phone_audio(&conn, ts, &payload));
                };
                if self.audio.set_pass_through(!sa.muted()) {
                    // An Opus phone: its packets go to the session as they came.
                    while let Some(p) = self.audio.poll_passed() {
                        up_to_session(sa.passed_from_phone(p.gap, p.duration), p.payload);
                    }
                } else {
                    up.clear();
                    let ts = sa.from_phone(frame, up);
                    up_to_session(ts, up.clone());
                }
                self.inbox.take(session);
                for input in session.drain(..) {
                    match input {
                        SessionInput::Audio {
                            stream,
                            seq,
                            payload,
                        } => sa.from_session(&stream, seq, &payload),
                        SessionInput::Gone(stream) => sa.remove_source(&stream),
                        SessionInput::Loss(percent) => sa.set_uplink_loss(percent),
                    }
                }
                sa.to_phone(down);
            }
            // The echo user plays back what it heard, and nothing before it heard anything.
            (None, LegMode::Echo) if !self.audio.heard() => return,
            (None, LegMode::Echo | LegMode::Caller) => down.extend_from_slice(frame),
            (None, LegMode::Menu) => {}
        }
        let n = frame.len().max(self.audio.sample_rate() as usize / 50);
        if let Some((p, at)) = &mut self.prompt {
            // The prompt replaces what the phone would hear.
            down.clear();
            let end = (*at + n).min(p.len());
            down.extend_from_slice(&p[*at..end]);
            *at = end;
            if end == p.len() {
                self.prompt = None;
                let _ = self.events.send(LegEvent {
                    call: self.call,
                    event: LegEventKind::PromptDone,
                });
            }
        }
        down.resize(n, 0);
        self.audio.push(down);
    }

    /// Starts a prompt (16 kHz audio) at the phone's rate.
    fn play(&mut self, p: &PromptAudio) {
        let rate = self.audio.sample_rate();
        let mut out = Vec::with_capacity(p.len() * rate as usize / 16_000 + 1);
        match phonebridge_media::Resampler::new(16_000, rate) {
            Some(mut r) => r.process(p, &mut out),
            None => out.extend_from_slice(p),
        }
        self.prompt = Some((out, 0));
    }

    fn flush(&mut self) {
        while let Some(t) = self.audio.poll_transmit() {
            let socket = if t.rtcp_socket {
                &self.pair.rtcp
            } else {
                &self.pair.rtp
            };
            send(socket, t.to, &t.bytes);
        }
        while let Some(event) = self.audio.poll_event() {
            let _ = self.events.send(LegEvent {
                call: self.call,
                event: LegEventKind::Phone(event),
            });
        }
    }

    fn mixing(&self) -> MixingStats {
        MixingStats {
            session: self
                .bridge
                .as_ref()
                .map(|(_, sa)| sa.stats())
                .unwrap_or_default(),
            ticks_late: self.ticks_late,
        }
    }

    fn publish(&self) {
        let mixing = self.mixing();
        if let Ok(mut s) = self.stats.lock() {
            s.live.insert(self.call, self.audio.stats());
            s.mixing.insert(self.call, mixing);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortPool;
    use phonebridge_sdp::{Capabilities, Direction, Local, SessionDescription};
    use std::net::{IpAddr, Ipv4Addr};

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const IDS: StreamIds = StreamIds {
        ssrc: 9,
        seq: 1,
        ts: 1,
    };

    /// What a leg negotiated with a PCMU phone at `phone`.
    fn pcmu_session(phone: SocketAddr, our_port: u16) -> AudioSession {
        let offer = SessionDescription::parse(&format!(
            "v=0\r\no=phone 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            phone.port()
        ))
        .unwrap();
        let local = Local {
            ip: LOOPBACK,
            rtp_port: our_port,
            session_id: 1,
            version: 1,
            direction: Direction::SendRecv,
        };
        phonebridge_sdp::answer(&offer, &Capabilities::default(), &local, [7; 30])
            .unwrap()
            .1
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("timed out waiting for {what}");
    }

    fn ended_legs(stats: &SharedLegStats) -> u64 {
        stats.lock().unwrap().ended_legs
    }

    /// Legs handing their pairs back to `pool`, their figures, and where their events go.
    fn legs_of(pool: &PortPool) -> (Legs, SharedLegStats, mpsc::UnboundedReceiver<LegEvent>) {
        let (events, events_rx) = mpsc::unbounded_channel();
        let stats = SharedLegStats::default();
        (
            Legs::new(pool.returns(), events, stats.clone()),
            stats,
            events_rx,
        )
    }

    fn clock_running(legs: &Legs) -> bool {
        legs.clock.0.state.lock().unwrap().running
    }

    #[tokio::test]
    async fn a_leg_ended_before_its_first_beat_hands_its_pair_back_and_the_clock_stops() {
        let mut pool = PortPool::new((41301, 41399));
        let (legs, stats, _events) = legs_of(&pool);
        let pair = pool.allocate(now(), LOOPBACK).unwrap();
        let session = pcmu_session("127.0.0.1:41500".parse().unwrap(), pair.port);
        let audio = PhoneAudio::new(now(), &session, IDS, "pb", None);
        let leg = legs.spawn(CallHandle(1), LegMode::Echo, pair, audio);
        assert!(clock_running(&legs), "the first leg starts the clock");
        leg.stop();
        wait_for("the leg to end", || ended_legs(&stats) == 1).await;
        let resting = pool.resting_gauge();
        assert_eq!(
            resting.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "its pair rests"
        );
        wait_for("the clock to stop", || !clock_running(&legs)).await;
    }

    #[tokio::test]
    async fn a_leg_started_after_the_clock_sat_idle_ticks_once_per_period() {
        let mut pool = PortPool::new((40901, 40999));
        let (legs, stats, _events) = legs_of(&pool);
        // The clock was made a while before its first leg (as at start-up, or after a quiet
        // spell): that time is not the leg's to make up.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let phone = tokio::net::UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
        let pair = pool.allocate(now(), LOOPBACK).unwrap();
        let session = pcmu_session(phone.local_addr().unwrap(), pair.port);
        let audio = PhoneAudio::new(now(), &session, IDS, "pb", None);
        // A caller leg sends a frame (silence here) every tick from its first.
        let leg = legs.spawn(CallHandle(1), LegMode::Caller, pair, audio);
        let mut buf = [0u8; 1500];
        let first = tokio::time::timeout(Duration::from_secs(1), phone.recv_from(&mut buf))
            .await
            .expect("a first frame")
            .unwrap();
        assert_eq!(first.0, 12 + 160);
        // Whatever else arrives in the next 30 ms: a frame or two, never a catch-up burst.
        let mut more = 0;
        let until = tokio::time::Instant::now() + Duration::from_millis(30);
        while let Ok(Ok(_)) = tokio::time::timeout_at(until, phone.recv_from(&mut buf)).await {
            more += 1;
        }
        assert!(more <= 2, "{more} frames within 30 ms of the first");
        leg.stop();
        wait_for("the leg to end", || ended_legs(&stats) == 1).await;
    }

    #[tokio::test]
    async fn legs_tick_on_the_clock_echo_what_they_hear_and_restart_it() {
        let mut pool = PortPool::new((41401, 41499));
        let (legs, stats, _events) = legs_of(&pool);
        for round in 0..2u64 {
            let phone = tokio::net::UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
            let pair = pool.allocate(now(), LOOPBACK).unwrap();
            let ours = SocketAddr::new(LOOPBACK, pair.port);
            let session = pcmu_session(phone.local_addr().unwrap(), pair.port);
            let audio = PhoneAudio::new(now(), &session, IDS, "pb", None);
            let leg = legs.spawn(CallHandle(round), LegMode::Echo, pair, audio);
            // 20 ms PCMU packets until the leg plays something back.
            let mut heard = false;
            let mut buf = [0u8; 1500];
            for seq in 0..100u16 {
                let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
                packet[2..4].copy_from_slice(&seq.to_be_bytes());
                packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                packet.extend(std::iter::repeat_n(0x7f, 160));
                phone.send_to(&packet, ours).await.unwrap();
                let wait =
                    tokio::time::timeout(Duration::from_millis(20), phone.recv_from(&mut buf));
                if let Ok(Ok((n, from))) = wait.await {
                    assert_eq!(from, ours);
                    assert_eq!(n, 12 + 160, "one 20 ms PCMU frame");
                    heard = true;
                    break;
                }
            }
            assert!(
                heard,
                "round {round}: the echo leg played back what it heard"
            );
            leg.stop();
            wait_for("the leg to end", || ended_legs(&stats) == round + 1).await;
            assert!(stats.lock().unwrap().live.is_empty());
            // The clock stops with the last leg; the next leg starts it again.
            wait_for("the clock to stop", || !clock_running(&legs)).await;
        }
    }
}
