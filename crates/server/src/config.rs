//! Configuration: command-line flags, `PHONEBRIDGE_*` environment variables and
//! `phonebridge.toml`, in that order of precedence, validated into one typed [`Config`].
//! Every error names the key, where its value came from, and what was expected.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use phonebridge_sip::endpoint::Cidr;

/// Telephone access for WebRTC video sessions.
#[derive(Debug, Parser)]
#[command(name = "phonebridge", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Run the server (the default command).
    Serve(Box<ServeArgs>),
    /// Place one call and report each step (checks an outbound trunk or SIP peer).
    Call(Box<CallArgs>),
}

/// Options of `phonebridge call`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CallArgs {
    /// The SIP URI to call, e.g. sip:+15550100@trunk.example.com
    pub(crate) uri: String,
    /// Where to send the INVITE (default: the URI's host and port).
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) proxy: Option<String>,
    /// Transport to the first hop.
    #[arg(long, value_enum, default_value = "udp")]
    pub(crate) transport: CallTransport,
    /// PEM file of CA certificates to verify a TLS peer (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// Our From URI (default: sip:phonebridge@<local address>).
    #[arg(long, value_name = "URI")]
    pub(crate) from: Option<String>,
    /// Username for digest challenges.
    #[arg(long, env = "PHONEBRIDGE_CALL_USERNAME")]
    pub(crate) username: Option<String>,
    /// Password for digest challenges.
    #[arg(long, env = "PHONEBRIDGE_CALL_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
    /// Seconds to stay on the call after the answer.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) hold: f64,
    /// Seconds to wait for an answer before cancelling.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) ring_timeout: f64,
    /// Local SIP address to use.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:0")]
    pub(crate) bind: SocketAddr,
    /// Local RTP port range.
    #[arg(long, value_name = "LO-HI", default_value = "20000-29999")]
    pub(crate) rtp_ports: String,
    /// Address to advertise instead of the local one.
    #[arg(long, value_name = "IP")]
    pub(crate) public_ip: Option<IpAddr>,
    /// Digits to send once the call is answered (0-9 * # A-D).
    #[arg(long, value_name = "DIGITS")]
    pub(crate) digits: Option<String>,
    /// How to send them: by RFC 4733 events in the media, or by SIP INFO.
    #[arg(long, value_enum, default_value = "rfc4733")]
    pub(crate) dtmf: DtmfMode,
    /// SRTP (SDES): off, allow (offer keys on a plain profile) or require (RTP/SAVP).
    #[arg(long, value_name = "POLICY", default_value = "allow", value_parser = |s: &str| parse_srtp(s).ok_or("expected off, allow or require"))]
    pub(crate) srtp: phonebridge_sdp::SrtpPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DtmfMode {
    Rfc4733,
    Info,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CallTransport {
    Udp,
    Tcp,
    Tls,
}

/// Parses `LO-HI` (shared by `serve` and `call`).
pub(crate) fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (lo, hi) = s.split_once('-')?;
    let (lo, hi) = (
        lo.trim().parse::<u16>().ok()?,
        hi.trim().parse::<u16>().ok()?,
    );
    (lo >= 1024 && lo < hi).then_some((lo, hi))
}

macro_rules! settings {
    ($( $field:ident : $flag:literal, $env:literal, $value:literal, $help:literal; )*) => {
        /// Flags of `phonebridge serve`; each is also a key of `phonebridge.toml` and a
        /// `PHONEBRIDGE_*` environment variable.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub(crate) struct ServeArgs {
            /// TOML file with the same keys as the flags (default: ./phonebridge.toml if present).
            #[arg(long, env = "PHONEBRIDGE_CONFIG", value_name = "FILE")]
            pub(crate) config: Option<PathBuf>,
            $(
                #[doc = $help]
                #[arg(long = $flag, env = $env, value_name = $value)]
                pub(crate) $field: Option<String>,
            )*
        }

        impl ServeArgs {
            /// (key, value) pairs given on the command line or in the environment.
            fn given(&self) -> Vec<(&'static str, &str)> {
                let mut v = Vec::new();
                $( if let Some(x) = &self.$field { v.push(($flag, x.as_str())); } )*
                v
            }

            /// Values given after `serve` win over those given before it.
            pub(crate) fn or(self, before: ServeArgs) -> ServeArgs {
                ServeArgs {
                    config: self.config.or(before.config),
                    $( $field: self.$field.or(before.$field), )*
                }
            }

            fn keys() -> &'static [&'static str] {
                &[$($flag),*]
            }
        }
    };
}

