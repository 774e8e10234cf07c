//! A streaming reader of layer tarballs that yields entries as Go's `archive/tar` would.
//!
//! It never extracts anything: it reads header blocks, reads the small metadata files (PAX
//! extended headers, GNU long names) into memory, and skips content, by seeking when the source
//! allows it. Offsets are tracked so that findings can name where an entry sits and the
//! rewriter can patch it.

use std::collections::HashSet;
use std::io::{self, Read, Seek};

use super::entry::{Entry, EntryKind, Id, IdSource};
use super::header::{BLOCK_SIZE, FieldError, Format, HeaderBlock, cut_at_nul, field};
use super::pax::{self, PaxError, Record};

/// Go refuses PAX and GNU long-name data larger than this (`maxSpecialFileSize`).
pub const MAX_SPECIAL_SIZE: u64 = 1 << 20;

/// Data that cannot be read as a tar archive.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("read failed at offset {offset}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("archive ends in the middle of a block or entry at offset {offset}")]
    Truncated { offset: u64 },
    #[error("header at offset {offset} has a wrong checksum")]
    Checksum { offset: u64 },
    #[error("header at offset {offset} has a bad `{field}` field")]
    Field {
        offset: u64,
        field: &'static str,
        #[source]
        source: FieldError,
    },
    #[error("extended header at offset {offset} is malformed")]
    Pax {
        offset: u64,
        #[source]
        source: PaxError,
    },
    #[error("PAX record `{key}` for the entry at offset {offset} has a bad value")]
    PaxValue { offset: u64, key: String },
    #[error("metadata entry at offset {offset} is {size} bytes, more than Go's 1 MiB limit")]
    SpecialTooLarge { offset: u64, size: i64 },
    #[error("a zero block at offset {offset} is followed by data")]
    ZeroBlockThenData { offset: u64 },
    #[error("the entry at offset {offset} is a sparse file of a type that has no content")]
    SparseWithoutContent { offset: u64 },
}

/// A byte source that can also pass over bytes it need not read.
pub trait Skip: Read {
    /// Advances by exactly `count` bytes, failing with `UnexpectedEof` if fewer remain.
    fn skip(&mut self, count: u64) -> io::Result<()>;

    /// Says that the block `ahead` bytes from here is the next one read, so that a source
    /// in memory can start fetching it while the current entry is processed.
    fn will_read(&mut self, _ahead: u64) {}
}

/// Wraps a plain stream: skipping reads and discards.
pub struct Streamed<R>(pub R);

