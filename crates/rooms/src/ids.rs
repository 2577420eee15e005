//! Identifiers in OpenVidu's formats, from a seedable RNG: `ses_` + one upper-case letter and
//! nine alphanumerics, `con_…` alike, `tok_` + one upper-case letter and fifteen, stream ids
//! `str_<TYP>_<4>_<connectionId>`.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Generates identifiers.
#[derive(Debug, Clone)]
pub struct IdGen {
    rng: SmallRng,
}

impl IdGen {
    pub fn new(seed: u64) -> Self {
        IdGen {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// One upper-case letter, then `n` alphanumerics.
    fn word(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n + 1);
        s.push(self.rng.gen_range(b'A'..=b'Z') as char);
        for _ in 0..n {
            s.push(ALNUM[self.rng.gen_range(0..ALNUM.len())] as char);
        }
        s
    }

    pub fn session(&mut self) -> String {
        format!("ses_{}", self.word(9))
    }

    pub fn connection(&mut self) -> String {
        format!("con_{}", self.word(9))
    }

    pub fn token(&mut self) -> String {
        format!("tok_{}", self.word(15))
    }

    /// `kind` is `CAM`, `SCR`, `CUS` or `MIC`.
    pub fn stream(&mut self, kind: &str, connection: &str) -> String {
        format!("str_{kind}_{}_{connection}", self.word(3))
    }

    /// An opaque private id (the JSON-RPC session id).
    pub fn private(&mut self) -> String {
        self.word(25)
    }
}

/// Whether `id` may be a custom session id (`[a-zA-Z0-9_-]+`).
pub fn valid_custom_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut g = IdGen::new(1);
        let s = g.session();
        assert!(s.starts_with("ses_") && s.len() == 14, "{s}");
        assert!(s.as_bytes()[4].is_ascii_uppercase());
        let c = g.connection();
        assert!(c.starts_with("con_") && c.len() == 14);
        let t = g.token();
        assert!(t.starts_with("tok_") && t.len() == 20);
        let st = g.stream("CAM", &c);
        assert!(st.starts_with("str_CAM_") && st.ends_with(&c) && st.len() == 8 + 4 + 1 + 14);
        assert!(valid_custom_session_id("Interview-42_b"));
        assert!(!valid_custom_session_id("bad id"));
        assert!(!valid_custom_session_id(""));
        // Reproducible from the seed.
        assert_eq!(IdGen::new(7).session(), IdGen::new(7).session());
    }
}
