//! SDES key exchange for SRTP (RFC 4568): the `a=crypto` attribute.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Master key (16 bytes) followed by master salt (14 bytes), as `inline:` carries it.
pub const KEY_LEN: usize = 30;

/// The SRTP crypto suites phonebridge speaks (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpSuite {
    /// AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, 32-bit HMAC-SHA1 tag on SRTP (80-bit on SRTCP).
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    pub const ALL: [SrtpSuite; 2] = [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        SrtpSuite::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Length of the SRTP authentication tag in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => 10,
            SrtpSuite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// One usable `a=crypto` line.
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    pub suite: SrtpSuite,
    pub key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach a log.
        f.debug_struct("Crypto")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Crypto {
    /// Parses the value of an `a=crypto` attribute. `None` for suites, key methods and
    /// parameters phonebridge does not implement (an MKI, session parameters, several keys),
    /// so the offer/answer moves on to the next line as RFC 4568 §6.1 asks.
    pub fn parse(value: &str) -> Option<Crypto> {
        let mut it = value.split_ascii_whitespace();
        let tag = it.next()?.parse().ok()?;
        let suite = SrtpSuite::from_name(it.next()?)?;
        let key_params = it.next()?;
        if it.next().is_some() || key_params.contains(';') {
            return None;
        }
        let inline = key_params
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("inline:"))
            .map(|_| &key_params[7..])?;
        let mut parts = inline.split('|');
        let key_b64 = parts.next()?;
        for p in parts {
            // A lifetime ("2^31" or a number) is fine; an MKI ("1:4") is not implemented.
            if p.contains(':') {
                return None;
            }
        }
        let bytes = STANDARD.decode(key_b64).ok()?;
        let key = bytes.try_into().ok()?;
        Some(Crypto { tag, suite, key })
    }

    /// The attribute value, e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:…`.
    pub fn value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc4568_example_and_prints_back() {
        // RFC 4568 §5.1's example key.
        let v =
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32";
        assert!(Crypto::parse(v).is_none(), "an MKI is declined");
        let v = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
        let c = Crypto::parse(v).unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(&c.key[..4], b"=-n@");
        assert_eq!(
            c.value(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
        );
        assert!(!format!("{c:?}").contains("PS1u"));
    }

    #[test]
    fn declines_what_is_not_implemented() {
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        assert!(Crypto::parse(&format!("1 AEAD_AES_256_GCM {key}")).is_none());
        assert!(
            Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_32 {key} UNENCRYPTED_SRTP")).is_none()
        );
        assert!(Crypto::parse("1 AES_CM_128_HMAC_SHA1_32 inline:c2hvcnQ=").is_none());
        assert!(Crypto::parse(&format!("x AES_CM_128_HMAC_SHA1_32 {key}")).is_none());
        assert!(Crypto::parse(&format!("2 AES_CM_128_HMAC_SHA1_32 {key}")).is_some());
    }
}
