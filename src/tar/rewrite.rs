//! Changing owners inside a layer while keeping every other byte.
//!
//! The output has the same blocks in the same order as the input. Only these change: the
//! `uid`/`gid` header fields that held a replaced id, the PAX `uid`/`gid` records that held
//! one (and the ACL or capability xattr records that name one), the size of a PAX header
//! whose records changed length, the content and size of files given new content, and the
//! checksums of the headers touched. Names, link targets, modes, times, other records and all
//! other content pass through untouched, including what follows the end-of-archive blocks.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use super::entry::{Entry, EntryKind};
use super::header::{BLOCK_SIZE, HeaderBlock, encode_numeric, field};
use super::pax::{self, Record};
use super::reader::{RawRecord, Reader, Streamed, TarError, padding};
use crate::xattr;

/// Largest file whose content an edit may replace.
pub const MAX_EDITED_FILE: u64 = 4 << 20;

/// Gives new content for a file at a path, or `None` to keep it.
pub type ContentEdit<'a> = dyn Fn(&str, &[u8]) -> Option<Vec<u8>> + Sync + 'a;

/// What to change in a layer.
pub struct Edits<'a> {
    /// Replacement for each uid to change.
    pub uids: &'a BTreeMap<i64, i64>,
    /// Replacement for each gid to change.
    pub gids: &'a BTreeMap<i64, i64>,
    /// Regular files (by cleaned path) whose content `content` may replace.
    pub content_paths: &'a [&'a str],
    /// New content for one of `content_paths`, or `None` to keep it.
    pub content: &'a ContentEdit<'a>,
}

/// What a rewrite changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewriteStats {
    pub entries: u64,
    /// Entries whose owner changed.
    pub owners: u64,
    /// Xattr records rewritten.
    pub xattrs: u64,
    /// Paths whose content changed.
    pub contents: Vec<String>,
}

/// Copies the layer tar `input` to `output` with `edits` applied.
pub fn rewrite<R: Read, W: Write>(
    input: R,
    output: W,
    edits: &Edits,
) -> Result<RewriteStats, TarError> {
    let mut reader = Reader::new(Streamed(input)).keeping_raw();
    let mut out = Output {
        inner: output,
        position: 0,
    };
    let mut stats = RewriteStats::default();
    while let Some(entry) = reader.next_entry()? {
        stats.entries += 1;
        let raw = reader.take_raw();
        let content = edited_content(&mut reader, &entry, edits)?;
        let plan = EntryEdit::new(
            &entry,
            edits,
            content.as_ref().map(|c| c.bytes.len() as u64),
        );
        stats.owners += u64::from(plan.uid.is_some() || plan.gid.is_some());

        for record in raw.records {
            let applies = entry
                .pax
                .as_ref()
                .is_some_and(|(offset, _)| *offset == record.offset);
            match applies
                .then(|| plan.patch_pax(&record, &mut stats))
                .flatten()
            {
                Some((header, data)) => out.record(&header, &data)?,
                None => out.raw(&record)?,
            }
        }
        out.block(&plan.patch_header(reader.header().clone()).0)?;
        for block in &raw.sparse {
            out.block(&block.0)?;
        }
        match content {
            Some(content) => {
                if content.changed {
                    stats.contents.push(entry.path.clone());
                }
                out.data(&content.bytes)?;
                reader.copy_data(&mut io::sink())?;
            }
            None => reader.copy_data(&mut out)?,
        }
    }
    finish(reader, out)?;
    Ok(stats)
}

/// Writes the end-of-archive blocks as they were, then whatever followed them.
fn finish<R: Read, W: Write>(
    mut reader: Reader<Streamed<R>>,
    mut out: Output<W>,
) -> Result<(), TarError> {
    for record in reader.take_raw().records {
        out.raw(&record)?;
    }
    for _ in 0..reader.end_blocks() {
        out.block(&[0; BLOCK_SIZE])?;
    }
    let offset = reader.position();
    let Streamed(mut rest) = reader.into_inner();
    io::copy(&mut rest, &mut out).map_err(|source| TarError::Io { offset, source })?;
    out.inner
        .flush()
        .map_err(|source| TarError::Io { offset, source })
}

