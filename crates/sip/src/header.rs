//! Header field names: canonical spelling, compact forms (RFC 3261 §7.3.3 and extensions),
//! case-insensitive comparison, unknown names kept as received.

use std::borrow::Cow;
use std::fmt;

/// A header field name. Known names are stored in canonical form with their place in the
/// list below (so comparing two known names compares one byte); comparison ignores case.
#[derive(Debug, Clone, Eq)]
pub struct HeaderName {
    /// 1 + the name's place among the known names; 0 for any other name.
    known: u8,
    name: Cow<'static, str>,
}

macro_rules! known {
    ($($konst:ident = $name:literal $(, $compact:literal)?;)*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[repr(u8)]
        enum Known {
            $($konst,)*
        }

        impl HeaderName {
            $(pub const $konst: HeaderName = HeaderName {
                known: Known::$konst as u8 + 1,
                name: Cow::Borrowed($name),
            };)*

            /// Maps a received name (long or compact, any case) to its canonical form.
            pub fn from_wire(s: &str) -> HeaderName {
                // The fields nearly every message has come first.
                for common in &COMMON {
                    if s.eq_ignore_ascii_case(common.as_str()) {
                        return common.clone();
                    }
                }
                $(
                    if s.eq_ignore_ascii_case($name) $(|| s.eq_ignore_ascii_case($compact))? {
                        return HeaderName::$konst;
                    }
                )*
                HeaderName {
                    known: 0,
                    name: Cow::Owned(s.to_owned()),
                }
            }
        }
    };
}

const COMMON: [HeaderName; 9] = [
    HeaderName::VIA,
    HeaderName::FROM,
    HeaderName::TO,
    HeaderName::CALL_ID,
    HeaderName::CSEQ,
    HeaderName::CONTACT,
    HeaderName::MAX_FORWARDS,
    HeaderName::CONTENT_TYPE,
    HeaderName::CONTENT_LENGTH,
];

known! {
    ACCEPT = "Accept";
    ACCEPT_CONTACT = "Accept-Contact", "a";
    ACCEPT_ENCODING = "Accept-Encoding";
    ACCEPT_LANGUAGE = "Accept-Language";
    ALERT_INFO = "Alert-Info";
    ALLOW = "Allow";
    ALLOW_EVENTS = "Allow-Events", "u";
    AUTHENTICATION_INFO = "Authentication-Info";
    AUTHORIZATION = "Authorization";
    CALL_ID = "Call-ID", "i";
    CALL_INFO = "Call-Info";
    CONTACT = "Contact", "m";
    CONTENT_DISPOSITION = "Content-Disposition";
    CONTENT_ENCODING = "Content-Encoding", "e";
    CONTENT_LANGUAGE = "Content-Language";
    CONTENT_LENGTH = "Content-Length", "l";
    CONTENT_TYPE = "Content-Type", "c";
    CSEQ = "CSeq";
    DATE = "Date";
    ERROR_INFO = "Error-Info";
    EVENT = "Event", "o";
    EXPIRES = "Expires";
    FROM = "From", "f";
    IDENTITY = "Identity", "y";
    IDENTITY_INFO = "Identity-Info", "n";
    IN_REPLY_TO = "In-Reply-To";
    MAX_FORWARDS = "Max-Forwards";
    MIME_VERSION = "MIME-Version";
    MIN_EXPIRES = "Min-Expires";
    MIN_SE = "Min-SE";
    ORGANIZATION = "Organization";
    P_ASSERTED_IDENTITY = "P-Asserted-Identity";
    PRIORITY = "Priority";
    PRIVACY = "Privacy";
    PROXY_AUTHENTICATE = "Proxy-Authenticate";
    PROXY_AUTHORIZATION = "Proxy-Authorization";
    PROXY_REQUIRE = "Proxy-Require";
    RACK = "RAck";
    REASON = "Reason";
    RECORD_ROUTE = "Record-Route";
    REFER_TO = "Refer-To", "r";
    REFERRED_BY = "Referred-By", "b";
    REJECT_CONTACT = "Reject-Contact", "j";
    REPLY_TO = "Reply-To";
    REQUEST_DISPOSITION = "Request-Disposition", "d";
    REQUIRE = "Require";
    RETRY_AFTER = "Retry-After";
    ROUTE = "Route";
    RSEQ = "RSeq";
    SERVER = "Server";
    SESSION_EXPIRES = "Session-Expires", "x";
    SUBJECT = "Subject", "s";
    SUPPORTED = "Supported", "k";
    TIMESTAMP = "Timestamp";
    TO = "To", "t";
    UNSUPPORTED = "Unsupported";
    USER_AGENT = "User-Agent";
    VIA = "Via", "v";
    WARNING = "Warning";
    WWW_AUTHENTICATE = "WWW-Authenticate";
}

impl HeaderName {
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        // A known name is never stored as an unknown one (`from_wire` maps every spelling).
        if self.known != 0 || other.known != 0 {
            return self.known == other.known;
        }
        self.name.eq_ignore_ascii_case(&other.name)
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive() {
        assert_eq!(HeaderName::from_wire("v"), HeaderName::VIA);
        assert_eq!(
            HeaderName::from_wire("MaX-fOrWaRdS").as_str(),
            "Max-Forwards"
        );
        assert_eq!(HeaderName::from_wire("I").as_str(), "Call-ID");
        let x = HeaderName::from_wire("NewFangledHeader");
        assert_eq!(x.as_str(), "NewFangledHeader");
        assert_eq!(x, HeaderName::from_wire("newfangledheader"));
        assert_ne!(x, HeaderName::VIA);
        assert_ne!(HeaderName::TO, HeaderName::FROM);
        assert_eq!(
            HeaderName::from_wire("CONTENT-length"),
            HeaderName::CONTENT_LENGTH
        );
    }
}
