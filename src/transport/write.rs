//! Writing an image: an OCI layout directory, an OCI archive or a docker archive.
//!
//! Everything is written next to the destination under a temporary name and renamed into
//! place at the end, so a failure leaves nothing behind and a reader never sees half an
//! image. Blobs that did not change are linked when the source is a directory on the same
//! filesystem, else copied; nothing is recompressed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::image::Digest;

use super::storage::Blob;
use super::{ImageReference, TransportError};

/// The content of one blob of the output.
#[derive(Debug)]
pub enum BlobContent {
    /// A blob of the source, copied as it is.
    Source(Blob),
    /// A file written while rewriting, in the staging directory.
    Staged(PathBuf),
    /// A small document: a manifest, index or config.
    Bytes(Vec<u8>),
}

/// Where to write, from a destination reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    DockerArchive { path: PathBuf, name: Option<String> },
    Oci { path: PathBuf, tag: Option<String> },
    OciArchive { path: PathBuf, tag: Option<String> },
}

impl Destination {
    pub fn from_reference(reference: &ImageReference) -> Result<Destination, TransportError> {
        Ok(match reference {
            ImageReference::DockerArchive { path, reference } => Destination::DockerArchive {
                path: path.clone(),
                name: reference.as_deref().map(repo_tag).transpose()?,
            },
            ImageReference::Oci { path, tag } => Destination::Oci {
                path: path.clone(),
                tag: tag.clone(),
            },
            ImageReference::OciArchive { path, tag } => Destination::OciArchive {
                path: path.clone(),
                tag: tag.clone(),
            },
            ImageReference::Path(path) => {
                return Err(TransportError::Destination(path.display().to_string()));
            }
            ImageReference::Registry(_) => return Err(TransportError::Unsupported("docker")),
            ImageReference::DockerDaemon(_) => {
                return Err(TransportError::Unsupported("docker-daemon"));
            }
        })
    }

    pub fn path(&self) -> &Path {
        match self {
            Destination::DockerArchive { path, .. }
            | Destination::Oci { path, .. }
            | Destination::OciArchive { path, .. } => path,
        }
    }
}

/// A docker archive's `RepoTags` entry for `name`: `docker load` wants `name:tag`, so a name
/// without a tag gets `latest`, as `docker tag` would give it; a digest cannot be a tag.
pub(crate) fn repo_tag(name: &str) -> Result<String, TransportError> {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.is_empty() || name.contains('@') || last.is_empty() || last.ends_with(':') {
        return Err(TransportError::ArchiveName(name.to_owned()));
    }
    Ok(if last.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    })
}

/// The files of an image to write, by name inside the layout.
#[derive(Debug, Default)]
pub struct Layout {
    pub files: BTreeMap<String, BlobContent>,
}

impl Layout {
    pub fn add_blob(&mut self, digest: &Digest, content: BlobContent) {
        self.files.insert(blob_name(digest), content);
    }
}

/// `blobs/sha256/<hex>`.
pub fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// A directory beside the destination for files written before the layout is complete.
pub fn staging_dir(destination: &Destination) -> Result<tempfile::TempDir, TransportError> {
    let parent = parent_of(destination.path());
    tempfile::Builder::new()
        .prefix(".idfit-staging-")
        .tempdir_in(&parent)
        .map_err(|source| TransportError::Write {
            path: parent,
            source,
        })
}

/// Fails if the destination exists and may not be replaced.
pub fn check_destination(destination: &Destination, force: bool) -> Result<(), TransportError> {
    let path = destination.path();
    if path.exists() && !force {
        return Err(TransportError::DestinationExists(path.to_owned()));
    }
    Ok(())
}

/// A written image under a temporary name beside its destination, removed when dropped
/// unless persisted.
pub enum Pending {
    Directory(tempfile::TempDir),
    File(tempfile::NamedTempFile),
}

impl Pending {
    /// The temporary path.
    pub fn path(&self) -> &Path {
        match self {
            Pending::Directory(dir) => dir.path(),
            Pending::File(file) => file.path(),
        }
    }