settings! {
    http: "http", "PHONEBRIDGE_HTTP", "ADDR:PORT", "HTTP listen address (REST, WebSocket, metrics) [default: 0.0.0.0:4443]";
    sip: "sip", "PHONEBRIDGE_SIP", "ADDR:PORT", "SIP UDP and TCP listen address [default: 0.0.0.0:5060]";
    sip_tls: "sip-tls", "PHONEBRIDGE_SIP_TLS", "ADDR:PORT", "SIP over TLS listen address [default: 0.0.0.0:5061 when tls-cert is set]";
    tls_cert: "tls-cert", "PHONEBRIDGE_TLS_CERT", "FILE", "PEM certificate chain for SIP over TLS";
    tls_key: "tls-key", "PHONEBRIDGE_TLS_KEY", "FILE", "PEM private key for SIP over TLS";
    webrtc: "webrtc", "PHONEBRIDGE_WEBRTC", "ADDR:PORT", "WebRTC UDP port (ICE-lite) [default: 0.0.0.0:50000]";
    rtp_ports: "rtp-ports", "PHONEBRIDGE_RTP_PORTS", "LO-HI", "Port range for SIP-side RTP/RTCP [default: 20000-29999]";
    public_ip: "public-ip", "PHONEBRIDGE_PUBLIC_IP", "IP", "Address to advertise in SIP and SDP instead of the local one";
    dns_server: "dns-server", "PHONEBRIDGE_DNS_SERVER", "ADDR:PORT", "DNS server for the SRV lookups of trunk and dial-out hosts given without a port [default: the first nameserver of /etc/resolv.conf]";
    data_dir: "data-dir", "PHONEBRIDGE_DATA_DIR", "DIR", "Directory for the SQLite database [default: ./phonebridge-data]";
    secret: "secret", "PHONEBRIDGE_SECRET", "S", "REST secret (Basic auth OPENVIDUAPP:<secret>) [default: MY_SECRET; OPENVIDU_SECRET is honoured]";
    webhook: "webhook", "PHONEBRIDGE_WEBHOOK", "URL", "Webhook endpoint [OPENVIDU_WEBHOOK_ENDPOINT is honoured]";
    webhook_secret: "webhook-secret", "PHONEBRIDGE_WEBHOOK_SECRET", "S", "Key for the X-Phonebridge-Signature header (HMAC-SHA256 of \"<unix time>.<body>\"); unsigned when unset";
    unused_session_timeout: "unused-session-timeout", "PHONEBRIDGE_UNUSED_SESSION_TIMEOUT", "SECONDS", "A session nobody joins is closed after this long [default: 3600]";
    trusted_sources: "trusted-sources", "PHONEBRIDGE_TRUSTED_SOURCES", "CIDR,...", "Sources exempt from SIP flood limits [default: 127.0.0.0/8,::1]";
    max_calls: "max-calls", "PHONEBRIDGE_MAX_CALLS", "N", "Most concurrent SIP calls; more get 503 [default: 1000]";
    sip_rate: "sip-rate", "PHONEBRIDGE_SIP_RATE", "N", "SIP requests per second allowed from one untrusted source [default: 20]";
    sip_burst: "sip-burst", "PHONEBRIDGE_SIP_BURST", "N", "Burst of SIP requests allowed above the rate [default: 60]";
    ignore_user_agents: "ignore-user-agents", "PHONEBRIDGE_IGNORE_USER_AGENTS", "PATTERN,...", "User-Agent substrings whose requests are dropped [default: friendly-scanner,sipvicious,sipcli,sip-scan,pplsip]";
    sip_t1_ms: "sip-t1-ms", "PHONEBRIDGE_SIP_T1_MS", "MS", "SIP timer T1 in milliseconds [default: 500]";
    sip_t2_ms: "sip-t2-ms", "PHONEBRIDGE_SIP_T2_MS", "MS", "SIP timer T2 in milliseconds [default: 4000]";
    sip_t4_ms: "sip-t4-ms", "PHONEBRIDGE_SIP_T4_MS", "MS", "SIP timer T4 in milliseconds [default: 5000]";
    sip_tcp_max_connections: "sip-tcp-max-connections", "PHONEBRIDGE_SIP_TCP_MAX_CONNECTIONS", "N", "Most open SIP TCP connections [default: 1024]";
    sip_tcp_idle_timeout: "sip-tcp-idle-timeout", "PHONEBRIDGE_SIP_TCP_IDLE_TIMEOUT", "SECONDS", "Close a SIP TCP/TLS connection quiet for this long, unless a call runs on it [default: 600]";
    media_timeout: "media-timeout", "PHONEBRIDGE_MEDIA_TIMEOUT", "SECONDS", "Hang up a call after this long without media from the phone, 0 for never (paused on hold) [default: 30]";
    srtp: "srtp", "PHONEBRIDGE_SRTP", "off|allow|require", "SRTP (SDES) policy for calls from sources that are not configured trunks [default: allow]";
    dialin_numbers: "dialin-numbers", "PHONEBRIDGE_DIALIN_NUMBERS", "NUMBER,...", "Numbers (SIP user parts) that reach the dial-in voice menu; + and separators are ignored [default: dialin]";
    dialin_sources: "dialin-sources", "PHONEBRIDGE_DIALIN_SOURCES", "CIDR,...", "Addresses dial-in calls may come from, besides trunks' sources; others are refused as unknown numbers [default: any, when no trunk lists sources]";
    caller_id: "caller-id", "PHONEBRIDGE_CALLER_ID", "full|masked|hidden", "How a caller's number shows as the connection's clientData [default: masked, the last four digits]";
    prompts: "prompts", "PHONEBRIDGE_PROMPTS", "DIR", "Directory with the voice menu prompts (enter_code.wav, wrong_code.wav, joining.wav, goodbye.wav; 16-bit PCM WAV) [default: built-in English]";
    log: "log", "PHONEBRIDGE_LOG", "FILTER", "Log filter, e.g. info or phonebridge=debug [default: info]";
}

