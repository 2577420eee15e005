//! RFC 4733 telephone events (DTMF digits as RTP), and the merge of digits arriving by
//! several routes into one stream without duplicates.
//!
//! Receiving: a digit is reported on the first packet of an event, identified by
//! (SSRC, timestamp, event): updates and the repeated end packets (whatever their sequence
//! numbers) add nothing, and no marker bit is needed. Long events split into segments with
//! a later timestamp (RFC 4733 §2.5.1.3) continue the same press.
//!
//! Sending: a marker packet, updates at every packet interval with a growing duration, then
//! the end packet three times (RFC 4733 §2.5.1.4).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The digit for an event code (0–15); `None` for flash and other events.
pub fn digit_of(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => (b'0' + event) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + event - 12) as char,
        _ => return None,
    })
}

/// The event code of a digit.
pub fn event_of(digit: char) -> Option<u8> {
    Some(match digit.to_ascii_uppercase() {
        d @ '0'..='9' => d as u8 - b'0',
        '*' => 10,
        '#' => 11,
        d @ 'A'..='D' => d as u8 - b'A' + 12,
        _ => return None,
    })
}

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl EventPayload {
    pub fn parse(p: &[u8]) -> Option<Self> {
        let p: &[u8; 4] = p.get(..4)?.try_into().ok()?;
        Some(EventPayload {
            event: p[0],
            end: p[1] & 0x80 != 0,
            volume: p[1] & 0x3f,
            duration: u16::from_be_bytes([p[2], p[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            ((self.end as u8) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    ssrc: u32,
    ts: u32,
    event: u8,
}

/// Turns telephone-event packets into digits, once per press.
#[derive(Debug, Clone, Default)]
pub struct EventReceiver {
    recent: VecDeque<Key>,
    /// The press in progress: its key and the end of its latest segment.
    open: Option<(Key, u32, bool)>,
    pub duplicates: u64,
}

impl EventReceiver {
    /// Takes one packet's header fields and payload; returns the digit when a press starts.
    pub fn push(&mut self, ssrc: u32, ts: u32, payload: &[u8]) -> Option<char> {
        let p = EventPayload::parse(payload)?;
        let key = Key {
            ssrc,
            ts,
            event: p.event,
        };
        if self.recent.contains(&key) {
            self.duplicates += 1;
            if let Some((k, end, ended)) = &mut self.open {
                if *k == key {
                    *end = ts.wrapping_add(p.duration as u32);
                    *ended |= p.end;
                } else if k.ssrc == key.ssrc && k.event == key.event {
                    *ended |= p.end;
                }
            }
            return None;
        }
        // A later segment of a long press: same source and event, starting where it ended.
        let continues = self.open.is_some_and(|(k, end, ended)| {
            !ended && k.ssrc == ssrc && k.event == p.event && ts.wrapping_sub(end) < 800
        });
        self.recent.push_back(key);
        if self.recent.len() > 16 {
            self.recent.pop_front();
        }
        self.open = Some((key, ts.wrapping_add(p.duration as u32), p.end));
        if continues {
            return None;
        }
        digit_of(p.event)
    }
}

/// One packet the sender wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTick {
    /// Set on the first packet of a press: the caller fixes the event's timestamp to the
    /// stream's current one and sets the marker bit.
    pub start: bool,
    pub payload: EventPayload,
}

#[derive(Debug, Clone, Copy)]
enum SendState {
    Idle,
    Tone { event: u8, elapsed: u32, ends: u8 },
    Gap { left: u32 },
}

/// Produces the telephone-event packets for queued digits, one call per packet interval.
#[derive(Debug, Clone)]
pub struct EventSender {
    interval: u32,
    duration: u32,
    gap: u32,
    queue: VecDeque<u8>,
    state: SendState,
}

impl EventSender {
    /// Events clocked at `clock`, sent every `interval`, each digit lasting `duration` with
    /// `gap` of audio between digits.
    pub fn new(clock: u32, interval: Duration, duration: Duration, gap: Duration) -> Self {
        let units = |d: Duration| (d.as_micros() as u64 * clock as u64 / 1_000_000) as u32;
        EventSender {
            interval: units(interval).max(1),
            duration: units(duration).clamp(1, u16::MAX as u32),
            gap: units(gap),
            queue: VecDeque::new(),
            state: SendState::Idle,
        }
    }

    /// Queues digits; characters that are not DTMF keys are refused (nothing is queued).
    pub fn queue(&mut self, digits: &str) -> Result<(), char> {
        let events: Vec<u8> = digits
            .chars()
            .map(|c| event_of(c).ok_or(c))
            .collect::<Result<_, _>>()?;
        self.queue.extend(events);
        Ok(())
    }

    /// Whether anything is queued or being sent.
    pub fn busy(&self) -> bool {
        !self.queue.is_empty() || !matches!(self.state, SendState::Idle)
    }

    /// The packet for this interval; `None` means send audio instead.
    pub fn tick(&mut self) -> Option<EventTick> {
        loop {
            match self.state {
                SendState::Idle => {
                    let event = self.queue.pop_front()?;
                    self.state = SendState::Tone {
                        event,
                        elapsed: 0,
                        ends: 0,
                    };
                }
                SendState::Gap { left } => {
                    if left == 0 {
                        self.state = SendState::Idle;
                        if self.queue.is_empty() {
                            return None;
                        }
                        continue;
                    }
                    self.state = SendState::Gap {
                        left: left.saturating_sub(self.interval),
                    };
                    return None;
                }
                SendState::Tone {
                    event,
                    elapsed,
                    ends,
                } => {
                    let start = elapsed == 0;
                    let elapsed = (elapsed + self.interval).min(self.duration);
                    let end = elapsed >= self.duration;
                    let ends = ends + end as u8;
                    self.state = if ends >= 3 {
                        SendState::Gap { left: self.gap }
                    } else {
                        SendState::Tone {
                            event,
                            elapsed,
                            ends,
                        }
                    };
                    return Some(EventTick {
                        start,
                        payload: EventPayload {
                            event,
                            end,
                            volume: 10,
                            duration: elapsed as u16,
                        },
                    });
                }
            }
        }
    }
}

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    Rfc4733,
    SipInfo,
    InBand,
}

/// Merges digits from RFC 4733, SIP INFO and in-band detection: a phone that sends the same
/// press two ways (events and tones still in the audio, or events and INFO) yields one digit.
#[derive(Debug, Clone, Default)]
pub struct DigitMerger {
    last: Option<(char, DigitSource, Instant)>,
}

/// Two reports of one digit by different routes this close together are one press.
const MERGE_WINDOW: Duration = Duration::from_millis(400);

impl DigitMerger {
    /// `Some(digit)` when this report is a new press.
    pub fn push(&mut self, now: Instant, digit: char, source: DigitSource) -> Option<char> {
        if let Some((d, s, at)) = self.last {
            if d == digit && s != source && now.saturating_duration_since(at) < MERGE_WINDOW {
                return None;
            }
        }
        self.last = Some((digit, source, now));
        Some(digit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_digits() {
        let all = "0123456789*#ABCD";
        for (i, d) in all.chars().enumerate() {
            assert_eq!(event_of(d), Some(i as u8));
            assert_eq!(digit_of(i as u8), Some(d));
        }
        assert_eq!(digit_of(16), None);
        assert_eq!(event_of('x'), None);
    }

    #[test]
    fn payload_round_trip() {
        let p = EventPayload {
            event: 11,
            end: true,
            volume: 10,
            duration: 1600,
        };
        assert_eq!(EventPayload::parse(&p.to_bytes()), Some(p));
        assert_eq!(EventPayload::parse(&[1, 2, 3]), None);
    }
}
