//! Black-box test support: the real `phonebridge` binary on loopback, real peers, and
//! audio checked by tone detection.
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Disjoint port ranges for servers and peers started by tests running in parallel, below
/// the kernel's ephemeral range (32768 and up) so no socket bound to port 0 can take them.
static NEXT_PORTS: AtomicU16 = AtomicU16::new(12000);

pub fn port_range(size: u16) -> (u16, u16) {
    let lo = NEXT_PORTS.fetch_add(size, Ordering::Relaxed);
    (lo, lo + size - 1)
}

pub struct Server {
    child: Child,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    /// The SIP-over-TLS address, when started with a certificate.
    pub sip_tls: Option<SocketAddr>,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let (lo, hi) = port_range(400);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_phonebridge"));
        if !extra.contains(&"--config") {
            cmd.args(["--config", "/dev/null"]);
        }
        if !extra.contains(&"--sip") {
            cmd.args(["--sip", "127.0.0.1:0"]);
        }
        if !extra.contains(&"--webrtc") {
            cmd.args(["--webrtc", "127.0.0.1:0"]);
        }
        if !extra.contains(&"--data-dir") {
            let dir =
                std::env::temp_dir().join(format!("phonebridge-data-{}-{lo}", std::process::id()));
            cmd.arg("--data-dir").arg(dir);
        }
        cmd.args(["--http", "127.0.0.1:0"])
            .args(["--rtp-ports", &format!("{lo}-{hi}"), "--log", "info"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start phonebridge");
        let stdout = child.stdout.take().expect("stdout");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = tx.send(line.clone());
                }
                log2.lock().unwrap().push(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("phonebridge did not report listening");
        let field = |name: &str| -> SocketAddr {
            let start = line.find(&format!("{name}=")).expect(name) + name.len() + 1;
            line[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let sip_tls = line
            .find("sip_tls=")
            .and_then(|i| line[i + 8..].split_whitespace().next())
            .and_then(|v| v.parse().ok());
        Server {
            sip: field("sip"),
            http: field("http"),
            sip_tls,
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "phonebridge did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process at once (SIGKILL), as a crash or power loss would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's threads, by name (sorted), from /proc.
    pub fn threads(&self) -> Vec<String> {
        let dir = format!("/proc/{}/task", self.pid());
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// CPU time the server has used so far (user and system, all threads), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces:
        // utime and stime are the 14th and 15th fields of the whole line.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    pub fn metrics(&self) -> String {
        http_get(self.http, "/metrics")
    }

    pub fn metric(&self, name: &str) -> f64 {
        let m = self.metrics();
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("metric {name} missing"))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET over loopback.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

pub fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("phonebridge-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `text` as `phonebridge.toml` in `dir`; its path, for `--config`.
pub fn write_config(dir: &Path, text: impl AsRef<str>) -> PathBuf {
    let path = dir.join("phonebridge.toml");
    std::fs::write(&path, text.as_ref()).unwrap();
    path
}

/// One call of the SIPp `scenario` (in `tests/sipp/`) against `server`, media on a port of
/// its own.
pub fn one_scenario_call(server: &Server, dir: &std::path::Path, scenario: &str) -> SippStats {
    let (media_port, _) = port_range(10);
    sipp(
        dir,
        &[
            "-sf",
            &scenario_path(scenario),
            &server.sip.to_string(),
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-mp",
            &media_port.to_string(),
        ],
    )
}

/// Outcome of a SIPp run, from its `-trace_stat` CSV.
#[derive(Debug)]
pub struct SippStats {
    pub successful: u64,
    pub failed: u64,
    pub status: std::process::ExitStatus,
}

/// SIPp's built-in `uac` scenario: `calls` calls to `user` at `target`, `rate` per second,
/// from `local_ip` on a free port, with `extra` options.
pub fn sipp_uac(
    dir: &Path,
    user: &str,
    target: &str,
    (calls, rate): (u32, u32),
    local_ip: &str,
    extra: &[&str],
) -> SippStats {
    let (calls, rate) = (calls.to_string(), rate.to_string());
    let mut args = vec![
        "-sn", "uac", "-s", user, target, "-m", &calls, "-r", &rate, "-i", local_ip, "-p", "0",
    ];
    args.extend_from_slice(extra);
    sipp(dir, &args)
}

/// Runs `sipp` with `args` plus statistics options; fails the test if sipp is missing.
pub fn sipp(dir: &Path, args: &[&str]) -> SippStats {
    let stf = dir.join("stats.csv");
    let status = Command::new("sipp")
        .current_dir(dir)
        .args(args)
        .args(["-nostdin", "-timeout", "120s", "-trace_stat", "-stf"])
        .arg(&stf)
        .args(["-fd", "1", "-trace_err", "-error_file"])
        .arg(dir.join("errors.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect(
            "sipp (Debian package sip-tester) must be installed: run the README's test command",
        );
    let csv = std::fs::read_to_string(&stf).expect("sipp statistics file");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let last: Vec<&str> = lines.last().unwrap().split(';').collect();
    let col = |name: &str| -> u64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("column {name}"));
        last[i].parse().unwrap()
    };
    SippStats {
        successful: col("SuccessfulCall(C)"),
        failed: col("FailedCall(C)"),
        status,
    }
}

/// 16-bit mono PCM samples and rate from a WAV file (the canonical 44-byte header or any
/// RIFF layout with a `fmt ` and a `data` chunk).
pub fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"RIFF", "{} is not a WAV file", path.display());
    let mut i = 12;
    let mut rate = 0;
    let mut channels = 1;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().unwrap()) as usize;
        let body = &b[i + 8..(i + 8 + len).min(b.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes(body[2..4].try_into().unwrap()) as usize;
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            let samples: Vec<i16> = body
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return (rate, samples.into_iter().step_by(channels).collect());
        }
        i += 8 + len + len % 2;
    }
    (rate, Vec::new())
}

/// Writes a mono 16-bit WAV of a sine at `freq` Hz.
pub fn write_tone_wav(path: &Path, rate: u32, freq: f64, secs: f64, amplitude: f64) {
    write_tone_wav_channels(path, rate, 1, freq, secs, amplitude)
}

/// As [`write_tone_wav`], with the tone on each of `channels` channels.
pub fn write_tone_wav_channels(
    path: &Path,
    rate: u32,
    channels: u16,
    freq: f64,
    secs: f64,
    amplitude: f64,
) {
    let n = (rate as f64 * secs) as usize;
    let mut samples = Vec::with_capacity(n * channels as usize);
    for i in 0..n {
        let v = (amplitude
            * 32767.0
            * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin())
            as i16;
        samples.extend(std::iter::repeat_n(v, channels as usize));
    }
    write_wav(path, rate, channels, &samples);
}

/// Writes 16-bit PCM `samples` (interleaved when `channels` > 1) as a WAV file.
pub fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let block = 2 * channels;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&channels.to_le_bytes());
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * block as u32).to_le_bytes());
    w.extend_from_slice(&block.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    std::fs::write(path, w).unwrap();
}