/// Reads a file's content when the edits may replace it, returning the new content.
fn edited_content<R: Read>(
    reader: &mut Reader<Streamed<R>>,
    entry: &Entry,
    edits: &Edits,
) -> Result<Option<Content>, TarError> {
    let path = &entry.path;
    let wanted = entry.kind == EntryKind::File
        && !entry.sparse
        && entry.data_size <= MAX_EDITED_FILE
        && edits.content_paths.contains(&path.as_str());
    if !wanted {
        return Ok(None);
    }
    let old = reader.read_data(MAX_EDITED_FILE)?;
    // The old content is gone from the stream; keep it when nothing changes.
    Ok(Some(match (edits.content)(path, &old) {
        Some(new) => Content {
            bytes: new,
            changed: true,
        },
        None => Content {
            bytes: old,
            changed: false,
        },
    }))
}

/// The content of an entry read to be edited, and whether the edit changed it.
struct Content {
    bytes: Vec<u8>,
    changed: bool,
}

/// The changes to one entry.
struct EntryEdit<'a> {
    entry: &'a Entry,
    edits: &'a Edits<'a>,
    uid: Option<i64>,
    gid: Option<i64>,
    /// The new content size, when the content changes size.
    size: Option<u64>,
}

impl<'a> EntryEdit<'a> {
    fn new(entry: &'a Entry, edits: &'a Edits<'a>, content_size: Option<u64>) -> Self {
        EntryEdit {
            entry,
            edits,
            uid: edits.uids.get(&entry.uid.value).copied(),
            gid: edits.gids.get(&entry.gid.value).copied(),
            size: content_size.filter(|&size| size != entry.data_size),
        }
    }

    /// Replaces each field that holds a value being changed.
    fn patch_header(&self, mut header: HeaderBlock) -> HeaderBlock {
        let mut changed = false;
        let fields = [
            (field::UID, self.entry.uid.value, self.uid),
            (field::GID, self.entry.gid.value, self.gid),
            (
                field::SIZE,
                self.entry.data_size as i64,
                self.size.map(|s| s as i64),
            ),
        ];
        for (range, old, new) in fields {
            let Some(new) = new else { continue };
            if header
                .numeric(range.clone())
                .is_ok_and(|(value, _)| value == old)
            {
                header.0[range.clone()].copy_from_slice(&encode_numeric(new, range.len()));
                changed = true;
            }
        }
        if changed {
            header.set_checksum();
        }
        header
    }

    /// The PAX header that applies to the entry with its records rewritten, or `None` when
    /// no record changes.
    fn patch_pax(
        &self,
        record: &RawRecord,
        stats: &mut RewriteStats,
    ) -> Option<(HeaderBlock, Vec<u8>)> {
        let (_, records) = self.entry.pax.as_ref()?;
        let data = record.data();
        let mut out = Vec::with_capacity(data.len());
        let mut changed = false;
        for record in records {
            match self.patch_record(record) {
                Some(value) => {
                    if record.key.starts_with(pax::XATTR_PREFIX) {
                        stats.xattrs += 1;
                    }
                    out.extend_from_slice(&pax::format_record(&record.key, &value));
                    changed = true;
                }
                None => out.extend_from_slice(&data[record.span.clone()]),
            }
        }
        if !changed {
            return None;
        }
        let mut header = record.header.clone();
        header.0[field::SIZE].copy_from_slice(&encode_numeric(out.len() as i64, field::SIZE.len()));
        header.set_checksum();
        Some((header, out))
    }

    fn patch_record(&self, record: &Record) -> Option<Vec<u8>> {
        let number = || pax::parse_id(&record.value);
        let replace = |old: i64, new: Option<i64>| {
            new.filter(|_| number() == Some(old))
                .map(|new| new.to_string().into_bytes())
        };
        match record.key.as_str() {
            pax::UID => replace(self.entry.uid.value, self.uid),
            pax::GID => replace(self.entry.gid.value, self.gid),
            pax::SIZE => replace(self.entry.data_size as i64, self.size.map(|s| s as i64)),
            key => {
                let name = key.strip_prefix(pax::XATTR_PREFIX)?;
                let uids = |id| self.edits.uids.get(&id).copied();
                let gids = |id| self.edits.gids.get(&id).copied();
                xattr::rewrite(name, &record.value, &uids, &gids)
            }
        }
    }
}

/// The output stream, counting bytes so that PAX headers can be matched by offset.
struct Output<W> {
    inner: W,
    position: u64,
}

impl<W: Write> Output<W> {
    fn block(&mut self, block: &[u8; BLOCK_SIZE]) -> Result<(), TarError> {
        self.bytes(block)
    }