impl<R: Read> Read for Streamed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Skip for Streamed<R> {
    fn skip(&mut self, count: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.0).take(count), &mut io::sink())?;
        if copied < count {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// Wraps a seekable source of known length: skipping seeks.
///
/// Reads go through a read-ahead buffer sized by what came before: after a skip that left the
/// buffer (past a large file) only one block is read, since the next header is all that is
/// wanted there; while skips stay short (a run of small files) a large buffer is read, so a
/// directory of ten thousand small files costs a few reads rather than one per header.
pub struct Seekable<R> {
    inner: R,
    position: u64,
    len: u64,
    buffer: Vec<u8>,
    /// Offset of `buffer[0]` in the source.
    buffer_start: u64,
    /// Whether the last skip left the buffer.
    jumped: bool,
}

/// The largest read-ahead.
const READ_AHEAD: usize = 64 << 10;

impl<R: Read + Seek> Seekable<R> {
    pub fn new(inner: R, len: u64) -> Self {
        Seekable {
            inner,
            position: 0,
            len,
            buffer: Vec::with_capacity(READ_AHEAD),
            buffer_start: 0,
            jumped: true,
        }
    }

    fn buffered(&self) -> &[u8] {
        let end = self.buffer_start + self.buffer.len() as u64;
        if (self.buffer_start..end).contains(&self.position) {
            &self.buffer[(self.position - self.buffer_start) as usize..]
        } else {
            &[]
        }
    }

    fn refill(&mut self, wanted: usize) -> io::Result<()> {
        let size = if self.jumped {
            wanted.max(BLOCK_SIZE)
        } else {
            READ_AHEAD.max(wanted)
        };
        let size = size.min((self.len - self.position.min(self.len)) as usize);
        self.inner.seek(io::SeekFrom::Start(self.position))?;
        self.buffer.clear();
        (&mut self.inner)
            .take(size as u64)
            .read_to_end(&mut self.buffer)?;
        self.buffer_start = self.position;
        self.jumped = false;
        Ok(())
    }
}

impl<R: Read + Seek> Read for Seekable<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buffered().is_empty() {
            self.refill(out.len())?;
        }
        let available = self.buffered();
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl<R: Read + Seek> Skip for Seekable<R> {
    fn skip(&mut self, count: u64) -> io::Result<()> {
        if self.position + count > self.len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.position += count;
        self.jumped = self.buffered().is_empty();
        Ok(())
    }
}

/// Reads entries one after the other.
pub struct Reader<R> {
    inner: R,
    position: u64,
    /// Content bytes of the current entry not yet read, then its padding.
    remaining: u64,
    padding: u64,
    /// Metadata entries and sparse extension blocks kept as read, for a rewriter.
    raw: Option<Raw>,
    /// Zero blocks read at the end of the archive (0, 1 or 2).
    end_blocks: usize,
    /// The header block of the entry last returned. It stays here rather than in the
    /// [`Entry`], which is moved several times on its way out and would carry 512 bytes.
    header: HeaderBlock,
}

/// A metadata entry as read.
#[derive(Debug)]
pub struct RawRecord {
    /// Offset of its header in the archive.
    pub offset: u64,
    pub header: HeaderBlock,
    /// Its content followed by the padding as it was in the archive.
    pub padded: Vec<u8>,
    /// Bytes of content in `padded`.
    pub size: usize,
}

impl RawRecord {
    pub fn data(&self) -> &[u8] {
        &self.padded[..self.size]
    }
}

/// The blocks of one entry besides its own header, exactly as they were in the archive.
#[derive(Debug, Default)]
pub struct Raw {
    /// PAX (`x`, `g`) and GNU long-name (`L`, `K`) entries before the header.
    pub records: Vec<RawRecord>,
    /// Old GNU sparse extension blocks after the header.
    pub sparse: Vec<HeaderBlock>,
}

/// The metadata records gathered before an entry's own header.
#[derive(Default)]
pub(crate) struct Pending {
    pub start: Option<u64>,
    /// The last PAX extended header and its offset: Go applies only the last one.
    pub pax: Option<(u64, Vec<Record>)>,
    pub long_name: Option<Vec<u8>>,
    pub long_link: Option<Vec<u8>>,
}

impl<R: Skip> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            position: 0,
            remaining: 0,
            padding: 0,
            raw: None,
            end_blocks: 0,
            header: HeaderBlock([0; BLOCK_SIZE]),
        }
    }

    /// The header block of the entry last returned, as it was in the archive.
    pub fn header(&self) -> &HeaderBlock {
        &self.header
    }

    /// Keeps the raw metadata blocks of each entry for [`Reader::take_raw`].
    pub fn keeping_raw(mut self) -> Self {
        self.raw = Some(Raw::default());
        self
    }

    /// The raw blocks gathered since the last call: those of the entry just returned, or,
    /// after the end, metadata entries that no header followed.
    pub fn take_raw(&mut self) -> Raw {
        self.raw.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// How many zero blocks ended the archive: 2 normally, 1 when the data ended after one,
    /// 0 when it ended right after the last entry.
    pub fn end_blocks(&self) -> usize {
        self.end_blocks
    }

    /// Copies the rest of the current entry's content and padding to `out`.
    pub fn copy_data(&mut self, out: &mut dyn io::Write) -> Result<(), TarError> {
        let count = self.remaining + self.padding;
        let offset = self.position;
        let copied = io::copy(&mut (&mut self.inner).take(count), out)
            .map_err(|source| io_error(offset, source))?;
        self.position += copied;
        if copied < count {
            return Err(TarError::Truncated {
                offset: self.position,
            });
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Gives the source back, positioned after the last block read.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or `None` at the end of the archive. PAX global headers are consumed
    /// without being returned: Go hands them to the caller, but every runtime ignores them
    /// and Go does not apply their records to later entries.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        self.skip_rest()?;
        let mut pending = Pending::default();
        loop {
            let offset = self.position;
            let Some(block) = self.read_header()? else {
                return Ok(None);
            };
            pending.start.get_or_insert(offset);
            let format = block.format().ok_or(TarError::Checksum { offset })?;
            let size = numeric(&block, field::SIZE, "size", offset)?;
            let typeflag = block.typeflag();
            if !matches!(typeflag, b'x' | b'g' | b'L' | b'K') {
                return self.finish_entry(block, format, offset, pending).map(Some);
            }
            let padded = self.read_special(size, offset)?;
            let data = &padded[..size as usize];
            match typeflag {
                b'x' => {
                    let records = pax::parse_records(data)
                        .map_err(|source| TarError::Pax { offset, source })?;
                    pending.pax = Some((offset, records));
                }
                b'g' => pending = Pending::default(),
                b'L' => pending.long_name = Some(cut_at_nul(data).to_vec()),
                _ => pending.long_link = Some(cut_at_nul(data).to_vec()),
            }
            if let Some(raw) = &mut self.raw {
                raw.records.push(RawRecord {
                    offset,
                    header: block,
                    size: size as usize,
                    padded,
                });
            }
        }
    }

    /// Reads up to `limit` bytes of the current entry's content.
    pub fn read_data(&mut self, limit: u64) -> Result<Vec<u8>, TarError> {
        let wanted = self.remaining.min(limit);
        let mut data = Vec::with_capacity(wanted as usize);
        let offset = self.position;
        let read = (&mut self.inner)
            .take(wanted)
            .read_to_end(&mut data)
            .map_err(|source| TarError::Io { offset, source })?;
        self.position += read as u64;
        self.remaining -= read as u64;
        if (read as u64) < wanted {
            return Err(TarError::Truncated {
                offset: self.position,
            });
        }
        Ok(data)
    }

    fn finish_entry(
        &mut self,
        block: HeaderBlock,
        format: Format,
        offset: u64,
        pending: Pending,
    ) -> Result<Entry, TarError> {
        let entry = assemble(&block, format, offset, pending)?;
        let extended = entry.typeflag == b'S' && block.0[field::GNU_IS_EXTENDED] != 0;
        self.header = block;
        // Old GNU sparse headers continue their map in extension blocks.
        if extended {
            self.skip_sparse_extensions()?;
        }
        self.remaining = entry.data_size;
        self.padding = padding(entry.data_size);
        self.inner.will_read(self.remaining + self.padding);
        Ok(entry)
    }

    /// Old GNU sparse files continue their map in extension blocks before the content; the
    /// last byte of the map in each block says whether another follows.
    fn skip_sparse_extensions(&mut self) -> Result<(), TarError> {
        loop {
            let offset = self.position;
            let mut block = [0u8; BLOCK_SIZE];
            self.read_exact(&mut block, offset)?;
            let last = block[504] == 0;
            if let Some(raw) = &mut self.raw {
                raw.sparse.push(HeaderBlock(block));
            }
            if last {
                return Ok(());
            }
        }
    }

    /// Skips what is left of the current entry's content and padding.
    fn skip_rest(&mut self) -> Result<(), TarError> {
        let count = self.remaining + self.padding;
        if count == 0 {
            return Ok(());
        }
        let offset = self.position;
        self.inner
            .skip(count)
            .map_err(|source| io_error(offset, source))?;
        self.position += count;
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    /// A header block, or `None` at a clean end: end of data at a block boundary, or two
    /// zero blocks.
    fn read_header(&mut self) -> Result<Option<HeaderBlock>, TarError> {
        let offset = self.position;
        let Some(block) = self.read_block_or_end()? else {
            return Ok(None);
        };
        if !block.is_zero() {
            return Ok(Some(block));
        }
        self.end_blocks = 1;
        match self.read_block_or_end()? {
            Some(next) if !next.is_zero() => Err(TarError::ZeroBlockThenData { offset }),
            Some(_) => {
                self.end_blocks = 2;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn read_block_or_end(&mut self) -> Result<Option<HeaderBlock>, TarError> {
        let offset = self.position;
        let mut block = [0u8; BLOCK_SIZE];
        let mut filled = 0;
        while filled < BLOCK_SIZE {
            match self.inner.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(io_error(offset, source)),
            }
        }
        self.position += filled as u64;
        match filled {
            0 => Ok(None),
            BLOCK_SIZE => Ok(Some(HeaderBlock(block))),
            _ => Err(TarError::Truncated { offset }),
        }
    }

    /// Reads a metadata entry's content with its padding.
    fn read_special(&mut self, size: i64, offset: u64) -> Result<Vec<u8>, TarError> {
        if size < 0 {
            return Err(negative_size(offset, size));
        }
        if size > MAX_SPECIAL_SIZE as i64 {
            return Err(TarError::SpecialTooLarge { offset, size });
        }
        let size = size as u64;
        let mut data = vec![0u8; (size + padding(size)) as usize];
        self.read_exact(&mut data, offset)?;
        Ok(data)
    }

    fn read_exact(&mut self, buf: &mut [u8], offset: u64) -> Result<(), TarError> {
        self.inner
            .read_exact(buf)
            .map_err(|source| io_error(offset, source))?;
        self.position += buf.len() as u64;
        Ok(())
    }
}

/// The entry a header describes once the metadata before it is applied, as Go's `Next`
/// builds it.
pub(crate) fn assemble(
    block: &HeaderBlock,
    format: Format,
    offset: u64,
    pending: Pending,
) -> Result<Entry, TarError> {
    let mut entry = parse_header(block, format, offset)?;
    entry.start = pending.start.unwrap_or(offset);
    let sparse = match &pending.pax {
        Some((_, records)) => apply_pax(&mut entry, records, offset)?,
        None => None,
    };
    entry.pax = pending.pax;
    // Go keeps the header's name when the GNU long name is empty.
    if let Some(name) = pending.long_name.filter(|name| !name.is_empty()) {
        entry.name = name;
    }
    if let Some(link) = pending.long_link.filter(|link| !link.is_empty()) {
        entry.link_name = link;
    }
    if entry.typeflag == 0 {
        entry.typeflag = if entry.name.ends_with(b"/") {
            b'5'
        } else {
            b'0'
        };
    }
    // Last, as Go's `handleSparseFile` comes last: a PAX sparse file's real name wins over
    // the header's and a GNU long name. An old GNU sparse header (`S`) ignores those records.
    entry.sparse = entry.typeflag == b'S';
    if let Some(real_name) = sparse.filter(|_| entry.typeflag != b'S') {
        if matches!(entry.typeflag, b'1'..=b'6') {
            return Err(TarError::SparseWithoutContent { offset });
        }
        entry.sparse = true;
        if let Some(name) = real_name {
            entry.name = name;
        }
    }
    // Go ignores the size field of types that never have content.
    if matches!(entry.typeflag, b'1'..=b'6') {
        entry.data_size = 0;
    }
    entry.resolve();
    Ok(entry)
}

pub(crate) fn io_error(offset: u64, source: io::Error) -> TarError {
    if source.kind() == io::ErrorKind::UnexpectedEof {
        TarError::Truncated { offset }
    } else {
        TarError::Io { offset, source }
    }
}

/// Bytes of padding after `size` bytes of content.
pub(crate) fn padding(size: u64) -> u64 {
    (BLOCK_SIZE as u64 - size % BLOCK_SIZE as u64) % BLOCK_SIZE as u64
}

fn numeric(
    block: &HeaderBlock,
    range: std::ops::Range<usize>,
    name: &'static str,
    offset: u64,
) -> Result<i64, TarError> {
    block
        .numeric(range)
        .map(|(value, _)| value)
        .map_err(|source| TarError::Field {
            offset,
            field: name,
            source,
        })
}

fn id(
    block: &HeaderBlock,
    range: std::ops::Range<usize>,
    name: &'static str,
    offset: u64,
) -> Result<Id, TarError> {
    let (value, encoding) = block.numeric(range).map_err(|source| TarError::Field {
        offset,
        field: name,
        source,
    })?;
    Ok(Id {
        value,
        source: encoding.into(),
    })
}

/// Reads the fields of an entry's own header. Go also parses mode, mtime and, past V7, the
/// device numbers, and rejects the header when any of them is malformed; so does this.
fn parse_header(block: &HeaderBlock, format: Format, offset: u64) -> Result<Entry, TarError> {
    numeric(block, field::MODE, "mode", offset)?;
    numeric(block, field::MTIME, "mtime", offset)?;
    if format != Format::V7 {
        numeric(block, field::DEVMAJOR, "devmajor", offset)?;
        numeric(block, field::DEVMINOR, "devminor", offset)?;
    }
    let size = numeric(block, field::SIZE, "size", offset)?;
    let uid = id(block, field::UID, "uid", offset)?;
    let gid = id(block, field::GID, "gid", offset)?;
    if size < 0 {
        return Err(negative_size(offset, size));
    }
    Ok(Entry {
        start: offset,
        header_offset: offset,
        name: block.name(format),
        link_name: block.string(field::LINKNAME).to_vec(),
        typeflag: block.typeflag(),
        format,
        uid,
        gid,
        data_size: size as u64,
        xattrs: Vec::new(),
        pax: None,
        path: String::new(),
        kind: EntryKind::Other,
        is_dot: false,
        sparse: false,
    })
}

/// Applies PAX records as Go's `mergePAX` does: the last record of a key wins, an empty
/// value leaves the header field in force. Returns, for a file in one of GNU tar's PAX
/// sparse formats, its real name if the records give one.
fn apply_pax(
    entry: &mut Entry,
    records: &[Record],
    offset: u64,
) -> Result<Option<Option<Vec<u8>>>, TarError> {
    // One pass from the end: a key already seen there has a later record that wins.
    let mut seen = HashSet::with_capacity(records.len());
    let mut xattrs = Vec::new();
    let mut sparse = GnuSparse::default();
    for record in records.iter().rev() {
        if !seen.insert(record.key.as_str()) || record.value.is_empty() {
            continue;
        }
        let bad = || TarError::PaxValue {
            offset,
            key: record.key.clone(),
        };
        match record.key.as_str() {
            pax::UID => entry.uid = pax_id(&record.value).ok_or_else(bad)?,
            pax::GID => entry.gid = pax_id(&record.value).ok_or_else(bad)?,
            pax::PATH => entry.name = record.value.clone(),
            pax::LINKPATH => entry.link_name = record.value.clone(),
            pax::SIZE => {
                let size = pax::parse_id(&record.value)
                    .filter(|s| *s >= 0)
                    .ok_or_else(bad)?;
                entry.data_size = size as u64;
            }
            pax::GNU_SPARSE_NAME => sparse.name = Some(&record.value),
            pax::GNU_SPARSE_MAJOR => sparse.major = &record.value,
            pax::GNU_SPARSE_MINOR => sparse.minor = &record.value,
            pax::GNU_SPARSE_MAP | pax::GNU_SPARSE_OFFSET | pax::GNU_SPARSE_NUMBYTES => {
                sparse.has_map = true;
            }
            key => {
                if let Some(name) = key.strip_prefix(pax::XATTR_PREFIX) {
                    xattrs.push((name.to_owned(), record.value.clone()));
                }
            }
        }
    }
    // Back in record order.
    xattrs.reverse();
    entry.xattrs.extend(xattrs);
    Ok(sparse.is_sparse().then(|| sparse.name.map(<[u8]>::to_vec)))
}

/// The records of GNU tar's PAX sparse formats that bear on the entry's name.
///
/// Go goes on to read and validate the sparse map (from `GNU.sparse.map` or, in format 1.0,
/// from the start of the content) and fails the archive on a malformed one. idfit does not
/// read sparse maps, so such an archive reads on here where Go stops with an error: a layer
/// every runtime refuses anyway, reported as loading if its owners are in range.
#[derive(Default)]
struct GnuSparse<'a> {
    name: Option<&'a [u8]>,
    major: &'a [u8],
    minor: &'a [u8],
    has_map: bool,
}

impl GnuSparse<'_> {
    /// Whether the records mark a sparse file of a format version Go knows.
    fn is_sparse(&self) -> bool {
        match (self.major, self.minor) {
            (b"0", b"0" | b"1") | (b"1", b"0") => true,
            (b"", b"") => self.has_map,
            _ => false,
        }
    }
}

fn negative_size(offset: u64, size: i64) -> TarError {
    TarError::Field {
        offset,
        field: "size",
        source: FieldError::Negative(size),
    }
}

fn pax_id(value: &[u8]) -> Option<Id> {
    pax::parse_id(value).map(|value| Id {
        value,
        source: IdSource::Pax,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::testing::Builder;
    use proptest::prelude::*;

    /// A reader that returns at most one byte per call, as a slow pipe might.
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    fn archive() -> Vec<u8> {
        let mut archive = Builder::default();
        archive.pax(&[("uid", b"4294967296")]);
        archive.file("a", b'0', b"abc", 0);
        archive.file("b/", b'5', b"", -1);
        archive.finish()
    }

    fn entries(reader: impl Read) -> Result<Vec<(String, i64)>, TarError> {
        let mut reader = Reader::new(Streamed(reader));
        let mut out = Vec::new();
        while let Some(entry) = reader.next_entry()? {
            out.push((entry.path, entry.uid.value));
        }
        Ok(out)
    }

    #[test]
    fn short_reads_give_the_same_entries() {
        let bytes = archive();
        let expected = vec![("/a".to_owned(), 1 << 32), ("/b".to_owned(), -1)];
        assert_eq!(entries(&bytes[..]).unwrap(), expected);
        assert_eq!(entries(OneByte(&bytes)).unwrap(), expected);
    }

    #[test]
    fn truncation_anywhere_is_an_error_or_a_clean_prefix() {
        let bytes = archive();
        for cut in 0..bytes.len() {
            match entries(&bytes[..cut]) {
                Ok(found) => assert!(cut % BLOCK_SIZE == 0, "cut {cut} read {found:?}"),
                Err(TarError::Truncated { .. }) => {}
                Err(other) => panic!("cut {cut}: {other}"),
            }
        }
    }

    #[test]
    fn an_empty_gnu_long_name_keeps_the_header_name() {
        let mut archive = Builder::default();
        archive.file("././@LongLink", b'L', b"\0", 0);
        archive.file("kept", b'0', b"", 1_000_000);
        archive.file("././@LongLink", b'L', b"long/name\0", 0);
        archive.file("short", b'0', b"", 7);
        let found = entries(&archive.finish()[..]).unwrap();
        assert_eq!(
            found,
            vec![
                ("/kept".to_owned(), 1_000_000),
                ("/long/name".to_owned(), 7)
            ]
        );
    }

    #[test]
    fn the_last_pax_record_of_a_key_wins_and_empty_values_keep_the_header() {
        let mut archive = Builder::default();
        archive.pax(&[
            ("uid", b"5"),
            ("gid", b"9"),
            ("uid", b"1000000"),
            ("gid", b""),
        ]);
        archive.file("a", b'0', b"", 3);
        let bytes = archive.finish();
        let mut reader = Reader::new(Streamed(&bytes[..]));
        let entry = reader.next_entry().unwrap().unwrap();
        assert_eq!(entry.uid.value, 1_000_000);
        assert_eq!(entry.uid.source, IdSource::Pax);
        assert_eq!(entry.gid.value, 3);
    }

    #[test]
    fn gnu_sparse_names_apply_to_known_sparse_versions_only() {
        let read = |records: &[(&str, &[u8])], long: Option<&[u8]>, typeflag, data: &[u8]| {
            let mut archive = Builder::default();
            if let Some(long) = long {
                archive.file("././@LongLink", b'L', long, 0);
            }
            archive.pax(records);
            archive.file("GNUSparseFile.0/f", typeflag, data, 0);
            let bytes = archive.finish();
            let mut reader = Reader::new(Streamed(&bytes[..]));
            reader.next_entry().map(|entry| {
                let entry = entry.unwrap();
                (entry.path, entry.sparse)
            })
        };
        let name: (&str, &[u8]) = ("GNU.sparse.name", b"real/f");
        let v01 = [
            ("GNU.sparse.numblocks", &b"1"[..]),
            ("GNU.sparse.map", b"0,0"),
            name,
        ];
        let mut map_v10 = b"1\n0\n0\n".to_vec();
        map_v10.resize(BLOCK_SIZE, 0);
        let v10 = [
            ("GNU.sparse.major", &b"1"[..]),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.realsize", b"0"),
            name,
        ];
        let real = ("/real/f".to_owned(), true);
        assert_eq!(read(&v01, None, b'0', b"").unwrap(), real);
        assert_eq!(read(&v10, None, b'0', &map_v10).unwrap(), real);
        // The sparse name comes last in Go, after a GNU long name.
        assert_eq!(read(&v01, Some(b"long/name\0"), b'0', b"").unwrap(), real);
        let unknown = [
            ("GNU.sparse.major", &b"2"[..]),
            ("GNU.sparse.minor", b"0"),
            name,
        ];
        let placeholder = ("/GNUSparseFile.0/f".to_owned(), false);
        assert_eq!(read(&unknown, None, b'0', b"").unwrap(), placeholder);
        assert_eq!(read(&[name], None, b'0', b"").unwrap(), placeholder);
        assert!(matches!(
            read(&v01, None, b'2', b""),
            Err(TarError::SparseWithoutContent { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = entries(&bytes[..]);
        }

        #[test]
        fn corrupted_archives_never_panic(flips in proptest::collection::vec((0usize..2560, any::<u8>()), 1..8)) {
            let mut bytes = archive();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let _ = entries(&bytes[..]);
        }
    }
}
