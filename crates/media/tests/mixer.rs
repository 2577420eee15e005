//! The N-1 mixer: who hears whom, the limiter, and input buffers under clean, bursty and
//! stalled sources. Audio is checked by content (a tone per source).

use std::collections::HashSet;

use phonebridge_media::goertzel::power;
use phonebridge_media::mixer::MAX_BACKLOG;
use phonebridge_media::{Listener, Mixer, Tone};

const RATE: u32 = 48_000;
const FRAME: usize = 960;

struct Src {
    id: &'static str,
    tone: Tone,
}

impl Src {
    fn new(id: &'static str, freq: f64, amp: f64) -> Self {
        Src {
            id,
            tone: Tone::sine(RATE, freq, amp),
        }
    }

    fn frame(&mut self) -> Vec<i16> {
        let mut v = Vec::new();
        self.tone.fill(FRAME, &mut v);
        v
    }
}

fn level(frame: &[i16], freq: f64) -> f64 {
    let f: Vec<f32> = frame.iter().map(|&x| x as f32).collect();
    power(&f, RATE as f64, freq)
}

fn hears(frame: &[i16], freq: f64) -> bool {
    level(frame, freq) > 1e6
}

fn everyone(own: &str) -> Listener {
    Listener {
        own: Some(own.to_owned()),
        subscriptions: None,
    }
}

#[test]
fn every_listener_hears_the_others_and_never_itself() {
    let mut m = Mixer::new(FRAME);
    let mut srcs = [
        Src::new("a", 500.0, 4000.0),
        Src::new("b", 700.0, 4000.0),
        Src::new("c", 900.0, 4000.0),
    ];
    for s in &srcs {
        m.set_listener(s.id, everyone(s.id));
    }
    for _ in 0..10 {
        for s in &mut srcs {
            let f = s.frame();
            m.push(s.id, &f);
        }
        m.tick();
    }
    let a = m.frame_for("a").unwrap();
    assert!(!hears(a, 500.0) && hears(a, 700.0) && hears(a, 900.0));
    let b = m.frame_for("b").unwrap();
    assert!(hears(b, 500.0) && !hears(b, 700.0) && hears(b, 900.0));
}

#[test]
fn a_listener_can_hear_a_chosen_subset() {
    let mut m = Mixer::new(FRAME);
    let mut srcs = [
        Src::new("a", 500.0, 4000.0),
        Src::new("b", 700.0, 4000.0),
        Src::new("c", 900.0, 4000.0),
    ];
    m.set_listener(
        "phone",
        Listener {
            own: None,
            subscriptions: Some(HashSet::from(["b".to_owned()])),
        },
    );
    for _ in 0..5 {
        for s in &mut srcs {
            let f = s.frame();
            m.push(s.id, &f);
        }
        m.tick();
    }
    let f = m.frame_for("phone").unwrap();
    assert!(!hears(f, 500.0) && hears(f, 700.0) && !hears(f, 900.0));
}

#[test]
fn no_volume_drop_when_someone_joins_and_no_clipping_when_loud() {
    let mut m = Mixer::new(FRAME);
    m.set_listener("phone", everyone("phone"));
    let mut a = Src::new("a", 500.0, 3000.0);
    for _ in 0..5 {
        let f = a.frame();
        m.push("a", &f);
        m.tick();
    }
    let alone = level(m.frame_for("phone").unwrap(), 500.0);
    let mut b = Src::new("b", 700.0, 3000.0);
    for _ in 0..5 {
        let (fa, fb) = (a.frame(), b.frame());
        m.push("a", &fa);
        m.push("b", &fb);
        m.tick();
    }
    let together = level(m.frame_for("phone").unwrap(), 500.0);
    assert!(
        (together / alone - 1.0).abs() < 0.01,
        "a's level changed: {alone} -> {together}"
    );
    // Three loud sources: the sum is limited, not wrapped or hard-clipped.
    let mut m = Mixer::new(FRAME);
    m.set_listener("phone", everyone("phone"));
    let mut loud = [
        Src::new("x", 300.0, 20000.0),
        Src::new("y", 450.0, 20000.0),
        Src::new("z", 650.0, 20000.0),
    ];
    for _ in 0..5 {
        for s in &mut loud {
            let f = s.frame();
            m.push(s.id, &f);
        }
        m.tick();
    }
    let f = m.frame_for("phone").unwrap();
    let peak = f.iter().map(|x| x.unsigned_abs()).max().unwrap();
    assert!(peak <= 32767 && peak > 25000, "peak {peak}");
    let pinned = f.iter().filter(|x| x.unsigned_abs() >= 32767).count();
    assert_eq!(pinned, 0, "no sample sits at full scale (soft limiting)");
    assert!(hears(f, 300.0) && hears(f, 450.0) && hears(f, 650.0));
}

