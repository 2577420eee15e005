//! The jitter buffer under clean and bad networks: packetisation, loss with reordering and
//! duplicates, jitter that comes and goes, and a paused stream.

mod common;
use common::*;
use phonebridge_rtp::FrameKind;
use std::time::Duration;

#[test]
fn clean_network_plays_with_one_packet_of_delay() {
    let mut s = Sender::new(500.0, 20);
    s.talk(3000);
    let p = receive(
        &transmit(&s.out, |_| Net::clean()),
        Duration::from_millis(3100),
        11,
    );
    let w = tones(&p.pcm, &[500.0]);
    assert_eq!(longest_gap_ms(&w), 0);
    assert_eq!(p.stats.target_ms, 20);
    let before_end = p.trace[2900 / 20];
    assert_eq!(
        (before_end.underruns, p.stats.lost, p.stats.late),
        (0, 0, 0)
    );
    // Network delay 30 ms, first tick after arrival: audio starts within one packet of it.
    let start = first_tone_ms(&w).unwrap();
    assert!(start <= 60, "first audio at {start} ms");
    let max_buffered = p.trace.iter().skip(5).map(|t| t.buffered_ms).max().unwrap();
    assert!(max_buffered <= 40, "buffered up to {max_buffered} ms");
}

#[test]
fn thirty_ms_packets_become_steady_20ms_frames() {
    let mut s = Sender::new(500.0, 30);
    s.talk(3000);
    let p = receive(
        &transmit(&s.out, |_| Net::clean()),
        Duration::from_millis(3100),
        5,
    );
    let w = tones(&p.pcm, &[500.0]);
    assert_eq!(longest_gap_ms(&w), 0);
    assert_eq!(p.pcm.len(), p.kinds.len() * 160);
    assert_eq!((p.stats.lost, p.stats.late), (0, 0));
}

#[test]
fn five_percent_loss_with_reordering_and_duplicates() {
    let mut s = Sender::new(500.0, 20);
    s.talk(20_000);
    let net = Net {
        seed: 99,
        delay_ms: 40.0,
        jitter_ms: 50.0,
        loss: 0.05,
        duplicate: 0.03,
    };
    let d = transmit(&s.out, |_| net);
    let reordered = d.windows(2).filter(|w| w[1].1.seq < w[0].1.seq).count();
    assert!(reordered > 50, "the emulator reorders ({reordered})");
    let p = receive(&d, Duration::from_millis(20_300), 13);
    let w = tones(&p.pcm, &[500.0]);
    let heard = w.iter().filter(|x| x.is_some()).count() as f64 / w.len() as f64;
    assert!(
        heard > 0.95,
        "tone heard in {:.1} % of windows",
        heard * 100.0
    );
    let gap = longest_gap_ms(&w);
    assert!(gap <= 40, "longest gap {gap} ms");
    assert!(p.stats.duplicates > 0 && p.stats.lost > 0);
    // Everything sent is accounted for: played, lost, late or a duplicate.
    let sent = s.out.len() as u64;
    let dropped_by_net = sent + p.stats.duplicates - p.stats.received;
    let missing = p.stats.lost + p.stats.late;
    assert!(
        missing.abs_diff(dropped_by_net) <= 2,
        "network dropped {dropped_by_net}, buffer counted {} lost and {} late",
        p.stats.lost,
        p.stats.late
    );
}

#[test]
fn buffer_grows_under_jitter_and_shrinks_back() {
    let mut s = Sender::new(500.0, 20);
    s.talk(30_000);
    let noisy = |t: Duration| {
        let jitter = if (5..15).contains(&t.as_secs()) {
            80.0
        } else {
            0.0
        };
        Net {
            seed: 5,
            delay_ms: 30.0,
            jitter_ms: jitter,
            loss: 0.0,
            duplicate: 0.0,
        }
    };
    let p = receive(&transmit(&s.out, noisy), Duration::from_millis(30_100), 9);
    let at = |sec: u64| p.trace[(sec * 50) as usize];
    assert_eq!(at(4).target_ms, 20, "clean start");
    assert!(
        at(12).target_ms >= 70,
        "target under jitter: {}",
        at(12).target_ms
    );
    assert!(
        at(12).buffered_ms >= 60,
        "buffer grew: {}",
        at(12).buffered_ms
    );
    assert_eq!(at(29).target_ms, 20, "target back after the jitter");
    assert!(
        at(29).buffered_ms <= 60,
        "buffer shrank back: {}",
        at(29).buffered_ms
    );
    assert!(p.stats.shrinks > 0);
    let w = tones(&p.pcm, &[500.0]);
    let late_share = p.stats.late as f64 / s.out.len() as f64;
    assert!(late_share < 0.03, "late {:.1} %", late_share * 100.0);
    assert!(longest_gap_ms(&w) <= 60);
}

#[test]
fn paused_stream_resumes_without_delay_build_up() {
    let mut s = Sender::new(500.0, 20);
    s.talk(2000);
    s.pause(3000);
    s.talk(2000);
    let p = receive(
        &transmit(&s.out, |_| Net::clean()),
        Duration::from_millis(7100),
        9,
    );
    // During the pause the frames turn to silence, not endless concealment.
    let pause_frames = &p.kinds[(2300 / 20)..(4800 / 20)];
    assert!(pause_frames.iter().all(|k| *k == FrameKind::Silence));
    // After it, audio resumes at once and the buffer is as small as before.
    let w = tones(&p.pcm, &[500.0]);
    let resumed = w[5030 / 10..].iter().position(Option::is_some).unwrap() * 10;
    assert!(resumed <= 40, "resumed {resumed} ms after the first packet");
    let after = p.trace[(6000 / 20)..]
        .iter()
        .map(|t| t.buffered_ms)
        .max()
        .unwrap();
    assert!(after <= 40, "buffer after the pause {after} ms");
}

#[test]
fn a_burst_after_a_network_stall_is_played_down_quickly() {
    // A clean stream whose packets are held for 200 ms at 5 s, then delivered at once.
    let mut s = Sender::new(500.0, 20);
    s.talk(15_000);
    let stall = Duration::from_millis(5000)..Duration::from_millis(5200);
    let deliveries: Vec<(Duration, Sent)> = transmit(&s.out, |_| Net::clean())
        .into_iter()
        .map(|(t, p)| (if stall.contains(&t) { stall.end } else { t }, p))
        .collect();
    let p = receive(&deliveries, Duration::from_millis(15_100), 11);
    let at_ms = |ms: u64| p.trace[(ms / 20) as usize];
    assert!(
        at_ms(5300).buffered_ms >= 100,
        "the burst is buffered: {:?}",
        at_ms(5300)
    );
    // Back to a clean network's level (at most 40 ms) within about 5 s of the stall: the
    // transit window keeps the target up for 2 s, then the excess goes a frame per 100 ms
    // (at a frame per second, 15 s were not enough). The audio never breaks meanwhile.
    let back = (5300..15_000)
        .step_by(20)
        .find(|&ms| at_ms(ms).buffered_ms <= 40)
        .expect("the buffer comes back");
    assert!(back <= 10_500, "back at {back} ms: {:?}", at_ms(back));
    let w = tones(&p.pcm, &[500.0]);
    let gap = longest_gap_ms(&w[5400 / 10..]);
    assert!(gap <= 20, "a {gap} ms gap after the burst");
}
