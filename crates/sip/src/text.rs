//! Character classes of the RFC 3261 grammar (§25.1) and a small scanner over header text.

/// Character classes of the grammar, one bit each, for ASCII characters (no class holds
/// anything outside ASCII).
pub(crate) mod class {
    /// `token`: alphanum and `-.!%*_+`'~`.
    pub(crate) const TOKEN: u16 = 1;
    /// `word` (Call-ID): token plus `()<>:\"/[]?{}`.
    pub(crate) const WORD: u16 = 1 << 1;
    /// `unreserved`: alphanum and `-_.!~*'()`.
    pub(crate) const UNRESERVED: u16 = 1 << 2;
    /// A URI's user part: unreserved plus `&=+$,;?/`.
    pub(crate) const USER: u16 = 1 << 3;
    /// A URI's password: unreserved plus `&=+$,`.
    pub(crate) const PASSWORD: u16 = 1 << 4;
    /// A URI parameter's name or value: unreserved plus `[]/:&+$`.
    pub(crate) const URI_PARAM: u16 = 1 << 5;
    /// A URI header's name or value: unreserved plus `[]/?:+$`.
    pub(crate) const URI_HEADER: u16 = 1 << 6;
    /// A host name: alphanum and `-._`.
    pub(crate) const HOST: u16 = 1 << 7;
    /// A URI scheme after its first letter: alphanum and `+-.`.
    pub(crate) const SCHEME: u16 = 1 << 8;
}

const fn classes() -> [u16; 128] {
    const fn mark(t: &mut [u16; 128], chars: &[u8], bit: u16) {
        let mut i = 0;
        while i < chars.len() {
            t[chars[i] as usize] |= bit;
            i += 1;
        }
    }
    use class::*;
    let mut t = [0u16; 128];
    let mut c = 0;
    while c < 128 {
        if (c as u8).is_ascii_alphanumeric() {
            t[c] = TOKEN | WORD | UNRESERVED | USER | PASSWORD | URI_PARAM | URI_HEADER;
            t[c] |= HOST | SCHEME;
        }
        c += 1;
    }
    mark(&mut t, b"-.!%*_+`'~", TOKEN | WORD);
    mark(&mut t, b"()<>:\\\"/[]?{}", WORD);
    mark(
        &mut t,
        b"-_.!~*'()",
        UNRESERVED | USER | PASSWORD | URI_PARAM | URI_HEADER,
    );
    mark(&mut t, b"&=+$,;?/", USER);
    mark(&mut t, b"&=+$,", PASSWORD);
    mark(&mut t, b"[]/:&+$", URI_PARAM);
    mark(&mut t, b"[]/?:+$", URI_HEADER);
    mark(&mut t, b"-._", HOST);
    mark(&mut t, b"+-.", SCHEME);
    t
}

static CLASSES: [u16; 128] = classes();

/// True when byte `b` belongs to one of the classes in `mask`.
#[inline]
pub(crate) fn byte_in(b: u8, mask: u16) -> bool {
    b < 128 && CLASSES[b as usize] & mask != 0
}

/// True when every byte of `s` belongs to `mask`.
pub(crate) fn all_in(s: &str, mask: u16) -> bool {
    s.bytes().all(|b| byte_in(b, mask))
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && all_in(s, class::TOKEN)
}

/// True when `s` contains only characters of `mask` or well-formed `%HH` escapes.
pub(crate) fn all_escaped_or(s: &str, mask: u16) -> bool {
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
        if !byte_in(b[i], mask) {
            return false;
        }
        i += 1;
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

/// Where ASCII byte `b` first occurs in `s` ([`find_in`]): header values are short, and
/// `str::find` spends more setting up its search than this spends searching. Any position
/// it returns is a char boundary (UTF-8 never uses ASCII bytes inside a character).
#[inline]
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    find_in(s.as_bytes(), 0, b)
}

/// Where byte `b` first occurs in `buf` at or after `from`. Eight bytes at a time: a word
/// XORed with `b` in every byte has a zero byte exactly where `b` was, and the classic
/// zero-byte test flags it (the lowest flag is exact; flags above it may be borrows).
pub(crate) fn find_in(buf: &[u8], from: usize, b: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(b);
    let mut i = from;
    while let Some(chunk) = buf.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        let hits = x.wrapping_sub(ONES) & !x & HIGHS;
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    buf.get(i..)?.iter().position(|&c| c == b).map(|p| i + p)
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(k: &mut String, n: u32) {
    if n >= 10 {
        push_decimal(k, n / 10);
    }
    k.push(char::from(b'0' + (n % 10) as u8));
}

/// `s` split around the first ASCII byte `b`.
#[inline]
pub(crate) fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    find_byte(s, b).map(|i| (&s[..i], &s[i + 1..]))
}

/// `s` split around the last ASCII byte `b`.
#[inline]
pub(crate) fn rsplit_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    s.bytes()
        .rposition(|c| c == b)
        .map(|i| (&s[..i], &s[i + 1..]))
}

/// The pieces of `s` between ASCII bytes `b`, like `str::split` (an empty `s` gives one
/// empty piece).
pub(crate) fn split_byte(s: &str, b: u8) -> SplitByte<'_> {
    SplitByte { rest: Some(s), b }
}