/// Runs a source through the mixer with frames arriving per `arrivals(tick)` (frames pushed
/// just before that tick); returns per tick whether the listener heard it.
fn run(ticks: usize, mut arrivals: impl FnMut(usize) -> usize) -> (Vec<bool>, Mixer) {
    let mut m = Mixer::new(FRAME);
    m.set_listener("phone", everyone("phone"));
    let mut s = Src::new("a", 500.0, 4000.0);
    let mut heard = Vec::new();
    for t in 0..ticks {
        for _ in 0..arrivals(t) {
            let f = s.frame();
            m.push("a", &f);
        }
        m.tick();
        heard.push(hears(m.frame_for("phone").unwrap(), 500.0));
    }
    (heard, m)
}

#[test]
fn a_clean_source_plays_with_one_frame_of_buffer() {
    let (heard, m) = run(500, |_| 1);
    assert!(heard.iter().all(|h| *h));
    let st = m.source_stats("a").unwrap();
    assert_eq!((st.target, st.starvations, st.dropped_backlog), (1, 0, 0));
}

#[test]
fn a_bursty_source_gets_a_deeper_buffer_and_then_no_gaps() {
    // One, none, two, one, none, two…: the average rate is right, the timing is not.
    let (heard, m) = run(1000, |t| [1, 0, 2][t % 3]);
    let st = m.source_stats("a").unwrap();
    assert!(st.starvations <= 3, "adapts quickly: {st:?}");
    assert!((2..=3).contains(&st.target), "{st:?}");
    assert!(heard[100..].iter().all(|h| *h), "no gap once adapted");
}

#[test]
fn after_a_stall_the_backlog_is_bounded_and_shrinks_back() {
    // Clean, then nothing for 40 ticks, then the 40 frames at once, then clean again.
    let (heard, m) = run(600, |t| match t {
        100..=139 => 0,
        140 => 41,
        _ => 1,
    });
    let st = m.source_stats("a").unwrap();
    assert!(st.dropped_backlog >= 40 - MAX_BACKLOG as u64 - 2, "{st:?}");
    assert!(heard[141..].iter().all(|h| *h), "audio resumes at once");
    // The extra delay the burst left is given back within the run.
    assert!(st.queued <= st.target + 1, "{st:?}");
}

#[test]
fn the_backlog_of_a_short_stall_is_gone_within_a_second() {
    // Clean, then nothing for 8 ticks, then the 8 frames at once, then clean again: the
    // source ends several frames over its target; that excess goes in a few hundred ms.
    let mut m = Mixer::new(FRAME);
    m.set_listener("phone", everyone("phone"));
    let mut s = Src::new("a", 500.0, 4000.0);
    let mut over = Vec::new();
    for t in 0..300 {
        let n = match t {
            100..=107 => 0,
            108 => 9,
            _ => 1,
        };
        for _ in 0..n {
            let f = s.frame();
            m.push("a", &f);
        }
        m.tick();
        let st = m.source_stats("a").unwrap();
        over.push(st.queued.saturating_sub(st.target));
    }
    assert!(
        over[110] >= 3,
        "the burst left a backlog: {:?}",
        &over[105..115]
    );
    let back = over[108..].iter().position(|o| *o <= 1).unwrap() + 108;
    assert!(
        back <= 108 + 40,
        "back within one frame of the target {} ticks after the burst: {:?}",
        back - 108,
        &over[105..160]
    );
    assert!(over[back..].iter().all(|o| *o <= 1), "and stays there");
}

#[test]
fn a_source_that_went_quiet_starts_again_with_a_small_buffer() {
    let (heard, m) = run(300, |t| if (100..200).contains(&t) { 0 } else { 1 });
    assert!(heard[205..].iter().all(|h| *h));
    assert!(m.source_stats("a").unwrap().target <= 2);
}
