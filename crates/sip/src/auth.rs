//! HTTP Digest authentication as SIP uses it (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760):
//! answering 401/407 challenges as a client, and challenging and verifying as a server.
//! MD5 and SHA-256, with and without `qop=auth`.

use std::fmt::Write as _;

use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::text::{quote, split_commas, unquote, Scanner};

/// Digest hash algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn hash(self, data: &str) -> String {
        let mut out = String::with_capacity(64);
        match self {
            Algorithm::Md5 => Md5::digest(data.as_bytes()).iter().for_each(|b| {
                let _ = write!(out, "{b:02x}");
            }),
            Algorithm::Sha256 => Sha256::digest(data.as_bytes()).iter().for_each(|b| {
                let _ = write!(out, "{b:02x}");
            }),
        }
        out
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
}

/// A parsed `WWW-Authenticate`/`Proxy-Authenticate` Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The server offers `qop=auth`.
    pub qop_auth: bool,
    pub stale: bool,
}

/// `name=value` pairs of an auth header after its scheme, values unquoted.
fn auth_params(rest: &str) -> Vec<(String, String)> {
    split_commas(rest)
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            let v = v.trim();
            let v = if v.starts_with('"') {
                let mut sc = Scanner::new(v);
                unquote(sc.quoted()?)
            } else {
                v.to_owned()
            };
            Some((n.trim().to_ascii_lowercase(), v))
        })
        .collect()
}

/// The parameters and algorithm of a `Digest …` header value; `None` for other schemes and
/// algorithms we do not support.
fn digest(value: &str) -> Option<(Vec<(String, String)>, Algorithm)> {
    let (scheme, rest) = value.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let params = auth_params(rest);
    let algorithm = match params
        .iter()
        .find(|(k, _)| k == "algorithm")
        .map(|(_, v)| v.to_ascii_uppercase())
        .as_deref()
    {
        None | Some("MD5") => Algorithm::Md5,
        Some("SHA-256") => Algorithm::Sha256,
        _ => return None,
    };
    Some((params, algorithm))
}

impl Challenge {
    /// Parses one challenge; `None` for other schemes or unsupported algorithms.
    pub fn parse(value: &str) -> Option<Challenge> {
        let (params, algorithm) = digest(value)?;
        let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let qop = get("qop");
        if qop
            .as_ref()
            .is_some_and(|q| !q.split(',').any(|x| x.trim().eq_ignore_ascii_case("auth")))
        {
            // Only auth-int offered: we do not hash bodies.
            return None;
        }
        Some(Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            qop_auth: qop.is_some(),
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Picks the strongest supported challenge among a response's header values.
    pub fn best<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
        let mut best: Option<Challenge> = None;
        for v in values {
            if let Some(c) = Challenge::parse(v) {
                if best.as_ref().is_none_or(|b| {
                    b.algorithm == Algorithm::Md5 && c.algorithm == Algorithm::Sha256
                }) {
                    best = Some(c);
                }
            }
        }
        best
    }

    /// The `Authorization` value answering this challenge for `method uri`.
    pub fn answer(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let a = self.algorithm;
        let ha1 = a.hash(&format!("{username}:{}:{password}", self.realm));
        let ha2 = a.hash(&format!("{method}:{uri}"));
        let nc = format!("{nc:08x}");
        let response = if self.qop_auth {
            a.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            a.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut v = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            quote(&response),
            a.name()
        );
        if self.qop_auth {
            let _ = write!(v, ", qop=auth, nc={nc}, cnonce={}", quote(cnonce));
        }
        if let Some(o) = &self.opaque {
            let _ = write!(v, ", opaque={}", quote(o));
        }
        v
    }

    /// The challenge header value a server sends.
    pub fn to_header(&self) -> String {
        let mut v = format!(
            "Digest realm={}, nonce={}, algorithm={}",
            quote(&self.realm),
            quote(&self.nonce),
            self.algorithm.name()
        );
        if self.qop_auth {
            v.push_str(", qop=\"auth\"");
        }
        if let Some(o) = &self.opaque {
            let _ = write!(v, ", opaque={}", quote(o));
        }
        if self.stale {
            v.push_str(", stale=TRUE");
        }
        v
    }
}

/// A parsed `Authorization`/`Proxy-Authorization` Digest answer (server side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub qop: Option<(String, String, String)>,
}