    /// A reference to read the written image back, as the destination's transport.
    pub fn reference(&self, destination: &Destination) -> ImageReference {
        let path = self.path().to_owned();
        match destination {
            Destination::DockerArchive { .. } => ImageReference::DockerArchive {
                path,
                reference: None,
            },
            Destination::Oci { .. } => ImageReference::Oci { path, tag: None },
            Destination::OciArchive { .. } => ImageReference::OciArchive { path, tag: None },
        }
    }

    /// Moves the written image to `path`, replacing what is there when `force` is set.
    pub fn persist(self, path: &Path, force: bool) -> Result<(), TransportError> {
        let error = |source| TransportError::Write {
            path: path.to_owned(),
            source,
        };
        let exists = || TransportError::DestinationExists(path.to_owned());
        if path.exists() && !force {
            return Err(exists());
        }
        let previous = match self {
            Pending::Directory(dir) => {
                let previous = replace(dir.path(), path).map_err(error)?;
                // The directory now lives at `path`; there is nothing left to clean up.
                let _ = dir.keep();
                previous
            }
            // rename(2) replaces a file in one step, but not a directory.
            Pending::File(file) if path.is_dir() => {
                let temporary = file.into_temp_path();
                let previous = replace(&temporary, path).map_err(error)?;
                let _ = temporary.keep();
                previous
            }
            Pending::File(file) if force => {
                file.persist(path).map_err(|e| error(e.error))?;
                None
            }
            // A file that appeared since the check above is not overwritten either.
            Pending::File(file) => {
                file.persist_noclobber(path)
                    .map_err(|e| match e.error.kind() {
                        io::ErrorKind::AlreadyExists => exists(),
                        _ => error(e.error),
                    })?;
                None
            }
        };
        // The new name is made durable before the old image is removed. The new image is in
        // place either way, so a failure to flush is told, not returned as an error.
        if let Err(failure) = sync_dir(&parent_of(path)) {
            tracing::warn!(
                "could not flush the directory of {}: {failure}",
                path.display()
            );
        }
        drop(previous);
        Ok(())
    }
}

/// Writes `layout` beside `destination` under a temporary name.
pub fn write_pending(destination: &Destination, layout: Layout) -> Result<Pending, TransportError> {
    let path = destination.path();
    let parent = parent_of(path);
    let write_error = |source| TransportError::Write {
        path: path.to_owned(),
        source,
    };
    let builder = || {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".idfit-");
        builder
    };
    // Temporary files are private; the image gets the modes of a file or directory made
    // normally, under the usual umask.
    match destination {
        Destination::Oci { .. } => {
            let dir = builder().tempdir_in(&parent).map_err(write_error)?;
            write_directory(dir.path(), layout)?;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
                .map_err(write_error)?;
            sync_tree(dir.path()).map_err(write_error)?;
            Ok(Pending::Directory(dir))
        }
        Destination::OciArchive { .. } | Destination::DockerArchive { .. } => {
            let file = builder().tempfile_in(&parent).map_err(write_error)?;
            write_archive(file.as_file(), layout).map_err(write_error)?;
            file.as_file()
                .set_permissions(fs::Permissions::from_mode(0o644))
                .map_err(write_error)?;
            file.as_file().sync_all().map_err(write_error)?;
            Ok(Pending::File(file))
        }
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Moves `from` to `to`. What was at `to` is first moved into a fresh temporary directory
/// beside it and put back if the second move fails; once `from` is in place, that directory
/// is returned, and dropping it removes the old image. At every moment `to` holds the old
/// image or the new one, or, between the two renames (which no single call can join for a
/// directory), nothing. Should putting the old image back fail too, it is kept and the
/// error says where.
fn replace(from: &Path, to: &Path) -> io::Result<Option<tempfile::TempDir>> {
    if fs::symlink_metadata(to).is_err() {
        return fs::rename(from, to).map(|()| None);
    }
    let aside = tempfile::Builder::new()
        .prefix(".idfit-old-")
        .tempdir_in(parent_of(to))?;
    let old = aside.path().join("old");
    fs::rename(to, &old)?;
    if let Err(error) = fs::rename(from, to) {
        if let Err(restore) = fs::rename(&old, to) {
            let kept = aside.keep().join("old");
            return Err(io::Error::new(
                error.kind(),
                format!(
                    "{error}; putting the previous image back failed too ({restore}): it is \
                     at {}",
                    kept.display()
                ),
            ));
        }
        return Err(error);
    }
    Ok(Some(aside))
}

/// Flushes a directory's entries (new names, renames) to disk.
fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Flushes every file and directory under `root`, so that a crash after the rename into
/// place cannot leave an image whose names exist but whose blobs are empty.
fn sync_tree(root: &Path) -> io::Result<()> {
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(root)
}

fn write_directory(root: &Path, layout: Layout) -> Result<(), TransportError> {
    for (name, content) in layout.files {
        let path = root.join(&name);
        let error = |source| TransportError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(error)?;
        }
        match content {
            BlobContent::Source(blob) => link_or_copy(&blob, &path)?,
            BlobContent::Staged(staged) => fs::rename(&staged, &path).map_err(error)?,
            BlobContent::Bytes(bytes) => fs::write(&path, bytes).map_err(error)?,
        }
    }
    Ok(())
}

