//! A scripted SIP peer and a virtual clock around one [`Endpoint`].
#![allow(dead_code, unreachable_pub, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use phonebridge_sip::{CallHandle, Endpoint, EndpointConfig, Event, Peer, TransportKind};

pub struct Harness {
    pub ep: Endpoint,
    pub t0: Instant,
    pub now: Instant,
    pub peer: Peer,
    pub sent: Vec<(f64, Peer, String)>,
    pub events: Vec<(f64, Event)>,
}

pub const LOCAL: &str = "127.0.0.1:5060";
pub const REMOTE: &str = "192.0.2.10:5062";

impl Harness {
    pub fn new(cfg: EndpointConfig) -> Self {
        let t0 = Instant::now();
        Harness {
            ep: Endpoint::new(cfg),
            t0,
            now: t0,
            peer: Peer {
                transport: TransportKind::Udp,
                remote: REMOTE.parse().unwrap(),
                local: LOCAL.parse().unwrap(),
                conn: None,
            },
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn udp() -> Self {
        let mut cfg = EndpointConfig::default();
        cfg.guard.trusted.push("192.0.2.0/24".parse().unwrap());
        Self::new(cfg)
    }

    pub fn secs(&self) -> f64 {
        (self.now - self.t0).as_secs_f64()
    }

    /// Delivers `msg` (with `\n` line ends turned into CRLF) from the scripted peer.
    pub fn recv(&mut self, msg: &str) {
        self.recv_from(self.peer.remote, msg);
    }

    pub fn recv_from(&mut self, from: SocketAddr, msg: &str) {
        let bytes = msg.replace("\r\n", "\n").replace('\n', "\r\n");
        let mut p = self.peer.clone();
        p.remote = from;
        self.ep.handle_datagram(self.now, p, bytes.as_bytes());
        self.drain();
    }

    pub fn drain(&mut self) {
        let t = self.secs();
        while let Some((p, b)) = self.ep.poll_transmit() {
            self.sent
                .push((t, p, String::from_utf8_lossy(&b).into_owned()));
        }
        while let Some(e) = self.ep.poll_event() {
            self.events.push((t, e));
        }
    }

    /// Runs timers until `secs` after the origin.
    pub fn run_until(&mut self, secs: f64) {
        let end = self.t0 + Duration::from_secs_f64(secs);
        for _ in 0..100_000 {
            match self.ep.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.ep.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }

    /// Messages sent so far whose first line starts with `start`, with their times.
    pub fn sent_starting(&self, start: &str) -> Vec<(f64, String)> {
        self.sent
            .iter()
            .filter(|(_, _, m)| m.starts_with(start))
            .map(|(t, _, m)| (*t, m.clone()))
            .collect()
    }

    pub fn take_sent(&mut self) -> Vec<String> {
        self.sent.drain(..).map(|(_, _, m)| m).collect()
    }

    pub fn take_events(&mut self) -> Vec<Event> {
        self.events.drain(..).map(|(_, e)| e).collect()
    }
}

pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

pub fn to_tag(msg: &str) -> String {
    let to = header(msg, "To").expect("To");
    to.split(";tag=")
        .nth(1)
        .expect("To tag")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

pub const SDP: &str =
    "v=0\no=- 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 40000 RTP/AVP 0 8\n";

pub fn invite(call_id: &str, branch: &str, cseq: u32, body: &str) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    format!(
        "INVITE sip:echo@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch={branch};rport\nMax-Forwards: 70\nFrom: \"Alice\" <sip:alice@192.0.2.10>;tag=a1\nTo: <sip:echo@127.0.0.1>\nCall-ID: {call_id}\nCSeq: {cseq} INVITE\nContact: <sip:alice@192.0.2.10:5062>\n{ct}Content-Length: {}\n\n{}",
        body.replace('\n', "\r\n").len(),
        body
    )
}

/// A request inside the dialog set up by [`invite`], with our tag `tag`.
pub fn in_dialog(
    method: &str,
    call_id: &str,
    tag: &str,
    branch: &str,
    cseq: u32,
    cseq_method: &str,
    body: &str,
) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\n"
    };
    format!(
        "{method} sip:phonebridge@127.0.0.1:5060 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch={branch};rport\nMax-Forwards: 70\nFrom: \"Alice\" <sip:alice@192.0.2.10>;tag=a1\nTo: <sip:echo@127.0.0.1>;tag={tag}\nCall-ID: {call_id}\nCSeq: {cseq} {cseq_method}\nContact: <sip:alice@192.0.2.10:5062>\n{ct}Content-Length: {}\n\n{}",
        body.replace('\n', "\r\n").len(),
        body
    )
}

/// A response from the far end to `req`, with To tag `tag` and extra header lines.
pub fn reply(req: &str, status: u16, tag: Option<&str>, extra: &str, body: &str) -> String {
    let mut r = format!("SIP/2.0 {status} X\n");
    for line in req.lines() {
        let name = line.split(':').next().unwrap_or("");
        if ["Via", "From", "Call-ID", "CSeq"].contains(&name) {
            r.push_str(line.trim_end());
            r.push('\n');
        }
        if name == "To" {
            r.push_str(line.trim_end());
            if let Some(t) = tag {
                r.push_str(&format!(";tag={t}"));
            }
            r.push('\n');
        }
    }
    r.push_str("Contact: <sip:callee@192.0.2.10:5062>\n");
    r.push_str(extra);
    let body = body.replace('\n', "\r\n");
    if !body.is_empty() {
        r.push_str("Content-Type: application/sdp\n");
    }
    r.push_str(&format!("Content-Length: {}\n\n{body}", body.len()));
    r
}

/// The call of the single IncomingCall event the last inputs produced.
pub fn incoming_call(h: &mut Harness) -> CallHandle {
    match &h.take_events()[..] {
        [Event::IncomingCall { call, .. }] => *call,
        other => panic!("expected one IncomingCall, got {other:?}"),
    }
}

/// An INVITE (with `extra` header lines) answered 200 with our SDP `v=0 o=pb` and ACKed;
/// returns the call, our To tag and the 200 as sent.
pub fn answered_call(h: &mut Harness, extra: &str) -> (CallHandle, String, String) {
    let inv = invite("c1", "z9hG4bKinv1", 1, SDP)
        .replace("Max-Forwards: 70\n", &format!("Max-Forwards: 70\n{extra}"));
    h.recv(&inv);
    let call = incoming_call(h);
    h.ep.respond(
        h.now,
        call,
        200,
        Some(("application/sdp", b"v=0\r\no=pb\r\n".to_vec())),
    )
    .unwrap();
    h.drain();
    let ok = h.sent_starting("SIP/2.0 200").pop().expect("200").1;
    let tag = to_tag(&ok);
    h.recv(&in_dialog("ACK", "c1", &tag, "z9hG4bKack1", 1, "ACK", ""));
    h.take_events();
    (call, tag, ok)
}
