//! The session description (RFC 4566) as phones and trunks write it: parsed leniently, printed
//! canonically, with every line we do not interpret kept so that it survives a round trip.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use crate::SdpError;

/// Largest description accepted; SIP bodies are far smaller in practice.
pub const MAX_LEN: usize = 64 * 1024;
/// Most media sections accepted in one description.
pub const MAX_MEDIA: usize = 32;

/// A line kept verbatim: its type letter and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: char,
    pub value: String,
}

/// `a=name[:value]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: Cow<'static, str>,
    pub value: Option<String>,
}

/// Attribute names that offers and answers carry nearly always, shared rather than copied.
const COMMON_ATTRIBUTES: [&str; 16] = [
    "rtpmap",
    "fmtp",
    "ptime",
    "maxptime",
    "sendrecv",
    "sendonly",
    "recvonly",
    "inactive",
    "rtcp",
    "rtcp-mux",
    "crypto",
    "ssrc",
    "mid",
    "setup",
    "fingerprint",
    "candidate",
];

fn attribute_name(name: &str) -> Cow<'static, str> {
    shared(name, &COMMON_ATTRIBUTES)
}

/// `token` as the equal constant of `known` when there is one, otherwise a copy.
fn shared(token: &str, known: &[&'static str]) -> Cow<'static, str> {
    match known.iter().find(|k| **k == token) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(token.to_owned()),
    }
}

impl Attribute {
    pub fn flag(name: &str) -> Self {
        Attribute {
            name: attribute_name(name),
            value: None,
        }
    }

    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Attribute {
            name: attribute_name(name),
            value: Some(value.into()),
        }
    }
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: Cow<'static, str>,
    pub session_id: String,
    pub version: String,
    pub address: Connection,
}

/// `c=<nettype> <addrtype> <address>` (the address may carry a multicast TTL suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub net_type: Cow<'static, str>,
    pub addr_type: Cow<'static, str>,
    pub address: String,
}

/// `token` as a shared constant when it is one of the usual `c=`/`o=` field values, which
/// nearly every description uses; otherwise a copy.
fn common(token: &str) -> Cow<'static, str> {
    shared(token, &["IN", "IP4", "IP6"])
}

impl Connection {
    /// `IN IP4|IP6 <ip>` for a local address.
    pub fn from_ip(ip: IpAddr) -> Self {
        Connection {
            net_type: Cow::Borrowed("IN"),
            addr_type: Cow::Borrowed(if ip.is_ipv4() { "IP4" } else { "IP6" }),
            address: ip.to_string(),
        }
    }

    /// The address as an IP; `None` for host names and malformed text.
    pub fn ip(&self) -> Option<IpAddr> {
        let host = self.address.split('/').next().unwrap_or_default();
        host.parse().ok()
    }

    fn parse(value: &str) -> Option<Self> {
        let mut it = value.split_ascii_whitespace();
        let c = Connection {
            net_type: common(it.next()?),
            addr_type: common(it.next()?),
            address: it.next()?.to_owned(),
        };
        it.next().is_none().then_some(c)
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

/// The media direction attribute (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The direction an answerer takes for an offered one: what the peer sends we receive.
    pub fn reversed(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    /// Whether this side sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The common part of two wishes for one side (e.g. what we want and what the offer allows).
    pub fn intersect(self, other: Direction) -> Direction {
        match (
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        ) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// As written in the description (compare it case-insensitively).
    pub encoding: &'a str,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// One `m=` section with everything under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `application`, …
    pub kind: Cow<'static, str>,
    pub port: u16,
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `RTP/AVPF`, `UDP/TLS/RTP/SAVPF`, …
    pub proto: Cow<'static, str>,
    /// Payload formats as written (numbers for RTP profiles).
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    /// `i=`, `b=`, `k=` lines, kept verbatim.
    pub extra: Vec<Line>,
    pub attributes: Vec<Attribute>,
}

impl Media {
    /// All values of attribute `name`.
    pub fn attrs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        attrs(&self.attributes, name)
    }

    /// The value of the first attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or(""))
    }

    /// Whether the flag attribute `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The direction attribute of this section, if it has one.
    pub fn direction(&self) -> Option<Direction> {
        direction(&self.attributes)
    }

    /// Whether the section is rejected or disabled (port 0).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// Payload types as numbers, skipping anything that is not one.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    /// The rtpmap of payload type `pt`.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap<'_>> {
        self.attrs("rtpmap").find_map(|v| {
            let (p, rest) = v.split_once(char::is_whitespace)?;
            if p.trim().parse::<u8>().ok()? != pt {
                return None;
            }
            let mut parts = rest.trim().split('/');
            let encoding = parts.next()?;
            let clock_rate = parts.next()?.trim().parse().ok()?;
            let channels = match parts.next() {
                Some(c) => Some(c.trim().parse().ok()?),
                None => None,
            };
            Some(RtpMap {
                encoding,
                clock_rate,
                channels,
            })
        })
    }

