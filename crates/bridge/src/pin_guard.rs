//! Bounds on guessing dial-in codes, beyond the voice menu's attempts per call:
//!
//! - **per source address**: more than `per_source` wrong codes within `window` locks the
//!   address out for `lockout`;
//! - **per code**: a code entered more than `per_code` times within `window` (right or wrong,
//!   from anywhere) is refused for the rest of the window, so a leaked code cannot feed a flood
//!   of calls and one value cannot be hammered from many addresses;
//! - **overall**: more than `global` wrong codes within `window` from all sources together
//!   (a guessing run spread over many addresses) refuses every code until the rate drops.
//!
//! A refused lookup is answered exactly like a wrong code: the caller learns nothing.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinGuardConfig {
    pub window: Duration,
    pub per_source: usize,
    pub per_code: usize,
    pub global: usize,
    pub lockout: Duration,
}

impl Default for PinGuardConfig {
    fn default() -> Self {
        PinGuardConfig {
            window: Duration::from_secs(600),
            per_source: 10,
            per_code: 30,
            global: 300,
            lockout: Duration::from_secs(900),
        }
    }
}

/// Most addresses and codes remembered; the oldest are forgotten beyond this.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub struct PinGuard {
    cfg: PinGuardConfig,
    source_failures: HashMap<IpAddr, VecDeque<Instant>>,
    locked: HashMap<IpAddr, Instant>,
    code_uses: HashMap<String, VecDeque<Instant>>,
    failures: VecDeque<Instant>,
    /// Lookups refused by a limit.
    pub refused: u64,
}

impl PinGuard {
    pub fn new(cfg: PinGuardConfig) -> Self {
        PinGuard {
            cfg,
            ..PinGuard::default()
        }
    }

    fn prune(q: &mut VecDeque<Instant>, since: Option<Instant>) {
        while q.front().is_some_and(|t| since.is_some_and(|s| *t < s)) {
            q.pop_front();
        }
    }

    /// Whether `code` from `source` may be looked up now; counts the use of the code.
    pub fn allow(&mut self, now: Instant, source: IpAddr, code: &str) -> bool {
        let since = now.checked_sub(self.cfg.window);
        if let Some(until) = self.locked.get(&source) {
            if now < *until {
                self.refused += 1;
                return false;
            }
            self.locked.remove(&source);
        }
        Self::prune(&mut self.failures, since);
        if self.failures.len() >= self.cfg.global {
            self.refused += 1;
            return false;
        }
        if self.code_uses.len() >= MAX_KEYS {
            self.code_uses
                .retain(|_, q| q.back().is_some_and(|t| since.is_none_or(|s| *t >= s)));
        }
        let uses = self.code_uses.entry(code.to_owned()).or_default();
        Self::prune(uses, since);
        uses.push_back(now);
        if uses.len() > self.cfg.per_code {
            self.refused += 1;
            return false;
        }
        true
    }

    /// The code from `source` was wrong (or refused).
    pub fn failed(&mut self, now: Instant, source: IpAddr) {
        let since = now.checked_sub(self.cfg.window);
        self.failures.push_back(now);
        if self.source_failures.len() >= MAX_KEYS {
            self.source_failures
                .retain(|_, q| q.back().is_some_and(|t| since.is_none_or(|s| *t >= s)));
        }
        let q = self.source_failures.entry(source).or_default();
        Self::prune(q, since);
        q.push_back(now);
        if q.len() > self.cfg.per_source {
            q.clear();
            self.locked.insert(source, now + self.cfg.lockout);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time
mod tests {
    use super::*;

    fn cfg() -> PinGuardConfig {
        PinGuardConfig {
            window: Duration::from_secs(60),
            per_source: 3,
            per_code: 4,
            global: 10,
            lockout: Duration::from_secs(120),
        }
    }

    #[test]
    fn a_source_with_too_many_wrong_codes_is_locked_out_then_let_back() {
        let t0 = Instant::now();
        let mut g = PinGuard::new(cfg());
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        for i in 0..4 {
            assert!(g.allow(t0, a, &format!("100{i}")));
            g.failed(t0, a);
        }
        // Locked: even the right code is refused, and the refusal looks like a wrong code.
        assert!(!g.allow(t0 + Duration::from_secs(1), a, "4242"));
        assert!(g.allow(t0 + Duration::from_secs(1), b, "4242"));
        assert!(!g.allow(t0 + Duration::from_secs(119), a, "4242"));
        assert!(g.allow(t0 + Duration::from_secs(121), a, "4242"));
        assert_eq!(g.refused, 2);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut g = PinGuard::new(cfg());
        let a: IpAddr = [192, 0, 2, 1].into();
        for i in 0..10u64 {
            let t = t0 + Duration::from_secs(25 * i);
            assert!(g.allow(t, a, &format!("20{i}")), "attempt {i}");
            g.failed(t, a);
        }
    }

    #[test]
    fn one_code_used_too_often_and_a_spread_out_guessing_run_are_refused() {
        let t0 = Instant::now();
        let mut g = PinGuard::new(cfg());
        for i in 0..4u8 {
            assert!(g.allow(t0, [198, 51, 100, i].into(), "4242"));
        }
        assert!(!g.allow(t0, [198, 51, 100, 9].into(), "4242"));
        assert!(g.allow(
            t0 + Duration::from_secs(61),
            [198, 51, 100, 9].into(),
            "4242"
        ));
        // Ten wrong codes from ten addresses: every code is refused until they age out.
        let mut g = PinGuard::new(cfg());
        for i in 0..10u8 {
            let src: IpAddr = [203, 0, 113, i].into();
            assert!(g.allow(t0, src, &format!("3{i}")));
            g.failed(t0, src);
        }
        assert!(!g.allow(t0, [203, 0, 113, 200].into(), "4242"));
        assert!(g.allow(
            t0 + Duration::from_secs(61),
            [203, 0, 113, 200].into(),
            "4242"
        ));
    }
}
