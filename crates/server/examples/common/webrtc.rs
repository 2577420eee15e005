//! The WebRTC side of the benchmark clients: REST calls, JSON-RPC signalling and str0m
//! peer connections in RTP mode, each on its own UDP socket.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

pub fn http(base: &str, secret: &str, method: &str, path: &str, body: &Value) -> Value {
    use base64::Engine as _;
    let addr = base.trim_start_matches("http://");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("OPENVIDUAPP:{secret}"));
    let body = body.to_string();
    let mut s = TcpStream::connect(addr).expect("server reachable");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let b = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(b).unwrap_or(Value::Null)
}

/// A JSON-RPC signalling connection.
pub struct Signal {
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    id: u64,
}

impl Signal {
    /// A new connection of `role` to `session`, joined (pinging every `ping_ms`).
    pub fn join(base: &str, secret: &str, session: &str, role: &str, ping_ms: u64) -> Signal {
        let token = http(
            base,
            secret,
            "POST",
            &format!("/openvidu/api/sessions/{session}/connection"),
            &json!({"role": role}),
        )["token"]
            .as_str()
            .expect("a token")
            .to_owned();
        let mut sig = Signal::open(&token);
        sig.call("ping", json!({"interval": ping_ms}));
        sig.call("joinRoom", json!({"token": token, "session": session, "platform": "bench", "sdkVersion": "2.32.2", "metadata": "", "secret": "", "recorder": false, "stt": false}));
        sig
    }

    pub fn open(token: &str) -> Signal {
        let (host, query) = token.split_once('?').unwrap();
        let sid = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("sessionId="))
            .unwrap();
        let (ws, _) =
            tungstenite::connect(format!("{host}/openvidu?sessionId={sid}")).expect("websocket");
        Signal { ws, id: 0 }
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let id = self.id;
        let msg =
            json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string();
        self.ws
            .send(tungstenite::Message::Text(msg.into()))
            .unwrap();
        loop {
            let m = self.ws.read().expect("signalling");
            let Ok(text) = m.into_text() else { continue };
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
        }
    }
}

/// A WebRTC client: its peer connection and its own UDP socket.
pub struct Client {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub timeout: Instant,
}

impl Client {
    pub fn new(now: Instant) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder().set_rtp_mode(true).build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        Client {
            rtc,
            socket,
            local,
            timeout: now,
        }
    }

    /// An offer with one audio and one video section in `dir`.
    pub fn offer(&mut self, dir: Direction) -> (SdpOffer, SdpPendingOffer, Mid, Mid) {
        let mut api = self.rtc.sdp_api();
        let a = api.add_media(MediaKind::Audio, dir, None, None, None);
        let v = api.add_media(MediaKind::Video, dir, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        (offer, pending, a, v)
    }

    pub fn accept(&mut self, pending: SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("answer parses");
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Sends what is due; returns the received packets' payloads with their arrival times.
    /// (str0m holds one received packet at a time in RTP mode: drain after every datagram.)
    pub fn drive(&mut self, now: Instant, got: &mut Vec<(Instant, Vec<u8>)>) {
        let mut buf = [0u8; 2000];
        while let Ok((n, source)) = self.socket.recv_from(&mut buf) {
            let at = Instant::now();
            if let Ok(r) = Receive::new(Protocol::Udp, source, self.local, &buf[..n]) {
                let _ = self.rtc.handle_input(Input::Receive(at, r));
            }
            self.poll(got);
        }
        if self.timeout <= now {
            let _ = self.rtc.handle_input(Input::Timeout(now));
        }
        self.poll(got);
    }

    pub fn poll(&mut self, got: &mut Vec<(Instant, Vec<u8>)>) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::RtpPacket(p))) => {
                    got.push((Instant::now(), p.payload.to_vec()))
                }
                Ok(Output::Event(_)) => {}
                Err(_) => break,
            }
        }
    }
}

pub fn connect_until(clients: &mut [&mut Client], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut sink = Vec::new();
    while clients.iter().any(|c| !c.rtc.is_connected()) {
        assert!(Instant::now() < deadline, "{what} did not connect");
        for c in clients.iter_mut() {
            c.drive(Instant::now(), &mut sink);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
