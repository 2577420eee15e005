//! A PBX switches the media source mid-call: new SSRC, same-SSRC timestamp jump, sequence
//! restart. Playout continues with no gap longer than one packet.

mod common;
use common::*;
use std::time::Duration;

fn switch_scenario(change: impl Fn(&mut Sender)) -> (Played, Vec<Option<usize>>) {
    let mut s = Sender::new(500.0, 20);
    s.talk(1000);
    change(&mut s);
    s.set_tone(800.0);
    s.talk(1000);
    let d = transmit(&s.out, |_| Net::clean());
    let p = receive(&d, Duration::from_millis(2200), 7);
    let w = tones(&p.pcm, &[500.0, 800.0]);
    (p, w)
}

fn assert_switched_without_gap(w: &[Option<usize>]) {
    // Both sources are heard, in order, and the longest silence is at most one packet.
    let first_b = w
        .iter()
        .position(|x| *x == Some(1))
        .expect("second source heard");
    assert!(w[..first_b].contains(&Some(0)), "first source heard");
    assert!(
        !w[first_b..].contains(&Some(0)),
        "no stale audio of the first source after the switch"
    );
    let gap = longest_gap_ms(w);
    assert!(gap <= 20, "longest gap {gap} ms");
}

#[test]
fn ssrc_switch_mid_talkspurt() {
    let (p, w) = switch_scenario(|s| {
        s.ssrc = 0x2222;
        s.seq = 42;
        s.ts = 3_000_000_000;
    });
    assert_switched_without_gap(&w);
    assert_eq!(p.stats.source.ssrc_switches, 1);
    assert_eq!(p.stats.late + p.stats.lost, 0);
}

#[test]
fn same_ssrc_timestamp_jump() {
    let (p, w) = switch_scenario(|s| s.ts = s.ts.wrapping_add(123_456_789));
    assert_switched_without_gap(&w);
    assert_eq!(p.stats.source.timestamp_jumps, 1);
    assert_eq!(p.stats.source.ssrc_switches, 0);
}

#[test]
fn sequence_wrap_then_restart() {
    let mut s = Sender::new(500.0, 20);
    s.seq = 65_500; // wraps after 36 packets
    s.talk(1000);
    s.seq = 0x7000; // a restart far from the last sequence number
    s.set_tone(800.0);
    s.talk(1000);
    let d = transmit(&s.out, |_| Net::clean());
    let p = receive(&d, Duration::from_millis(2200), 3);
    let w = tones(&p.pcm, &[500.0, 800.0]);
    assert_switched_without_gap(&w);
    assert_eq!(p.stats.source.sequence_restarts, 1);
}

#[test]
fn stale_packets_of_the_old_source_are_dropped() {
    let mut s = Sender::new(500.0, 20);
    s.talk(1000);
    let old = s.out.last().cloned().unwrap();
    s.ssrc = 0x3333;
    s.set_tone(800.0);
    s.talk(1000);
    let mut d = transmit(&s.out, |_| Net::clean());
    // A copy of the old source's last packet arrives 100 ms after the switch.
    d.push((old.at + Duration::from_millis(130), old));
    d.sort_by_key(|(t, _)| *t);
    let p = receive(&d, Duration::from_millis(2200), 3);
    assert_eq!(p.stats.source.stale, 1);
    assert_switched_without_gap(&tones(&p.pcm, &[500.0, 800.0]));
}
