//! Compares a layer tar before and after `idfit fix`, 512-byte block by block, to show that
//! the rewrite touched ownership and nothing else.
//!
//! A tar stream (POSIX.1-2001 `pax`, with GNU `L`/`K` long names) is a sequence of members,
//! each made of header blocks (the extended headers `x`, `g`, `L` and `K` with their data,
//! then the entry's own ustar header) and content blocks, followed by the end-of-archive
//! zero blocks and whatever a writer put after them. Blocks are paired member by member, so
//! a PAX header or an account file whose length changed shifts nothing after it; where no
//! length changed this is the same as comparing block `i` with block `i`.

const BLOCK: usize = 512;
/// Byte ranges of a ustar header that an ownership rewrite may change: `uid`, `gid`,
/// `size` (only for account files given new content) and `chksum`.
const UID: std::ops::Range<usize> = 108..116;
const GID: std::ops::Range<usize> = 116..124;
const SIZE: std::ops::Range<usize> = 124..136;
const CHKSUM: std::ops::Range<usize> = 148..156;

/// What differs between two versions of a layer that differ only where allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerDiff {
    /// Blocks in the old layer.
    pub blocks: usize,
    /// Header blocks (extended headers included) that differ or were added or removed.
    pub header_blocks: usize,
    /// Account files whose content differs.
    pub content: Vec<String>,
}

/// One member's blocks.
struct Member<'a> {
    /// The entry's path after GNU long names and PAX `path` records.
    path: String,
    /// Extended headers and their data: they carry ids in PAX records and may change freely.
    extended: Vec<&'a [u8]>,
    /// The entry's own ustar header.
    header: &'a [u8],
    content: Vec<&'a [u8]>,
}

/// Checks that `new` has the members of `old` in the same order with the same paths, that
/// each entry's ustar header differs at most in its id fields and checksum (and size, for
/// `editable` files), that content differs only for `editable` paths, and that what
/// follows the last member is unchanged. `editable` paths are written without a leading `/`.
pub fn compare(old: &[u8], new: &[u8], editable: &[&str]) -> Result<LayerDiff, String> {
    let (old_members, old_trailer) = parse(old).map_err(|e| format!("old layer: {e}"))?;
    let (new_members, new_trailer) = parse(new).map_err(|e| format!("new layer: {e}"))?;
    if old_members.len() != new_members.len() {
        return Err(format!(
            "{} members became {}",
            old_members.len(),
            new_members.len()
        ));
    }

    let mut diff = LayerDiff {
        blocks: old.len() / BLOCK,
        ..LayerDiff::default()
    };
    for (a, b) in old_members.iter().zip(&new_members) {
        if a.path != b.path {
            return Err(format!("member `{}` became `{}`", a.path, b.path));
        }
        let may_edit = editable.contains(&clean(&a.path));
        diff.header_blocks += changed_blocks(&a.extended, &b.extended);
        if a.header != b.header {
            diff.header_blocks += 1;
            header_fields_only(a.header, b.header, may_edit)
                .map_err(|e| format!("`{}`: {e}", a.path))?;
        }
        if a.content != b.content {
            if !may_edit {
                return Err(format!("content of `{}` changed", a.path));
            }
            diff.content.push(a.path.clone());
        }
    }

    if old_trailer != new_trailer {
        return Err("the blocks after the last member changed".to_string());
    }
    Ok(diff)
}

fn changed_blocks(a: &[&[u8]], b: &[&[u8]]) -> usize {
    let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
    differing + a.len().abs_diff(b.len())
}

/// Fails unless two ustar headers differ only in the fields an ownership rewrite may touch.
fn header_fields_only(a: &[u8], b: &[u8], size_may_change: bool) -> Result<(), String> {
    let allowed = |i: usize| {
        UID.contains(&i)
            || GID.contains(&i)
            || CHKSUM.contains(&i)
            || (size_may_change && SIZE.contains(&i))
    };
    match (0..BLOCK).find(|&i| a[i] != b[i] && !allowed(i)) {
        Some(i) => Err(format!(
            "header byte {i} changed outside uid, gid and checksum"
        )),
        None => Ok(()),
    }
}

fn clean(path: &str) -> &str {
    path.trim_start_matches("./").trim_start_matches('/')
}

