//! DTMF carried by SIP INFO: `application/dtmf-relay` (`Signal=5`, `Duration=160`) and
//! `application/dtmf` (the key alone).

/// The key an INFO body carries, if it is a DTMF INFO.
pub fn info_digit(content_type: Option<&str>, body: &[u8]) -> Option<char> {
    let media_type = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let value = match media_type.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    key(value)
}

/// The body of a DTMF INFO for `digit` lasting `duration_ms` (`application/dtmf-relay`, the
/// form PBXs and trunks understand most widely). `None` for a character that is not a key.
pub fn info_body(digit: char, duration_ms: u32) -> Option<(&'static str, Vec<u8>)> {
    let d = key(&digit.to_string())?;
    Some((
        "application/dtmf-relay",
        format!("Signal={d}\r\nDuration={duration_ms}\r\n").into_bytes(),
    ))
}

fn key(v: &str) -> Option<char> {
    // Some phones send the event code (10 for *, 11 for #) instead of the key.
    match v {
        "10" => return Some('*'),
        "11" => return Some('#'),
        _ => {}
    }
    let mut chars = v.chars();
    let c = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_content_types_and_their_variants() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            info_digit(relay, b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(info_digit(relay, b"Signal= #\nDuration= 250"), Some('#'));
        assert_eq!(
            info_digit(Some("Application/DTMF-Relay; charset=x"), b"signal=*"),
            Some('*')
        );
        assert_eq!(info_digit(relay, b"Signal=11\r\n"), Some('#'));
        assert_eq!(info_digit(Some("application/dtmf"), b"7"), Some('7'));
        assert_eq!(info_digit(Some("application/dtmf"), b" d\r\n"), Some('D'));
        assert_eq!(info_digit(relay, b"Duration=160"), None);
        assert_eq!(info_digit(relay, b"Signal=55"), None);
        assert_eq!(
            info_digit(Some("application/media_control+xml"), b"<x/>"),
            None
        );
        assert_eq!(info_digit(None, b"5"), None);
    }

    #[test]
    fn bodies_we_send_read_back() {
        for d in "0123456789*#ABCD".chars() {
            let (ct, body) = info_body(d, 160).unwrap();
            assert_eq!(info_digit(Some(ct), &body), Some(d));
        }
        assert_eq!(info_body('x', 160), None);
    }
}
