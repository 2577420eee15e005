//! The built-in `echo` user: answers, and sends every RTP packet back to where it came from,
//! so an operator can check a trunk, NAT traversal and round-trip latency.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Instant;

use phonebridge_sip::endpoint::request_user;
use phonebridge_sip::{CallHandle, Endpoint, Event};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::ports::PortPool;

/// What the echo user needs from an SDP offer (RFC 4566 subset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AudioOffer {
    /// Payload types offered, in order of preference.
    pub(crate) formats: Vec<u8>,
    /// Dynamic payload type of telephone-event/8000, if offered.
    pub(crate) dtmf: Option<u8>,
    /// The direction attribute of the audio stream (sendrecv when absent).
    pub(crate) direction: &'static str,
}

/// Parses the first audio m-line. `None` when there is none or it is rejected (port 0).
pub(crate) fn parse_offer(sdp: &str) -> Option<AudioOffer> {
    let mut in_audio = false;
    let mut seen_audio = false;
    let mut offer = AudioOffer {
        formats: Vec::new(),
        dtmf: None,
        direction: "sendrecv",
    };
    let mut session_dir = None;
    let mut media_dir = None;
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if seen_audio {
                in_audio = false;
                continue;
            }
            let mut it = m.split_whitespace();
            in_audio = it.next() == Some("audio");
            if in_audio {
                seen_audio = true;
                let port: u32 = it.next()?.split('/').next()?.parse().ok()?;
                if port == 0 {
                    return None;
                }
                let _proto = it.next()?;
                offer.formats = it.filter_map(|f| f.parse().ok()).collect();
            }
            continue;
        }
        let dir = match line {
            "a=sendrecv" => Some("sendrecv"),
            "a=sendonly" => Some("sendonly"),
            "a=recvonly" => Some("recvonly"),
            "a=inactive" => Some("inactive"),
            _ => None,
        };
        if let Some(d) = dir {
            if in_audio {
                media_dir = Some(d);
            } else if !seen_audio {
                session_dir = Some(d);
            }
        }
        if in_audio {
            if let Some(rest) = line.strip_prefix("a=rtpmap:") {
                let (pt, enc) = rest.split_once(' ')?;
                if enc.to_ascii_lowercase().starts_with("telephone-event/8000") {
                    offer.dtmf = pt.parse().ok();
                }
            }
        }
    }
    offer.direction = media_dir.or(session_dir).unwrap_or("sendrecv");
    seen_audio.then_some(offer)
}

/// The answer: the first of PCMU/PCMA the offer lists, telephone-event if offered, and the
/// mirrored direction (RFC 3264 §6.1). `None` when no codec is acceptable.
pub(crate) fn answer(offer: &AudioOffer, ip: IpAddr, port: u16, version: u64) -> Option<String> {
    let pt = *offer.formats.iter().find(|f| **f == 0 || **f == 8)?;
    let dir = match offer.direction {
        "sendonly" => "recvonly",
        "recvonly" => "sendonly",
        "inactive" => "inactive",
        _ => "sendrecv",
    };
    Some(sdp(ip, port, version, &[pt], offer.dtmf, dir))
}

/// Our offer for an INVITE that came without SDP: both G.711 laws and telephone-event.
pub(crate) fn offer(ip: IpAddr, port: u16, version: u64) -> String {
    sdp(ip, port, version, &[0, 8], Some(101), "sendrecv")
}

/// An audio session description listing `codecs` (static G.711 types), then `dtmf`.
fn sdp(ip: IpAddr, port: u16, version: u64, codecs: &[u8], dtmf: Option<u8>, dir: &str) -> String {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut fmts: Vec<String> = codecs.iter().map(u8::to_string).collect();
    fmts.extend(dtmf.map(|d| d.to_string()));
    let mut s = format!(
        "v=0\r\no=phonebridge {version} {version} IN {family} {ip}\r\ns=phonebridge\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\n",
        fmts.join(" ")
    );
    for pt in codecs {
        let name = if *pt == 0 { "PCMU" } else { "PCMA" };
        let _ = write!(s, "a=rtpmap:{pt} {name}/8000\r\n");
    }
    if let Some(d) = dtmf {
        let _ = write!(
            s,
            "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-16\r\n"
        );
    }
    let _ = write!(s, "a=ptime:20\r\na={dir}\r\n");
    s
}

struct EchoCall {
    /// The SDP version of our last answer (o= line), raised on each re-INVITE.
    version: u64,
}

/// The echo user's calls. All share one RTP/RTCP port pair: every packet goes back to the
/// address it came from, so calls cannot hear each other and no per-call socket is needed.
pub(crate) struct Echo {
    port: u16,
    bind_ip: IpAddr,
    calls: HashMap<CallHandle, EchoCall>,
    _reflector: JoinHandle<()>,
}

impl Echo {
    /// Binds the echo port pair from `ports` and starts its reflector (inside the runtime).
    pub(crate) fn new(mut ports: PortPool, bind_ip: IpAddr) -> std::io::Result<Self> {
        let (port, rtp, rtcp) = ports.allocate(bind_ip)?;
        let reflector = spawn_reflector(rtp, rtcp, None)?;
        Ok(Echo {
            port,
            bind_ip,
            calls: HashMap::new(),
            _reflector: reflector,
        })
    }

