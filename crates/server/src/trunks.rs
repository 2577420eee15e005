//! Trunks: the SIP providers and PBXs phonebridge talks to, from `[trunks.<name>]` tables in
//! `phonebridge.toml`. Each has an address, a transport, optional credentials (answered to
//! challenges, used to register, and required from the trunk's own INVITEs when
//! `inbound-auth` is set) and a caller identity.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use phonebridge_sip::endpoint::Cidr;
use phonebridge_sip::{TransportKind, Uri};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Trunk {
    pub(crate) name: String,
    /// `host[:port]` of the trunk's SIP server.
    pub(crate) address: String,
    pub(crate) transport: TransportKind,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    /// Keep a registration with the trunk.
    pub(crate) register: bool,
    pub(crate) register_expires: u32,
    /// Our address of record with the trunk (From of calls and of REGISTER).
    pub(crate) from: Uri,
    /// INVITEs from the trunk's address must answer a digest challenge with the credentials.
    pub(crate) inbound_auth: bool,
    /// SDES-SRTP on calls with this trunk (default: the server's `srtp` setting).
    pub(crate) srtp: Option<phonebridge_sdp::SrtpPolicy>,
    /// Where the trunk's own requests come from, when not (only) from its address: the
    /// provider's signalling ranges. Empty: its resolved address.
    pub(crate) sources: Vec<Cidr>,
    /// Probe the trunk with OPTIONS this often (seconds); 0: never.
    pub(crate) ping_interval: u32,
}

const KEYS: &[&str] = &[
    "address",
    "transport",
    "username",
    "password",
    "register",
    "register-expires",
    "from",
    "inbound-auth",
    "srtp",
    "sources",
    "ping-interval",
];

