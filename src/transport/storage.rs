//! Files of an image on disk: a directory, or the members of an uncompressed tar archive read
//! in place. Either way a member becomes a [`Blob`], a byte range of an open file that many
//! threads can read at once.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions, UncheckedAdvice};

use crate::tar::{self, Reader, Seekable};

use super::TransportError;

/// JSON documents larger than this are refused rather than read into memory.
pub const MAX_JSON_SIZE: u64 = 16 << 20;

/// A byte range of an open file.
#[derive(Debug, Clone)]
pub struct Blob {
    file: Arc<File>,
    start: u64,
    len: u64,
    /// Where the blob lives, for messages: `image.tar:blobs/sha256/…` or a file path.
    pub label: String,
    /// The file, when the blob is a whole file of a directory, so it can be linked.
    pub whole_file: Option<PathBuf>,
}

impl Blob {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn reader(&self) -> BlobReader {
        BlobReader {
            blob: self.clone(),
            position: 0,
        }
    }

    /// Up to `count` bytes from the start, for sniffing compression.
    pub fn head(&self, count: usize) -> Result<Vec<u8>, TransportError> {
        let mut head = Vec::with_capacity(count);
        self.reader()
            .take(count as u64)
            .read_to_end(&mut head)
            .map_err(|source| self.io_error(source))?;
        Ok(head)
    }

    /// The whole blob, refused when larger than [`MAX_JSON_SIZE`].
    pub fn read_json_bytes(&self) -> Result<Vec<u8>, TransportError> {
        if self.len > MAX_JSON_SIZE {
            return Err(TransportError::TooLarge {
                file: self.label.clone(),
                size: self.len,
            });
        }
        let mut bytes = Vec::with_capacity(self.len as usize);
        self.reader()
            .read_to_end(&mut bytes)
            .map_err(|source| self.io_error(source))?;
        Ok(bytes)
    }

    pub fn io_error(&self, source: io::Error) -> TransportError {
        TransportError::Read {
            file: self.label.clone(),
            source,
        }
    }

    /// The blob mapped into memory, read-only, or `None` where it is not (an empty blob, a
    /// file shorter than the range, a file system not known to be local). Reading a mapped
    /// blob costs no system call and no copy out of the page cache, which is most of the
    /// time a header walk over a layer of small files takes.
    ///
    /// Where a read call would fail with an error, a mapped page fails with SIGBUS, which
    /// ends the process without a message and leaves a fix's temporary files behind: when
    /// another process truncates the file while it is read, or the device fails. Network
    /// and FUSE file systems, where a failed read is an everyday event, are read with read
    /// calls instead.
    pub fn map(&self) -> Option<MappedBlob> {
        let file_len = self.file.metadata().ok()?.len();
        if self.len == 0 || self.start.checked_add(self.len)? > file_len || !is_local(&self.file) {
            return None;
        }
        let len = usize::try_from(self.len).ok()?;
        // SAFETY: the map is read-only; the range lies inside the file as it is now (checked
        // above). The remaining hazard, the file shrinking or its device failing while it is
        // mapped, raises SIGBUS as described above: it ends the process, it cannot make it
        // read wrong bytes.
        let map = unsafe {
            MmapOptions::new()
                .offset(self.start)
                .len(len)
                .map(&*self.file)
        };
        map.ok().map(MappedBlob)
    }
}

/// Whether a file lives on a local disk file system (or in memory), known by the magic
/// numbers of statfs(2).
fn is_local(file: &File) -> bool {
    const LOCAL: [u32; 7] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0x794C_7630, // overlayfs
        0x2FC1_2FC1, // zfs
        0xF2F5_2010, // f2fs
    ];
    // The magic numbers are 32 bits; the field is wider on some architectures.
    rustix::fs::fstatfs(file).is_ok_and(|stat| LOCAL.contains(&(stat.f_type as u32)))
}

/// How much of a mapped blob stays resident behind its reader before it is let go.
const RESIDENT_WINDOW: usize = 8 << 20;

