//! Raw ids: how text tokens become u32 ids, and how ids become table rows. Trainer, command line
//! and firmware all call these, so they agree by construction.

/// A Criteo categorical token that is neither empty nor 8 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadCriteoToken;

impl core::fmt::Display for BadCriteoToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a Criteo categorical field must be empty or 8 hex digits")
    }
}

impl core::error::Error for BadCriteoToken {}

/// Criteo raw id: an 8-hex-digit token (either case) is its value as u32; an empty field is 0.
pub fn criteo_id(token: &[u8]) -> Result<u32, BadCriteoToken> {
    if token.is_empty() {
        return Ok(0);
    }
    if token.len() != 8 {
        return Err(BadCriteoToken);
    }
    token.iter().try_fold(0u32, |acc, &b| {
        let digit = (b as char).to_digit(16).ok_or(BadCriteoToken)?;
        Ok((acc << 4) | digit)
    })
}

/// FNV-1a 32-bit hash of a token's bytes: the raw id of Avazu and other string columns.
pub fn fnv1a32(token: &[u8]) -> u32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    token.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(PRIME)
    })
}

/// The row of raw id `raw` in a table of `rows` rows (`hashing = mod`). `rows` must be >= 1,
/// which every validated model guarantees; 0 rows maps to row 0 rather than panicking.
pub fn row_of(raw: u32, rows: u32) -> u32 {
    raw.checked_rem(rows).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteo_tokens() {
        assert_eq!(criteo_id(b""), Ok(0));
        assert_eq!(criteo_id(b"68fd1e64"), Ok(0x68fd_1e64));
        assert_eq!(criteo_id(b"FFFFFFFF"), Ok(u32::MAX));
        assert_eq!(criteo_id(b"0000000a"), Ok(10));
        for bad in [
            &b"68fd1e6"[..],
            b"68fd1e645",
            b"68fd1e6g",
            b" 8fd1e64",
            b"+8fd1e64",
        ] {
            assert_eq!(criteo_id(bad), Err(BadCriteoToken), "{bad:?}");
        }
    }

    #[test]
    fn fnv1a32_matches_published_vectors() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn rows_wrap_by_modulo() {
        assert_eq!(row_of(10, 3), 1);
        assert_eq!(row_of(u32::MAX, 1), 0);
        assert_eq!(row_of(5, 0), 0);
    }
}