/// A number as dial-in matching compares it: digits only (`+1 (555) 010-0` → `15550100`);
/// a name without digits (`dialin`) stays as it is, lower-cased.
pub(crate) fn normalise_number(s: &str) -> String {
    let s = s.trim();
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let only_number = s
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if only_number && !digits.is_empty() {
        digits
    } else {
        s.to_ascii_lowercase()
    }
}

/// An SRTP policy by name.
pub(crate) fn parse_srtp(s: &str) -> Option<phonebridge_sdp::SrtpPolicy> {
    use phonebridge_sdp::SrtpPolicy;
    match s.to_ascii_lowercase().as_str() {
        "off" => Some(SrtpPolicy::Off),
        "allow" => Some(SrtpPolicy::Allow),
        "require" => Some(SrtpPolicy::Require),
        _ => None,
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) http: SocketAddr,
    pub(crate) sip: SocketAddr,
    /// SIP over TLS: listen address, certificate chain and key files.
    pub(crate) sip_tls: Option<(SocketAddr, PathBuf, PathBuf)>,
    pub(crate) webrtc: SocketAddr,
    pub(crate) rtp_ports: (u16, u16),
    pub(crate) public_ip: Option<IpAddr>,
    pub(crate) dns_server: Option<SocketAddr>,
    pub(crate) data_dir: PathBuf,
    /// The REST secret (Basic auth `OPENVIDUAPP:<secret>`).
    pub(crate) secret: String,
    pub(crate) webhook: Option<String>,
    pub(crate) webhook_secret: Option<String>,
    pub(crate) unused_session_timeout: Duration,
    pub(crate) trusted_sources: Vec<Cidr>,
    pub(crate) max_calls: usize,
    pub(crate) sip_rate: f64,
    pub(crate) sip_burst: f64,
    pub(crate) ignore_user_agents: Vec<String>,
    pub(crate) t1: Duration,
    pub(crate) t2: Duration,
    pub(crate) t4: Duration,
    pub(crate) tcp_max_connections: usize,
    /// A SIP connection quiet this long closes, unless a call runs on it.
    pub(crate) tcp_idle_timeout: Duration,
    /// Hang up after this long without media; `None` never.
    pub(crate) media_timeout: Option<Duration>,
    pub(crate) srtp: phonebridge_sdp::SrtpPolicy,
    pub(crate) log: String,
    /// Dial-in numbers, digits only (and names such as `dialin` as given).
    pub(crate) dialin_numbers: Vec<String>,
    /// Where dial-in calls may come from; `None` for anywhere.
    pub(crate) dialin_sources: Option<Vec<Cidr>>,
    pub(crate) caller_id: crate::calls::CallerId,
    pub(crate) prompts: Option<PathBuf>,
    /// `[trunks.<name>]` tables (file only).
    pub(crate) trunks: Vec<crate::trunks::Trunk>,
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, Copy)]
enum Source {
    Flag,
    File,
    Env(&'static str),
    Default,
}

struct Resolver {
    values: BTreeMap<&'static str, (String, Source)>,
    file: Option<PathBuf>,
}

impl Resolver {
    fn get(&self, key: &'static str) -> Option<(&str, Source)> {
        self.values.get(key).map(|(v, s)| (v.as_str(), *s))
    }