/// Fraction of the window's energy at `freq` (Goertzel), 0..=1.
pub fn tone_share(window: &[i16], rate: u32, freq: f64) -> f64 {
    let n = window.len() as f64;
    let k = (0.5 + n * freq / rate as f64).floor();
    let w = 2.0 * std::f64::consts::PI * k / n;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0;
    for &x in window {
        let x = x as f64;
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    (2.0 * power / n / energy).min(1.0)
}

/// Per 20 ms window: is `freq` the dominant content (and the window not silent)?
pub fn tone_windows(samples: &[i16], rate: u32, freq: f64) -> Vec<bool> {
    let win = (rate / 50) as usize;
    samples
        .chunks_exact(win)
        .map(|w| {
            let rms = (w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
            rms > 300.0 && tone_share(w, rate, freq) > 0.6
        })
        .collect()
}

/// Starts SIPp as a UAS for one call on a free port; returns it and the port.
pub fn carrier(dir: &Path, scenario: &[&str], transport: &str) -> (Child, u16) {
    let (port, _) = port_range(2);
    let (mp, _) = port_range(10);
    let child = Command::new("sipp")
        .current_dir(dir)
        .args(scenario)
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-mp",
            &mp.to_string(),
            "-t",
            transport,
        ])
        .args([
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "30s",
            "-trace_stat",
            "-stf",
            "stats.csv",
            "-fd",
            "1",
        ])
        .args(["-trace_err", "-error_file", "errors.log"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sipp.stderr")).unwrap())
        .spawn()
        .expect(
            "sipp (Debian package sip-tester) must be installed: run the README's test command",
        );
    std::thread::sleep(Duration::from_millis(300));
    (child, port)
}

/// Waits for SIPp to finish; its (successful, failed) call counts.
pub fn finish(mut sipp: Child, dir: &Path) -> (u64, u64) {
    let status = sipp.wait().unwrap();
    let csv = std::fs::read_to_string(dir.join("stats.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    let last: Vec<&str> = lines.last().unwrap().split(';').collect();
    let col = |n: &str| {
        last[header.iter().position(|h| *h == n).unwrap()]
            .parse::<u64>()
            .unwrap()
    };
    let _ = status;
    (col("SuccessfulCall(C)"), col("FailedCall(C)"))
}

/// A scenario file from tests/sipp/.
pub fn scenario_path(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
        .display()
        .to_string()
}

/// Polls `done` every 100 ms until it holds; fails the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, done: impl Fn() -> bool) {
    wait_for_or(what, limit, || {
        if done() {
            Ok(())
        } else {
            Err(String::new())
        }
    });
}

/// Polls `check` every 100 ms until it is `Ok`; fails the test after `limit` with what its
/// last `Err` said.
pub fn wait_for_or(what: &str, limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + limit;
    loop {
        let why = match check() {
            Ok(()) => return,
            Err(why) => why,
        };
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}{}",
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Calls `target` from baresip playing a 700 Hz tone for 6 s and recording what it hears.
/// `account_params` and `extra_config` extend baresip's account line and config (TLS).
/// Returns baresip's output and the received samples with their rate.
pub fn baresip_echo_call(
    dir: &Path,
    target: &str,
    account_params: &str,
    extra_config: &str,
) -> (String, Vec<i16>, u32) {
    baresip_codec_call(dir, target, "PCMU", account_params, "", extra_config)
}

/// As [`baresip_echo_call`], with baresip offering only `codec` (as baresip names it:
/// `PCMU`, `PCMA`, `G722/16000/1`, `opus/48000/2`) and `media_params` added to the account
/// (e.g. `;mediaenc=srtp-mand`).
pub fn baresip_codec_call(
    dir: &Path,
    target: &str,
    codec: &str,
    account_params: &str,
    media_params: &str,
    extra_config: &str,
) -> (String, Vec<i16>, u32) {
    baresip_call(
        dir,
        &Phone {
            target,
            codec,
            account_params,
            media_params,
            extra_config,
            ..Phone::default()
        },
    )
}

/// A baresip call: who is called, with what, for how long, and keys typed during the call.
pub struct Phone<'a> {
    pub target: &'a str,
    /// As baresip names codecs: `PCMU`, `PCMA`, `G722/16000/1`, `opus/48000/2`.
    pub codec: &'a str,
    /// The user part of the caller's address (its number).
    pub user: &'a str,
    /// The tone the phone plays, in Hz.
    pub tone: f64,
    /// A WAV file the phone plays instead of the tone (at the codec's rate).
    pub source: Option<&'a Path>,
    /// baresip quits after this many seconds.
    pub secs: u32,
    /// Keys typed on the phone after a delay (sent as baresip's account `dtmfmode` says).
    pub keys: Option<(Duration, &'a str)>,
    pub account_params: &'a str,
    pub media_params: &'a str,
    pub extra_config: &'a str,
}

impl Default for Phone<'_> {
    fn default() -> Self {
        Phone {
            target: "",
            codec: "PCMU",
            user: "tester",
            tone: 700.0,
            source: None,
            secs: 6,
            keys: None,
            account_params: "",
            media_params: "",
            extra_config: "",
        }
    }
}

/// Places `p` from baresip playing its tone and recording what it hears. Returns baresip's
/// output and the received samples with their rate.
pub fn baresip_call(dir: &Path, p: &Phone) -> (String, Vec<i16>, u32) {
    let conf = dir.join("conf");
    let snd = dir.join("snd");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(&snd).unwrap();
    let tone = match p.source {
        Some(s) => s.to_owned(),
        None => dir.join("tone.wav"),
    };
    // baresip's file source does not resample: the tone is written at the codec's rate.
    let rate = if p.codec.contains("/48000") {
        48000
    } else if p.codec.contains("/16000") {
        16000
    } else {
        8000
    };
    // Opus is negotiated as two channels, and baresip's file source does not mix down.
    let channels = if p.codec.ends_with("/2") { 2 } else { 1 };
    if p.source.is_none() {
        write_tone_wav_channels(&tone, rate, channels, p.tone, p.secs as f64 + 5.0, 0.5);
    }
    let (lo, hi) = port_range(100);
    // Keys come from standard input (baresip's stdio module) when there are any.
    let stdio = if p.keys.is_some() {
        "module stdio.so\n"
    } else {
        ""
    };
    std::fs::write(
        conf.join("config"),
        format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{lo}\naudio_source aufile,{}\naudio_player aufile,/dev/null\naudio_alert aufile,/dev/null\naudio_srate {rate}\naudio_channels {channels}\nmodule_path /usr/lib/baresip/modules\n{stdio}module g711.so\nmodule g722.so\nmodule opus.so\nmodule srtp.so\nmodule aufile.so\nmodule sndfile.so\nmodule_app account.so\nmodule_app menu.so\nsnd_path {}\nrtp_ports {}-{hi}\n{}",
            tone.display(),
            snd.display(),
            lo + 2,
            p.extra_config,
        ),
    )
    .unwrap();
    std::fs::write(
        conf.join("accounts"),
        format!(
            "<sip:{}@127.0.0.1{}>;regint=0;audio_codecs={}{}\n",
            p.user, p.account_params, p.codec, p.media_params
        ),
    )
    .unwrap();
    let mut child = Command::new("baresip")
        .arg("-f")
        .arg(&conf)
        .args(["-e", &format!("/dial {}", p.target), "-t", &p.secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("baresip (Debian package baresip-core) must be installed: run the README's test command");
    let mut stdin = child.stdin.take().unwrap();
    if let Some((after, keys)) = p.keys {
        let keys = keys.to_owned();
        let open_for = Duration::from_secs(p.secs as u64 + 2).saturating_sub(after);
        std::thread::spawn(move || {
            use std::io::Write;
            std::thread::sleep(after);
            let _ = stdin.write_all(keys.as_bytes());
            let _ = stdin.flush();
            // Keep standard input open until baresip quits.
            std::thread::sleep(open_for);
        });
    }
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    let dec = std::fs::read_dir(&snd)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"));
    let (rate, samples) = dec.map(|p| read_wav(&p)).unwrap_or((8000, Vec::new()));
    (log, samples, rate)
}

/// The 700 Hz tone came back: in 90% of 20 ms windows, no gap over 40 ms once settled, and
/// no other tone.
pub fn assert_echoed_tone(samples: &[i16], rate: u32) {
    let windows = tone_windows(samples, rate, 700.0);
    assert!(
        windows.len() >= 200,
        "only {} windows recorded",
        windows.len()
    );
    let heard = windows.iter().filter(|w| **w).count();
    assert!(
        heard * 10 >= windows.len() * 9,
        "700 Hz heard in {heard} of {} windows",
        windows.len()
    );
    // After the first half second, the echo carries the tone without gaps.
    let settled = &windows[25..windows.len() - 5];
    let longest_gap = settled.split(|w| *w).map(|g| g.len()).max().unwrap_or(0);
    assert!(
        longest_gap <= 2,
        "gap of {longest_gap} windows in the echoed tone"
    );
    let other = tone_windows(samples, rate, 1100.0)
        .iter()
        .filter(|w| **w)
        .count();
    assert_eq!(other, 0, "a tone nobody sent");
}

/// Runs `phonebridge call <target>` on loopback with its own RTP ports, staying `hold` seconds
/// after the answer and giving up ringing after 10 s; `extra` adds options.
pub fn place_call(target: &str, hold: &str, extra: &[&str]) -> std::process::Output {
    let (lo, hi) = port_range(10);
    Command::new(env!("CARGO_BIN_EXE_phonebridge"))
        .args([
            "call",
            target,
            "--bind",
            "127.0.0.1:0",
            "--rtp-ports",
            &format!("{lo}-{hi}"),
        ])
        .args(["--hold", hold, "--ring-timeout", "10"])
        .args(extra)
        .output()
        .unwrap()
}

/// One request a webhook receiver saw: lower-cased headers, body, status answered.
pub type HookRequest = (std::collections::HashMap<String, String>, String, u16);

/// A webhook receiver on loopback: records every POST (headers and body) and answers with
/// the status in `status` (set it to 503 to play a receiver that is down).
pub struct WebhookReceiver {
    pub url: String,
    pub status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    /// (lower-cased headers, body, status answered) for every request, in arrival order.
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<HookRequest>>>,
}

impl WebhookReceiver {
    pub fn start() -> WebhookReceiver {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let status = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(200));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (st, reqs) = (status.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (st, reqs) = (st.clone(), reqs.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Keep-alive: serve requests until the client closes.
                    loop {
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break Some(i);
                            }
                            match stream.read(&mut chunk) {
                                Ok(0) | Err(_) => break None,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let Some(head_end) = head_end else { return };
                        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                        let headers: std::collections::HashMap<String, String> = head
                            .lines()
                            .skip(1)
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                            .collect();
                        let len: usize = headers
                            .get("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        while buf.len() < head_end + 4 + len {
                            match stream.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = String::from_utf8_lossy(&buf[head_end + 4..head_end + 4 + len])
                            .into_owned();
                        buf.drain(..head_end + 4 + len);
                        let code = st.load(Ordering::SeqCst);
                        reqs.lock().unwrap().push((headers, body, code));
                        let reply = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        WebhookReceiver {
            url: format!("http://{addr}/hook"),
            status,
            requests,
        }
    }

    /// The bodies the receiver accepted (answered 200), parsed.
    pub fn accepted(&self) -> Vec<(std::collections::HashMap<String, String>, serde_json::Value)> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, code)| *code == 200)
            .map(|(h, b, _)| (h.clone(), serde_json::from_str(b).expect("JSON body")))
            .collect()
    }

    /// Waits up to 10 s until an accepted event is `name` and satisfies `pred`. The call's
    /// events and its session's go out in the order they happened, so the last of either
    /// kind is what a test waits for before it reads them all.
    pub fn wait_for_event(&self, name: &str, pred: impl Fn(&serde_json::Value) -> bool) {
        wait_for(name, Duration::from_secs(10), || {
            self.accepted()
                .iter()
                .any(|(_, b)| b["event"] == name && pred(b))
        });
    }
}

/// An HTTP/1.1 request over loopback with Basic auth `OPENVIDUAPP:<secret>`; returns the
/// status and body.
pub fn api(addr: SocketAddr, method: &str, path: &str, secret: &str, body: &str) -> (u16, String) {
    use base64::Engine as _;
    use std::io::{Read, Write};
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("OPENVIDUAPP:{secret}"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Runs a Node script from `tests/node/` with the pinned packages of `web/`.
pub fn node(script: &str, args: &[&str]) -> std::process::Output {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("node")
        .arg(dir.join("tests/node").join(script))
        .args(args)
        .env("PB_WEB", dir.join("../../web"))
        .output()
        .expect("node (Node.js 20) must be installed")
}

/// Creates the session `id` on `server` (secret `MY_SECRET`).
pub fn create_session(server: &Server, id: &str) {
    let (st, body) = api(
        server.http,
        "POST",
        "/openvidu/api/sessions",
        "MY_SECRET",
        &format!(r#"{{"customSessionId":"{id}"}}"#),
    );
    assert_eq!(st, 200, "{body}");
}

/// A headless Chromium interviewer (`browser_phone.cjs`) in `session` of `server`: publishes
/// a 1000 Hz microphone and measures the phone's stream; `args` are the script's frequencies,
/// stay and measuring seconds. Runs on its own thread; join it for the script's output.
pub fn interviewer_listening(
    server: &Server,
    dir: &Path,
    session: &str,
    args: &[&str],
) -> std::thread::JoinHandle<std::process::Output> {
    let wav = dir.join("browser.wav");
    write_tone_wav(&wav, 48_000, 1000.0, 60.0, 0.5);
    let mut all: Vec<String> = vec![
        format!("http://{}", server.http),
        "MY_SECRET".into(),
        session.into(),
        wav.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    std::thread::spawn(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        node("browser_phone.cjs", &refs)
    })
}

/// What the listening interviewer heard (see [`interviewer_listening`]); fails the test with
/// the browser's output and `context` if the page failed.
pub fn heard_by(
    browser: std::thread::JoinHandle<std::process::Output>,
    context: &str,
) -> serde_json::Value {
    let out = browser.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser failed: {stderr}{context}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The browser heard the phone's 700 Hz, and not its own 1000 Hz back.
pub fn assert_hears_phone_not_itself(heard: &serde_json::Value) {
    let (p700, p1000) = (
        heard["power"]["700"].as_f64().unwrap(),
        heard["power"]["1000"].as_f64().unwrap(),
    );
    assert!(p700 > 1e-4, "phone tone too weak in the browser: {heard}");
    assert!(
        p700 > 100.0 * p1000,
        "the browser hears its own tone: {heard}"
    );
}

/// G.711 A-law of one sample (ITU-T G.711: 13-bit magnitude, segment and step, even bits
/// inverted).
pub fn alaw(sample: i16) -> u8 {
    const SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut v = i32::from(sample) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let Some(seg) = SEGMENT_ENDS.iter().position(|end| v <= *end) else {
        return 0x7F ^ mask;
    };
    let step = if seg < 2 { v >> 1 } else { v >> seg } & 0x0F;
    (((seg as i32) << 4 | step) as u8) ^ mask
}

/// The codec of a tone capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToneCodec {
    /// PCMA, payload type 8.
    Pcma,
    /// Opus at 48 kHz, payload type 96 (phonebridge's own encoder).
    Opus,
}

/// Writes a capture SIPp can replay (`play_pcap_audio`): `secs` of a `freq` tone in `codec`,
/// 20 ms per RTP packet with stream `ssrc`, in Ethernet/IPv4/UDP frames.
pub fn write_tone_pcap(path: &Path, freq: f64, secs: f64, ssrc: u32, codec: ToneCodec) {
    let (rate, pt) = match codec {
        ToneCodec::Pcma => (8_000usize, 8u8),
        ToneCodec::Opus => (48_000, 96),
    };
    let frame = rate / 50;
    let mut opus = (codec == ToneCodec::Opus)
        .then(|| phonebridge_media::AudioEncoder::new(phonebridge_media::CodecKind::Opus));
    let mut out = Vec::new();
    // Global header: magic, version 2.4, zone, accuracy, snap length, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let packets = (secs * 50.0) as usize;
    for i in 0..packets {
        let mut rtp = vec![0x80, pt];
        rtp.extend_from_slice(&(i as u16).to_be_bytes());
        rtp.extend_from_slice(&((i * frame) as u32).to_be_bytes());
        rtp.extend_from_slice(&ssrc.to_be_bytes());
        let pcm: Vec<i16> = (0..frame)
            .map(|n| {
                let t = (i * frame + n) as f64 / rate as f64;
                (0.5 * 32767.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
            })
            .collect();
        match &mut opus {
            Some(enc) => enc.encode(&pcm, &mut rtp),
            None => rtp.extend(pcm.iter().map(|s| alaw(*s))),
        }
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut frame = Vec::with_capacity(14 + ip_len);
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(ip_len as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        let sum = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let folded = (sum & 0xffff) + (sum >> 16);
        let check = !((folded & 0xffff) + (folded >> 16)) as u16;
        ip[10..12].copy_from_slice(&check.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&40000u16.to_be_bytes());
        frame.extend_from_slice(&40002u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&rtp);
        let usec = i as u64 * 20_000;
        out.extend_from_slice(&((usec / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((usec % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap();
}