    /// The format parameters of payload type `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attrs("fmtp").find_map(|v| {
            let (p, rest) = v.split_once(char::is_whitespace)?;
            (p.trim().parse::<u8>().ok()? == pt).then(|| rest.trim())
        })
    }

    /// `a=ptime` in milliseconds.
    pub fn ptime(&self) -> Option<u32> {
        parse_ms(self.attr("ptime")?)
    }

    /// `a=maxptime` in milliseconds.
    pub fn maxptime(&self) -> Option<u32> {
        parse_ms(self.attr("maxptime")?)
    }

    /// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
    pub fn rtcp(&self) -> Option<(u16, Option<Connection>)> {
        let v = self.attr("rtcp")?.trim();
        let (port, rest) = v.split_once(' ').unwrap_or((v, ""));
        let port = port.parse().ok()?;
        Some((port, Connection::parse(rest)))
    }
}

/// Milliseconds as written in `ptime`/`maxptime`; some peers write fractions ("20.0").
fn parse_ms(v: &str) -> Option<u32> {
    let v = v.trim();
    let whole = v.split('.').next()?;
    whole.parse().ok().filter(|ms| (1..=1000).contains(ms))
}

fn attrs<'a>(list: &'a [Attribute], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    list.iter()
        .filter(move |a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_deref().unwrap_or(""))
}

fn direction(list: &[Attribute]) -> Option<Direction> {
    list.iter()
        .filter(|a| a.value.is_none())
        .find_map(|a| Direction::from_name(&a.name.to_ascii_lowercase()))
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    pub name: Cow<'static, str>,
    pub connection: Option<Connection>,
    /// `t=` values in order (at least one when printed).
    pub timing: Vec<Cow<'static, str>>,
    /// Session-level `i=`, `u=`, `e=`, `p=`, `b=`, `r=`, `z=`, `k=` lines, kept verbatim.
    pub extra: Vec<Line>,
    pub attributes: Vec<Attribute>,
    pub media: Vec<Media>,
}

