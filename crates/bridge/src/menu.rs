//! The dial-in voice menu: greet, collect the session code up to `#` (or the maximum length),
//! check it, and either join the caller or, after too many wrong codes, say goodbye and hang
//! up. Timeouts: before the first digit, between digits, and overall.
//!
//! The menu never looks codes up itself: it asks with [`MenuOutput::Check`] and the caller
//! answers with [`VoiceMenu::code_result`] (the lookup and the guessing limits belong to the
//! caller, which sees every call). Every wrong code is handled the same way, so nothing about
//! which codes exist can be learnt from the menu.
//!
//! Drain rule: after every input, drain [`VoiceMenu::poll_output`] and call
//! [`VoiceMenu::handle_timeout`] at [`VoiceMenu::poll_timeout`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The prompts the menu plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// "Please enter the session code, followed by the hash key."
    EnterCode,
    /// "That code is not valid. Please try again."
    WrongCode,
    /// "You are now joining the session."
    Joining,
    /// "Sorry, we could not verify your code. Goodbye."
    Goodbye,
}

/// Why the menu ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuEnd {
    /// Too many wrong codes.
    CodeRejected,
    /// Nothing (more) was typed in time.
    Timeout,
}

/// What the menu asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuOutput {
    /// Play a prompt (replacing whatever plays).
    Play(Prompt),
    /// Stop the prompt (the caller started typing).
    StopPrompt,
    /// Look this code up; answer with [`VoiceMenu::code_result`].
    Check(String),
    /// The code was right: join the caller to the session once `Joining` has played.
    Join,
    /// A wrong code (attempt number, 1-based), for the `sipPinRejected` webhook.
    Rejected { attempt: u32 },
    /// Hang up once `Goodbye` has played.
    HangUp(MenuEnd),
}

/// Menu settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuConfig {
    pub max_attempts: u32,
    pub max_digits: usize,
    /// From the end of the prompt to the first digit.
    pub first_digit: Duration,
    /// Between two digits.
    pub inter_digit: Duration,
    /// From the answer to a verdict.
    pub overall: Duration,
}

impl Default for MenuConfig {
    fn default() -> Self {
        MenuConfig {
            max_attempts: 3,
            max_digits: 16,
            first_digit: Duration::from_secs(10),
            inter_digit: Duration::from_secs(5),
            overall: Duration::from_secs(90),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// A prompt is playing; digits typed now barge in.
    Prompting(Prompt),
    /// Collecting digits.
    Collecting,
    /// Waiting for the code lookup.
    Checking,
    /// Done: joining or hanging up after the last prompt.
    Finished,
}

/// One caller's pass through the menu. See the module documentation for the drain rule.
#[derive(Debug, Clone)]
pub struct VoiceMenu {
    cfg: MenuConfig,
    state: State,
    digits: String,
    attempt: u32,
    /// When the current wait for a digit ends.
    digit_deadline: Option<Instant>,
    overall_deadline: Instant,
    /// Why the goodbye plays.
    ending: Option<MenuEnd>,
    out: VecDeque<MenuOutput>,
}

impl VoiceMenu {
    /// Starts the menu for a call answered at `now`: the greeting plays.
    pub fn new(now: Instant, cfg: MenuConfig) -> Self {
        let mut m = VoiceMenu {
            overall_deadline: now + cfg.overall,
            cfg,
            state: State::Prompting(Prompt::EnterCode),
            digits: String::new(),
            attempt: 1,
            digit_deadline: None,
            ending: None,
            out: VecDeque::new(),
        };
        m.out.push_back(MenuOutput::Play(Prompt::EnterCode));
        m
    }

    /// The attempt in progress (1-based).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<MenuOutput> {
        self.out.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            // Waiting for the last prompt to end; nothing is due.
            State::Finished | State::Prompting(Prompt::Joining | Prompt::Goodbye) => None,
            State::Checking => Some(self.overall_deadline),
            _ => Some(
                self.digit_deadline
                    .map_or(self.overall_deadline, |d| d.min(self.overall_deadline)),
            ),
        }
    }