    /// The answer to an offer (or our offer when `body` is empty); `None` when unacceptable.
    fn sdp_for(&self, ip: IpAddr, body: &[u8], version: u64) -> Option<String> {
        let text = String::from_utf8_lossy(body);
        if text.trim().is_empty() {
            return Some(offer(ip, self.port, version));
        }
        answer(&parse_offer(&text)?, ip, self.port, version)
    }
}

impl crate::sip_driver::App for Echo {
    fn active(&self) -> usize {
        self.calls.len()
    }

    fn on_event(&mut self, ep: &mut Endpoint, now: Instant, ev: &Event) {
        match ev {
            Event::IncomingCall {
                call,
                request,
                peer,
            } => {
                if request_user(&request.uri).as_deref() != Some("echo") {
                    // Every unknown user gets the same answer: nothing about who exists leaks.
                    let _ = ep.respond(now, *call, 404, None);
                    return;
                }
                match self.sdp_for(peer.local.ip(), &request.body, 1) {
                    Some(sdp) => {
                        tracing::debug!(port = self.port, "echo call answered");
                        self.calls.insert(*call, EchoCall { version: 1 });
                        let _ = ep.respond(
                            now,
                            *call,
                            200,
                            Some(("application/sdp", sdp.into_bytes())),
                        );
                    }
                    None => {
                        let _ = ep.respond(now, *call, 488, None);
                    }
                }
            }
            Event::Offer { call, body, .. } => {
                let ip = ep_local_ip(ep, *call).unwrap_or(self.bind_ip);
                let Some(version) = self.calls.get_mut(call).map(|c| {
                    c.version += 1;
                    c.version
                }) else {
                    return;
                };
                let _ = match self.sdp_for(ip, body, version) {
                    Some(sdp) => ep.answer_offer(
                        now,
                        *call,
                        200,
                        Some(("application/sdp", sdp.into_bytes())),
                    ),
                    None => ep.answer_offer(now, *call, 488, None),
                };
            }
            Event::Ended { call, reason } => {
                if self.calls.remove(call).is_some() {
                    tracing::debug!(?reason, "echo call ended");
                }
            }
            // Registration events are the driver's; the rest needs nothing from the echo user.
            Event::Confirmed { .. }
            | Event::Info { .. }
            | Event::Progress { .. }
            | Event::Answered { .. }
            | Event::Registered { .. }
            | Event::RegistrationFailed { .. } => {}
        }
    }
}

pub(crate) fn ep_local_ip(ep: &Endpoint, call: CallHandle) -> Option<IpAddr> {
    ep.call_peer(call).map(|p| p.local.ip())
}

/// Sends each RTP packet back to its source (symmetric RTP), counting them in `received`;
/// drains RTCP.
pub(crate) fn spawn_reflector(
    rtp: std::net::UdpSocket,
    rtcp: std::net::UdpSocket,
    received: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
) -> std::io::Result<JoinHandle<()>> {
    rtp.set_nonblocking(true)?;
    rtcp.set_nonblocking(true)?;
    let rtp = UdpSocket::from_std(rtp)?;
    let rtcp = UdpSocket::from_std(rtcp)?;
    Ok(tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let mut cbuf = vec![0u8; 2048];
        loop {
            tokio::select! {
                r = rtp.recv_from(&mut buf) => match r {
                    Ok((n, src)) => {
                        if let Some(c) = &received {
                            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        let _ = rtp.send_to(&buf[..n], src).await;
                    }
                    Err(e) => tracing::trace!(error = %e, "echo rtp recv"),
                },
                r = rtcp.recv_from(&mut cbuf) => if let Err(e) = r { tracing::trace!(error = %e, "echo rtcp recv") },
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_first_g711_and_mirrors_direction() {
        let o = parse_offer("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 9 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\nm=video 0 RTP/AVP 96\r\na=recvonly\r\n").unwrap();
        assert_eq!(o.formats, [9, 8, 0, 101]);
        assert_eq!(o.dtmf, Some(101));
        assert_eq!(o.direction, "sendonly");
        let a = answer(&o, "127.0.0.1".parse().unwrap(), 20000, 1).unwrap();
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101\r\n"));
        assert!(a.contains("a=rtpmap:8 PCMA/8000"));
        assert!(a.contains("a=recvonly"));
    }

    #[test]
    fn rejects_offers_without_g711_or_audio() {
        let o = parse_offer("v=0\r\nm=audio 4000 RTP/AVP 9\r\n").unwrap();
        assert!(answer(&o, "127.0.0.1".parse().unwrap(), 20000, 1).is_none());
        assert!(parse_offer("v=0\r\nm=video 4000 RTP/AVP 96\r\n").is_none());
        assert!(parse_offer("v=0\r\nm=audio 0 RTP/AVP 0\r\n").is_none());
    }

    #[test]
    fn offer_lists_both_g711_laws_and_dtmf() {
        let s = offer("::1".parse().unwrap(), 20002, 3);
        assert!(s.contains("c=IN IP6 ::1"));
        assert!(s.contains("m=audio 20002 RTP/AVP 0 8 101"));
        assert!(s.contains("a=rtpmap:8 PCMA/8000"));
    }
}
