//! Where images come from: the containers-transports names users know from skopeo, resolved
//! to a list of [`ResolvedImage`] values whose blobs can be streamed.

pub mod docker_archive;
pub mod oci_layout;
pub mod storage;
pub mod write;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::image::{Digest, ImageConfig, Platform};
use crate::tar::TarError;

pub use storage::{Blob, BlobReader, Storage};

/// An image location as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    /// `docker-archive:PATH[:NAME:TAG]`, as written by `docker save` and `podman save`.
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    /// `oci:DIR[:TAG]`, an OCI image layout directory.
    Oci { path: PathBuf, tag: Option<String> },
    /// `oci-archive:PATH[:TAG]`, an OCI image layout in a tar file.
    OciArchive { path: PathBuf, tag: Option<String> },
    /// A bare path; its kind is found by looking inside.
    Path(PathBuf),
    /// `docker://NAME`, a registry.
    Registry(String),
    /// `docker-daemon:NAME`, the local Docker daemon's store.
    DockerDaemon(String),
}

impl ImageReference {
    pub fn parse(text: &str) -> Result<ImageReference, TransportError> {
        let Some((transport, rest)) = text.split_once(':') else {
            return Ok(ImageReference::Path(text.into()));
        };
        let (path, tail) = match rest.split_once(':') {
            Some((path, tail)) => (PathBuf::from(path), Some(tail.to_owned())),
            None => (PathBuf::from(rest), None),
        };
        if rest.is_empty() {
            return Err(TransportError::Reference(text.to_owned()));
        }
        Ok(match transport {
            "docker-archive" => ImageReference::DockerArchive {
                path,
                reference: tail,
            },
            "oci" => ImageReference::Oci { path, tag: tail },
            "oci-archive" => ImageReference::OciArchive { path, tag: tail },
            "docker" => ImageReference::Registry(rest.trim_start_matches("//").to_owned()),
            "docker-daemon" => ImageReference::DockerDaemon(rest.to_owned()),
            _ if Path::new(text).exists() => ImageReference::Path(text.into()),
            other => return Err(TransportError::UnknownTransport(other.to_owned())),
        })
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with = |f: &mut fmt::Formatter<'_>, kind: &str, path: &Path, tail: &Option<String>| {
            write!(f, "{kind}:{}", path.display())?;
            tail.as_ref().map_or(Ok(()), |tail| write!(f, ":{tail}"))
        };
        match self {
            ImageReference::DockerArchive { path, reference } => {
                with(f, "docker-archive", path, reference)
            }
            ImageReference::Oci { path, tag } => with(f, "oci", path, tag),
            ImageReference::OciArchive { path, tag } => with(f, "oci-archive", path, tag),
            ImageReference::Path(path) => write!(f, "{}", path.display()),
            ImageReference::Registry(name) => write!(f, "docker://{name}"),
            ImageReference::DockerDaemon(name) => write!(f, "docker-daemon:{name}"),
        }
    }
}