    /// The prompt that was playing finished.
    pub fn prompt_finished(&mut self, now: Instant) {
        match self.state {
            State::Prompting(Prompt::Joining) => {
                self.state = State::Finished;
                self.out.push_back(MenuOutput::Join);
            }
            State::Prompting(Prompt::Goodbye) => {
                self.state = State::Finished;
                let why = self.ending.unwrap_or(MenuEnd::Timeout);
                self.out.push_back(MenuOutput::HangUp(why));
            }
            State::Prompting(_) => {
                self.state = State::Collecting;
                self.digit_deadline = Some(now + self.cfg.first_digit);
            }
            _ => {}
        }
    }

    /// A key the caller pressed (from any DTMF route).
    pub fn digit(&mut self, now: Instant, d: char) {
        match self.state {
            State::Prompting(Prompt::EnterCode | Prompt::WrongCode) => {
                self.out.push_back(MenuOutput::StopPrompt);
                self.state = State::Collecting;
            }
            State::Collecting => {}
            _ => return,
        }
        match d {
            '#' => self.submit(),
            '*' => {
                // Start the entry over.
                self.digits.clear();
                self.digit_deadline = Some(now + self.cfg.inter_digit);
            }
            '0'..='9' | 'A'..='D' => {
                self.digits.push(d);
                self.digit_deadline = Some(now + self.cfg.inter_digit);
                if self.digits.len() >= self.cfg.max_digits {
                    self.submit();
                }
            }
            _ => {}
        }
    }

    fn submit(&mut self) {
        self.digit_deadline = None;
        if self.digits.is_empty() {
            // A bare '#': nothing to check, ask again without spending an attempt.
            self.state = State::Prompting(Prompt::EnterCode);
            self.out.push_back(MenuOutput::Play(Prompt::EnterCode));
            return;
        }
        self.state = State::Checking;
        self.out
            .push_back(MenuOutput::Check(std::mem::take(&mut self.digits)));
    }

    /// The lookup's answer to the last [`MenuOutput::Check`].
    pub fn code_result(&mut self, _now: Instant, accepted: bool) {
        if self.state != State::Checking {
            return;
        }
        if accepted {
            self.state = State::Prompting(Prompt::Joining);
            self.out.push_back(MenuOutput::Play(Prompt::Joining));
            return;
        }
        self.out.push_back(MenuOutput::Rejected {
            attempt: self.attempt,
        });
        self.attempt += 1;
        if self.attempt > self.cfg.max_attempts {
            self.goodbye(MenuEnd::CodeRejected);
        } else {
            self.state = State::Prompting(Prompt::WrongCode);
            self.out.push_back(MenuOutput::Play(Prompt::WrongCode));
        }
    }

    fn goodbye(&mut self, why: MenuEnd) {
        self.ending = Some(why);
        self.digit_deadline = None;
        self.state = State::Prompting(Prompt::Goodbye);
        self.out.push_back(MenuOutput::Play(Prompt::Goodbye));
    }

    /// Fires what is due; harmless when called early.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(
            self.state,
            State::Finished | State::Prompting(Prompt::Goodbye)
        ) {
            return;
        }
        if now >= self.overall_deadline {
            self.goodbye(MenuEnd::Timeout);
            return;
        }
        if self.state == State::Collecting && self.digit_deadline.is_some_and(|d| now >= d) {
            if self.digits.is_empty() {
                // Nothing typed: that wait counts as an attempt.
                self.attempt += 1;
                if self.attempt > self.cfg.max_attempts {
                    self.goodbye(MenuEnd::Timeout);
                } else {
                    self.digit_deadline = None;
                    self.state = State::Prompting(Prompt::EnterCode);
                    self.out.push_back(MenuOutput::Play(Prompt::EnterCode));
                }
            } else {
                // The caller stopped typing without '#': check what was typed.
                self.submit();
            }
        }
    }
}
