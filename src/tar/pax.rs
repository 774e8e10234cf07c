//! PAX extended header records (POSIX.1-2001, `pax` Extended Header).
//!
//! A record is `"%d %s=%s\n"`, its length counting itself. Go's reader keeps the last value of
//! a repeated key, rejects a malformed record as a bad header, and ignores an empty value (the
//! header field then stands). The byte spans are kept so that a rewriter can replace one
//! record's value and leave every other byte as it was.

use std::ops::Range;

/// Key of the owner's numeric user id.
pub const UID: &str = "uid";
/// Key of the owner's numeric group id.
pub const GID: &str = "gid";
/// Key of the entry name; it overrides the header's name and prefix.
pub const PATH: &str = "path";
/// Key of a link target.
pub const LINKPATH: &str = "linkpath";
/// Key of the data size.
pub const SIZE: &str = "size";
/// Prefix of extended attributes as written by star, GNU tar and Go.
pub const XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Key of the real name of a file stored in GNU tar's PAX sparse formats.
pub const GNU_SPARSE_NAME: &str = "GNU.sparse.name";
/// Keys of the version of GNU tar's PAX sparse format (0.0, 0.1 or 1.0).
pub const GNU_SPARSE_MAJOR: &str = "GNU.sparse.major";
pub const GNU_SPARSE_MINOR: &str = "GNU.sparse.minor";
/// Key of the sparse map of format 0.1, which carries no version records.
pub const GNU_SPARSE_MAP: &str = "GNU.sparse.map";
/// Keys of format 0.0, a record per map entry, which Go folds into a map.
pub const GNU_SPARSE_OFFSET: &str = "GNU.sparse.offset";
pub const GNU_SPARSE_NUMBYTES: &str = "GNU.sparse.numbytes";

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key; bytes that are not UTF-8 (Go takes any) are replaced, which only matters for
    /// keys idfit never acts on.
    pub key: String,
    pub value: Vec<u8>,
    /// Where the whole record (length prefix to newline) sits in the extended header data.
    pub span: Range<usize>,
}

/// Why a PAX record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaxError {
    #[error("malformed PAX record at byte {offset} of the extended header")]
    Malformed { offset: usize },
}

/// Parses every record of an extended header's data.
pub fn parse_records(data: &[u8]) -> Result<Vec<Record>, PaxError> {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let record = parse_record(data, offset).ok_or(PaxError::Malformed { offset })?;
        offset = record.span.end;
        records.push(record);
    }
    Ok(records)
}

fn parse_record(data: &[u8], start: usize) -> Option<Record> {
    let rest = &data[start..];
    let space = rest.iter().position(|&b| b == b' ')?;
    let length: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
    if length < 5 || length > rest.len() || length <= space + 1 || rest[length - 1] != b'\n' {
        return None;
    }
    let body = &rest[space + 1..length - 1];
    let equals = body.iter().position(|&b| b == b'=')?;
    let key = String::from_utf8_lossy(&body[..equals]);
    let value = &body[equals + 1..];
    if key.is_empty() || key.contains('\0') {
        return None;
    }
    let is_name = matches!(&*key, PATH | LINKPATH | "uname" | "gname");
    if is_name && value.contains(&0) {
        return None;
    }
    Some(Record {
        key: key.into_owned(),
        value: value.to_vec(),
        span: start..start + length,
    })
}

/// Formats a record, finding the length prefix that counts its own digits.
pub fn format_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, equals sign, newline
    let mut length = body + 1;
    while body + length.to_string().len() != length {
        length = body + length.to_string().len();
    }
    let mut out = format!("{length} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// Parses a numeric id record value as Go's `strconv.ParseInt(v, 10, 64)` would.
pub fn parse_id(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records_and_keeps_spans() {
        let data = b"15 uid=1000000\n10 gid=42\n";
        let records = parse_records(data).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key, "uid");
        assert_eq!(records[0].value, b"1000000");
        assert_eq!(records[1].span, 15..25);
    }

    #[test]
    fn keys_need_not_be_utf8() {
        let records = parse_records(b"11 a\xffb=val\n10 uid=17\n").unwrap();
        assert_eq!(records[0].key, "a\u{fffd}b");
        assert_eq!(records[1].value, b"17");
    }

    #[test]
    fn rejects_malformed_records() {
        for data in [
            &b"9 uid=1\n"[..],
            b"x uid=1\n",
            b"7 uid1\n",
            b"3 a\n",
            b"99 uid=1\n",
        ] {
            assert!(
                parse_records(data).is_err(),
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
    }

    #[test]
    fn format_counts_its_own_length() {
        for (key, value) in [
            ("uid", &b"1"[..]),
            ("uid", b"1000000"),
            ("path", &[b'a'; 95]),
        ] {
            let record = format_record(key, value);
            let parsed = parse_records(&record).unwrap();
            assert_eq!(parsed[0].value, value);
            assert_eq!(parsed[0].span.len(), record.len());
        }
    }

    #[test]
    fn ids_parse_like_go() {
        assert_eq!(parse_id(b"4294967296"), Some(1 << 32));
        assert_eq!(parse_id(b"-1"), Some(-1));
        assert_eq!(parse_id(b"+7"), Some(7));
        assert_eq!(parse_id(b"1_0"), None);
        assert_eq!(parse_id(b"99999999999999999999"), None);
        assert_eq!(parse_id(b" 1"), None);
    }
}