/// Anything wrong with finding or reading an image.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("`{0}` is not an image reference")]
    Reference(String),
    #[error("unknown transport `{0}`")]
    UnknownTransport(String),
    #[error("the `{0}` transport is not supported yet")]
    Unsupported(&'static str),
    #[error("cannot open `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read `{file}`")]
    Read {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("`{}` is not a readable tar archive", path.display())]
    Archive {
        path: PathBuf,
        #[source]
        source: TarError,
    },
    #[error("`{}` is neither an OCI layout nor a docker archive", path.display())]
    NotAnImage { path: PathBuf },
    #[error("`{member}` is missing from `{container}`")]
    Missing { container: String, member: String },
    #[error("`{file}` is {size} bytes, too large for a JSON document")]
    TooLarge { file: String, size: u64 },
    #[error("`{file}` is not valid JSON for {what}")]
    Json {
        file: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{file}` has digest `{actual}`, but `{expected}` was expected")]
    DigestMismatch {
        file: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("`{file}` is {actual} bytes, but its descriptor says {expected}")]
    SizeMismatch {
        file: String,
        expected: u64,
        actual: u64,
    },
    #[error("blob `{digest}` has media type `{media_type}`, which is not an image, index or layer")]
    MediaType { digest: Digest, media_type: String },
    #[error("no image tagged `{tag}` in `{container}` (it has: {available})")]
    TagNotFound {
        container: String,
        tag: String,
        available: String,
    },
    #[error("no image for platform `{wanted}` (the image has: {available})")]
    PlatformNotFound { wanted: Platform, available: String },
    #[error("the config `{file}` lists {diff_ids} diff_ids for {layers} layers")]
    LayerCount {
        file: String,
        diff_ids: usize,
        layers: usize,
    },
    #[error("`{0}` names no transport to write to")]
    Destination(String),
    #[error("`{}` exists", .0.display())]
    DestinationExists(PathBuf),
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("index nesting in `{0}` is deeper than 8 levels")]
    NestingTooDeep(String),
    #[error("`{0}` holds no container image (only artifacts, or nothing)")]
    NoImages(String),
    #[error("`{0}` is not a name to tag an image with in a docker archive")]
    ArchiveName(String),
    #[error("`{file}` names digest `{text}`")]
    BadDigest {
        file: String,
        text: String,
        #[source]
        source: crate::image::digest::DigestError,
    },
}

impl TransportError {
    /// A suggestion for the user, where one helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            TransportError::Unsupported(_) => Some(
                "save the image first, e.g. `skopeo copy docker://IMAGE oci-archive:image.tar` or \
                 `docker save IMAGE -o image.tar`, and check that file"
                    .to_owned(),
            ),
            TransportError::UnknownTransport(_) | TransportError::Reference(_) => Some(
                "use docker-archive:PATH, oci:DIR[:TAG], oci-archive:PATH[:TAG] or a plain path"
                    .to_owned(),
            ),
            TransportError::NotAnImage { .. } => Some(
                "a docker archive holds manifest.json; an OCI layout holds oci-layout and index.json"
                    .to_owned(),
            ),
            TransportError::DigestMismatch { .. } | TransportError::SizeMismatch { .. } => {
                Some("the image is corrupt or was modified after it was written".to_owned())
            }
            TransportError::DestinationExists(_) => Some("pass --force to replace it".to_owned()),
            TransportError::Destination(_) => Some(
                "write to docker-archive:PATH[:NAME:TAG], oci:DIR[:TAG] or oci-archive:PATH[:TAG]".to_owned(),
            ),
            TransportError::PlatformNotFound { .. } => {
                Some("pass one of the listed platforms to --platform".to_owned())
            }
            _ => None,
        }
    }
}

/// One image of one platform, with its configuration read and verified and its layers ready to
/// stream.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// A tag or name for the image, where the source gives one.
    pub name: Option<String>,
    /// Every `name:tag` a docker archive gives the image (`RepoTags`).
    pub repo_tags: Vec<String>,
    pub platform: Platform,
    /// The manifest digest, where the source has a manifest blob.
    pub manifest_digest: Option<Digest>,
    /// The manifest as stored, where the source has one.
    pub manifest: Option<Vec<u8>>,
    pub config_digest: Digest,
    pub config: ImageConfig,
    /// The configuration as stored.
    pub config_bytes: Vec<u8>,
    pub layers: Vec<LayerSource>,
}

/// Where a layer's bytes are and what they should hash to.
#[derive(Debug, Clone)]
pub struct LayerSource {
    pub blob: Blob,
    /// The blob digest a manifest declares; docker archives in the classic format declare
    /// none, their layer files being identified by their diff_id.
    pub digest: Option<Digest>,
    /// The digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Option<Digest>,
    /// The declared size, checked against the blob.
    pub size: Option<u64>,
    pub media_type: Option<String>,
}

/// What to select from a source holding several images.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub platform: Option<Platform>,
}

/// How the files of a source are organised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    /// `manifest.json` naming members, as `docker save` writes.
    DockerArchive,
    /// An OCI image layout: `index.json` and `blobs/`.
    Oci,
}

/// An opened image source.
#[derive(Debug)]
pub struct Source {
    pub storage: Storage,
    pub kind: LayoutKind,
    pub images: Vec<ResolvedImage>,
    /// The tag (OCI) or reference (docker archive) the images were selected by, if any.
    pub tag: Option<String>,
}

