//! RFC 4733 digits as phones and PBXs send them: with and without the marker bit, end
//! packets repeated with the same or with new sequence numbers, long presses split into
//! segments, and several routes for one press.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use phonebridge_rtp::*;

fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
    EventPayload {
        event,
        end,
        volume: 10,
        duration,
    }
    .to_bytes()
}

/// A press as SIPp's captures send it: updates, then the end three times.
fn press(rx: &mut EventReceiver, ssrc: u32, ts: u32, event: u8) -> String {
    let mut out = String::new();
    for d in [400u16, 800, 1200] {
        out.extend(rx.push(ssrc, ts, &payload(event, false, d)));
    }
    for _ in 0..3 {
        out.extend(rx.push(ssrc, ts, &payload(event, true, 1600)));
    }
    out
}

#[test]
fn each_press_is_one_digit_whatever_the_repeats() {
    let mut rx = EventReceiver::default();
    let mut got = String::new();
    for (i, e) in [4u8, 8, 2, 9, 1, 3, 11].into_iter().enumerate() {
        got += &press(&mut rx, 7, 1000 + i as u32 * 4000, e);
    }
    assert_eq!(got, "482913#");
    assert_eq!(rx.duplicates, 7 * 5);
}

#[test]
fn same_key_twice_in_a_row_needs_a_new_timestamp() {
    let mut rx = EventReceiver::default();
    let got = press(&mut rx, 7, 1000, 5) + &press(&mut rx, 7, 5000, 5);
    assert_eq!(got, "55");
    // A late copy of the first press's end is not a third digit.
    assert_eq!(rx.push(7, 1000, &payload(5, true, 1600)), None);
}

#[test]
fn first_packet_lost_still_reports_the_digit() {
    let mut rx = EventReceiver::default();
    // No marker, no start: the first packet seen is an update.
    assert_eq!(rx.push(9, 320, &payload(0, false, 800)), Some('0'));
    assert_eq!(rx.push(9, 320, &payload(0, true, 1600)), None);
}

#[test]
fn long_press_segments_are_one_digit() {
    let mut rx = EventReceiver::default();
    assert_eq!(rx.push(1, 0, &payload(7, false, 65535)), Some('7'));
    // The next segment starts where the first one's duration ended.
    assert_eq!(rx.push(1, 65535, &payload(7, false, 8000)), None);
    assert_eq!(rx.push(1, 65535, &payload(7, true, 9000)), None);
    assert_eq!(rx.push(1, 90_000, &payload(7, false, 160)), Some('7'));
}

#[test]
fn sender_sends_marker_updates_and_three_ends() {
    let mut tx = EventSender::new(
        8000,
        Duration::from_millis(20),
        Duration::from_millis(100),
        Duration::from_millis(60),
    );
    tx.queue("1#").unwrap();
    assert_eq!(tx.queue("1x"), Err('x'));
    let mut ticks = Vec::new();
    for _ in 0..40 {
        ticks.push(tx.tick());
    }
    let first: Vec<EventTick> = ticks
        .iter()
        .take_while(|t| t.is_some())
        .flatten()
        .copied()
        .collect();
    assert!(first[0].start);
    assert!(first[1..].iter().all(|t| !t.start));
    let durations: Vec<u16> = first.iter().map(|t| t.payload.duration).collect();
    assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
    let ends = first.iter().filter(|t| t.payload.end).count();
    assert_eq!(ends, 3);
    // Then a gap of audio, then the second digit.
    let gap = ticks[first.len()..]
        .iter()
        .take_while(|t| t.is_none())
        .count();
    assert_eq!(gap, 3);
    let second = ticks[first.len() + gap].unwrap();
    assert!(second.start && second.payload.event == 11);
    assert!(!tx.busy() || ticks.last().unwrap().is_none());
    // What the sender sends, the receiver reads as the same digits.
    let mut tx = EventSender::new(
        8000,
        Duration::from_millis(20),
        Duration::from_millis(100),
        Duration::from_millis(60),
    );
    tx.queue("2580").unwrap();
    let mut rx = EventReceiver::default();
    let (mut ts, mut event_ts, mut got) = (0u32, 0u32, String::new());
    while tx.busy() {
        if let Some(t) = tx.tick() {
            if t.start {
                event_ts = ts;
            }
            got.extend(rx.push(42, event_ts, &t.payload.to_bytes()));
        }
        ts += 160;
    }
    assert_eq!(got, "2580");
}

#[test]
fn one_press_reported_by_two_routes_is_one_digit() {
    let t0 = Instant::now();
    let mut m = DigitMerger::default();
    let ms = |n| t0 + Duration::from_millis(n);
    assert_eq!(m.push(ms(0), '4', DigitSource::Rfc4733), Some('4'));
    assert_eq!(m.push(ms(30), '4', DigitSource::InBand), None);
    assert_eq!(m.push(ms(50), '4', DigitSource::SipInfo), None);
    // The same key pressed again is a new digit, even by the same route.
    assert_eq!(m.push(ms(300), '4', DigitSource::Rfc4733), Some('4'));
    assert_eq!(m.push(ms(900), '4', DigitSource::InBand), Some('4'));
    assert_eq!(m.push(ms(950), '5', DigitSource::Rfc4733), Some('5'));
}
