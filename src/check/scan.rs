//! Reading one layer: every entry is checked against every runtime of interest while the
//! layer streams, and just enough is kept to decide later which entries stay visible.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher};
use std::io::{BufReader, Read};
use std::time::Instant;

use crate::accounts;
use crate::idmap::NamespaceMap;
use crate::image::{Compression, Digest, HashingReader};
use crate::progress::{Progress, ProgressReader};
use crate::runtime::{Problem, Runtime, Subject};
use crate::tar::{Entry, EntryKind, Id, Reader, Seekable, Skip, Streamed, TarError};
use crate::transport::storage::MappedBlob;
use crate::transport::{LayerSource, TransportError};
use crate::xattr;

use super::CheckError;

/// Files whose content is kept to resolve the config's `User`.
pub const PASSWD: &str = "/etc/passwd";
pub const GROUP: &str = "/etc/group";
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// A runtime with the map it is checked against.
#[derive(Debug, Clone)]
pub struct Target {
    pub runtime: Runtime,
    pub map: NamespaceMap,
}

/// An entry that is a problem for at least one runtime.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Position of the entry in the layer, counting from 0.
    pub ordinal: u64,
    /// Offset of the entry's first header block in the uncompressed layer.
    pub offset: u64,
    pub path: String,
    pub kind: EntryKind,
    pub uid: Id,
    pub gid: Id,
    pub problems: Vec<RuntimeProblem>,
}

impl Hit {
    /// The entry as a runtime's message names it.
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            path: &self.path,
            kind: self.kind,
            uid: self.uid.value,
            gid: self.gid.value,
        }
    }
}

/// What one runtime makes of a hit.
#[derive(Debug, Clone)]
pub struct RuntimeProblem {
    pub runtime: Runtime,
    pub problem: Problem,
}

/// What a layer holds, by hashed cleaned path, for visibility questions.
#[derive(Debug, Clone, Default)]
pub struct LayerPaths {
    /// Last ordinal at which a path occurs, and whether that entry is a directory.
    last: HashMap<u64, (u64, bool), Prehashed>,
    /// Paths deleted by whiteouts.
    whiteouts: HashSet<u64, Prehashed>,
    /// Directories made opaque.
    opaque: HashSet<u64, Prehashed>,
}

/// Hashing for keys that are hashes already ([`path_hash`]): the key is its own hash.
#[derive(Debug, Clone, Copy, Default)]
struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = PrehashedKey;

    fn build_hasher(&self) -> PrehashedKey {
        PrehashedKey(0)
    }
}

/// The hasher of [`Prehashed`], which takes one `u64` as it is.
#[derive(Debug)]
struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 path hashes are keys")
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

impl LayerPaths {
    pub(crate) fn record(&mut self, path: &str, kind: EntryKind, ordinal: u64) {
        match kind {
            EntryKind::Whiteout => {
                self.whiteouts
                    .insert(path_hash(&crate::tar::entry::whiteout_target(path)));
            }
            EntryKind::OpaqueWhiteout => {
                self.opaque
                    .insert(path_hash(crate::tar::entry::parent(path)));
            }
            _ => {
                self.last
                    .insert(path_hash(path), (ordinal, kind == EntryKind::Directory));
            }
        }
    }

    /// The ordinal and directory-ness of the last entry at `path`.
    pub fn last(&self, path: &str) -> Option<(u64, bool)> {
        self.last.get(&path_hash(path)).copied()
    }

    pub fn deletes(&self, path: &str) -> bool {
        self.whiteouts.contains(&path_hash(path))
    }

    pub fn makes_opaque(&self, dir: &str) -> bool {
        self.opaque.contains(&path_hash(dir))
    }
}

/// Paths are kept as 64-bit hashes: a layer of a million entries then costs a few tens of
/// megabytes instead of hundreds. Two paths sharing a hash could make an entry look replaced
/// or deleted when it is not; at 2^-64 per pair this is accepted.
fn path_hash(path: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    path.hash(&mut hasher);
    hasher.finish()
}

/// The outcome of reading one layer.
#[derive(Debug, Clone)]
pub struct LayerScan {
    /// The blob's digest, computed while streaming.
    pub digest: Digest,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    pub compression: Compression,
    pub entries: u64,
    pub hits: Vec<Hit>,
    pub paths: LayerPaths,
    /// The largest uid and gid of any entry.
    pub max_uid: i64,
    pub max_gid: i64,
    pub passwd: Option<Vec<u8>>,
    pub group: Option<Vec<u8>>,
    /// Every distinct owner id of an entry.
    pub uids: BTreeSet<i64>,
    pub gids: BTreeSet<i64>,
    /// Every id named inside an ACL or capability xattr.
    pub xattr_uids: BTreeSet<i64>,
    pub xattr_gids: BTreeSet<i64>,
    /// Every copy of /etc/passwd or /etc/group in the layer, with the ids it names.
    pub account_files: Vec<(String, accounts::AccountIds)>,
}