impl SessionDescription {
    /// Parses a description. Tolerates LF line ends, trailing whitespace, a missing `s=`/`t=`
    /// and unknown line types (kept); rejects what cannot be understood as SDP at all.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        if text.len() > MAX_LEN {
            return Err(SdpError::TooLarge);
        }
        let mut lines = text
            .split('\n')
            .map(|l| l.trim_end_matches(['\r', ' ', '\t']))
            .enumerate()
            .filter(|(_, l)| !l.is_empty());
        match lines.next() {
            Some((_, "v=0")) => {}
            Some((n, _)) => return Err(SdpError::BadLine(n + 1)),
            None => return Err(SdpError::Empty),
        }
        // The origin is filled in from the o= line; a description without one gets a
        // placeholder at the end (built only then: nearly every offer has its o= line).
        let mut origin = None;
        let mut sd = SessionDescription {
            origin: Origin {
                username: Cow::Borrowed(""),
                session_id: String::new(),
                version: String::new(),
                address: Connection {
                    net_type: Cow::Borrowed(""),
                    addr_type: Cow::Borrowed(""),
                    address: String::new(),
                },
            },
            name: "-".into(),
            connection: None,
            timing: Vec::new(),
            extra: Vec::new(),
            attributes: Vec::new(),
            media: Vec::new(),
        };
        for (n, line) in lines {
            let bad = || SdpError::BadLine(n + 1);
            let (kind, value) = line.split_at_checked(2).ok_or_else(bad)?;
            let mut chars = kind.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
                return Err(bad());
            };
            if !kind.is_ascii_lowercase() {
                return Err(bad());
            }
            let value = value.trim_start();
            if kind == 'm' {
                if sd.media.len() == MAX_MEDIA {
                    return Err(SdpError::TooManyMedia);
                }
                sd.media.push(parse_media(value).ok_or_else(bad)?);
                continue;
            }
            match sd.media.last_mut() {
                Some(m) => match kind {
                    'c' => m.connection = Some(Connection::parse(value).ok_or_else(bad)?),
                    'a' => m.attributes.push(parse_attribute(value)),
                    _ => m.extra.push(Line {
                        kind,
                        value: value.to_owned(),
                    }),
                },
                None => match kind {
                    'o' => origin = Some(parse_origin(value).ok_or_else(bad)?),
                    's' => sd.name = Cow::Owned(value.to_owned()),
                    'c' => sd.connection = Some(Connection::parse(value).ok_or_else(bad)?),
                    't' => sd.timing.push(shared(value, &["0 0"])),
                    'a' => sd.attributes.push(parse_attribute(value)),
                    _ => sd.extra.push(Line {
                        kind,
                        value: value.to_owned(),
                    }),
                },
            }
        }
        sd.origin = origin.unwrap_or_else(|| Origin {
            username: "-".into(),
            session_id: "0".into(),
            version: "0".into(),
            address: Connection::from_ip(IpAddr::from([0, 0, 0, 0])),
        });
        Ok(sd)
    }

    /// The session-level value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or(""))
    }

    /// A section's direction, falling back to the session level, then to sendrecv.
    pub fn direction_of(&self, media: &Media) -> Direction {
        media
            .direction()
            .or_else(|| direction(&self.attributes))
            .unwrap_or(Direction::SendRecv)
    }

    /// The connection that applies to a section (its own, else the session's).
    pub fn connection_of<'a>(&'a self, media: &'a Media) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let mut f = value.split_ascii_whitespace();
    let mut field = || f.next();
    let origin = Origin {
        username: Cow::Owned(field()?.to_owned()),
        session_id: field()?.to_owned(),
        version: field()?.to_owned(),
        address: Connection {
            net_type: common(field()?),
            addr_type: common(field()?),
            address: field()?.to_owned(),
        },
    };
    field().is_none().then_some(origin)
}

