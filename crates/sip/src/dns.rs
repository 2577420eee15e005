//! DNS SRV records for locating SIP servers (RFC 3263 §4.2): the query message and the SRV
//! records of its answer (RFC 1035 §4, RFC 2782), without I/O. The shell sends the query over
//! UDP and resolves the targets' addresses.

/// One SRV record: where the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Host name, without the trailing dot; empty (".") means the service is not offered.
    pub target: String,
}

/// Why an answer was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("the answer is malformed")]
    Malformed,
    #[error("the answer is for another query")]
    NotOurs,
    #[error("the server failed (rcode {0})")]
    Server(u8),
    #[error("the answer was truncated")]
    Truncated,
}

const TYPE_SRV: u16 = 33;
const CLASS_IN: u16 = 1;
/// Compression pointers followed in one name before it counts as a loop.
const MAX_JUMPS: usize = 16;

/// The SRV service name for a SIP transport (`udp`, `tcp`, or `tls` for `sips`).
pub fn service_name(host: &str, transport: &str) -> String {
    match transport {
        "tls" => format!("_sips._tcp.{host}"),
        "tcp" => format!("_sip._tcp.{host}"),
        _ => format!("_sip._udp.{host}"),
    }
}

/// A recursive query for the SRV records of `name`, with message id `id`; `None` if `name`
/// is not a valid domain name (a label empty or over 63 bytes, the name over 253).
pub fn srv_query(id: u16, name: &str) -> Option<Vec<u8>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    let mut m = Vec::with_capacity(18 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query, recursion desired; one question.
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&TYPE_SRV.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    Some(m)
}

/// The SRV records of the answer to query `id`, best first: by priority, then by weight
/// (heaviest first; RFC 2782's random choice among equals is left to nobody: the order is
/// stable). A name that does not exist (NXDOMAIN) has no records.
pub fn parse_srv_answer(id: u16, msg: &[u8]) -> Result<Vec<Srv>, DnsError> {
    let u16_at = |i: usize| -> Result<u16, DnsError> {
        msg.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(DnsError::Malformed)
    };
    if u16_at(0)? != id {
        return Err(DnsError::NotOurs);
    }
    let flags = u16_at(2)?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::NotOurs);
    }
    if flags & 0x0200 != 0 {
        return Err(DnsError::Truncated);
    }
    match (flags & 0x000f) as u8 {
        0 => {}
        3 => return Ok(Vec::new()),
        rcode => return Err(DnsError::Server(rcode)),
    }
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut pos = 12;
    for _ in 0..questions {
        pos = skip_name(msg, pos)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        pos = skip_name(msg, pos)?;
        let (kind, class) = (u16_at(pos)?, u16_at(pos + 2)?);
        let len = u16_at(pos + 8)? as usize;
        let data = pos + 10;
        if msg.len() < data + len {
            return Err(DnsError::Malformed);
        }
        if kind == TYPE_SRV && class == CLASS_IN {
            if len < 7 {
                return Err(DnsError::Malformed);
            }
            out.push(Srv {
                priority: u16_at(data)?,
                weight: u16_at(data + 2)?,
                port: u16_at(data + 4)?,
                target: read_name(msg, data + 6)?,
            });
        }
        pos = data + len;
    }
    out.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)));
    Ok(out)
}

/// The position after the name at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, DnsError> {
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Malformed)?;
        match len {
            0 => return Ok(pos + 1),
            l if l & 0xc0 == 0xc0 => return Ok(pos + 2),
            l if l & 0xc0 == 0 => pos += 1 + l as usize,
            _ => return Err(DnsError::Malformed),
        }
    }
}