    /// A metadata entry exactly as it was read.
    fn raw(&mut self, record: &RawRecord) -> Result<(), TarError> {
        self.block(&record.header.0)?;
        self.bytes(&record.padded)
    }

    fn record(&mut self, header: &HeaderBlock, data: &[u8]) -> Result<(), TarError> {
        self.block(&header.0)?;
        self.data(data)
    }

    /// Content followed by zero padding to the block size.
    fn data(&mut self, data: &[u8]) -> Result<(), TarError> {
        self.bytes(data)?;
        let zeros = [0u8; BLOCK_SIZE];
        self.bytes(&zeros[..padding(data.len() as u64) as usize])
    }

    fn bytes(&mut self, bytes: &[u8]) -> Result<(), TarError> {
        let offset = self.position;
        self.inner
            .write_all(bytes)
            .map_err(|source| TarError::Io { offset, source })?;
        self.position += bytes.len() as u64;
        Ok(())
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.position += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::testing::Builder;
    use crate::xattr::tests::acl;

    fn run(input: &[u8], uids: &[(i64, i64)], content: &ContentEdit) -> (Vec<u8>, RewriteStats) {
        let uids: BTreeMap<i64, i64> = uids.iter().copied().collect();
        let edits = Edits {
            uids: &uids,
            gids: &uids,
            content_paths: &["/etc/passwd"],
            content,
        };
        let mut output = Vec::new();
        let stats = rewrite(input, &mut output, &edits).unwrap();
        (output, stats)
    }

    fn entries(archive: &[u8]) -> Vec<Entry> {
        let mut reader = Reader::new(Streamed(archive));
        let mut out = Vec::new();
        while let Some(entry) = reader.next_entry().unwrap() {
            out.push(entry);
        }
        out
    }

    const KEEP: &ContentEdit = &|_, _| None;

    #[test]
    fn pax_records_change_length_and_the_header_follows() {
        let mut archive = Builder::default();
        archive.pax(&[
            ("uid", b"3000000"),
            ("gid", b"3000000"),
            ("SCHILY.xattr.system.posix_acl_access", &acl(3_000_000, 7)),
        ]);
        archive.file("big", b'0', b"data", 0);
        archive.file("plain", b'0', b"more", 3_000_000);
        let input = archive.finish();

        let (output, stats) = run(&input, &[(3_000_000, 60001)], KEEP);
        assert_eq!((stats.owners, stats.xattrs), (2, 1));
        let found = entries(&output);
        assert_eq!((found[0].uid.value, found[1].uid.value), (60001, 60001));
        assert_eq!(found[0].xattrs[0].1, acl(60001, 7));
        // The PAX header's own block changed (size, checksum), the zero header field of
        // `big` did not, `plain`'s octal field did.
        assert_eq!(output.len(), input.len());
        assert_eq!(
            &output[512 * 3..512 * 4],
            &input[512 * 3..512 * 4],
            "content of big"
        );
    }

    #[test]
    fn account_files_get_new_content_and_size() {
        let mut archive = Builder::default();
        archive.file("etc/passwd", b'0', b"app:x:3000000:3000000::/:/bin/sh\n", 0);
        archive.file("after", b'0', b"x", 0);
        let input = archive.finish();
        let edit: &ContentEdit = &|_, old| {
            Some(
                String::from_utf8_lossy(old)
                    .replace("3000000", "60001")
                    .into_bytes(),
            )
        };
        let (output, stats) = run(&input, &[], edit);
        assert_eq!(stats.contents, ["/etc/passwd"]);
        let mut reader = Reader::new(Streamed(&output[..]));
        let passwd = reader.next_entry().unwrap().unwrap();
        assert_eq!(
            reader.read_data(100).unwrap(),
            b"app:x:60001:60001::/:/bin/sh\n"
        );
        assert_eq!(passwd.data_size, 29);
        assert_eq!(reader.next_entry().unwrap().unwrap().path, "/after");
    }

    #[test]
    fn bytes_after_the_end_blocks_survive() {
        let mut archive = Builder::default();
        archive.file("a", b'0', b"x", 3_000_000);
        let mut input = archive.finish();
        input.extend_from_slice(b"trailing garbage that Go never reads");
        let (output, _) = run(&input, &[(3_000_000, 5)], KEEP);
        assert!(output.ends_with(b"trailing garbage that Go never reads"));
        assert_eq!(output.len(), input.len());
    }
}