fn link_or_copy(blob: &Blob, path: &Path) -> Result<(), TransportError> {
    if let Some(source) = &blob.whole_file {
        if fs::hard_link(source, path).is_ok() {
            return Ok(());
        }
    }
    let file = File::create(path).map_err(|source| TransportError::Write {
        path: path.to_owned(),
        source,
    })?;
    let mut out = BufWriter::new(file);
    io::copy(&mut blob.reader(), &mut out).map_err(|source| blob.io_error(source))?;
    out.flush().map_err(|source| TransportError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes the layout as an uncompressed tar with fixed metadata, so the same layout always
/// gives the same bytes.
fn write_archive(file: &File, layout: Layout) -> io::Result<()> {
    let mut builder = tar::Builder::new(BufWriter::new(file));
    let mut directories: Vec<String> = Vec::new();
    for name in layout.files.keys() {
        let mut prefix = String::new();
        for part in name
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            prefix = format!("{prefix}{part}/");
            if !directories.contains(&prefix) {
                directories.push(prefix.clone());
            }
        }
    }
    for dir in &directories {
        builder.append(
            &header(dir, 0, tar::EntryType::Directory, 0o755),
            io::empty(),
        )?;
    }
    for (name, content) in layout.files {
        match content {
            BlobContent::Source(blob) => {
                let header = header(&name, blob.len(), tar::EntryType::Regular, 0o644);
                builder.append(&header, blob.reader())?;
            }
            BlobContent::Staged(path) => {
                let file = File::open(&path)?;
                let len = file.metadata()?.len();
                builder.append(&header(&name, len, tar::EntryType::Regular, 0o644), file)?;
            }
            BlobContent::Bytes(bytes) => {
                let header = header(&name, bytes.len() as u64, tar::EntryType::Regular, 0o644);
                builder.append(&header, &bytes[..])?;
            }
        }
    }
    builder.into_inner()?.flush()
}

fn header(name: &str, size: u64, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(name)
        .expect("layout names are short and relative");
    header.set_size(size);
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_archive_names_get_a_tag() {
        assert_eq!(repo_tag("app").unwrap(), "app:latest");
        assert_eq!(repo_tag("app:1.2").unwrap(), "app:1.2");
        assert_eq!(
            repo_tag("localhost:5000/team/app").unwrap(),
            "localhost:5000/team/app:latest"
        );
        assert_eq!(
            repo_tag("localhost:5000/app:v1").unwrap(),
            "localhost:5000/app:v1"
        );
        for bad in ["", "app@sha256:00", "app:", "team/"] {
            assert!(repo_tag(bad).is_err(), "{bad}");
        }
    }
}
