//! One 512-byte tar header block and the numeric fields in it.
//!
//! Container runtimes read layers with Go's `archive/tar`, so this module parses a block the way
//! that reader does rather than the way POSIX says it should be: octal fields are trimmed of
//! spaces and NULs on both sides, a set high bit selects GNU base-256 (two's complement, so
//! negative values exist), and a block whose checksum matches neither the unsigned nor the
//! signed sum is not a header at all. The same offsets serve the rewriter, which patches the
//! ownership fields in place.

use std::ops::Range;

/// Size of a tar block; headers, PAX data and file contents are all padded to it.
pub const BLOCK_SIZE: usize = 512;

/// Field offsets of the ustar header (POSIX.1-2001 `pax` format, §ustar Interchange Format).
pub mod field {
    use std::ops::Range;

    pub const NAME: Range<usize> = 0..100;
    pub const MODE: Range<usize> = 100..108;
    pub const UID: Range<usize> = 108..116;
    pub const GID: Range<usize> = 116..124;
    pub const SIZE: Range<usize> = 124..136;
    pub const MTIME: Range<usize> = 136..148;
    pub const CHECKSUM: Range<usize> = 148..156;
    pub const TYPEFLAG: usize = 156;
    pub const LINKNAME: Range<usize> = 157..257;
    pub const MAGIC: Range<usize> = 257..263;
    pub const VERSION: Range<usize> = 263..265;
    pub const DEVMAJOR: Range<usize> = 329..337;
    pub const DEVMINOR: Range<usize> = 337..345;
    /// ustar `prefix`, joined to `name` with a slash.
    pub const PREFIX: Range<usize> = 345..500;
    /// The shorter prefix of Schily's star format, which keeps times after it.
    pub const STAR_PREFIX: Range<usize> = 345..476;
    pub const STAR_TRAILER: Range<usize> = 508..512;
    /// Old GNU sparse header: set when extension blocks follow the header.
    pub const GNU_IS_EXTENDED: usize = 482;
}

/// Which header layout a block uses, decided from its magic bytes like Go's `GetFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Unix V7: no magic, no user names, no prefix.
    V7,
    /// POSIX ustar, possibly with PAX extended headers.
    Ustar,
    /// GNU tar: `ustar  \0` magic, no prefix field.
    Gnu,
    /// Schily's star: ustar magic plus a `tar\0` trailer.
    Star,
}

/// How a numeric field was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// ASCII octal digits, the ustar form.
    Octal,
    /// GNU base-256: high bit set, big-endian two's complement in the remaining bits.
    Base256,
}

/// A numeric header field that Go's reader would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("invalid octal number `{}`", String::from_utf8_lossy(.0))]
    Octal(Vec<u8>),
    #[error("base-256 number overflows 64 bits")]
    Base256Overflow,
    #[error("negative value {0}")]
    Negative(i64),
}

/// A raw header block.
#[derive(Clone)]
pub struct HeaderBlock(pub [u8; BLOCK_SIZE]);

impl std::fmt::Debug for HeaderBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = String::from_utf8_lossy(self.string(field::NAME));
        write!(
            f,
            "HeaderBlock({name:?}, type {:?})",
            self.typeflag() as char
        )
    }
}

impl HeaderBlock {
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    pub fn typeflag(&self) -> u8 {
        self.0[field::TYPEFLAG]
    }

    /// The format, or `None` when the checksum is wrong (Go: `FormatUnknown`).
    pub fn format(&self) -> Option<Format> {
        let stored = parse_octal(&self.0[field::CHECKSUM]).ok()?;
        // The signed sum only matters for the rare writer that used it.
        if stored != self.unsigned_checksum() && stored != self.checksums().1 {
            return None;
        }
        let magic = &self.0[field::MAGIC];
        let version = &self.0[field::VERSION];
        Some(match magic {
            b"ustar\0" if &self.0[field::STAR_TRAILER] == b"tar\0" => Format::Star,
            b"ustar\0" => Format::Ustar,
            b"ustar " if version == b" \0" => Format::Gnu,
            _ => Format::V7,
        })
    }

    /// Sums of all bytes with the checksum field counted as spaces, as unsigned and as signed
    /// bytes; historic writers used either.
    pub fn checksums(&self) -> (i64, i64) {
        // A byte of 128 or more counts 256 less as a signed byte.
        let high = |bytes: &[u8]| bytes.iter().filter(|&&b| b >= 0x80).count() as i64;
        let high = high(&self.0) - high(&self.0[field::CHECKSUM]);
        let unsigned = self.unsigned_checksum();
        (unsigned, unsigned - 256 * high)
    }