fn parse_media(value: &str) -> Option<Media> {
    let mut it = value.split_ascii_whitespace();
    let kind = shared(
        it.next()?,
        &["audio", "video", "application", "text", "message"],
    );
    let port_field = it.next()?;
    let (port, count) = match port_field.split_once('/') {
        Some((p, c)) => (p.parse().ok()?, Some(c.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = shared(
        it.next()?,
        &[
            "RTP/AVP",
            "RTP/SAVP",
            "RTP/AVPF",
            "RTP/SAVPF",
            "UDP/TLS/RTP/SAVPF",
        ],
    );
    Some(Media {
        kind,
        port,
        port_count: count,
        proto,
        formats: it.map(str::to_owned).collect(),
        connection: None,
        extra: Vec::new(),
        attributes: Vec::new(),
    })
}

fn parse_attribute(value: &str) -> Attribute {
    match value.split_once(':') {
        Some((name, v)) => Attribute::new(name, v),
        None => Attribute::flag(value),
    }
}

/// Where a kept line goes when printed, per the order RFC 4566 §5 fixes.
fn rank(kind: char) -> u8 {
    match kind {
        'i' => 0,
        'u' => 1,
        'e' => 2,
        'p' => 3,
        // c= goes here
        'b' => 5,
        // t= goes here
        'r' => 7,
        'z' => 8,
        'k' => 9,
        _ => 10,
    }
}

fn write_extra(out: &mut String, lines: &[Line], ranks: std::ops::RangeInclusive<u8>) {
    for l in lines.iter().filter(|l| ranks.contains(&rank(l.kind))) {
        let _ = write!(out, "{}={}\r\n", l.kind, l.value);
    }
}

fn write_attributes(out: &mut String, attrs: &[Attribute]) {
    for a in attrs {
        out.push_str("a=");
        out.push_str(&a.name);
        if let Some(v) = &a.value {
            out.push(':');
            out.push_str(v);
        }
        out.push_str("\r\n");
    }
}

/// Appends `c=`'s three fields (without the `c=`).
fn push_connection(out: &mut String, c: &Connection) {
    for (i, field) in [&*c.net_type, &*c.addr_type, &c.address]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(field);
    }
}

impl SessionDescription {
    /// The description as SDP text (what `Display` prints), built in one buffer.
    pub fn print(&self) -> String {
        let mut s = String::with_capacity(512);
        let o = &self.origin;
        s.push_str("v=0\r\no=");
        for field in [&*o.username, &o.session_id, &o.version] {
            s.push_str(field);
            s.push(' ');
        }
        push_connection(&mut s, &o.address);
        s.push_str("\r\ns=");
        s.push_str(&self.name);
        s.push_str("\r\n");
        write_extra(&mut s, &self.extra, 0..=3);
        if let Some(c) = &self.connection {
            s.push_str("c=");
            push_connection(&mut s, c);
            s.push_str("\r\n");
        }
        write_extra(&mut s, &self.extra, 5..=5);
        if self.timing.is_empty() {
            s.push_str("t=0 0\r\n");
        }
        for t in &self.timing {
            s.push_str("t=");
            s.push_str(t);
            s.push_str("\r\n");
        }
        write_extra(&mut s, &self.extra, 7..=10);
        write_attributes(&mut s, &self.attributes);
        for m in &self.media {
            let _ = write!(s, "m={} {}", m.kind, m.port);
            if let Some(n) = m.port_count {
                let _ = write!(s, "/{n}");
            }
            s.push(' ');
            s.push_str(&m.proto);
            for fmt in &m.formats {
                s.push(' ');
                s.push_str(fmt);
            }
            s.push_str("\r\n");
            write_extra(&mut s, &m.extra, 0..=0);
            if let Some(c) = &m.connection {
                s.push_str("c=");
                push_connection(&mut s, c);
                s.push_str("\r\n");
            }
            write_extra(&mut s, &m.extra, 1..=10);
            write_attributes(&mut s, &m.attributes);
        }
        s
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.print())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWILIO: &str = "v=0\r\no=root 1188282917 1188282917 IN IP4 54.172.60.1\r\ns=Twilio Media Gateway\r\nc=IN IP4 54.172.60.1\r\nt=0 0\r\nm=audio 17304 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=maxptime:150\r\na=sendrecv\r\n";

    #[test]
    fn parses_a_trunk_offer() {
        let sd = SessionDescription::parse(TWILIO).unwrap();
        assert_eq!(sd.origin.session_id, "1188282917");
        assert_eq!(
            sd.connection.as_ref().unwrap().ip(),
            Some("54.172.60.1".parse().unwrap())
        );
        let m = &sd.media[0];
        assert_eq!((&*m.kind, m.port, &*m.proto), ("audio", 17304, "RTP/AVP"));
        assert_eq!(m.payload_types().collect::<Vec<_>>(), [0, 101]);
        assert_eq!(m.rtpmap(101).unwrap().encoding, "telephone-event");
        assert_eq!(m.fmtp(101), Some("0-16"));
        assert_eq!((m.ptime(), m.maxptime()), (Some(20), Some(150)));
        assert_eq!(sd.direction_of(m), Direction::SendRecv);
    }

    #[test]
    fn prints_what_it_parsed() {
        let sd = SessionDescription::parse(TWILIO).unwrap();
        assert_eq!(sd.to_string(), TWILIO);
    }

    #[test]
    fn keeps_unknown_lines_and_puts_them_in_rfc_order() {
        let text = "v=0\no=- 1 2 IN IP6 ::1\ns=x\nb=AS:64\nc=IN IP6 ::1\nt=0 0\ni=info\nm=audio 5 RTP/AVP 0\nb=TIAS:64000\nc=IN IP6 ::2\ny=unknown\na=sendonly\n";
        let sd = SessionDescription::parse(text).unwrap();
        let out = sd.to_string();
        assert_eq!(
            out,
            "v=0\r\no=- 1 2 IN IP6 ::1\r\ns=x\r\ni=info\r\nc=IN IP6 ::1\r\nb=AS:64\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\nc=IN IP6 ::2\r\nb=TIAS:64000\r\ny=unknown\r\na=sendonly\r\n"
        );
        assert_eq!(SessionDescription::parse(&out).unwrap().to_string(), out);
    }

    #[test]
    fn media_connection_overrides_session_and_session_direction_applies() {
        let sd = SessionDescription::parse(
            "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\ns=-\r\nc=IN IP4 1.1.1.1\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 8\r\nc=IN IP4 2.2.2.2\r\nm=video 0 RTP/AVP 96\r\n",
        )
        .unwrap();
        assert_eq!(sd.connection_of(&sd.media[0]).unwrap().address, "2.2.2.2");
        assert_eq!(sd.direction_of(&sd.media[0]), Direction::SendOnly);
        assert!(sd.media[1].is_rejected());
    }

    #[test]
    fn rejects_what_is_not_sdp() {
        assert_eq!(SessionDescription::parse(""), Err(SdpError::Empty));
        assert_eq!(
            SessionDescription::parse("hello"),
            Err(SdpError::BadLine(1))
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\nm=audio x RTP/AVP 0\r\n"),
            Err(SdpError::BadLine(2))
        );
        assert_eq!(
            SessionDescription::parse("v=0\r\nBAD\r\n"),
            Err(SdpError::BadLine(2))
        );
        let big = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_LEN / 4));
        assert_eq!(SessionDescription::parse(&big), Err(SdpError::TooLarge));
        let many = format!("v=0\r\n{}", "m=audio 1 RTP/AVP 0\r\n".repeat(MAX_MEDIA + 1));
        assert_eq!(
            SessionDescription::parse(&many),
            Err(SdpError::TooManyMedia)
        );
    }

    #[test]
    fn direction_algebra() {
        assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
        assert_eq!(
            Direction::SendRecv.intersect(Direction::RecvOnly),
            Direction::RecvOnly
        );
        assert_eq!(
            Direction::SendOnly.intersect(Direction::RecvOnly),
            Direction::Inactive
        );
    }

    #[test]
    fn rtcp_attribute_with_and_without_address() {
        let sd = SessionDescription::parse(
            "v=0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:53020 IN IP4 126.16.64.4\r\na=ptime:20.0\r\n",
        )
        .unwrap();
        assert_eq!(sd.media[0].rtcp(), Some((4005, None)));
        let (port, c) = sd.media[1].rtcp().unwrap();
        assert_eq!((port, c.unwrap().address.as_str()), (53020, "126.16.64.4"));
        assert_eq!(sd.media[1].ptime(), Some(20));
    }
}