/// Whether layer contents are hashed to verify their digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Hash every layer blob and compare with its declared digest; where a compressed layer
    /// declares none (a docker archive names layers by path), compare the uncompressed
    /// stream with its diff_id instead.
    Digests,
    /// Trust the layer bytes; only what is needed to name the layers is hashed.
    Skip,
}

/// Reads one layer, checking each entry against each target.
pub fn scan_layer(
    index: usize,
    layer: &LayerSource,
    targets: &[Target],
    verify: Verify,
    progress: &dyn Progress,
) -> Result<LayerScan, CheckError> {
    let layer_error = |source| CheckError::Layer {
        index,
        file: layer.blob.label.clone(),
        source,
    };
    let started = Instant::now();
    let compression = Compression::sniff(&layer.blob.head(4)?);
    let verifying = verify == Verify::Digests;
    let hash_blob = verifying
        || layer.digest.is_none() && (compression != Compression::None || layer.diff_id.is_none());
    let hash_tar = verifying && layer.digest.is_none() && compression != Compression::None;
    let blob = HashingReader::counting(
        ProgressReader::new(layer.blob.reader(), progress),
        hash_blob,
    );

    let (scan, blob_digest, tar_digest) = match compression {
        // Headers are read straight from memory, while the other core hashes the blob.
        Compression::None if let Some(map) = layer.blob.map() => {
            let (scan, digest) = rayon::join(
                || read_entries(&mut Reader::new(map.reader()), targets),
                || hash_blob.then(|| hash_mapped(&map, progress)),
            );
            if !hash_blob {
                progress.advance(map.len() as u64);
            }
            (scan.map_err(layer_error)?, digest, None)
        }
        // The same through positioned reads, seeking over contents.
        Compression::None => {
            let (scan, hashed) = rayon::join(
                || read_headers_only(layer.blob.reader(), layer.blob.len(), targets),
                || hash_blob.then(|| blob.finish()).transpose(),
            );
            let digest = hashed
                .map_err(|e| layer.blob.io_error(e))?
                .and_then(|(digest, _)| digest);
            (scan.map_err(layer_error)?, digest, None)
        }
        Compression::Gzip | Compression::Zstd => {
            let mut blob = blob;
            let (scan, tar_digest) = decode(compression, &mut blob)
                .and_then(|decoder| scan_stream(decoder, targets, hash_tar))
                .map_err(layer_error)?;
            let (digest, _) = blob.finish().map_err(|e| layer.blob.io_error(e))?;
            (scan, digest, tar_digest)
        }
    };
    let scan = finish(layer, scan, compression, blob_digest, tar_digest)?;
    tracing::debug!(
        "layer {index} {} ({compression:?}): {} entries, {} hits, {:.0?}",
        scan.digest.short(),
        scan.entries,
        scan.hits.len(),
        started.elapsed()
    );
    Ok(scan)
}

/// The digest of a mapped blob, with progress as it goes.
fn hash_mapped(blob: &MappedBlob, progress: &dyn Progress) -> Digest {
    Digest::of_chunks(
        blob.chunks(1 << 20)
            .inspect(|chunk| progress.advance(chunk.len() as u64)),
    )
}

fn decode<'a, R: Read + 'a>(
    compression: Compression,
    input: R,
) -> Result<Box<dyn Read + 'a>, TarError> {
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 17,
            input,
        ))),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(input)
                .map_err(|source| TarError::Io { offset: 0, source })?,
        ),
        Compression::None => Box::new(input),
    })
}

/// Compares what was hashed with what the image declares, and names the layer by both
/// digests: computed where hashed, declared otherwise.
fn finish(
    layer: &LayerSource,
    scan: LayerScan,
    compression: Compression,
    blob: Option<Digest>,
    tar: Option<Digest>,
) -> Result<LayerScan, CheckError> {
    let tar = tar.or_else(|| blob.clone().filter(|_| compression == Compression::None));
    verify_digests(layer, blob.as_ref(), tar.as_ref())?;
    let digest = blob
        .or_else(|| layer.digest.clone())
        .or_else(|| layer.diff_id.clone());
    let diff_id = tar
        .or_else(|| layer.diff_id.clone())
        .or_else(|| digest.clone());
    Ok(LayerScan {
        digest: digest.expect("a layer without a declared digest is hashed"),
        diff_id: diff_id.expect("as above"),
        compression,
        ..scan
    })
}

