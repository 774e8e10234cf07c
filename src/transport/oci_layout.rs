//! OCI image layouts (image-spec image-layout.md), as a directory or inside a tar archive.
//!
//! `index.json` lists manifests or nested indexes; each blob lives at `blobs/<alg>/<hex>`.
//! Every manifest, index and config read here is checked against its descriptor's digest and
//! size before it is trusted; layers are checked while they stream.

use crate::image::spec::{self, REF_NAME, media_type};
use crate::image::{Compression, Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest};

use super::storage::{Blob, Storage};
use super::{
    LayerSource, ResolvedImage, Selection, TransportError, parse_json, select_platforms, verify,
};

/// The file listing the layout's images.
pub const INDEX: &str = "index.json";

const MAX_NESTING: usize = 8;

/// The images of a layout, those tagged `tag` when one is given.
pub fn resolve(
    storage: &Storage,
    tag: Option<&str>,
    selection: &Selection,
) -> Result<Vec<ResolvedImage>, TransportError> {
    let index_blob = storage.open(INDEX)?;
    let index: ImageIndex = parse_json(
        &index_blob.read_json_bytes()?,
        &index_blob.label,
        "an image index",
    )?;
    let descriptors = match tag {
        Some(tag) => select_tag(index.manifests, tag, storage)?,
        None => index.manifests,
    };
    let mut images = Vec::new();
    for descriptor in &descriptors {
        collect(storage, descriptor, 0, &mut images)?;
    }
    select_platforms(images, selection)
}

fn select_tag(
    descriptors: Vec<Descriptor>,
    tag: &str,
    storage: &Storage,
) -> Result<Vec<Descriptor>, TransportError> {
    let tag_of = |d: &Descriptor| d.annotations.get(REF_NAME).cloned().unwrap_or_default();
    let available: Vec<String> = descriptors
        .iter()
        .map(tag_of)
        .filter(|t| !t.is_empty())
        .collect();
    let chosen: Vec<Descriptor> = descriptors
        .into_iter()
        .filter(|d| tag_of(d) == tag)
        .collect();
    if chosen.is_empty() {
        return Err(TransportError::TagNotFound {
            container: storage.path().display().to_string(),
            tag: tag.to_owned(),
            available: if available.is_empty() {
                "no tags".into()
            } else {
                available.join(", ")
            },
        });
    }
    Ok(chosen)
}

/// Follows a descriptor to the image manifests below it.
fn collect(
    storage: &Storage,
    descriptor: &Descriptor,
    depth: usize,
    images: &mut Vec<ResolvedImage>,
) -> Result<(), TransportError> {
    if depth > MAX_NESTING {
        return Err(TransportError::NestingTooDeep(
            storage.path().display().to_string(),
        ));
    }
    if is_attestation(descriptor) {
        return Ok(());
    }
    let blob = open_blob(storage, &descriptor.digest, Some(descriptor.size))?;
    let bytes = blob.read_json_bytes()?;
    verify(&bytes, &descriptor.digest, &blob.label)?;
    match descriptor.media_type.as_str() {
        media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST => {
            let index: ImageIndex = parse_json(&bytes, &blob.label, "an image index")?;
            for child in &index.manifests {
                collect(storage, child, depth + 1, images)?;
            }
            Ok(())
        }
        media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => {
            let manifest: ImageManifest = parse_json(&bytes, &blob.label, "an image manifest")?;
            // An artifact beside the images is carried over by fix, but holds no layers to
            // check.
            if !manifest.is_image() {
                return Ok(());
            }
            let mut image = resolve_manifest(storage, &manifest)?;
            image.manifest_digest = Some(descriptor.digest.clone());
            image.manifest = Some(bytes);
            image.name = descriptor.annotations.get(REF_NAME).cloned();
            if let Some(platform) = &descriptor.platform {
                image.platform = platform.clone();
            }
            images.push(image);
            Ok(())
        }
        other => Err(TransportError::MediaType {
            digest: descriptor.digest.clone(),
            media_type: other.to_owned(),
        }),
    }
}

/// BuildKit's provenance and SBOM manifests sit in the index beside the images but hold no
/// filesystem.
fn is_attestation(descriptor: &Descriptor) -> bool {
    descriptor
        .annotations
        .get(spec::DOCKER_REFERENCE_TYPE)
        .is_some_and(|t| t == "attestation-manifest")
}

fn resolve_manifest(
    storage: &Storage,
    manifest: &ImageManifest,
) -> Result<ResolvedImage, TransportError> {
    let config_blob = open_blob(storage, &manifest.config.digest, Some(manifest.config.size))?;
    let (config_digest, config, config_bytes) =
        read_config(&config_blob, Some(&manifest.config.digest))?;
    let mut layers = Vec::new();
    for descriptor in &manifest.layers {
        // The media type must name a layer; the compression itself is read off the magic
        // bytes, which some writers get right where the media type lies.
        Compression::of_media_type(&descriptor.media_type).ok_or_else(|| {
            TransportError::MediaType {
                digest: descriptor.digest.clone(),
                media_type: descriptor.media_type.clone(),
            }
        })?;
        layers.push(LayerSource {
            blob: open_blob(storage, &descriptor.digest, Some(descriptor.size))?,
            digest: Some(descriptor.digest.clone()),
            diff_id: None,
            size: Some(descriptor.size),
            media_type: Some(descriptor.media_type.clone()),
        });
    }
    attach_diff_ids(&mut layers, &config, &config_blob.label)?;
    Ok(ResolvedImage {
        name: None,
        repo_tags: Vec::new(),
        platform: config.platform(),
        manifest_digest: None,
        manifest: None,
        config_digest,
        config,
        config_bytes,
        layers,
    })
}

/// Pairs each layer with its diff_id from the config, refusing a config that lists a
/// different number of them.
pub(crate) fn attach_diff_ids(
    layers: &mut [LayerSource],
    config: &ImageConfig,
    file: &str,
) -> Result<(), TransportError> {
    if config.rootfs.diff_ids.len() != layers.len() {
        return Err(TransportError::LayerCount {
            file: file.to_owned(),
            diff_ids: config.rootfs.diff_ids.len(),
            layers: layers.len(),
        });
    }
    for (layer, diff_id) in layers.iter_mut().zip(&config.rootfs.diff_ids) {
        layer.diff_id = Some(diff_id.clone());
    }
    Ok(())
}

/// Reads and verifies an image configuration.
pub(crate) fn read_config(
    blob: &Blob,
    expected: Option<&Digest>,
) -> Result<(Digest, ImageConfig, Vec<u8>), TransportError> {
    let bytes = blob.read_json_bytes()?;
    let digest = match expected {
        Some(expected) => {
            verify(&bytes, expected, &blob.label)?;
            expected.clone()
        }
        None => Digest::of(&bytes),
    };
    let config = parse_json(&bytes, &blob.label, "an image configuration")?;
    Ok((digest, config, bytes))
}

/// The blob with `digest`, checked against the declared size.
pub(crate) fn open_blob(
    storage: &Storage,
    digest: &Digest,
    size: Option<u64>,
) -> Result<Blob, TransportError> {
    let blob = storage.open(&format!("blobs/sha256/{}", digest.hex()))?;
    if let Some(expected) = size.filter(|&size| size != blob.len()) {
        return Err(TransportError::SizeMismatch {
            file: blob.label.clone(),
            expected,
            actual: blob.len(),
        });
    }
    Ok(blob)
}
