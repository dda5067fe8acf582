//! A small JSON scanner for the safetensors header: objects, strings and arrays of
//! non-negative integers, which is all a v1 header holds. No allocation, no recursion.

use crate::error::{Fault, Rule};

/// A string as it stands in the header, between its quotes, escapes validated but not decoded.
/// v1 names and values never need escapes, so a raw comparison is exact for them. The header is
/// checked to be UTF-8 before it is scanned ([`crate::utf8`]), so these bytes are UTF-8 too.
pub(crate) type RawStr<'a> = &'a [u8];

/// A position in the header text.
pub(crate) struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a [u8]) -> Self {
        Cursor { text, pos: 0 }
    }

    /// The current byte position, for error messages.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn bytes(&self) -> &'a [u8] {
        self.text
    }

    fn error(&self) -> Fault {
        Fault::Byte(Rule::InvalidJson, self.pos as u32)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes().get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), Fault> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Only whitespace (the writer's space padding) may follow the top-level object.
    pub(crate) fn end(&mut self) -> Result<(), Fault> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error()),
        }
    }

    /// Reads a string and returns its raw text between the quotes.
    pub(crate) fn string(&mut self) -> Result<RawStr<'a>, Fault> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            let Some(&b) = self.bytes().get(self.pos) else {
                return Err(self.error());
            };
            match b {
                b'"' => break,
                b'\\' => {
                    self.pos += 1;
                    match self.bytes().get(self.pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            let hex = self.bytes().get(self.pos + 1..self.pos + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.error());
                            }
                            self.pos += 5;
                        }
                        _ => return Err(self.error()),
                    }
                }
                0x00..=0x1f => return Err(self.error()),
                _ => self.pos += 1,
            }
        }
        let raw = self.text.get(start..self.pos).ok_or_else(|| self.error())?;
        self.pos += 1;
        Ok(raw)
    }

    /// Reads a non-negative integer (no sign, fraction or exponent; no leading zeros).
    pub(crate) fn uint(&mut self) -> Result<u64, Fault> {
        self.skip_ws();
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(&b) = self.bytes().get(self.pos) {
            if !b.is_ascii_digit() {
                break;
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| self.error())?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 || (digits > 1 && self.bytes()[start] == b'0') {
            self.pos = start;
            return Err(self.error());
        }
        Ok(value)
    }

    /// Reads an object, calling `entry` with each key; `entry` must consume the value.
    /// `entry` is a trait object so that the scanner is compiled once, not per caller.
    pub(crate) fn object(
        &mut self,
        entry: &mut dyn FnMut(&mut Self, RawStr<'a>) -> Result<(), Fault>,
    ) -> Result<(), Fault> {
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            entry(self, key)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error()),
            }
        }
    }

    /// Reads an array of non-negative integers into `out`; returns how many there were.
    /// More than `out.len()` elements is an error, reported by `too_many`.
    pub(crate) fn uint_array(&mut self, out: &mut [u64], too_many: Fault) -> Result<usize, Fault> {
        self.expect(b'[')?;
        let mut count = 0;
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(0);
        }
        loop {
            let value = self.uint()?;
            *out.get_mut(count).ok_or(too_many)? = value;
            count += 1;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(count);
                }
                _ => return Err(self.error()),
            }
        }
    }

    /// Tells whether the next value is an object, without consuming it.
    pub(crate) fn at_object(&mut self) -> bool {
        self.peek() == Some(b'{')
    }

    /// Tells whether the next value is a string, without consuming it.
    pub(crate) fn at_string(&mut self) -> bool {
        self.peek() == Some(b'"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keep_raw_escapes_and_reject_control_bytes() {
        assert_eq!(
            Cursor::new(br#""a\"b\u00e9""#).string().unwrap(),
            br#"a\"b\u00e9"#
        );
        assert!(Cursor::new(b"\"a\nb\"").string().is_err());
        assert!(Cursor::new(br#""\x""#).string().is_err());
        assert!(Cursor::new(br#""\u12g4""#).string().is_err());
        assert!(Cursor::new(br#""open"#).string().is_err());
    }

    #[test]
    fn integers_are_plain_decimal() {
        assert_eq!(Cursor::new(b" 0").uint().unwrap(), 0);
        assert_eq!(
            Cursor::new(b"18446744073709551615").uint().unwrap(),
            u64::MAX
        );
        for bad in ["18446744073709551616", "-1", "01", "", "x"] {
            assert!(Cursor::new(bad.as_bytes()).uint().is_err(), "{bad}");
        }
    }

    #[test]
    fn arrays_are_bounded() {
        let mut out = [0u64; 2];
        let too_many = Fault::Byte(Rule::WrongShape, 0);
        assert_eq!(
            Cursor::new(b"[1, 2]")
                .uint_array(&mut out, too_many)
                .unwrap(),
            2
        );
        assert_eq!(
            Cursor::new(b"[]").uint_array(&mut out, too_many).unwrap(),
            0
        );
        assert_eq!(
            Cursor::new(b"[1,2,3]").uint_array(&mut out, too_many),
            Err(too_many)
        );
        assert!(Cursor::new(b"[1,]").uint_array(&mut out, too_many).is_err());
    }
}