    fn parse<T>(
        &self,
        key: &'static str,
        default: &str,
        expected: &str,
        f: impl Fn(&str) -> Option<T>,
    ) -> anyhow::Result<T> {
        let (raw, source) = self.get(key).unwrap_or((default, Source::Default));
        f(raw.trim()).ok_or_else(|| {
            let from = match source {
                Source::Flag => format!(
                    "--{key} or PHONEBRIDGE_{}",
                    key.replace('-', "_").to_uppercase()
                ),
                Source::File => format!(
                    "key `{key}` in {}",
                    self.file
                        .as_ref()
                        .map_or("the config file".into(), |p| p.display().to_string())
                ),
                Source::Env(var) => var.to_owned(),
                Source::Default => "the built-in default".to_owned(),
            };
            anyhow::anyhow!(
                "invalid value for `{key}` (from {from}): expected {expected}, got '{raw}'"
            )
        })
    }
}

impl Config {
    /// Merges flags/env with the config file and validates everything.
    pub(crate) fn load(args: &ServeArgs) -> anyhow::Result<Config> {
        let mut values: BTreeMap<&'static str, (String, Source)> = BTreeMap::new();
        let mut trunks = Vec::new();
        let file = match &args.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from("phonebridge.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
            let table: toml::Table = text.parse().map_err(|e| {
                anyhow::anyhow!("config file {} is not valid TOML: {e}", path.display())
            })?;
            for (k, v) in table {
                if k == "trunks" {
                    let toml::Value::Table(all) = v else {
                        anyhow::bail!(
                            "invalid value for `trunks` in {}: expected tables [trunks.<name>]",
                            path.display()
                        );
                    };
                    for (name, t) in all {
                        let toml::Value::Table(t) = t else {
                            anyhow::bail!(
                                "invalid value for `trunks.{name}` in {}: expected a table",
                                path.display()
                            );
                        };
                        trunks.push(
                            crate::trunks::Trunk::from_toml(&name, &t)
                                .with_context(|| format!("in {}", path.display()))?,
                        );
                    }
                    continue;
                }
                let key = ServeArgs::keys()
                    .iter()
                    .find(|known| **known == k || known.replace('-', "_") == k)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "unknown key `{k}` in {}; known keys: {}",
                            path.display(),
                            ServeArgs::keys().join(", ")
                        )
                    })?;
                let s = match &v {
                    toml::Value::Array(a) => a.iter().map(scalar).collect::<Option<Vec<_>>>().map(|v| v.join(",")),
                    v => scalar(v),
                }
                .ok_or_else(|| anyhow::anyhow!("invalid value for `{k}` in {}: expected a string, a number or a list of them, got a {}", path.display(), v.type_str()))?;
                values.insert(key, (s, Source::File));
            }
        }
        // OpenVidu's own variables rank below ours but above the file.
        for (key, var) in [
            ("secret", "OPENVIDU_SECRET"),
            ("webhook", "OPENVIDU_WEBHOOK_ENDPOINT"),
        ] {
            if let Ok(v) = std::env::var(var) {
                values.insert(key, (v, Source::Env(var)));
            }
        }
        for (k, v) in args.given() {
            values.insert(k, (v.to_owned(), Source::Flag));
        }
        let r = Resolver { values, file };
        let addr = |s: &str| s.parse::<SocketAddr>().ok();
        let rtp_ports = r.parse(
            "rtp-ports",
            "20000-29999",
            "LO-HI with 1024 <= LO < HI <= 65535",
            |s| {
                let (lo, hi) = s.split_once('-')?;
                let (lo, hi) = (
                    lo.trim().parse::<u16>().ok()?,
                    hi.trim().parse::<u16>().ok()?,
                );
                (lo >= 1024 && lo < hi).then_some((lo, hi))
            },
        )?;
        let ms = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|n| *n > 0 && *n <= 600_000)
                .map(Duration::from_millis)
        };
        let list = |s: &str| {
            Some(
                s.split(',')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>(),
            )
        };
        let cidrs = |s: &str| -> Option<Vec<Cidr>> {
            s.split(',')
                .filter(|x| !x.trim().is_empty())
                .map(|x| x.parse::<Cidr>().ok())
                .collect()
        };
        let cfg = Config {
            http: r.parse("http", "0.0.0.0:4443", "ADDR:PORT", addr)?,
            sip: r.parse("sip", "0.0.0.0:5060", "ADDR:PORT", addr)?,
            sip_tls: match (r.get("tls-cert"), r.get("tls-key")) {
                (None, None) => {
                    if r.get("sip-tls").is_some() {
                        anyhow::bail!("invalid value for `sip-tls`: SIP over TLS needs `tls-cert` and `tls-key` as well");
                    }
                    None
                }
                (Some(_), None) => anyhow::bail!(
                    "missing `tls-key`: `tls-cert` is set, so SIP over TLS needs its private key"
                ),
                (None, Some(_)) => anyhow::bail!(
                    "missing `tls-cert`: `tls-key` is set, so SIP over TLS needs its certificate"
                ),
                (Some(_), Some(_)) => {
                    let file = |s: &str| Some(PathBuf::from(s)).filter(|p| p.is_file());
                    Some((
                        r.parse("sip-tls", "0.0.0.0:5061", "ADDR:PORT", addr)?,
                        r.parse("tls-cert", "", "a readable PEM file", file)?,
                        r.parse("tls-key", "", "a readable PEM file", file)?,
                    ))
                }
            },
            webrtc: r.parse("webrtc", "0.0.0.0:50000", "ADDR:PORT", addr)?,
            rtp_ports,
            public_ip: match r.get("public-ip") {
                None => None,
                Some(_) => Some(r.parse("public-ip", "", "an IP address", |s| s.parse().ok())?),
            },
            dns_server: match r.get("dns-server") {
                None => None,
                Some(_) => Some(r.parse("dns-server", "", "ADDR:PORT", addr)?),
            },
            data_dir: r.parse("data-dir", "./phonebridge-data", "a directory path", |s| {
                (!s.is_empty()).then(|| PathBuf::from(s))
            })?,
            secret: r.parse("secret", "MY_SECRET", "a non-empty string", |s| {
                (!s.is_empty()).then(|| s.to_owned())
            })?,
            webhook: match r.get("webhook") {
                None => None,
                Some(_) => Some(r.parse("webhook", "", "an http:// or https:// URL", |s| {
                    (s.starts_with("http://") || s.starts_with("https://")).then(|| s.to_owned())
                })?),
            },
            webhook_secret: match r.get("webhook-secret") {
                None => None,
                Some(_) => Some(r.parse("webhook-secret", "", "a non-empty string", |s| {
                    (!s.is_empty()).then(|| s.to_owned())
                })?),
            },
            unused_session_timeout: r.parse(
                "unused-session-timeout",
                "3600",
                "seconds (1-604800)",
                |s| {
                    s.parse::<u64>()
                        .ok()
                        .filter(|n| (1..=604_800).contains(n))
                        .map(Duration::from_secs)
                },
            )?,
            trusted_sources: r.parse(
                "trusted-sources",
                "127.0.0.0/8,::1",
                "a comma-separated list of CIDR blocks",
                cidrs,
            )?,
            max_calls: r.parse("max-calls", "1000", "a positive integer", |s| {
                s.parse().ok().filter(|n| *n > 0)
            })?,
            sip_rate: r.parse("sip-rate", "20", "a positive number", |s| {
                s.parse().ok().filter(|n: &f64| *n > 0.0)
            })?,
            sip_burst: r.parse("sip-burst", "60", "a number >= 1", |s| {
                s.parse().ok().filter(|n: &f64| *n >= 1.0)
            })?,
            ignore_user_agents: r.parse(
                "ignore-user-agents",
                "friendly-scanner,sipvicious,sipcli,sip-scan,pplsip",
                "a comma-separated list",
                list,
            )?,
            t1: r.parse("sip-t1-ms", "500", "milliseconds (1-600000)", ms)?,
            t2: r.parse("sip-t2-ms", "4000", "milliseconds (1-600000)", ms)?,
            t4: r.parse("sip-t4-ms", "5000", "milliseconds (1-600000)", ms)?,
            tcp_max_connections: r.parse(
                "sip-tcp-max-connections",
                "1024",
                "a positive integer",
                |s| s.parse().ok().filter(|n| *n > 0),
            )?,
            tcp_idle_timeout: r.parse("sip-tcp-idle-timeout", "600", "seconds (1-86400)", |s| {
                let n: u64 = s.parse().ok().filter(|n| (1..=86_400).contains(n))?;
                Some(Duration::from_secs(n))
            })?,
            media_timeout: r.parse(
                "media-timeout",
                "30",
                "seconds (0-86400; 0 never hangs up)",
                |s| {
                    let n: u64 = s.parse().ok().filter(|n| *n <= 86_400)?;
                    Some((n > 0).then(|| Duration::from_secs(n)))
                },
            )?,
            srtp: r.parse("srtp", "allow", "off, allow or require", parse_srtp)?,
            dialin_numbers: r.parse(
                "dialin-numbers",
                "dialin",
                "a comma-separated list of numbers or names",
                |s| {
                    let v: Vec<String> = s
                        .split(',')
                        .map(normalise_number)
                        .filter(|x| !x.is_empty())
                        .collect();
                    (!v.is_empty()).then_some(v)
                },
            )?,
            dialin_sources: match r.get("dialin-sources") {
                None => None,
                Some(_) => Some(r.parse(
                    "dialin-sources",
                    "",
                    "a comma-separated list of CIDR blocks",
                    cidrs,
                )?),
            },
            caller_id: r.parse(
                "caller-id",
                "masked",
                "full, masked or hidden",
                crate::calls::CallerId::parse,
            )?,
            prompts: match r.get("prompts") {
                None => None,
                Some(_) => Some(r.parse("prompts", "", "a directory", |s| {
                    Some(PathBuf::from(s)).filter(|p| p.is_dir())
                })?),
            },
            log: r.parse("log", "info", "a tracing filter", |s| {
                tracing_subscriber::EnvFilter::try_new(s)
                    .ok()
                    .map(|_| s.to_owned())
            })?,
            trunks,
        };
        if cfg.t2 < cfg.t1 {
            anyhow::bail!(
                "invalid value for `sip-t2-ms`: T2 ({} ms) must not be below T1 ({} ms)",
                cfg.t2.as_millis(),
                cfg.t1.as_millis()
            );
        }
        Ok(cfg)
    }
}