    /// The unsigned sum alone, which nearly every writer uses.
    fn unsigned_checksum(&self) -> i64 {
        // Sum everything, then swap the checksum field's own bytes for spaces. Halves of
        // 256 bytes fit a 16-bit sum, which the compiler vectorises cheaply.
        let sum = |bytes: &[u8]| -> i64 {
            bytes
                .chunks(256)
                .map(|chunk| {
                    let partial = chunk
                        .iter()
                        .fold(0u16, |sum, &b| sum.wrapping_add(u16::from(b)));
                    i64::from(partial)
                })
                .sum()
        };
        sum(&self.0) - sum(&self.0[field::CHECKSUM]) + 8 * i64::from(b' ')
    }

    /// Recomputes and stores the checksum the way Go and GNU tar write it: six octal digits,
    /// a NUL and a space.
    pub fn set_checksum(&mut self) {
        let unsigned = self.unsigned_checksum();
        let text = format!("{unsigned:06o}\0 ");
        self.0[field::CHECKSUM].copy_from_slice(text.as_bytes());
    }

    /// A NUL-terminated string field.
    pub fn string(&self, range: Range<usize>) -> &[u8] {
        cut_at_nul(&self.0[range])
    }

    pub fn numeric(&self, range: Range<usize>) -> Result<(i64, Encoding), FieldError> {
        parse_numeric(&self.0[range])
    }

    /// The entry name, with the ustar or star prefix joined in front when present.
    pub fn name(&self, format: Format) -> Vec<u8> {
        let name = self.string(field::NAME);
        let prefix = match format {
            Format::Ustar => self.string(field::PREFIX),
            Format::Star => self.string(field::STAR_PREFIX),
            Format::V7 | Format::Gnu => &[],
        };
        if prefix.is_empty() {
            return name.to_vec();
        }
        [prefix, b"/", name].concat()
    }
}

/// The bytes before the first NUL.
pub fn cut_at_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// Parses a numeric field as Go's `parseNumeric` does.
pub fn parse_numeric(bytes: &[u8]) -> Result<(i64, Encoding), FieldError> {
    match bytes.first() {
        Some(first) if first & 0x80 != 0 => parse_base256(bytes).map(|v| (v, Encoding::Base256)),
        _ => parse_octal(bytes).map(|v| (v, Encoding::Octal)),
    }
}

fn parse_base256(bytes: &[u8]) -> Result<i64, FieldError> {
    // Bit 6 of the first byte is the sign; a negative number is read through its complement.
    let invert = if bytes[0] & 0x40 != 0 { 0xff } else { 0x00 };
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let mut byte = byte ^ invert;
        if i == 0 {
            byte &= 0x7f;
        }
        if value >> 56 != 0 {
            return Err(FieldError::Base256Overflow);
        }
        value = (value << 8) | u64::from(byte);
    }
    if value >> 63 != 0 {
        return Err(FieldError::Base256Overflow);
    }
    let value = value as i64;
    Ok(if invert == 0xff { !value } else { value })
}

/// Octal digits, trimmed of spaces and NULs on both sides; an empty field is zero.
///
/// Go trims the field, cuts it at the first NUL left and parses the rest as a whole: digits
/// may be followed by a NUL (and anything after it) or by padding only.
pub fn parse_octal(bytes: &[u8]) -> Result<i64, FieldError> {
    let start = bytes
        .iter()
        .position(|&b| !is_pad(b))
        .unwrap_or(bytes.len());
    let mut value: u64 = 0;
    let mut end = start;
    while let Some(&digit) = bytes.get(end).filter(|b| (b'0'..=b'7').contains(b)) {
        if value >> 61 != 0 {
            return Err(invalid_octal(bytes));
        }
        value = (value << 3) | u64::from(digit - b'0');
        end += 1;
    }
    let rest = &bytes[end..];
    let valid = match rest.first() {
        None | Some(0) => true,
        Some(b' ') => rest.iter().all(|&b| is_pad(b)),
        Some(_) => false,
    };
    if !valid {
        return Err(invalid_octal(bytes));
    }
    // Go parses into a uint64 and converts, so values past i64::MAX wrap to negative.
    Ok(value as i64)
}

/// Space and NUL, which pad numeric fields on either side.
fn is_pad(byte: u8) -> bool {
    byte == b' ' || byte == 0
}