/// Splits a tar stream into members and what follows the first zero block.
fn parse(tar: &[u8]) -> Result<(Vec<Member<'_>>, &[u8]), String> {
    let mut members = Vec::new();
    let mut extended = Vec::new();
    let mut long_path = None;
    let mut position = 0;
    loop {
        let header = tar
            .get(position..position + BLOCK)
            .ok_or_else(|| format!("truncated at byte {position}"))?;
        if header.iter().all(|&b| b == 0) && extended.is_empty() {
            return Ok((members, &tar[position..]));
        }

        let kind = header[156];
        let size = numeric(&header[SIZE])?;
        // Go's archive/tar (and so every runtime) reads no data for these kinds.
        let header_only = matches!(kind, b'1'..=b'6');
        let data_blocks = if header_only { 0 } else { size.div_ceil(BLOCK) };
        let start = position + BLOCK;
        let data = tar
            .get(start..start + data_blocks * BLOCK)
            .ok_or_else(|| format!("data of the member at byte {position} is truncated"))?;
        let blocks = data.chunks(BLOCK);
        position = start + data_blocks * BLOCK;

        match kind {
            b'x' | b'g' | b'L' | b'K' => {
                extended.push(header);
                extended.extend(blocks);
                let body = &data[..size];
                long_path = match kind {
                    b'L' => Some(c_string(body)),
                    b'x' => pax_path(body).or(long_path),
                    _ => long_path,
                };
            }
            _ => members.push(Member {
                path: long_path.take().unwrap_or_else(|| ustar_path(header)),
                extended: std::mem::take(&mut extended),
                header,
                content: blocks.collect(),
            }),
        }
    }
}

fn ustar_path(header: &[u8]) -> String {
    let name = c_string(&header[..100]);
    let prefix = c_string(&header[345..500]);
    if &header[257..262] == b"ustar" && !prefix.is_empty() {
        format!("{prefix}/{name}")
    } else {
        name
    }
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The `path` record of a PAX extended header body, if it has one.
fn pax_path(body: &[u8]) -> Option<String> {
    let mut rest = body;
    let mut path = None;
    while let Some(space) = rest.iter().position(|&b| b == b' ') {
        let length: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        let record = rest.get(space + 1..length.checked_sub(1)?)?;
        if let Some(value) = record.strip_prefix(b"path=") {
            path = Some(String::from_utf8_lossy(value).into_owned());
        }
        rest = rest.get(length..)?;
    }
    path
}

/// A size field: octal, or GNU base-256 when the top bit of the first byte is set.
fn numeric(field: &[u8]) -> Result<usize, String> {
    if field[0] & 0x80 != 0 {
        let value = field[1..]
            .iter()
            .fold(u64::from(field[0] & 0x7f), |n, &b| (n << 8) | u64::from(b));
        return usize::try_from(value).map_err(|e| e.to_string());
    }
    let text = String::from_utf8_lossy(field);
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Ok(0);
    }
    usize::from_str_radix(digits, 8).map_err(|e| format!("size field `{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::super::tar::{Layer, file, file_with};
    use super::*;

    fn tar(uid: i64, passwd: &[u8]) -> Vec<u8> {
        Layer::of([
            file_with("etc/passwd", passwd).into(),
            file_with("a", b"data").owner(uid, 0).into(),
        ])
        .to_tar()
    }

    #[test]
    fn owner_and_account_changes_are_allowed() {
        let old = tar(1_000_000, b"app:x:1000000:0::/:/bin/sh\n");
        let new = tar(60001, b"app:x:60001:0::/:/bin/sh\n");
        let diff = compare(&old, &new, &["etc/passwd"]).unwrap();
        assert_eq!(diff.header_blocks, 2);
        assert_eq!(diff.content, ["etc/passwd"]);
    }

    #[test]
    fn content_changes_elsewhere_are_not() {
        let old = Layer::of([file_with("a", b"one").into()]).to_tar();
        let new = Layer::of([file_with("a", b"two").into()]).to_tar();
        assert_eq!(
            compare(&old, &new, &["etc/passwd"]),
            Err("content of `a` changed".to_string())
        );
    }

    #[test]
    fn a_renamed_or_dropped_entry_is_caught() {
        let old = Layer::of([file("a").into(), file("b").into()]).to_tar();
        let renamed = Layer::of([file("a").into(), file("c").into()]).to_tar();
        let dropped = Layer::of([file("a").into()]).to_tar();
        assert!(
            compare(&old, &renamed, &[])
                .unwrap_err()
                .contains("`b` became `c`")
        );
        assert_eq!(
            compare(&old, &dropped, &[]),
            Err("2 members became 1".to_string())
        );
    }
}
