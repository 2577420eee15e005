//! Character classes of the RFC 3261 grammar (§25.1) and a small scanner over header text.

/// `token` characters: alphanum and `-.!%*_+`'~`.
pub(crate) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// `word` characters (Call-ID): token plus `()<>:\"/[]?{}`.
pub(crate) fn is_word_char(c: char) -> bool {
    is_token_char(c) || "()<>:\\\"/[]?{}".contains(c)
}

pub(crate) fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c)
}

/// True when `s` contains only `allowed` characters or well-formed `%HH` escapes.
pub(crate) fn all_escaped_or(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return false;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
            continue;
        }
        let c = s[i..].chars().next().unwrap_or('\0');
        if !allowed(c) {
            return false;
        }
        i += c.len_utf8();
    }
    true
}

/// Decodes `%HH` escapes; invalid escapes are kept literally.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// A cursor over header text with the LWS and token rules of RFC 3261.
#[derive(Debug, Clone)]
pub(crate) struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    pub(crate) fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn slice(&self, from: usize) -> &'a str {
        &self.s[from..self.pos]
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips spaces and tabs (header values are already unfolded).
    pub(crate) fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    /// Consumes `c` surrounded by optional whitespace (`SWS c SWS`).
    pub(crate) fn eat_sep(&mut self, c: char) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    pub(crate) fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }

    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let t = self.take_while(is_token_char);
        (!t.is_empty()).then_some(t)
    }

    /// A quoted string starting at the cursor; returns the raw text between the quotes
    /// (quoted-pairs kept escaped), or `None` when unterminated.
    pub(crate) fn quoted(&mut self) -> Option<&'a str> {
        if self.peek() != Some('"') {
            return None;
        }
        let start = self.pos + 1;
        let b = self.s.as_bytes();
        let mut i = start;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => {
                    self.pos = i + 1;
                    return Some(&self.s[start..i]);
                }
                _ => i += 1,
            }
        }
        None
    }
}

/// Removes quoted-pair escapes from the inside of a quoted string.
pub fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Quotes `s` as a SIP quoted-string, escaping `"` and `\`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits a header value at top-level commas (outside quotes and `<>`), trimming each part.
pub(crate) fn split_commas(v: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let b = v.as_bytes();
    let (mut start, mut i) = (0, 0);
    let (mut in_q, mut in_angle) = (false, false);
    while i < b.len() {
        match b[i] {
            b'\\' if in_q => i += 1,
            b'"' => in_q = !in_q,
            b'<' if !in_q => in_angle = true,
            b'>' if !in_q => in_angle = false,
            b',' if !in_q && !in_angle => {
                parts.push(v[start..i].trim_matches([' ', '\t']));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(v[start..].trim_matches([' ', '\t']));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape("a%41b%zz%4"), b"aAb%zz%4");
        assert!(all_escaped_or("ab%20c", |c| c.is_ascii_alphabetic()));
        assert!(!all_escaped_or("ab%2", |c| c.is_ascii_alphabetic()));
        assert!(!all_escaped_or("a%", |c| c.is_ascii_alphabetic()));
    }

    #[test]
    fn commas_respect_quotes_and_angles() {
        assert_eq!(
            split_commas(r#""a, b" <sip:x@y;p=1,2>, <sip:z>"#),
            vec![r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z>"]
        );
    }

    #[test]
    fn quoting_round_trips() {
        let q = quote(r#"J "R" \ x"#);
        let mut s = Scanner::new(&q);
        assert_eq!(unquote(s.quoted().unwrap()), r#"J "R" \ x"#);
    }
}
