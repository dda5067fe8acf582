//! UTF-8 validation of the header, written out: `core::str::from_utf8` is about 600 bytes of
//! flash on a Cortex-M (code and a 256-byte table); this loop is a fraction of that. The header
//! is scanned once as bytes, so nothing here builds a `&str`.

/// The length of the longest valid UTF-8 prefix of `bytes`, or `None` if all of it is valid:
/// the same position as `core::str::Utf8Error::valid_up_to`.
pub(crate) fn invalid_at(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(&lead) = bytes.get(at) {
        if lead < 0x80 {
            at += 1;
            continue;
        }
        // Sequence length, the payload bits of the lead byte and the smallest code point that
        // needs this length (anything smaller is an overlong encoding).
        let (len, mut code, min) = match lead {
            0xc2..=0xdf => (2, u32::from(lead & 0x1f), 0x80),
            0xe0..=0xef => (3, u32::from(lead & 0x0f), 0x800),
            0xf0..=0xf4 => (4, u32::from(lead & 0x07), 0x1_0000),
            _ => return Some(at),
        };
        for i in 1..len {
            match bytes.get(at + i) {
                Some(&next) if next & 0xc0 == 0x80 => code = code << 6 | u32::from(next & 0x3f),
                _ => return Some(at),
            }
        }
        if code < min || code > 0x10_ffff || (0xd800..=0xdfff).contains(&code) {
            return Some(at);
        }
        at += len;
    }
    None
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::invalid_at;
    use std::vec::Vec;

    /// What the standard library says of `bytes`.
    fn core_says(bytes: &[u8]) -> Option<usize> {
        core::str::from_utf8(bytes).err().map(|e| e.valid_up_to())
    }

    #[test]
    fn agrees_with_core_on_the_edge_cases() {
        let cases: [&[u8]; 16] = [
            b"",
            b"plain ascii",
            "é 中 😀".as_bytes(),
            b"\xc0\x80",              // overlong NUL
            b"\xc1\xbf",              // overlong
            b"\xe0\x80\x80",          // overlong 3-byte
            b"\xe0\xa0\x80",          // smallest 3-byte
            b"\xed\xa0\x80",          // surrogate D800
            b"\xed\x9f\xbf",          // U+D7FF
            b"\xf0\x8f\xbf\xbf",      // overlong 4-byte
            b"\xf4\x8f\xbf\xbf",      // U+10FFFF
            b"\xf4\x90\x80\x80",      // past U+10FFFF
            b"\xf5\x80\x80\x80",      // bad lead
            b"ab\xe2\x82",            // truncated at the end
            b"a\x80b",                // stray continuation byte
            b"\xe2\x28\xa1 trailing", // bad continuation byte
        ];
        for bytes in cases {
            assert_eq!(invalid_at(bytes), core_says(bytes), "{bytes:x?}");
        }
    }

    #[test]
    fn agrees_with_core_on_every_short_sequence() {
        // Every 1- and 2-byte input, and every 3-byte input whose bytes come from a set that
        // covers each lead-byte range and continuation boundary.
        let interesting: Vec<u8> = (0..=255u8)
            .filter(|b| {
                matches!(
                    b,
                    0x00 | 0x41
                        | 0x7f
                        | 0x80
                        | 0x8f
                        | 0x90
                        | 0x9f
                        | 0xa0
                        | 0xbf
                        | 0xc0
                        | 0xc1
                        | 0xc2
                        | 0xdf
                        | 0xe0
                        | 0xe1
                        | 0xec
                        | 0xed
                        | 0xee
                        | 0xef
                        | 0xf0
                        | 0xf1
                        | 0xf3
                        | 0xf4
                        | 0xf5
                        | 0xff
                )
            })
            .collect();
        for a in 0..=255u8 {
            assert_eq!(invalid_at(&[a]), core_says(&[a]));
            for b in 0..=255u8 {
                assert_eq!(invalid_at(&[a, b]), core_says(&[a, b]), "{a:x} {b:x}");
            }
        }
        for &a in &interesting {
            for &b in &interesting {
                for &c in &interesting {
                    for &d in &[0x80u8, 0xbf, 0x41] {
                        let bytes = [a, b, c, d];
                        assert_eq!(invalid_at(&bytes), core_says(&bytes), "{bytes:x?}");
                        assert_eq!(invalid_at(&bytes[..3]), core_says(&bytes[..3]));
                    }
                }
            }
        }
    }
}