/// A blob mapped into memory and read front to back. Its readers let go of the pages they
/// have passed, so the process holds a window of the blob, not all of it, however large
/// the layer: the pages stay in the page cache, only this process's claim on them ends.
pub struct MappedBlob(Mmap);

impl MappedBlob {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A reader that copies only what is read and skips by moving a cursor.
    pub fn reader(&self) -> MappedReader<'_> {
        MappedReader {
            blob: self,
            position: 0,
            released: 0,
        }
    }

    /// The blob in pieces of `size` bytes, each let go once the next is asked for.
    pub fn chunks(&self, size: usize) -> impl Iterator<Item = &[u8]> {
        let mut released = 0;
        self.0.chunks(size).enumerate().map(move |(index, chunk)| {
            self.release(&mut released, index * size);
            chunk
        })
    }

    /// Lets go of the pages before `end`, once a window of them has gathered.
    fn release(&self, released: &mut usize, end: usize) {
        if end - *released < RESIDENT_WINDOW {
            return;
        }
        // SAFETY: the map is a shared, read-only map of a file: after MADV_DONTNEED a page
        // is read from the file again on its next access, with the same bytes, so slices
        // into it stay valid. Only a failure to release is possible, which costs memory.
        let _ = unsafe {
            self.0
                .unchecked_advise_range(UncheckedAdvice::DontNeed, *released, end - *released)
        };
        *released = end;
    }
}

/// Reads a [`MappedBlob`]; see [`MappedBlob::reader`].
pub struct MappedReader<'a> {
    blob: &'a MappedBlob,
    position: usize,
    released: usize,
}

impl Read for MappedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let count = (&self.blob.0[self.position..]).read(buf)?;
        self.position += count;
        self.blob.release(&mut self.released, self.position);
        Ok(count)
    }
}

impl tar::Skip for MappedReader<'_> {
    fn will_read(&mut self, ahead: u64) {
        let start =
            usize::try_from(ahead).map_or(usize::MAX, |ahead| self.position.saturating_add(ahead));
        let Some(block) = self
            .blob
            .0
            .get(start..start.saturating_add(tar::BLOCK_SIZE))
        else {
            return;
        };
        #[cfg(target_arch = "x86_64")]
        for line in block.chunks(64) {
            // SAFETY: a prefetch reads nothing into the program and cannot fault; the
            // address is inside the map.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line.as_ptr().cast(),
                );
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = block;
    }

    fn skip(&mut self, count: u64) -> io::Result<()> {
        let left = self.blob.len() - self.position;
        match usize::try_from(count) {
            Ok(count) if count <= left => {
                self.position += count;
                self.blob.release(&mut self.released, self.position);
                Ok(())
            }
            _ => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Reads a [`Blob`] with positioned reads, so clones never disturb each other.
pub struct BlobReader {
    blob: Blob,
    position: u64,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.blob.len.saturating_sub(self.position);
        let wanted = buf.len().min(left as usize);
        if wanted == 0 {
            return Ok(0);
        }
        let read = self
            .blob
            .file
            .read_at(&mut buf[..wanted], self.blob.start + self.position)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file is shorter than when it was indexed",
            ));
        }
        self.position += read as u64;
        Ok(read)
    }
}

impl Seek for BlobReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.blob.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        let target = target.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.position = target;
        Ok(target)
    }
}

/// Where the files of an image live.
#[derive(Debug)]
pub enum Storage {
    Directory(PathBuf),
    Archive(Archive),
}

impl Storage {
    pub fn open(&self, member: &str) -> Result<Blob, TransportError> {
        match self {
            Storage::Directory(root) => open_in_directory(root, member),
            Storage::Archive(archive) => archive.open_member(member),
        }
    }

    pub fn contains(&self, member: &str) -> bool {
        match self {
            Storage::Directory(root) => safe_join(root, member).is_some_and(|p| p.is_file()),
            Storage::Archive(archive) => archive.resolve(member).is_some(),
        }
    }

