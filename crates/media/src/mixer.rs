//! The audio mixer for phones in a session: every 20 ms tick it gives each listener the sum of
//! the sources it hears — every other participant by default (N-1, never its own voice), or a
//! chosen subset — through a soft limiter.
//!
//! - **Input buffers adapt per source.** Each source has a queue of 20 ms frames and a target
//!   depth. A tick that finds an active source's queue empty (starvation) raises its target by
//!   a frame; a queue that stayed above target for two seconds gives one frame back, one that
//!   stays two frames or more above it gives one back every 100 ms. A clean source
//!   plays with one frame of buffer, a bursty one with what its bursts need.
//! - **Catch-up is bounded.** After a stall, a burst can never make a source more than
//!   [`MAX_BACKLOG`] frames late: the oldest frames beyond that are dropped at once.
//! - **No volume drop when someone joins.** Sources are summed, not averaged; a soft limiter
//!   (linear up to [`LIMIT_KNEE`] of full scale, smoothly compressed above, never past full
//!   scale) keeps loud moments from clipping.
//!
//! Drain rule: [`Mixer::push`] frames as sources deliver them; call [`Mixer::tick`] every 20 ms
//! and read each listener's frame with [`Mixer::frame_for`].

use std::collections::{HashMap, HashSet, VecDeque};

/// Frames beyond the target a source may lag before its oldest frames are dropped.
pub const MAX_BACKLOG: usize = 5;
/// Largest target depth, in frames (200 ms).
pub const MAX_TARGET: usize = 10;
/// Ticks a queue must stay above target before it gives a frame back (2 s).
const SHRINK_AFTER: u32 = 100;
/// Ticks a queue must stay [`FAR_OVER`] frames or more above target before it gives a frame
/// back (100 ms): the backlog a stall leaves goes within a few hundred ms.
const FAST_SHRINK_AFTER: u32 = 5;
const FAR_OVER: usize = 2;
/// Ticks without a frame after which a source counts as silent rather than starving.
const SILENT_AFTER: u32 = 25;
/// Fraction of full scale up to which the limiter is linear.
pub const LIMIT_KNEE: f32 = 0.6;

/// A source's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub frames_in: u64,
    pub frames_played: u64,
    pub starvations: u64,
    pub dropped_backlog: u64,
    pub shrinks: u64,
    /// Target depth now, in frames.
    pub target: usize,
    /// Frames queued now.
    pub queued: usize,
}

#[derive(Debug, Clone)]
struct Source {
    queue: VecDeque<Vec<f32>>,
    target: usize,
    /// Playing (has reached its target once since it last went silent).
    playing: bool,
    ticks_above: u32,
    ticks_empty: u32,
    stats: SourceStats,
}

/// What a listener hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its own source, never mixed back to it.
    pub own: Option<String>,
    /// `None`: every source; `Some(set)`: only these.
    pub subscriptions: Option<HashSet<String>>,
}

/// The mixer of one session (48 kHz mono frames of 960 samples, or any fixed frame size).
#[derive(Debug, Clone)]
pub struct Mixer {
    frame: usize,
    sources: HashMap<String, Source>,
    listeners: HashMap<String, Listener>,
    /// This tick's frame of each source that played (consumed at the tick).
    current: HashMap<String, Vec<f32>>,
    outputs: HashMap<String, Vec<i16>>,
}

impl Mixer {
    /// A mixer of frames of `frame` samples.
    pub fn new(frame: usize) -> Self {
        Mixer {
            frame,
            sources: HashMap::new(),
            listeners: HashMap::new(),
            current: HashMap::new(),
            outputs: HashMap::new(),
        }
    }

    pub fn frame_len(&self) -> usize {
        self.frame
    }

    /// Adds (or replaces) a listener.
    pub fn set_listener(&mut self, id: &str, listener: Listener) {
        self.listeners.insert(id.to_owned(), listener);
    }

    pub fn remove_listener(&mut self, id: &str) {
        self.listeners.remove(id);
        self.outputs.remove(id);
    }

    pub fn remove_source(&mut self, id: &str) {
        self.sources.remove(id);
        self.current.remove(id);
    }

    pub fn source_stats(&self, id: &str) -> Option<SourceStats> {
        self.sources.get(id).map(|s| SourceStats {
            target: s.target,
            queued: s.queue.len(),
            ..s.stats
        })
    }

