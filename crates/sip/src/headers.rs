//! Typed header values, parsed from the raw field text on demand (RFC 3261 §20, §25).

use std::borrow::Cow;
use std::fmt;

use crate::error::SyntaxError;
use crate::message::Method;
use crate::text::{all_in, class, find_byte, quote, split_once_byte, unquote, Scanner};
use crate::uri::{Host, Params, Uri};

/// Parses `*( SEMI generic-param )`; an empty parameter (`;;`) is an error.
fn parse_params(sc: &mut Scanner<'_>) -> Result<Params, SyntaxError> {
    let mut params = Params::new();
    while sc.eat_sep(';') {
        if params.is_empty() {
            // Parameters end the value: what is left bounds their text.
            params = Params::with_capacity(sc.rest().len() + 1);
        }
        let name = sc
            .token()
            .ok_or(SyntaxError::new("empty or bad parameter"))?;
        let value = if sc.eat_sep('=') {
            let v = if sc.peek() == Some('"') {
                let start = sc.pos();
                sc.quoted()
                    .ok_or(SyntaxError::new("unterminated quoted parameter"))?;
                sc.slice(start)
            } else if sc.peek() == Some('[') {
                let start = sc.pos();
                sc.take_while(|c| c != b']');
                if !sc.eat(']') {
                    return Err(SyntaxError::new("unterminated IPv6 reference"));
                }
                sc.slice(start)
            } else {
                sc.token()
                    .ok_or(SyntaxError::new("empty parameter value"))?
            };
            Some(v)
        } else {
            None
        };
        params.push(name, value);
    }
    Ok(params)
}

fn expect_end(sc: &mut Scanner<'_>, what: &'static str) -> Result<(), SyntaxError> {
    sc.skip_ws();
    if sc.at_end() {
        Ok(())
    } else {
        Err(SyntaxError::new(what))
    }
}

/// One Via value: `SIP/2.0/<transport> sent-by *(;param)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper-cased transport token (`UDP`, `TCP`, `TLS`, `WS`, or an extension).
    pub transport: Cow<'static, str>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

/// An upper-cased Via transport token, shared when it is one of the usual ones.
fn transport_name(token: &str) -> Cow<'static, str> {
    ["UDP", "TCP", "TLS", "WS", "WSS", "SCTP"]
        .into_iter()
        .find(|t| t.eq_ignore_ascii_case(token))
        .map_or_else(|| Cow::Owned(token.to_ascii_uppercase()), Cow::Borrowed)
}

/// The RFC 3261 branch cookie.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

impl Via {
    pub fn parse(s: &str) -> Result<Via, SyntaxError> {
        let mut sc = Scanner::new(s);
        sc.skip_ws();
        let proto = sc.token().ok_or(SyntaxError::new("bad Via protocol"))?;
        if !proto.eq_ignore_ascii_case("SIP") || !sc.eat_sep('/') {
            return Err(SyntaxError::new("bad Via protocol"));
        }
        let version = sc.token().ok_or(SyntaxError::new("bad Via version"))?;
        if !sc.eat_sep('/') {
            return Err(SyntaxError::new("bad Via protocol"));
        }
        if version != "2.0" {
            return Err(SyntaxError::new("unsupported Via version"));
        }
        let transport = sc.token().ok_or(SyntaxError::new("bad Via transport"))?;
        let before = sc.pos();
        sc.skip_ws();
        if sc.pos() == before {
            return Err(SyntaxError::new("bad Via sent-by"));
        }
        let start = sc.pos();
        if sc.peek() == Some('[') {
            sc.take_while(|c| c != b']');
            sc.eat(']');
        } else {
            sc.take_class(class::HOST);
        }
        let host_end = sc.pos();
        let port = if sc.eat_sep(':') {
            let p = sc.take_while(|c| c.is_ascii_digit());
            Some(
                p.parse::<u16>()
                    .map_err(|_| SyntaxError::new("bad Via port"))?,
            )
        } else {
            None
        };
        let host = Host::parse(&s[start..host_end])?;
        let params = parse_params(&mut sc)?;
        expect_end(&mut sc, "junk after Via value")?;
        Ok(Via {
            transport: transport_name(transport),
            host,
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }

    /// True for a branch starting with the RFC 3261 cookie. A branch that is only the cookie
    /// (RFC 4475 §3.2.1) still counts as RFC 3261.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.starts_with(BRANCH_COOKIE))
    }

    pub fn sent_by(&self) -> (Host, Option<u16>) {
        (self.host.clone(), self.port)
    }

    pub fn is_reliable(&self) -> bool {
        !matches!(&*self.transport, "UDP")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// `[display-name] <URI> *(;param)` or `addr-spec *(;param)` (From, To, Contact, Route…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display: None,
            uri,
            params: Params::new(),
        }
    }