impl Credentials {
    pub fn parse(value: &str) -> Option<Credentials> {
        let (params, algorithm) = digest(value)?;
        let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let qop = match get("qop") {
            Some(q) => Some((q, get("nc")?, get("cnonce")?)),
            None => None,
        };
        Some(Credentials {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response: get("response")?,
            algorithm,
            qop,
        })
    }

    /// True when the response proves knowledge of `password` for `method`.
    pub fn verify(&self, method: &str, password: &str) -> bool {
        let a = self.algorithm;
        let ha1 = a.hash(&format!("{}:{}:{password}", self.username, self.realm));
        let ha2 = a.hash(&format!("{method}:{}", self.uri));
        let expected = match &self.qop {
            Some((qop, nc, cnonce)) => {
                a.hash(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce))
            }
            None => a.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        // Constant-time comparison: do not leak how much of the response matched.
        expected.len() == self.response.len()
            && expected
                .bytes()
                .zip(self.response.to_ascii_lowercase().bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract(v: &str, name: &str) -> String {
        auth_params(v.split_once(' ').unwrap().1)
            .into_iter()
            .find(|(k, _)| k == name)
            .unwrap()
            .1
    }

    #[test]
    fn rfc2617_md5_qop_auth_vector() {
        let c = Challenge::parse(r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#).unwrap();
        let a = c.answer(
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            "0a4f113b",
            1,
        );
        assert_eq!(extract(&a, "response"), "6629fae49393a05397450978507c4ef1");
        assert_eq!(extract(&a, "nc"), "00000001");
        assert_eq!(extract(&a, "opaque"), "5ccc069c403ebaf9f0171e9517f40e41");
        assert!(Credentials::parse(&a)
            .unwrap()
            .verify("GET", "Circle Of Life"));
        assert!(!Credentials::parse(&a)
            .unwrap()
            .verify("GET", "circle of life"));
    }

    #[test]
    fn rfc7616_sha256_and_md5_vectors() {
        let base = r#"realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let cn = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let sha = Challenge::parse(&format!("Digest {base}, algorithm=SHA-256")).unwrap();
        let md5 = Challenge::parse(&format!("Digest {base}, algorithm=MD5")).unwrap();
        let a = sha.answer("GET", "/dir/index.html", "Mufasa", "Circle of Life", cn, 1);
        assert_eq!(
            extract(&a, "response"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        let a = md5.answer("GET", "/dir/index.html", "Mufasa", "Circle of Life", cn, 1);
        assert_eq!(extract(&a, "response"), "8ca523f5e9506fed4657c9700eebdbec");
        let values = [
            format!("Digest {base}, algorithm=MD5"),
            format!("Digest {base}, algorithm=SHA-256"),
        ];
        assert_eq!(
            Challenge::best(values.iter().map(String::as_str))
                .unwrap()
                .algorithm,
            Algorithm::Sha256
        );
    }

    #[test]
    fn without_qop_and_unknown_schemes() {
        let c = Challenge::parse(r#"Digest realm="asterisk",nonce="1a2b""#).unwrap();
        assert!(!c.qop_auth);
        let a = c.answer("INVITE", "sip:100@pbx", "1000", "secret", "x", 1);
        assert!(!a.contains("qop"));
        assert!(Credentials::parse(&a).unwrap().verify("INVITE", "secret"));
        assert!(Challenge::parse("NoOneKnowsThisScheme opaque-data=here").is_none());
        assert!(Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-int""#).is_none());
        assert!(
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#).is_none()
        );
    }
}