fn invalid_octal(bytes: &[u8]) -> FieldError {
    let start = bytes
        .iter()
        .position(|&b| !is_pad(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_pad(b))
        .map_or(start, |i| i + 1);
    FieldError::Octal(bytes[start..end].to_vec())
}

/// Writes `value` into a numeric field of `width` bytes: octal when it fits (with a trailing
/// NUL, as Go and GNU tar do), base-256 otherwise.
pub fn encode_numeric(value: i64, width: usize) -> Vec<u8> {
    let octal_digits = width - 1;
    if value >= 0 && (value as u64) < 1u64 << (3 * octal_digits as u32) {
        let mut out = format!("{value:0octal_digits$o}").into_bytes();
        out.push(0);
        return out;
    }
    let mut out = vec![0u8; width];
    let bytes = value.to_be_bytes();
    let fill = if value < 0 { 0xff } else { 0x00 };
    for (i, slot) in out.iter_mut().rev().enumerate() {
        *slot = if i < 8 { bytes[7 - i] } else { fill };
    }
    out[0] |= 0x80;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_as_go_reads_them() {
        let cases: &[(&[u8], Result<i64, ()>)] = &[
            (b"0001750\0", Ok(1000)),
            (b"   1750 ", Ok(1000)),
            (b"\0\0\0\0\0\0\0\0", Ok(0)),
            (b"        ", Ok(0)),
            (b"7777777\0", Ok(2097151)),
            (b"17 50\0\0\0", Err(())),
            (b"+1750\0\0\0", Err(())),
            (b"0008\0\0\0\0", Err(())),
            (b"12\x0034\0\0\0", Ok(0o12)),
        ];
        for (bytes, expected) in cases {
            let got = parse_octal(bytes).map_err(|_| ());
            assert_eq!(&got, expected, "field {:?}", String::from_utf8_lossy(bytes));
        }
    }

    /// Go's steps written out literally: trim, cut at NUL, parse the whole rest.
    fn go_parse_octal(bytes: &[u8]) -> Option<i64> {
        let is_pad = |b: &u8| *b == b' ' || *b == 0;
        let start = bytes.iter().position(|b| !is_pad(b))?;
        let end = bytes.iter().rposition(|b| !is_pad(b)).unwrap() + 1;
        let text = std::str::from_utf8(cut_at_nul(&bytes[start..end])).ok()?;
        if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        u64::from_str_radix(text, 8).ok().map(|v| v as i64)
    }

    proptest::proptest! {
        #[test]
        fn octal_matches_go_step_by_step(field in proptest::collection::vec(proptest::sample::select(b"0127 \x00+8x".to_vec()), 0..12)) {
            let expected = if field.iter().all(|b| *b == b' ' || *b == 0) { Some(0) } else { go_parse_octal(&field) };
            proptest::prop_assert_eq!(parse_octal(&field).ok(), expected, "{:?}", String::from_utf8_lossy(&field));
        }
    }

    #[test]
    fn base256_positive_negative_and_overflow() {
        let mut field = [0u8; 8];
        field[0] = 0x80;
        field[4..].copy_from_slice(&1_000_000u32.to_be_bytes());
        assert_eq!(parse_numeric(&field), Ok((1_000_000, Encoding::Base256)));

        assert_eq!(parse_numeric(&[0xff; 8]), Ok((-1, Encoding::Base256)));
        let minus_two = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe];
        assert_eq!(parse_numeric(&minus_two), Ok((-2, Encoding::Base256)));

        let mut wide = [0u8; 12];
        wide[0] = 0x80;
        wide[3] = 0x01;
        assert_eq!(parse_numeric(&wide), Err(FieldError::Base256Overflow));
    }

    #[test]
    fn encoding_round_trips_at_the_boundaries() {
        for value in [
            0,
            65535,
            65536,
            2097151,
            2097152,
            1 << 32,
            -1,
            -2,
            (1 << 62) - 1,
            -(1 << 62),
        ] {
            let bytes = encode_numeric(value, 8);
            assert_eq!(bytes.len(), 8);
            assert_eq!(
                parse_numeric(&bytes).map(|(v, _)| v),
                Ok(value),
                "value {value}"
            );
        }
        assert_eq!(encode_numeric(2097151, 8), b"7777777\0");
        assert_eq!(encode_numeric(2097152, 8)[0], 0x80);
    }

    proptest::proptest! {
        #[test]
        fn checksums_equal_the_plain_sums(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), BLOCK_SIZE)) {
            let mut block = HeaderBlock([0; BLOCK_SIZE]);
            block.0.copy_from_slice(&bytes);
            let spaced = |i: usize, b: u8| if field::CHECKSUM.contains(&i) { b' ' } else { b };
            let unsigned: i64 = bytes.iter().enumerate().map(|(i, &b)| i64::from(spaced(i, b))).sum();
            let signed: i64 = bytes.iter().enumerate().map(|(i, &b)| i64::from(spaced(i, b) as i8)).sum();
            proptest::prop_assert_eq!(block.checksums(), (unsigned, signed));
        }
    }

    #[test]
    fn checksum_accepts_signed_sums() {
        let mut block = HeaderBlock([0; BLOCK_SIZE]);
        block.0[..4].copy_from_slice(b"\xe9t\xe9/");
        block.0[field::MAGIC].copy_from_slice(b"ustar\0");
        block.0[field::VERSION].copy_from_slice(b"00");
        let (_, signed) = block.checksums();
        let text = format!("{signed:06o}\0 ");
        block.0[field::CHECKSUM].copy_from_slice(text.as_bytes());
        assert_eq!(block.format(), Some(Format::Ustar));
        block.0[0] = b'x';
        assert_eq!(block.format(), None);
    }
}