    /// A 20 ms frame from a source (shorter frames are padded with silence, longer cut).
    pub fn push(&mut self, source: &str, pcm: &[i16]) {
        let frame = self.frame;
        let s = self
            .sources
            .entry(source.to_owned())
            .or_insert_with(|| Source {
                queue: VecDeque::new(),
                target: 1,
                playing: false,
                ticks_above: 0,
                ticks_empty: 0,
                stats: SourceStats::default(),
            });
        let mut f: Vec<f32> = pcm.iter().take(frame).map(|&x| x as f32).collect();
        f.resize(frame, 0.0);
        s.queue.push_back(f);
        s.stats.frames_in += 1;
        // Bounded catch-up: never more than MAX_BACKLOG frames behind the target.
        while s.queue.len() > s.target + MAX_BACKLOG {
            s.queue.pop_front();
            s.stats.dropped_backlog += 1;
        }
    }

    /// One 20 ms tick: takes each source's frame and mixes every listener's.
    pub fn tick(&mut self) {
        self.current.clear();
        for (id, s) in &mut self.sources {
            if !s.playing {
                if s.queue.len() >= s.target {
                    s.playing = true;
                } else {
                    continue;
                }
            }
            match s.queue.pop_front() {
                Some(f) => {
                    s.ticks_empty = 0;
                    s.stats.frames_played += 1;
                    self.current.insert(id.clone(), f);
                    // Give a frame back once the queue stayed above target for a while (a
                    // short while when far above).
                    if s.queue.len() > s.target {
                        s.ticks_above += 1;
                        let after = if s.queue.len() >= s.target + FAR_OVER {
                            FAST_SHRINK_AFTER
                        } else {
                            SHRINK_AFTER
                        };
                        if s.ticks_above >= after {
                            s.queue.pop_front();
                            s.stats.shrinks += 1;
                            if s.target > 1 {
                                s.target -= 1;
                            }
                            s.ticks_above = 0;
                        }
                    } else {
                        s.ticks_above = 0;
                    }
                }
                None => {
                    s.ticks_empty += 1;
                    s.ticks_above = 0;
                    if s.ticks_empty == 1 {
                        // Starved: wait for a deeper buffer before playing again.
                        s.stats.starvations += 1;
                        s.target = (s.target + 1).min(MAX_TARGET);
                    }
                    if s.ticks_empty >= SILENT_AFTER {
                        // Gone quiet (muted, hold, left): start afresh when it returns.
                        s.target = s.target.min(2);
                    }
                    s.playing = false;
                }
            }
        }
        let frame = self.frame;
        for (id, l) in &self.listeners {
            let mut sum = vec![0.0f32; frame];
            for (src, f) in &self.current {
                if l.own.as_deref() == Some(src.as_str()) {
                    continue;
                }
                if let Some(subs) = &l.subscriptions {
                    if !subs.contains(src) {
                        continue;
                    }
                }
                for (acc, x) in sum.iter_mut().zip(f) {
                    *acc += x;
                }
            }
            let out = self.outputs.entry(id.clone()).or_default();
            out.clear();
            out.extend(sum.into_iter().map(limit));
        }
    }

    /// A listener's frame of the last tick.
    pub fn frame_for(&self, listener: &str) -> Option<&[i16]> {
        self.outputs.get(listener).map(Vec::as_slice)
    }
}

/// The soft limiter: linear up to the knee, then a smooth curve that approaches full scale
/// and never passes it.
fn limit(x: f32) -> i16 {
    const FULL: f32 = 32767.0;
    let knee = LIMIT_KNEE * FULL;
    let a = x.abs();
    let y = if a <= knee {
        a
    } else {
        let room = FULL - knee;
        knee + room * ((a - knee) / room).tanh()
    };
    (y.min(FULL) * x.signum()).round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_is_linear_below_the_knee_and_bounded_above() {
        assert_eq!(limit(1000.0), 1000);
        assert_eq!(limit(-19000.0), -19000);
        assert!(limit(40000.0) < 32767 && limit(40000.0) > 30000);
        assert_eq!(limit(1e9), 32767);
        assert_eq!(limit(-1e9), -32767);
        // Monotonic.
        let mut prev = limit(0.0);
        for i in 1..2000 {
            let y = limit(i as f32 * 50.0);
            assert!(y >= prev);
            prev = y;
        }
    }
}