impl Trunk {
    /// Parses one `[trunks.<name>]` table; every error names the trunk and the key.
    pub(crate) fn from_toml(name: &str, table: &toml::Table) -> anyhow::Result<Trunk> {
        let at = |key: &str| format!("trunks.{name}.{key}");
        for k in table.keys() {
            let known = KEYS
                .iter()
                .any(|known| *known == k || known.replace('-', "_") == *k);
            if !known {
                bail!("unknown key `{}`; known keys: {}", at(k), KEYS.join(", "));
            }
        }
        let get = |key: &str| table.get(key).or_else(|| table.get(&key.replace('-', "_")));
        let string = |key: &str| -> anyhow::Result<Option<String>> {
            match get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => bail!(
                    "invalid value for `{}`: expected a non-empty string",
                    at(key)
                ),
            }
        };
        let boolean = |key: &str| -> anyhow::Result<bool> {
            match get(key) {
                None => Ok(false),
                Some(toml::Value::Boolean(b)) => Ok(*b),
                Some(_) => bail!("invalid value for `{}`: expected true or false", at(key)),
            }
        };
        let address = string("address")?
            .with_context(|| format!("missing `{}`: the trunk's host[:port]", at("address")))?;
        let transport = match string("transport")?
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("udp") => TransportKind::Udp,
            Some("tcp") => TransportKind::Tcp,
            Some("tls") => TransportKind::Tls,
            Some(other) => bail!(
                "invalid value for `{}`: expected udp, tcp or tls, got '{other}'",
                at("transport")
            ),
        };
        let username = string("username")?;
        let password = string("password")?;
        if username.is_some() != password.is_some() {
            bail!("`{}` and `{}` go together", at("username"), at("password"));
        }
        let register = boolean("register")?;
        let inbound_auth = boolean("inbound-auth")?;
        if (register || inbound_auth) && username.is_none() {
            bail!(
                "`{}` needs `{}` and `{}`",
                at(if register { "register" } else { "inbound-auth" }),
                at("username"),
                at("password")
            );
        }
        let srtp = match string("srtp")? {
            None => None,
            Some(p) => Some(crate::config::parse_srtp(&p).with_context(|| {
                format!(
                    "invalid value for `{}`: expected off, allow or require, got '{p}'",
                    at("srtp")
                )
            })?),
        };
        let register_expires = match get("register-expires") {
            None => 3600,
            Some(toml::Value::Integer(n)) if (60..=86_400).contains(n) => *n as u32,
            Some(_) => bail!(
                "invalid value for `{}`: expected seconds between 60 and 86400",
                at("register-expires")
            ),
        };
        let ping_interval = match get("ping-interval") {
            None => 0,
            Some(toml::Value::Integer(n)) if *n == 0 || (1..=3600).contains(n) => *n as u32,
            Some(_) => bail!(
                "invalid value for `{}`: expected seconds between 1 and 3600, or 0 for none",
                at("ping-interval")
            ),
        };
        let sources = match get("sources") {
            None => Vec::new(),
            Some(v) => cidr_list(v).with_context(|| {
                format!(
                    "invalid value for `{}`: expected a list of addresses or CIDR blocks, e.g. [\"54.172.60.0/30\", \"192.0.2.7\"]",
                    at("sources")
                )
            })?,
        };
        let host = host_of(&address);
        let from = match string("from")? {
            Some(f) => Uri::parse(&f)
                .ok()
                .filter(|u| u.as_sip().is_some())
                .with_context(|| {
                    format!(
                        "invalid value for `{}`: expected a sip: URI, got '{f}'",
                        at("from")
                    )
                })?,
            None => {
                let user = username.clone().unwrap_or_else(|| "phonebridge".into());
                Uri::parse(&format!("sip:{user}@{host}")).with_context(|| {
                    format!(
                        "invalid value for `{}`: '{address}' is not host[:port]",
                        at("address")
                    )
                })?
            }
        };
        Ok(Trunk {
            name: name.to_owned(),
            address,
            transport,
            username,
            password,
            register,
            register_expires,
            from,
            inbound_auth,
            srtp,
            sources,
            ping_interval,
        })
    }

    /// Where the trunk's requests come from: its `sources`, or else `resolved` (its address).
    pub(crate) fn source_cidrs(&self, resolved: SocketAddr) -> Vec<Cidr> {
        if self.sources.is_empty() {
            vec![Cidr::from(resolved.ip())]
        } else {
            self.sources.clone()
        }
    }

    /// The trunk's address, resolved: SRV for its transport when no port is given, else (or
    /// without SRV records) A/AAAA on the given or default port (5060, 5061 for TLS).
    pub(crate) async fn resolve(&self, dns: &crate::dns::Resolver) -> anyhow::Result<SocketAddr> {
        let port = self
            .address
            .strip_prefix(self.host())
            .and_then(|p| p.strip_prefix(':'))
            .and_then(|p| p.parse::<u16>().ok());
        dns.locate(self.host(), port, self.transport)
            .await
            .with_context(|| {
                format!(
                    "cannot resolve `trunks.{}.address` '{}'",
                    self.name, self.address
                )
            })
    }

    /// The registrar's Request-URI: `sip:<host>` of the trunk (RFC 3261 §10.2).
    pub(crate) fn registrar(&self) -> Uri {
        let mut u = self
            .from
            .as_sip()
            .cloned()
            .expect("from is a SIP URI (checked when parsed)");
        u.user = None;
        u.password = None;
        u.params = Default::default();
        u.headers.clear();
        Uri::Sip(u)
    }

    pub(crate) fn credentials(&self) -> Option<(String, String)> {
        self.username.clone().zip(self.password.clone())
    }

    /// The host of the trunk's address (the TLS server name).
    pub(crate) fn host(&self) -> &str {
        host_of(&self.address)
    }

    /// The Request-URI of a call to `number` through this trunk: `sip:<number>@<address>`,
    /// with the transport named when it is not UDP.
    pub(crate) fn request_uri(&self, number: &str) -> Option<Uri> {
        let transport = match self.transport {
            TransportKind::Udp => "",
            TransportKind::Tcp => ";transport=tcp",
            TransportKind::Tls => ";transport=tls",
        };
        Uri::parse(&format!("sip:{number}@{}{transport}", self.address)).ok()
    }

    /// Our From for calls through this trunk: its `from`, with `user` as the user part when
    /// the API names a caller number.
    pub(crate) fn caller_uri(&self, user: Option<&str>) -> Uri {
        let mut from = self.from.clone();
        if let (Some(u), Some(sip)) = (user, from.as_sip_mut()) {
            sip.user = Some(u.to_owned());
        }
        from
    }
}

/// `host` of `host[:port]` (an IPv6 reference keeps its brackets).
fn host_of(address: &str) -> &str {
    address
        .rsplit_once(':')
        .filter(|(h, p)| p.parse::<u16>().is_ok() && (!h.starts_with('[') || h.ends_with(']')))
        .map_or(address, |(h, _)| h)
}