/// A TOML string or number as text.
fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> ServeArgs {
        let mut all = vec!["phonebridge"];
        all.extend_from_slice(list);
        Cli::try_parse_from(all).unwrap().serve
    }

    #[test]
    fn defaults_match_the_design() {
        let c = Config::load(&args(&["--config", "/dev/null"])).unwrap();
        assert_eq!(c.http.to_string(), "0.0.0.0:4443");
        assert_eq!(c.sip.to_string(), "0.0.0.0:5060");
        assert_eq!(c.webrtc.to_string(), "0.0.0.0:50000");
        assert_eq!(c.rtp_ports, (20000, 29999));
        assert_eq!(c.data_dir, PathBuf::from("./phonebridge-data"));
        assert_eq!(c.trusted_sources.len(), 2);
    }

    #[test]
    fn bad_flag_value_names_the_key() {
        let e = Config::load(&args(&["--config", "/dev/null", "--sip", "nonsense"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`sip`") && e.contains("--sip") && e.contains("nonsense"),
            "{e}"
        );
        let e = Config::load(&args(&[
            "--config",
            "/dev/null",
            "--rtp-ports",
            "30000-20000",
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("`rtp-ports`"), "{e}");
    }

    #[test]
    fn file_values_apply_and_errors_name_file_keys() {
        let dir = std::env::temp_dir().join(format!("pb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("phonebridge.toml");
        std::fs::write(
            &f,
            "sip = \"127.0.0.1:5070\"\nmax_calls = 7\ntrusted-sources = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let c = Config::load(&args(&["--config", f.to_str().unwrap()])).unwrap();
        assert_eq!(c.sip.port(), 5070);
        assert_eq!(c.max_calls, 7);
        assert_eq!(c.trusted_sources.len(), 1);
        // Flags beat the file.
        let c = Config::load(&args(&[
            "--config",
            f.to_str().unwrap(),
            "--sip",
            "127.0.0.1:5080",
        ]))
        .unwrap();
        assert_eq!(c.sip.port(), 5080);
        std::fs::write(&f, "max-calls = \"many\"\n").unwrap();
        let e = Config::load(&args(&["--config", f.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`max-calls`") && e.contains("phonebridge.toml"),
            "{e}"
        );
        std::fs::write(&f, "colour = \"blue\"\n").unwrap();
        let e = Config::load(&args(&["--config", f.to_str().unwrap()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key `colour`"), "{e}");
    }
}