/// Opens an image source and resolves it to its images.
pub fn open(reference: &ImageReference, selection: &Selection) -> Result<Source, TransportError> {
    let (storage, kind, tag) = match reference {
        ImageReference::DockerArchive { path, reference } => (
            Storage::Archive(storage::Archive::open(path)?),
            LayoutKind::DockerArchive,
            reference,
        ),
        ImageReference::Oci { path, tag } => {
            (Storage::Directory(path.clone()), LayoutKind::Oci, tag)
        }
        ImageReference::OciArchive { path, tag } => (
            Storage::Archive(storage::Archive::open(path)?),
            LayoutKind::Oci,
            tag,
        ),
        ImageReference::Path(path) => {
            let (storage, kind) = detect(path)?;
            (storage, kind, &None)
        }
        ImageReference::Registry(_) => return Err(TransportError::Unsupported("docker")),
        ImageReference::DockerDaemon(_) => {
            return Err(TransportError::Unsupported("docker-daemon"));
        }
    };
    let images = match kind {
        LayoutKind::DockerArchive => docker_archive::resolve(&storage, tag.as_deref(), selection)?,
        LayoutKind::Oci => oci_layout::resolve(&storage, tag.as_deref(), selection)?,
    };
    for image in &images {
        tracing::info!(
            "{} {}: config {}, {} layers",
            image.name.as_deref().unwrap_or("image"),
            image.platform,
            image.config_digest.short(),
            image.layers.len()
        );
    }
    if images.is_empty() {
        return Err(TransportError::NoImages(reference.to_string()));
    }
    Ok(Source {
        storage,
        kind,
        images,
        tag: tag.clone(),
    })
}

/// A bare path: a directory is an OCI layout; a file is a docker archive when it has
/// `manifest.json` (Docker 25 and later also put an OCI layout beside it), else an OCI archive.
fn detect(path: &Path) -> Result<(Storage, LayoutKind), TransportError> {
    let not_an_image = || TransportError::NotAnImage {
        path: path.to_owned(),
    };
    let storage = if path.is_dir() {
        Storage::Directory(path.to_owned())
    } else {
        Storage::Archive(storage::Archive::open(path).map_err(|error| match error {
            TransportError::Archive { .. } => not_an_image(),
            other => other,
        })?)
    };
    if storage.contains(docker_archive::MANIFEST) {
        Ok((storage, LayoutKind::DockerArchive))
    } else if storage.contains(oci_layout::INDEX) {
        Ok((storage, LayoutKind::Oci))
    } else {
        Err(not_an_image())
    }
}

/// Parses a JSON document, naming the file when it does not parse.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    file: &str,
    what: &'static str,
) -> Result<T, TransportError> {
    serde_json::from_slice(bytes).map_err(|source| TransportError::Json {
        file: file.to_owned(),
        what,
        source,
    })
}

/// Checks that `bytes` hash to `expected`.
pub(crate) fn verify(bytes: &[u8], expected: &Digest, file: &str) -> Result<(), TransportError> {
    let actual = Digest::of(bytes);
    if &actual != expected {
        return Err(TransportError::DigestMismatch {
            file: file.to_owned(),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}

/// Drops attestation entries (`unknown/unknown`) and keeps the platform asked for.
pub(crate) fn select_platforms(
    images: Vec<ResolvedImage>,
    selection: &Selection,
) -> Result<Vec<ResolvedImage>, TransportError> {
    let images: Vec<ResolvedImage> = images
        .into_iter()
        .filter(|image| !image.platform.is_unknown())
        .collect();
    let Some(wanted) = &selection.platform else {
        return Ok(images);
    };
    let available: Vec<String> = images
        .iter()
        .map(|image| image.platform.to_string())
        .collect();
    let chosen: Vec<ResolvedImage> = images
        .into_iter()
        .filter(|image| image.platform.matches(wanted))
        .collect();
    if chosen.is_empty() {
        return Err(TransportError::PlatformNotFound {
            wanted: wanted.clone(),
            available: available.join(", "),
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        let cases = [
            (
                "docker-archive:a.tar",
                ImageReference::DockerArchive {
                    path: "a.tar".into(),
                    reference: None,
                },
            ),
            (
                "docker-archive:a.tar:app:1",
                ImageReference::DockerArchive {
                    path: "a.tar".into(),
                    reference: Some("app:1".into()),
                },
            ),
            (
                "oci:dir:v1",
                ImageReference::Oci {
                    path: "dir".into(),
                    tag: Some("v1".into()),
                },
            ),
            (
                "oci-archive:x.tar",
                ImageReference::OciArchive {
                    path: "x.tar".into(),
                    tag: None,
                },
            ),
            (
                "docker://alpine:3",
                ImageReference::Registry("alpine:3".into()),
            ),
            ("plain.tar", ImageReference::Path("plain.tar".into())),
        ];
        for (text, expected) in cases {
            assert_eq!(ImageReference::parse(text).unwrap(), expected, "{text}");
        }
        assert!(matches!(
            ImageReference::parse("ftp:x"),
            Err(TransportError::UnknownTransport(_))
        ));
    }
}