    pub fn parse(s: &str) -> Result<NameAddr, SyntaxError> {
        let mut sc = Scanner::new(s);
        let na = Self::parse_from(&mut sc)?;
        expect_end(&mut sc, "junk after address")?;
        Ok(na)
    }

    fn parse_from(sc: &mut Scanner<'_>) -> Result<NameAddr, SyntaxError> {
        sc.skip_ws();
        let rest = sc.rest();
        let display;
        let uri;
        if sc.peek() == Some('"') {
            let q = sc
                .quoted()
                .ok_or(SyntaxError::new("unterminated quoted display name"))?;
            display = Some(unquote(q));
            sc.skip_ws();
            uri = Self::angle_uri(sc)?;
        } else if let Some(lt) = find_byte(rest, b'<') {
            let name = rest[..lt].trim_matches([' ', '\t']);
            // Tokens separated by blanks: every byte is a token character or a blank.
            let tokens = name
                .bytes()
                .all(|b| b == b' ' || b == b'\t' || crate::text::byte_in(b, class::TOKEN));
            if !tokens {
                return Err(SyntaxError::new(
                    "display name must be tokens or a quoted string",
                ));
            }
            display = (!name.is_empty()).then(|| name.to_owned());
            // Everything before the `<` is ASCII (it passed the token check).
            sc.advance(lt);
            uri = Self::angle_uri(sc)?;
        } else {
            let spec = sc.take_while(|c| c != b';' && c != b' ' && c != b'\t');
            if spec.bytes().any(|b| b == b'?' || b == b',') {
                return Err(SyntaxError::new(
                    "URI with '?' or ',' must be enclosed in <>",
                ));
            }
            display = None;
            uri = Uri::parse(spec)?;
        }
        let params = parse_params(sc)?;
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }

    fn angle_uri(sc: &mut Scanner<'_>) -> Result<Uri, SyntaxError> {
        if !sc.eat('<') {
            return Err(SyntaxError::new("expected '<'"));
        }
        let inner = sc.take_while(|c| c != b'>');
        if !sc.eat('>') {
            return Err(SyntaxError::new("unterminated '<'"));
        }
        if inner.contains([' ', '\t']) {
            return Err(SyntaxError::new("whitespace inside <>"));
        }
        Uri::parse(inner)
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// Parses a comma-separated list (Contact, Route, Record-Route).
    pub fn parse_list(s: &str) -> Result<Vec<NameAddr>, SyntaxError> {
        if find_byte(s, b',').is_none() {
            // One address, as nearly every Contact and Route line holds.
            return NameAddr::parse(s).map(|a| vec![a]);
        }
        crate::text::split_commas(s).map(NameAddr::parse).collect()
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{} ", quote(d))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// `CSeq: <seq> <method>`; the number must be below 2^31 (RFC 3261 §8.1.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Result<CSeq, SyntaxError> {
        let mut sc = Scanner::new(s);
        sc.skip_ws();
        let n = sc.take_while(|c| c.is_ascii_digit());
        let seq = parse_u32(n).ok_or(SyntaxError::new("bad CSeq number"))?;
        if seq >= 1 << 31 {
            return Err(SyntaxError::new("CSeq number too large"));
        }
        let before = sc.pos();
        sc.skip_ws();
        if sc.pos() == before {
            return Err(SyntaxError::new("bad CSeq"));
        }
        let m = sc.token().ok_or(SyntaxError::new("bad CSeq method"))?;
        expect_end(&mut sc, "junk after CSeq")?;
        Ok(CSeq {
            seq,
            method: Method::parse(m),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A decimal of at most u32 range; leading zeros are fine (`0068`).
pub fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim_matches([' ', '\t']);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `Max-Forwards`: 0–255.
pub fn parse_max_forwards(s: &str) -> Result<u8, SyntaxError> {
    parse_u32(s)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or(SyntaxError::new("bad Max-Forwards"))
}

/// `Call-ID: word ["@" word]`.
pub fn check_call_id(s: &str) -> Result<(), SyntaxError> {
    let (a, b) = match split_once_byte(s, b'@') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let word = |w: &str| !w.is_empty() && all_in(w, class::WORD);
    if word(a) && b.is_none_or(word) {
        Ok(())
    } else {
        Err(SyntaxError::new("bad Call-ID"))
    }
}

/// `Content-Type: type/subtype *(;param)`, lower-cased `type/subtype` and the parameters.
pub fn parse_media_type(s: &str) -> Result<(String, Params), SyntaxError> {
    let mut sc = Scanner::new(s);
    sc.skip_ws();
    let t = sc.token().ok_or(SyntaxError::new("bad media type"))?;
    if !sc.eat_sep('/') {
        return Err(SyntaxError::new("bad media type"));
    }
    let st = sc.token().ok_or(SyntaxError::new("bad media subtype"))?;
    let params = parse_params(&mut sc)?;
    expect_end(&mut sc, "junk after media type")?;
    let mut kind = String::with_capacity(t.len() + 1 + st.len());
    kind.push_str(t);
    kind.push('/');
    kind.push_str(st);
    kind.make_ascii_lowercase();
    Ok((kind, params))
}

/// A Contact value: `*` or a list of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Star,
    Addrs(Vec<NameAddr>),
}

impl Contact {
    pub fn parse(s: &str) -> Result<Contact, SyntaxError> {
        if s.trim() == "*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse_list(s).map(Contact::Addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse("SIP / 2.0 /UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.has_rfc3261_branch());
        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.host, Host::Name("spindle.example.com".into()));
        assert!(v.has_rfc3261_branch());
        let v = Via::parse("SIP/2.0/UDP [2001:db8::9]:5070;rport;received=[2001:db8::1]").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.params.get("rport"), Some(None));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP [2001:db8::9]:5070;rport;received=[2001:db8::1]"
        );
    }

    #[test]
    fn unquoted_display_names_are_blank_separated_tokens() {
        let a = NameAddr::parse("Bob  A.\tSmith <sip:b@example.com>;tag=1").unwrap();
        assert_eq!(a.display.as_deref(), Some("Bob  A.\tSmith"));
        assert_eq!(a.tag(), Some("1"));
        assert!(NameAddr::parse("Bob@home <sip:b@example.com>").is_err());
        assert!(NameAddr::parse("Bob (x) <sip:b@example.com>").is_err());
        assert!(NameAddr::parse("Zoë <sip:b@example.com>").is_err());
        let one = Contact::parse(" <sip:a@192.0.2.1:5070>;expires=60 ").unwrap();
        let Contact::Addrs(list) = one else {
            panic!("an address")
        };
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].params.value("expires"), Some("60"));
        assert!(Contact::parse("<sip:a@b>, <sip:c@d>")
            .is_ok_and(|c| matches!(c, Contact::Addrs(l) if l.len() == 2)));
        assert!(Contact::parse("").is_err());
    }

    #[test]
    fn via_rejects_empty_params() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(Via::parse("SIP/2.0/UDP host;branch=").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(n.display.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(n.params.contains("unknownparam"));
        assert!(n.uri.as_sip().unwrap().params.is_empty());
        let n = NameAddr::parse("<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert!(n.params.is_empty());
        assert!(n.uri.as_sip().unwrap().params.contains("unknownparam"));
        let n = NameAddr::parse(r#""caller"<sip:caller@example.com>;tag=323"#).unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n = NameAddr::parse("token1~` token2'+_ <sip:x@y>").unwrap();
        assert_eq!(n.display.as_deref(), Some("token1~` token2'+_"));
    }

    #[test]
    fn name_addr_rejects() {
        for bad in [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "< sip:t.watson@example.org >",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            r#""Joe" <sip:joe@example.org>;;;;"#,
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(CSeq::parse("0009\t INVITE").unwrap().seq, 9);
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        assert_eq!(parse_max_forwards("0068").unwrap(), 68);
        assert!(parse_max_forwards("300").is_err());
    }
}