/// A TOML array of CIDR strings (or one comma-separated string); `None` if any is not one.
fn cidr_list(v: &toml::Value) -> Option<Vec<Cidr>> {
    let items: Vec<&str> = match v {
        toml::Value::String(s) => s.split(',').map(str::trim).collect(),
        toml::Value::Array(a) => a.iter().map(toml::Value::as_str).collect::<Option<_>>()?,
        _ => return None,
    };
    let list: Vec<Cidr> = items
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    (!list.is_empty()).then_some(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Trunk> {
        let t: toml::Table = text.parse().unwrap();
        Trunk::from_toml("carrier", &t)
    }

    #[test]
    fn full_trunk() {
        let t = parse("address = \"sip.example.com:5070\"\ntransport = \"tcp\"\nusername = \"acct\"\npassword = \"pw\"\nregister = true\nregister-expires = 600\n").unwrap();
        assert_eq!(t.transport, TransportKind::Tcp);
        assert!(t.register);
        assert_eq!(t.register_expires, 600);
        assert_eq!(t.from.to_string(), "sip:acct@sip.example.com");
        assert_eq!(t.registrar().to_string(), "sip:sip.example.com");
        assert_eq!(t.srtp, None);
        let t = parse("address = \"a\"\nsrtp = \"Require\"").unwrap();
        assert_eq!(t.srtp, Some(phonebridge_sdp::SrtpPolicy::Require));
        let e = parse("address = \"a\"\nsrtp = \"maybe\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("trunks.carrier.srtp"), "{e}");
    }

    #[test]
    fn calls_through_a_trunk_name_the_number_at_its_address() {
        let t = parse("address = \"sip.example.com:5070\"\nusername = \"acct\"\npassword = \"pw\"")
            .unwrap();
        assert_eq!(
            t.request_uri("+15550100").unwrap().to_string(),
            "sip:+15550100@sip.example.com:5070"
        );
        assert_eq!(t.host(), "sip.example.com");
        assert_eq!(t.caller_uri(None).to_string(), "sip:acct@sip.example.com");
        assert_eq!(
            t.caller_uri(Some("+15550199")).to_string(),
            "sip:+15550199@sip.example.com"
        );
        let t = parse("address = \"[2001:db8::1]:5061\"\ntransport = \"tls\"").unwrap();
        assert_eq!(t.host(), "[2001:db8::1]");
        assert_eq!(
            t.request_uri("100").unwrap().to_string(),
            "sip:100@[2001:db8::1]:5061;transport=tls"
        );
        let t = parse("address = \"[2001:db8::1]\"").unwrap();
        assert_eq!(t.host(), "[2001:db8::1]");
    }

    #[test]
    fn sources_are_the_trunks_ranges_or_else_its_address() {
        let at: SocketAddr = "192.0.2.7:5060".parse().unwrap();
        let t = parse("address = \"a\"").unwrap();
        assert_eq!(t.source_cidrs(at), vec![Cidr::from(at.ip())]);
        let t =
            parse("address = \"a\"\nsources = [\"54.172.60.0/30\", \"2001:db8::/32\"]").unwrap();
        let ranges = t.source_cidrs(at);
        assert_eq!(ranges.len(), 2);
        assert!(ranges[0].contains("54.172.60.3".parse().unwrap()));
        assert!(!ranges[0].contains("54.172.60.4".parse().unwrap()));
        assert!(!ranges.iter().any(|c| c.contains(at.ip())));
        let t = parse("address = \"a\"\nsources = \"10.0.0.1, 10.0.1.0/24\"").unwrap();
        assert_eq!(t.sources.len(), 2);
        for bad in ["[\"10.0.0.300\"]", "[]", "5", "[\"10.0.0.0/33\"]", "[1]"] {
            let e = parse(&format!("address = \"a\"\nsources = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("trunks.carrier.sources"), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_name_the_trunk_key() {
        let e = parse("transport = \"udp\"").unwrap_err().to_string();
        assert!(e.contains("trunks.carrier.address"), "{e}");
        let e = parse("address = \"a\"\ntransport = \"sctp\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("trunks.carrier.transport"), "{e}");
        let e = parse("address = \"a\"\nregister = true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("trunks.carrier.register"), "{e}");
        let e = parse("address = \"a\"\ncolour = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `trunks.carrier.colour`"), "{e}");
        let e = parse("address = \"a\"\nusername = \"u\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("go together"), "{e}");
        let e = parse("address = \"a\"\nping-interval = 5000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("trunks.carrier.ping-interval"), "{e}");
        assert_eq!(parse("address = \"a\"").unwrap().ping_interval, 0);
        assert_eq!(
            parse("address = \"a\"\nping-interval = 30")
                .unwrap()
                .ping_interval,
            30
        );
    }
}
