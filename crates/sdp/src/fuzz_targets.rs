//! Bodies of the fuzz targets in `fuzz/`, compiled with the library (and exercised by its
//! tests) so they never rot. Each panics only when an invariant is broken.

use crate::model::{Direction, SessionDescription};
use crate::negotiate::{accept_answer, answer, offer, Capabilities, Local, SrtpPolicy};

/// Arbitrary bytes as a description: no panic; what parses prints stably; answering it (and
/// reading it as an answer to our offer) never panics, under every SRTP policy.
pub fn parse_and_negotiate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sd) = SessionDescription::parse(text) else {
        return;
    };
    let printed = sd.to_string();
    let again = SessionDescription::parse(&printed).expect("a printed description parses");
    assert_eq!(again.to_string(), printed, "print is stable");
    let local = Local {
        ip: [127, 0, 0, 1].into(),
        rtp_port: 20000,
        session_id: 1,
        version: 1,
        direction: Direction::SendRecv,
    };
    for srtp in [SrtpPolicy::Off, SrtpPolicy::Allow, SrtpPolicy::Require] {
        let caps = Capabilities {
            srtp,
            ..Capabilities::default()
        };
        if let Ok((ans, session)) = answer(&sd, &caps, &local, [1; 30]) {
            assert_eq!(
                ans.media.len(),
                sd.media.len(),
                "one answer section per offered one"
            );
            assert_eq!(ans.media[session.index].port, local.rtp_port);
        }
        let ours = offer(&caps, &local, &[[1; 30], [2; 30]]);
        let _ = accept_answer(&ours, &sd, &caps, &[[1; 30], [2; 30]]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_on_samples() {
        super::parse_and_negotiate(b"v=0\r\nm=audio 4000 RTP/SAVP 0 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n");
        super::parse_and_negotiate(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n");
        super::parse_and_negotiate(b"\xff");
    }
}