    /// The members under `blobs/`, as `blobs/<algorithm>/<hex>` names.
    pub fn blob_names(&self) -> Result<Vec<String>, TransportError> {
        let mut names = match self {
            Storage::Directory(root) => list_blob_files(root)?,
            Storage::Archive(archive) => archive
                .members
                .keys()
                .filter(|name| name.starts_with("blobs/") && name.matches('/').count() == 2)
                .cloned()
                .collect(),
        };
        names.sort();
        Ok(names)
    }

    /// The path of the directory or archive.
    pub fn path(&self) -> &Path {
        match self {
            Storage::Directory(root) => root,
            Storage::Archive(archive) => &archive.path,
        }
    }
}

fn open_in_directory(root: &Path, member: &str) -> Result<Blob, TransportError> {
    let missing = || TransportError::Missing {
        container: root.display().to_string(),
        member: member.to_owned(),
    };
    let path = safe_join(root, member).ok_or_else(missing)?;
    let file = File::open(&path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => missing(),
        _ => TransportError::Open {
            path: path.clone(),
            source,
        },
    })?;
    let len = file
        .metadata()
        .map_err(|source| TransportError::Open {
            path: path.clone(),
            source,
        })?
        .len();
    Ok(Blob {
        file: Arc::new(file),
        start: 0,
        len,
        label: path.display().to_string(),
        whole_file: Some(path),
    })
}

fn list_blob_files(root: &Path) -> Result<Vec<String>, TransportError> {
    let read_dir = |path: &Path| {
        std::fs::read_dir(path).map_err(|source| TransportError::Open {
            path: path.to_owned(),
            source,
        })
    };
    let mut names = Vec::new();
    for algorithm in read_dir(&root.join("blobs"))? {
        let algorithm = algorithm.map_err(|source| TransportError::Open {
            path: root.join("blobs"),
            source,
        })?;
        for blob in read_dir(&algorithm.path())? {
            let blob = blob.map_err(|source| TransportError::Open {
                path: algorithm.path(),
                source,
            })?;
            let name = format!(
                "blobs/{}/{}",
                algorithm.file_name().to_string_lossy(),
                blob.file_name().to_string_lossy()
            );
            names.push(name);
        }
    }
    Ok(names)
}

/// `root/member`, refusing members that would climb out of `root`.
fn safe_join(root: &Path, member: &str) -> Option<PathBuf> {
    let clean = normalize(member)?;
    Some(root.join(clean))
}

