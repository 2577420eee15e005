//! URIs: SIP/SIPS URIs parsed per RFC 3261 §19.1 and any other absolute URI kept opaque.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::SyntaxError;
use crate::text::{
    all_escaped_or, all_in, class, find_byte, rsplit_once_byte, split_byte, split_once_byte,
    unescape,
};

/// An ordered list of `;name[=value]` parameters. Values are kept as received
/// (quoted strings keep their quotes) so printing reproduces the input.
///
/// The list is held as its printed text (`;name=value;flag`), one buffer for all of it:
/// headers carry one to three parameters, and reading one back scans a few dozen bytes,
/// where a string per name and value cost an allocation each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(String);

impl Params {
    pub fn new() -> Self {
        Params(String::new())
    }

    /// An empty list with room for `bytes` of parameter text.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Params(String::with_capacity(bytes))
    }

    /// The value of parameter `name` (case-insensitive): `Some(None)` for a flag parameter.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of `name`, with surrounding quotes removed.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten().map(|v| {
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` (replacing an existing value, keeping its position).
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        if !self.contains(name) {
            self.push(name, value);
            return;
        }
        let mut out = Params::with_capacity(self.0.len() + value.map_or(0, str::len) + 1);
        for (n, v) in self.iter() {
            if n.eq_ignore_ascii_case(name) {
                out.push(n, value);
            } else {
                out.push(n, v);
            }
        }
        *self = out;
    }

    pub fn remove(&mut self, name: &str) {
        if !self.contains(name) {
            return;
        }
        let mut out = Params::with_capacity(self.0.len());
        for (n, v) in self.iter().filter(|(n, _)| !n.eq_ignore_ascii_case(name)) {
            out.push(n, v);
        }
        *self = out;
    }

    pub fn iter(&self) -> ParamIter<'_> {
        ParamIter(&self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends `;name[=value]`; both are checked by the caller (a token, or a value that is
    /// a token, a bracketed IPv6 reference or a complete quoted string).
    pub(crate) fn push(&mut self, name: &str, value: Option<&str>) {
        self.0.push(';');
        self.0.push_str(name);
        if let Some(v) = value {
            self.0.push('=');
            self.0.push_str(v);
        }
    }
}

/// The parameters of a [`Params`] in order, as `(name, value)`.
#[derive(Debug, Clone)]
pub struct ParamIter<'a>(&'a str);

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        // The text is ours: `;name` then `=value` or not; only a quoted value may hold `;`.
        let rest = self.0.strip_prefix(';')?;
        let mut end = find_byte(rest, b';').unwrap_or(rest.len());
        let (name, value) = match find_byte(&rest[..end], b'=') {
            None => (&rest[..end], None),
            Some(eq) => {
                if rest.as_bytes().get(eq + 1) == Some(&b'"') {
                    end = eq + 1 + quoted_len(&rest[eq + 1..]);
                    end += find_byte(&rest[end..], b';').unwrap_or(rest.len() - end);
                }
                (&rest[..eq], Some(&rest[eq + 1..end]))
            }
        };
        self.0 = &rest[end..];
        Some((name, value))
    }
}

/// The length of the quoted string `s` starts with, both quotes included (all of `s` if
/// it is unterminated).
fn quoted_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The host part of a SIP URI or Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// Parses a hostname, IPv4 address or bracketed IPv6 reference.
    pub fn parse(s: &str) -> Result<Host, SyntaxError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(SyntaxError::new("unterminated IPv6 reference"))?;
            return inner
                .parse::<Ipv6Addr>()
                .map(|a| Host::Ip(IpAddr::V6(a)))
                .map_err(|_| SyntaxError::new("bad IPv6 address"));
        }
        if s.is_empty() {
            return Err(SyntaxError::new("empty host"));
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            if let Some(a) = plain_dotted(s) {
                return Ok(Host::Ip(IpAddr::V4(a)));
            }
            return s
                .parse::<Ipv4Addr>()
                .map(|a| Host::Ip(IpAddr::V4(a)))
                .map_err(|_| SyntaxError::new("bad IPv4 address"));
        }
        let ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !ok || s.starts_with('-') || s.starts_with('.') {
            return Err(SyntaxError::new("bad host name"));
        }
        Ok(Host::Name(s.to_owned()))
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Name(_) => None,
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Self {
        Host::Ip(ip)
    }
}

/// The common dotted quad (four groups of digits, no leading zeros, each at most 255) read
/// directly: std's general parser costs several times more, and hosts are in every message.
/// Anything else returns `None` and goes to std's parser, which decides.
fn plain_dotted(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut n, mut value, mut digits) = (0, 0u16, 0);
    for c in s.bytes() {
        if c == b'.' {
            if digits == 0 || n == 3 {
                return None;
            }
            octets[n] = u8::try_from(value).ok()?;
            (n, value, digits) = (n + 1, 0, 0);
            continue;
        }
        let d = c.wrapping_sub(b'0');
        // A digit, at most three per group, and no leading zero.
        if d > 9 || digits == 3 || (digits == 1 && value == 0) {
            return None;
        }
        value = value * 10 + u16::from(d);
        digits += 1;
    }
    if n != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// An IPv4 address in dotted decimal, as `Ipv4Addr`'s `Display` writes it, into a buffer
/// on the stack (hosts are printed in every message we build; the formatter's padding
/// machinery costs more than the digits).
fn dotted(a: Ipv4Addr, buf: &mut [u8; 15]) -> &str {
    let mut n = 0;
    for (i, octet) in a.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            buf[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            buf[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + octet % 10;
        n += 1;
    }
    // Only ASCII digits and dots were written.
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

/// Appends `ip` as a URI host: dotted decimal, or a bracketed IPv6 reference.
pub(crate) fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => out.push_str(dotted(a, &mut [0; 15])),
        IpAddr::V6(a) => {
            use std::fmt::Write as _;
            let _ = write!(out, "[{a}]");
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V4(a)) => f.write_str(dotted(*a, &mut [0; 15])),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    /// The user part as received (escapes kept).
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// `?name=value` headers as received (escapes kept).
    pub headers: Vec<(String, String)>,
}

impl SipUri {
    pub fn new(host: Host) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: Vec::new(),
        }
    }

    /// The user part with `%HH` escapes decoded (lossy for invalid UTF-8).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user
            .as_deref()
            .map(|u| String::from_utf8_lossy(&unescape(u)).into_owned())
    }

    /// The `transport` URI parameter, lower-cased.
    pub fn transport(&self) -> Option<String> {
        self.params.value("transport").map(str::to_ascii_lowercase)
    }

    fn parse_rest(secure: bool, rest: &str) -> Result<SipUri, SyntaxError> {
        let (userinfo, hostpart) = match find_byte(rest, b'@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match find_byte(ui, b':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() || !all_escaped_or(u, class::USER) {
                    return Err(SyntaxError::new("bad user part in URI"));
                }
                if let Some(p) = p {
                    if !all_escaped_or(p, class::PASSWORD) {
                        return Err(SyntaxError::new("bad password in URI"));
                    }
                }
                (Some(u.to_owned()), p.map(str::to_owned))
            }
        };
        let (hostport_params, headers_part) = match find_byte(hostpart, b'?') {
            Some(q) => (&hostpart[..q], Some(&hostpart[q + 1..])),
            None => (hostpart, None),
        };
        let mut segs = split_byte(hostport_params, b';');
        let hostport = segs.next().unwrap_or_default();
        let (host_s, port) = split_host_port(hostport)?;
        let host = Host::parse(host_s)?;
        let mut params = Params::with_capacity(hostport_params.len() - hostport.len());
        for seg in segs {
            let (n, v) = match find_byte(seg, b'=') {
                Some(e) => (&seg[..e], Some(&seg[e + 1..])),
                None => (seg, None),
            };
            if n.is_empty() || !all_escaped_or(n, class::URI_PARAM) {
                return Err(SyntaxError::new("bad URI parameter"));
            }
            if let Some(v) = v {
                if v.is_empty() || !all_escaped_or(v, class::URI_PARAM) {
                    return Err(SyntaxError::new("bad URI parameter value"));
                }
            }
            params.push(n, v);
        }
        let mut headers = Vec::new();
        if let Some(hp) = headers_part {
            for h in split_byte(hp, b'&') {
                let (n, v) = split_once_byte(h, b'=').ok_or(SyntaxError::new("bad URI header"))?;
                if n.is_empty()
                    || !all_escaped_or(n, class::URI_HEADER)
                    || !all_escaped_or(v, class::URI_HEADER)
                {
                    return Err(SyntaxError::new("bad URI header"));
                }
                headers.push((n.to_owned(), v.to_owned()));
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }
}

/// Splits `host[:port]`, handling bracketed IPv6 references.
pub(crate) fn split_host_port(s: &str) -> Result<(&str, Option<u16>), SyntaxError> {
    let (host, port) = if s.starts_with('[') {
        let end = find_byte(s, b']').ok_or(SyntaxError::new("unterminated IPv6 reference"))?;
        match &s[end + 1..] {
            "" => (&s[..=end], None),
            p => (
                &s[..=end],
                Some(p.strip_prefix(':').ok_or(SyntaxError::new("bad port"))?),
            ),
        }
    } else {
        match rsplit_once_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(
            p.parse::<u16>()
                .map_err(|_| SyntaxError::new("port out of range"))?,
        ),
        Some(_) => return Err(SyntaxError::new("bad port")),
    };
    Ok((host, port))
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        for (i, (n, v)) in self.headers.iter().enumerate() {
            write!(f, "{}{n}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

/// Any URI a SIP message may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    /// Another absolute URI (`tel:`, `urn:`, `http:` …): scheme lower-cased, the rest opaque.
    Other {
        scheme: String,
        rest: String,
    },
}

impl Uri {
    /// Parses an absolute URI. SIP and SIPS URIs are parsed strictly; other schemes are
    /// accepted when the scheme is well formed and the rest holds no whitespace or delimiters.
    pub fn parse(s: &str) -> Result<Uri, SyntaxError> {
        let colon = find_byte(s, b':').ok_or(SyntaxError::new("URI without scheme"))?;
        let (scheme, rest) = (&s[..colon], &s[colon + 1..]);
        let scheme_ok =
            scheme.starts_with(|c: char| c.is_ascii_alphabetic()) && all_in(scheme, class::SCHEME);
        if !scheme_ok {
            return Err(SyntaxError::new("bad URI scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") {
            return SipUri::parse_rest(false, rest).map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_rest(true, rest).map(Uri::Sip);
        }
        let bad = |c: char| c.is_whitespace() || c.is_control() || "<>\"".contains(c);
        if rest.is_empty() || rest.chars().any(bad) {
            return Err(SyntaxError::new("bad URI"));
        }
        Ok(Uri::Other {
            scheme: scheme.to_ascii_lowercase(),
            rest: rest.to_owned(),
        })
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    pub fn as_sip_mut(&mut self) -> Option<&mut SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }

    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }
}

impl From<SipUri> for Uri {
    fn from(u: SipUri) -> Self {
        Uri::Sip(u)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

impl std::str::FromStr for Uri {
    type Err = SyntaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uri::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_read_back_quoted_values_flags_and_brackets_in_order() {
        let na = crate::NameAddr::parse(
            r#"<sip:a@h>;tag=x1 ; reason="a;b=\"c\";d" ;lr;maddr=[2001:db8::1];Q=0.5"#,
        )
        .unwrap();
        let p = &na.params;
        let all: Vec<_> = p.iter().collect();
        assert_eq!(
            all,
            [
                ("tag", Some("x1")),
                ("reason", Some(r#""a;b=\"c\";d""#)),
                ("lr", None),
                ("maddr", Some("[2001:db8::1]")),
                ("Q", Some("0.5")),
            ]
        );
        assert_eq!(p.value("reason"), Some(r#"a;b=\"c\";d"#));
        assert_eq!(p.get("q"), Some(Some("0.5")), "names are case-insensitive");
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("d"), None, "inside the quotes is not a parameter");
        assert_eq!(
            p.to_string(),
            r#";tag=x1;reason="a;b=\"c\";d";lr;maddr=[2001:db8::1];Q=0.5"#
        );
    }

    #[test]
    fn params_set_and_remove_keep_the_order_of_the_others() {
        let mut p = Params::new();
        assert!(p.is_empty());
        p.set("branch", Some("z9hG4bK1"));
        p.set("rport", None);
        p.set("received", Some("192.0.2.1"));
        p.set("RPORT", Some("5062"));
        assert_eq!(
            p.to_string(),
            ";branch=z9hG4bK1;rport=5062;received=192.0.2.1"
        );
        p.remove("branch");
        assert_eq!(p.to_string(), ";rport=5062;received=192.0.2.1");
        p.remove("nothing");
        p.remove("received");
        p.remove("rport");
        assert!(p.is_empty());
        assert_eq!(p, Params::new());
    }

    #[test]
    fn dotted_quads_parse_as_the_standard_library_parses_them() {
        for s in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.1.22.133",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.",
            ".1.2.3",
            "1000.1.1.1",
            "00.1.1.1",
        ] {
            let ours = Host::parse(s).ok().and_then(|h| h.ip());
            let std = s.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
            assert_eq!(ours, std, "{s}");
        }
    }

    #[test]
    fn hosts_print_as_the_standard_library_prints_addresses() {
        for a in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [10, 20, 100, 255],
            [192, 168, 9, 99],
        ] {
            let ip = Ipv4Addr::from(a);
            assert_eq!(Host::Ip(IpAddr::V4(ip)).to_string(), ip.to_string());
            let mut out = String::new();
            push_ip(&mut out, IpAddr::V4(ip));
            assert_eq!(out, ip.to_string());
        }
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut out = String::new();
        push_ip(&mut out, IpAddr::V6(v6));
        assert_eq!(out, "[2001:db8::1]");
        assert_eq!(Host::Ip(IpAddr::V6(v6)).to_string(), "[2001:db8::1]");
    }

    #[test]
    fn parses_full_sip_uri() {
        let u =
            Uri::parse("sips:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?Subject=hi&X=y").unwrap();
        let s = u.as_sip().unwrap();
        assert!(s.secure);
        assert_eq!(s.user.as_deref(), Some("alice"));
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(s.port, Some(5061));
        assert_eq!(s.transport().as_deref(), Some("tcp"));
        assert!(s.params.contains("lr"));
        assert_eq!(s.headers.len(), 2);
        assert_eq!(
            u.to_string(),
            "sips:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?Subject=hi&X=y"
        );
    }

    #[test]
    fn user_part_may_hold_semicolons() {
        // RFC 4475 §3.1.1.9: the `;par=` belongs to the user part.
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.user.as_deref(), Some("user;par=u%40example.net"));
        assert!(s.params.is_empty());
        assert_eq!(s.user_unescaped().unwrap(), "user;par=u@example.net");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "sip:",
            "sip:a@",
            "sip:host:99999",
            "sip:ho st",
            "sip:h;;x",
            "sip:[::1",
            "1ab:x",
            "sip:h?x",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_schemes_are_opaque() {
        let u = Uri::parse("tel:+1-555-0100;phone-context=example.com").unwrap();
        assert_eq!(u.scheme(), "tel");
        assert_eq!(u.to_string(), "tel:+1-555-0100;phone-context=example.com");
    }
}