/// The name at `pos`, following compression pointers.
fn read_name(msg: &[u8], mut pos: usize) -> Result<String, DnsError> {
    let mut labels: Vec<String> = Vec::new();
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Malformed)?;
        match len {
            0 => break,
            l if l & 0xc0 == 0xc0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::Malformed)?;
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return Err(DnsError::Malformed);
                }
                pos = ((l as usize & 0x3f) << 8) | low as usize;
            }
            l if l & 0xc0 == 0 => {
                let label = msg
                    .get(pos + 1..pos + 1 + l as usize)
                    .ok_or(DnsError::Malformed)?;
                labels.push(String::from_utf8_lossy(label).into_owned());
                pos += 1 + l as usize;
            }
            _ => return Err(DnsError::Malformed),
        }
    }
    let name = labels.join(".");
    if name.len() > 253 {
        return Err(DnsError::Malformed);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer to `query` with `records` (priority, weight, port, target), the targets'
    /// common suffix compressed as a pointer to the question.
    fn answer(query: &[u8], rcode: u8, records: &[(u16, u16, u16, &str)]) -> Vec<u8> {
        let mut m = query.to_vec();
        m[2] = 0x81;
        m[3] = 0x80 | rcode;
        m[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (p, w, port, target) in records {
            m.extend_from_slice(&[0xc0, 12]); // the question's name
            m.extend_from_slice(&TYPE_SRV.to_be_bytes());
            m.extend_from_slice(&CLASS_IN.to_be_bytes());
            m.extend_from_slice(&300u32.to_be_bytes());
            let mut rdata = Vec::new();
            for v in [p, w, port] {
                rdata.extend_from_slice(&v.to_be_bytes());
            }
            for label in target.split('.').filter(|l| !l.is_empty()) {
                rdata.push(label.len() as u8);
                rdata.extend_from_slice(label.as_bytes());
            }
            rdata.push(0);
            m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            m.extend_from_slice(&rdata);
        }
        m
    }

    #[test]
    fn a_query_names_the_service() {
        let q = srv_query(0x1234, &service_name("carrier.example", "udp")).unwrap();
        assert_eq!(&q[..2], &[0x12, 0x34]);
        assert_eq!(&q[12..17], b"\x04_sip");
        assert_eq!(&q[q.len() - 4..], &[0, 33, 0, 1]);
        assert!(srv_query(1, "a..b").is_none());
        assert!(srv_query(1, &"x".repeat(64)).is_none());
        assert!(srv_query(1, "").is_none());
        assert_eq!(service_name("h", "tls"), "_sips._tcp.h");
        assert_eq!(service_name("h", "tcp"), "_sip._tcp.h");
    }

    #[test]
    fn records_come_best_first() {
        let q = srv_query(7, "_sip._udp.carrier.example").unwrap();
        let a = answer(
            &q,
            0,
            &[
                (20, 0, 5060, "backup.carrier.example"),
                (10, 10, 5070, "b.carrier.example"),
                (10, 60, 5080, "a.carrier.example."),
            ],
        );
        let r = parse_srv_answer(7, &a).unwrap();
        let order: Vec<(&str, u16)> = r.iter().map(|s| (s.target.as_str(), s.port)).collect();
        assert_eq!(
            order,
            vec![
                ("a.carrier.example", 5080),
                ("b.carrier.example", 5070),
                ("backup.carrier.example", 5060)
            ]
        );
    }

    #[test]
    fn a_compressed_target_is_followed() {
        // The target is a pointer to the question's name minus its first two labels.
        let q = srv_query(9, "_sip._udp.carrier.example").unwrap();
        let mut a = answer(&q, 0, &[]);
        a[6..8].copy_from_slice(&1u16.to_be_bytes());
        a.extend_from_slice(&[
            0xc0, 12, 0, 33, 0, 1, 0, 0, 1, 0, 0, 8, 0, 1, 0, 2, 0x13, 0xc4,
        ]);
        a.extend_from_slice(&[0xc0, 12 + 5 + 5]); // "carrier.example"
        let r = parse_srv_answer(9, &a).unwrap();
        assert_eq!(r[0].target, "carrier.example");
        assert_eq!(r[0].port, 5060);
    }

    #[test]
    fn other_answers_are_told_apart() {
        let q = srv_query(5, "_sip._udp.nowhere.example").unwrap();
        assert_eq!(parse_srv_answer(5, &answer(&q, 3, &[])), Ok(vec![]));
        assert_eq!(
            parse_srv_answer(5, &answer(&q, 2, &[])),
            Err(DnsError::Server(2))
        );
        assert_eq!(
            parse_srv_answer(6, &answer(&q, 0, &[])),
            Err(DnsError::NotOurs)
        );
        assert_eq!(parse_srv_answer(5, &q), Err(DnsError::NotOurs), "a query");
        let mut truncated = answer(&q, 0, &[]);
        truncated[2] |= 0x02;
        assert_eq!(parse_srv_answer(5, &truncated), Err(DnsError::Truncated));
    }

    #[test]
    fn broken_answers_never_panic() {
        let q = srv_query(3, "_sip._udp.carrier.example").unwrap();
        let good = answer(&q, 0, &[(1, 1, 5060, "a.carrier.example")]);
        for n in 0..good.len() {
            let _ = parse_srv_answer(3, &good[..n]);
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut m = good.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % m.len();
                m[i] = (x >> 32) as u8;
            }
            let _ = parse_srv_answer(3, &m);
        }
        // A pointer loop.
        let mut looped = answer(&q, 0, &[]);
        looped[6..8].copy_from_slice(&1u16.to_be_bytes());
        let at = looped.len();
        looped.extend_from_slice(&[
            0xc0, 12, 0, 33, 0, 1, 0, 0, 1, 0, 0, 8, 0, 1, 0, 2, 0x13, 0xc4,
        ]);
        looped.extend_from_slice(&[0xc0, (at + 16) as u8]);
        assert_eq!(parse_srv_answer(3, &looped), Err(DnsError::Malformed));
    }
}
