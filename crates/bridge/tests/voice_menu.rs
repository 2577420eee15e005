//! The dial-in voice menu on virtual time: right code, wrong then right, three wrong codes,
//! barge-in, `*` to start over, the maximum length, and every timeout.
#![allow(clippy::disallowed_methods)] // an arbitrary origin for virtual time

use std::time::{Duration, Instant};

use phonebridge_bridge::*;

struct Caller {
    menu: VoiceMenu,
    now: Instant,
    log: Vec<MenuOutput>,
    checking: Option<String>,
}

impl Caller {
    fn new() -> Self {
        let now = Instant::now();
        let mut c = Caller {
            menu: VoiceMenu::new(now, MenuConfig::default()),
            now,
            log: Vec::new(),
            checking: None,
        };
        c.drain();
        c
    }

    fn drain(&mut self) {
        while let Some(o) = self.menu.poll_output() {
            if let Check(code) = &o {
                self.checking = Some(code.clone());
            }
            self.log.push(o);
        }
    }

    fn wait(&mut self, secs: f64) {
        let until = self.now + Duration::from_secs_f64(secs);
        let mut steps = 0;
        while let Some(t) = self.menu.poll_timeout().filter(|t| *t <= until) {
            steps += 1;
            assert!(steps < 100, "livelock: the deadline {t:?} does not move");
            self.now = t;
            self.menu.handle_timeout(t);
            self.drain();
        }
        self.now = until;
    }

    fn prompt_ends(&mut self) {
        self.menu.prompt_finished(self.now);
        self.drain();
    }

    fn keys(&mut self, keys: &str) {
        for k in keys.chars() {
            self.now += Duration::from_millis(300);
            self.menu.digit(self.now, k);
            self.drain();
        }
    }

    /// Answers the pending check: the right code is 482913.
    fn lookup(&mut self) {
        let code = self.checking.take().expect("a code to check");
        self.menu.code_result(self.now, code == "482913");
        self.drain();
    }

    fn take(&mut self) -> Vec<MenuOutput> {
        std::mem::take(&mut self.log)
    }
}

use MenuOutput::*;

#[test]
fn the_right_code_joins() {
    let mut c = Caller::new();
    assert_eq!(c.take(), [Play(Prompt::EnterCode)]);
    c.prompt_ends();
    c.keys("482913#");
    assert_eq!(c.take(), [Check("482913".into())]);
    c.lookup();
    assert_eq!(c.take(), [Play(Prompt::Joining)]);
    c.prompt_ends();
    assert_eq!(c.take(), [Join]);
    assert_eq!(c.menu.poll_timeout(), None);
}

#[test]
fn wrong_then_right_with_barge_in() {
    let mut c = Caller::new();
    c.take();
    // Typing during the greeting stops it.
    c.keys("1");
    assert_eq!(c.take(), [StopPrompt]);
    c.keys("11#");
    c.lookup();
    assert_eq!(
        c.take(),
        [
            Check("111".into()),
            Rejected { attempt: 1 },
            Play(Prompt::WrongCode)
        ]
    );
    c.keys("482913#");
    c.lookup();
    assert_eq!(
        c.take(),
        [StopPrompt, Check("482913".into()), Play(Prompt::Joining)]
    );
}

#[test]
fn three_wrong_codes_say_goodbye_and_hang_up() {
    let mut c = Caller::new();
    c.prompt_ends();
    for _ in 0..3 {
        c.keys("000#");
        c.lookup();
        c.prompt_ends();
    }
    let log = c.take();
    let rejected: Vec<_> = log
        .iter()
        .filter(|o| matches!(o, Rejected { .. }))
        .collect();
    assert_eq!(
        rejected,
        [
            &Rejected { attempt: 1 },
            &Rejected { attempt: 2 },
            &Rejected { attempt: 3 }
        ]
    );
    assert_eq!(
        &log[log.len() - 2..],
        [Play(Prompt::Goodbye), HangUp(MenuEnd::CodeRejected)]
    );
    // Nothing more happens, whatever is typed.
    c.keys("482913#");
    assert!(c.take().is_empty());
}

#[test]
fn star_starts_over_and_the_maximum_length_submits() {
    let mut c = Caller::new();
    c.prompt_ends();
    c.take();
    c.keys("99*482913#");
    assert_eq!(c.take(), [Check("482913".into())]);
    let mut c = Caller::new();
    c.prompt_ends();
    c.take();
    c.keys(&"7".repeat(16));
    assert_eq!(c.take(), [Check("7".repeat(16))]);
}

#[test]
fn timeouts_reprompt_submit_and_finally_end_the_call() {
    let mut c = Caller::new();
    c.prompt_ends();
    c.take();
    // Digits then silence: what was typed is checked.
    c.keys("4829");
    c.wait(5.1);
    assert_eq!(c.take(), [Check("4829".into())]);
    c.lookup();
    c.prompt_ends();
    // Nothing typed after the prompts: re-prompted, then the attempts run out.
    c.wait(10.1);
    assert_eq!(
        c.take(),
        [
            Rejected { attempt: 1 },
            Play(Prompt::WrongCode),
            Play(Prompt::EnterCode)
        ]
    );
    c.prompt_ends();
    c.wait(10.1);
    c.prompt_ends();
    assert_eq!(c.take(), [Play(Prompt::Goodbye), HangUp(MenuEnd::Timeout)]);
}

#[test]
fn the_overall_timeout_ends_a_call_that_keeps_typing_slowly() {
    let mut c = Caller::new();
    c.prompt_ends();
    for _ in 0..40 {
        c.keys("1");
        c.wait(2.0);
    }
    let log = c.take();
    assert!(log.contains(&Play(Prompt::Goodbye)), "{log:?}");
    c.prompt_ends();
    assert_eq!(c.take(), [HangUp(MenuEnd::Timeout)]);
}