/// See [`split_byte`].
pub(crate) struct SplitByte<'a> {
    rest: Option<&'a str>,
    b: u8,
}

impl<'a> Iterator for SplitByte<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match split_once_byte(rest, self.b) {
            Some((piece, tail)) => {
                self.rest = Some(tail);
                Some(piece)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
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
        let b = *self.s.as_bytes().get(self.pos)?;
        if b.is_ascii() {
            Some(b as char)
        } else {
            self.rest().chars().next()
        }
    }

    /// The byte at the cursor.
    fn peek_byte(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Moves the cursor `n` bytes on; the caller knows they end on a char boundary.
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.s.len());
    }

    /// Skips spaces and tabs (header values are already unfolded).
    pub(crate) fn skip_ws(&mut self) {
        while matches!(self.peek_byte(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Consumes `c` surrounded by optional whitespace (`SWS c SWS`).
    pub(crate) fn eat_sep(&mut self, c: char) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.eat(c) {
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    pub(crate) fn eat(&mut self, c: char) -> bool {
        let hit = if c.is_ascii() {
            self.peek_byte() == Some(c as u8)
        } else {
            self.peek() == Some(c)
        };
        if hit {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// The longest run at the cursor of bytes `f` accepts. `f` sees bytes, so it must treat
    /// every byte above 0x7f alike (all in or all out): then the run ends on a char boundary.
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let b = self.s.as_bytes();
        while self.pos < b.len() && f(b[self.pos]) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// The longest run of bytes of `mask` at the cursor (possibly empty).
    pub(crate) fn take_class(&mut self, mask: u16) -> &'a str {
        let start = self.pos;
        let b = self.s.as_bytes();
        while self.pos < b.len() && byte_in(b[self.pos], mask) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    pub(crate) fn token(&mut self) -> Option<&'a str> {
        let t = self.take_class(class::TOKEN);
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
pub(crate) fn split_commas(v: &str) -> Commas<'_> {
    Commas {
        rest: Some(v),
        // No comma at all, so no quoting to follow: the common single value.
        single: find_byte(v, b',').is_none(),
    }
}

/// The parts of [`split_commas`], found as they are asked for.
#[derive(Debug, Clone)]
pub(crate) struct Commas<'a> {
    rest: Option<&'a str>,
    single: bool,
}

impl<'a> Iterator for Commas<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let v = self.rest?;
        let trim = |p: &'a str| p.trim_matches([' ', '\t']);
        if self.single {
            self.rest = None;
            return Some(trim(v));
        }
        let b = v.as_bytes();
        let (mut in_q, mut in_angle) = (false, false);
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if in_q => i += 1,
                b'"' => in_q = !in_q,
                b'<' if !in_q => in_angle = true,
                b'>' if !in_q => in_angle = false,
                b',' if !in_q && !in_angle => {
                    self.rest = Some(&v[i + 1..]);
                    return Some(trim(&v[..i]));
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(trim(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape("a%41b%zz%4"), b"aAb%zz%4");
        assert!(all_escaped_or("ab%20c", class::HOST));
        assert!(!all_escaped_or("ab%2", class::HOST));
        assert!(!all_escaped_or("a%", class::HOST));
        assert!(!all_escaped_or("a b", class::HOST));
    }

    #[test]
    fn classes_follow_the_grammar() {
        let alnum_or = |extra: &str, b: u8| b.is_ascii_alphanumeric() || extra.contains(b as char);
        let cases: [(u16, &str); 9] = [
            (class::TOKEN, "-.!%*_+`'~"),
            (class::WORD, "-.!%*_+`'~()<>:\\\"/[]?{}"),
            (class::UNRESERVED, "-_.!~*'()"),
            (class::USER, "-_.!~*'()&=+$,;?/"),
            (class::PASSWORD, "-_.!~*'()&=+$,"),
            (class::URI_PARAM, "-_.!~*'()[]/:&+$"),
            (class::URI_HEADER, "-_.!~*'()[]/?:+$"),
            (class::HOST, "-._"),
            (class::SCHEME, "+-."),
        ];
        for (mask, extra) in cases {
            for b in 0..=255u8 {
                let want = b < 128 && alnum_or(extra, b);
                assert_eq!(byte_in(b, mask), want, "{:?} in {mask:#x}", b as char);
            }
        }
        assert!(!is_token("é"));
    }

    #[test]
    fn byte_search_finds_the_first_occurrence_at_every_offset() {
        let sample = b"ab\r\ncd:\x80\xffxyz";
        let text: Vec<u8> = (0..200).map(|i| sample[i * 7 % sample.len()]).collect();
        for b in [b'\n', b':', b'a', b'z', 0x80, 0xff, b'q'] {
            for from in 0..text.len() + 2 {
                let want = text
                    .get(from..)
                    .and_then(|t| t.iter().position(|&c| c == b))
                    .map(|p| from + p);
                assert_eq!(find_in(&text, from, b), want, "byte {b:#x} from {from}");
            }
        }
    }

    #[test]
    fn commas_respect_quotes_and_angles() {
        assert_eq!(
            split_commas(r#""a, b" <sip:x@y;p=1,2>, <sip:z>"#).collect::<Vec<_>>(),
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