/// A member name without `./` and leading slashes, or `None` if it has `..` in it.
fn normalize(member: &str) -> Option<String> {
    let parts: Vec<&str> = member
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") || parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// An uncompressed tar archive whose members are read in place.
#[derive(Debug)]
pub struct Archive {
    path: PathBuf,
    file: Arc<File>,
    members: HashMap<String, Member>,
}

#[derive(Debug, Clone)]
enum Member {
    File {
        start: u64,
        len: u64,
    },
    /// A symbolic or hard link to another member: `docker save` links layers it has already
    /// written.
    Link(String),
}

impl Archive {
    /// Indexes the members of the archive at `path`.
    pub fn open(path: &Path) -> Result<Archive, TransportError> {
        let file = File::open(path).map_err(|source| TransportError::Open {
            path: path.to_owned(),
            source,
        })?;
        let len = file.metadata().map_err(|source| TransportError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut reader = Reader::new(Seekable::new(&file, len.len()));
        let mut members = HashMap::new();
        while let Some(entry) = reader
            .next_entry()
            .map_err(|source| TransportError::Archive {
                path: path.to_owned(),
                source,
            })?
        {
            if let Some((name, member)) = index_entry(&entry) {
                members.insert(name, member);
            }
        }
        Ok(Archive {
            path: path.to_owned(),
            file: Arc::new(file),
            members,
        })
    }

    fn resolve(&self, member: &str) -> Option<(u64, u64)> {
        let mut name = normalize(member)?;
        for _ in 0..16 {
            match self.members.get(&name)? {
                Member::File { start, len } => return Some((*start, *len)),
                Member::Link(target) => name = target.clone(),
            }
        }
        None
    }

    fn open_member(&self, member: &str) -> Result<Blob, TransportError> {
        let (start, len) = self
            .resolve(member)
            .ok_or_else(|| TransportError::Missing {
                container: self.path.display().to_string(),
                member: member.to_owned(),
            })?;
        Ok(Blob {
            file: Arc::clone(&self.file),
            start,
            len,
            label: format!("{}:{}", self.path.display(), member),
            whole_file: None,
        })
    }
}

fn index_entry(entry: &tar::Entry) -> Option<(String, Member)> {
    let name = normalize(&String::from_utf8_lossy(&entry.name))?;
    let link = String::from_utf8_lossy(&entry.link_name).into_owned();
    let member = match entry.typeflag {
        b'0' | b'7' => Member::File {
            start: entry.header_offset + tar::BLOCK_SIZE as u64,
            len: entry.data_size,
        },
        b'1' => Member::Link(normalize(&link)?),
        b'2' => {
            let parent = name.rsplit_once('/').map_or("", |(dir, _)| dir);
            let target = if link.starts_with('/') {
                link
            } else {
                format!("{parent}/{link}")
            };
            Member::Link(normalize_relative(&target)?)
        }
        _ => return None,
    };
    Some((name, member))
}

/// Resolves `..` inside a symlink target relative to the archive root.
fn normalize_relative(target: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names() {
        assert_eq!(
            normalize("./blobs//sha256/ab"),
            Some("blobs/sha256/ab".into())
        );
        assert_eq!(normalize("../etc/passwd"), None);
        assert_eq!(
            normalize_relative("abc/../def/layer.tar"),
            Some("def/layer.tar".into())
        );
        assert_eq!(normalize_relative("../x"), None);
    }

    /// A range of a file, as an archive member is: three large files between small ones,
    /// so that the readers pass several release windows.
    fn member_blob(dir: &Path) -> (Blob, Vec<u8>) {
        let mut archive = tar::testing::Builder::default();
        for (index, size) in [0, 5 << 20, 100, 7 << 20, 0, 6 << 20, 3]
            .into_iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            archive.file(&format!("f{index}"), b'0', &data, index as i64 * 1000);
        }
        let tar = archive.finish();
        let path = dir.join("outer");
        let mut file = b"prefix bytes before the member".to_vec();
        file.extend_from_slice(&tar);
        std::fs::write(&path, &file).unwrap();
        let blob = Blob {
            file: Arc::new(File::open(&path).unwrap()),
            start: 30,
            len: tar.len() as u64,
            label: "outer:member".into(),
            whole_file: None,
        };
        (blob, tar)
    }

    fn owners<R: tar::Skip>(mut reader: Reader<R>) -> Vec<(String, i64)> {
        let mut found = Vec::new();
        while let Some(entry) = reader.next_entry().unwrap() {
            found.push((entry.path, entry.uid.value));
        }
        found
    }

    #[test]
    fn a_mapped_member_reads_as_the_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let (blob, tar) = member_blob(dir.path());
        let mapped = blob.map().expect("a regular file maps");
        assert_eq!(mapped.len(), tar.len());
        let seekable = owners(Reader::new(Seekable::new(blob.reader(), blob.len())));
        assert_eq!(owners(Reader::new(mapped.reader())), seekable);
        assert_eq!(seekable.len(), 7);
        let chunks: Vec<u8> = mapped.chunks(1 << 20).flatten().copied().collect();
        assert_eq!(chunks, tar);

        let mut reader = mapped.reader();
        assert!(tar::Skip::skip(&mut reader, tar.len() as u64 + 1).is_err());
        let past_end = Blob {
            len: blob.len + 1,
            ..blob
        };
        assert!(past_end.map().is_none());
    }
}