/// Reads a decompressed layer, hashing it for the diff_id if asked.
fn scan_stream(
    decoder: impl Read,
    targets: &[Target],
    hash: bool,
) -> Result<(LayerScan, Option<Digest>), TarError> {
    let mut tar = HashingReader::counting(decoder, hash);
    let mut reader = Reader::new(Streamed(&mut tar));
    let scan = read_entries(&mut reader, targets)?;
    let offset = reader.position();
    let (diff_id, _) = tar
        .finish()
        .map_err(|source| TarError::Io { offset, source })?;
    Ok((scan, diff_id))
}

fn verify_digests(
    layer: &LayerSource,
    digest: Option<&Digest>,
    diff_id: Option<&Digest>,
) -> Result<(), CheckError> {
    let pairs = [
        (layer.digest.as_ref(), digest),
        (layer.diff_id.as_ref(), diff_id),
    ];
    for (expected, actual) in pairs {
        if let (Some(expected), Some(actual)) = (expected, actual) {
            if expected != actual {
                return Err(CheckError::Transport(TransportError::DigestMismatch {
                    file: layer.blob.label.clone(),
                    expected: expected.clone(),
                    actual: actual.clone(),
                }));
            }
        }
    }
    Ok(())
}

/// Reads every entry of a layer, passing over contents as the source allows (a seek, a
/// cursor moved in a map, or reading and dropping for a stream).
pub fn read_entries<R: Skip>(
    reader: &mut Reader<R>,
    targets: &[Target],
) -> Result<LayerScan, TarError> {
    let mut scan = LayerScan {
        digest: Digest::of(b""),
        diff_id: Digest::of(b""),
        compression: Compression::None,
        entries: 0,
        hits: Vec::new(),
        paths: LayerPaths::default(),
        max_uid: 0,
        max_gid: 0,
        passwd: None,
        group: None,
        uids: BTreeSet::new(),
        gids: BTreeSet::new(),
        xattr_uids: BTreeSet::new(),
        xattr_gids: BTreeSet::new(),
        account_files: Vec::new(),
    };
    while let Some(entry) = reader.next_entry()? {
        let ordinal = scan.entries;
        scan.entries += 1;
        let path = entry.path.as_str();
        let kind = entry.kind;
        record_ids(&mut scan, &entry);
        scan.paths.record(path, kind, ordinal);
        if kind == EntryKind::File && !entry.sparse && (path == PASSWD || path == GROUP) {
            let content = reader.read_data(MAX_ACCOUNT_FILE)?;
            record_account_ids(&mut scan, path, &content);
            let slot = if path == PASSWD {
                &mut scan.passwd
            } else {
                &mut scan.group
            };
            *slot = Some(content);
        }
        if let Some(hit) = check_entry(&entry, path, kind, ordinal, targets) {
            scan.hits.push(hit);
        }
    }
    Ok(scan)
}

fn record_ids(scan: &mut LayerScan, entry: &Entry) {
    scan.max_uid = scan.max_uid.max(entry.uid.value);
    scan.max_gid = scan.max_gid.max(entry.gid.value);
    scan.uids.insert(entry.uid.value);
    scan.gids.insert(entry.gid.value);
    for ids in xattr::ids_in(&entry.xattrs) {
        let set = if ids.is_group {
            &mut scan.xattr_gids
        } else {
            &mut scan.xattr_uids
        };
        set.insert(ids.id);
    }
}

fn record_account_ids(scan: &mut LayerScan, path: &str, content: &[u8]) {
    let ids = accounts::ids(path == PASSWD, content);
    scan.account_files.push((path.to_owned(), ids));
}

fn check_entry(
    entry: &Entry,
    path: &str,
    kind: EntryKind,
    ordinal: u64,
    targets: &[Target],
) -> Option<Hit> {
    let problems: Vec<RuntimeProblem> = targets
        .iter()
        .filter_map(|target| {
            let problem = target.runtime.check(entry, &target.map)?;
            Some(RuntimeProblem {
                runtime: target.runtime,
                problem,
            })
        })
        .collect();
    if problems.is_empty() {
        return None;
    }
    Some(Hit {
        ordinal,
        offset: entry.start,
        path: path.to_owned(),
        kind,
        uid: entry.uid,
        gid: entry.gid,
        problems,
    })
}

/// Reads an uncompressed layer from a seekable source, skipping over file contents; the
/// digest is verified separately.
pub fn read_headers_only<R: Read + std::io::Seek>(
    source: R,
    len: u64,
    targets: &[Target],
) -> Result<LayerScan, TarError> {
    let mut reader = Reader::new(Seekable::new(source, len));
    read_entries(&mut reader, targets)
}
