//! Archives written by `docker save` and `podman save`.
//!
//! All of them carry `manifest.json`, a list of `{Config, RepoTags, Layers}` naming members of
//! the archive. The classic format names `<id>/layer.tar` and `<hex>.json`; Docker 25 and
//! later, and the containerd image store, name `blobs/sha256/<hex>` members of an OCI layout
//! in the same archive, possibly compressed. Both forms are read through the manifest, which
//! every docker-archive consumer uses.

use serde::Deserialize;

use crate::image::Digest;

use super::oci_layout::{attach_diff_ids, read_config};
use super::storage::Storage;
use super::{LayerSource, ResolvedImage, Selection, TransportError, parse_json, select_platforms};

/// The member listing the archive's images.
pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The images of the archive, those tagged `reference` when one is given.
pub fn resolve(
    storage: &Storage,
    reference: Option<&str>,
    selection: &Selection,
) -> Result<Vec<ResolvedImage>, TransportError> {
    let manifest_blob = storage.open(MANIFEST)?;
    let items: Vec<ManifestItem> = parse_json(
        &manifest_blob.read_json_bytes()?,
        &manifest_blob.label,
        "a docker-archive manifest",
    )?;
    let tags_of = |item: &ManifestItem| item.repo_tags.clone().unwrap_or_default();
    let chosen: Vec<&ManifestItem> = match reference {
        Some(reference) => items
            .iter()
            .filter(|item| tags_of(item).iter().any(|t| t == reference))
            .collect(),
        None => items.iter().collect(),
    };
    if let (Some(reference), true) = (reference, chosen.is_empty()) {
        let available: Vec<String> = items.iter().flat_map(tags_of).collect();
        return Err(TransportError::TagNotFound {
            container: storage.path().display().to_string(),
            tag: reference.to_owned(),
            available: if available.is_empty() {
                "no tags".into()
            } else {
                available.join(", ")
            },
        });
    }
    let images = chosen
        .into_iter()
        .map(|item| resolve_item(storage, item))
        .collect::<Result<Vec<_>, _>>()?;
    select_platforms(images, selection)
}

fn resolve_item(storage: &Storage, item: &ManifestItem) -> Result<ResolvedImage, TransportError> {
    let config_blob = storage.open(&item.config)?;
    let expected = digest_of_member(&item.config, &config_blob.label)?;
    let (config_digest, config, config_bytes) = read_config(&config_blob, expected.as_ref())?;
    let mut layers = Vec::new();
    for member in &item.layers {
        let blob = storage.open(member)?;
        layers.push(LayerSource {
            digest: digest_of_member(member, &blob.label)?,
            blob,
            diff_id: None,
            size: None,
            media_type: None,
        });
    }
    attach_diff_ids(&mut layers, &config, &config_blob.label)?;
    Ok(ResolvedImage {
        name: item
            .repo_tags
            .as_ref()
            .and_then(|tags| tags.first().cloned()),
        repo_tags: item.repo_tags.clone().unwrap_or_default(),
        platform: config.platform(),
        manifest_digest: None,
        manifest: None,
        config_digest,
        config,
        config_bytes,
        layers,
    })
}

/// The digest a member's name declares: `blobs/sha256/<hex>` and the classic config's
/// `<hex>.json` are content addresses; `<id>/layer.tar` is not.
fn digest_of_member(member: &str, file: &str) -> Result<Option<Digest>, TransportError> {
    let hex = if let Some(hex) = member.strip_prefix("blobs/sha256/") {
        hex
    } else if let Some(hex) = member
        .strip_suffix(".json")
        .filter(|hex| !hex.contains('/'))
    {
        hex
    } else {
        return Ok(None);
    };
    let text = format!("sha256:{hex}");
    text.parse()
        .map(Some)
        .map_err(|source| TransportError::BadDigest {
            file: file.to_owned(),
            text,
            source,
        })
}
