//! Assembling the fixed image: new configs, manifests and indexes around the rewritten layers,
//! with every other blob carried over as it was. Documents idfit changes are edited as JSON
//! values so that fields it does not model keep their place and content.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::check::scan::LayerScan;
use crate::image::spec::{REF_NAME, media_type};
use crate::image::{Compression, Digest};
use crate::transport::write::{BlobContent, Destination, Layout, blob_name, repo_tag};
use crate::transport::{LayoutKind, ResolvedImage, Source, TransportError, parse_json};

use super::layer::RewrittenLayer;
use super::table::IdTable;
use super::{FixError, ImagePlan, Plan, SOURCE_ANNOTATION, TABLE_ANNOTATION};

/// A config's `User` with numeric parts replaced through the table; names stay, since the
/// account files are rewritten to match.
pub fn rewrite_user(user: &str, table: &IdTable) -> String {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let map = |part: &str, ids: &BTreeMap<i64, i64>| match part
        .parse::<i64>()
        .ok()
        .and_then(|id| ids.get(&id))
    {
        Some(new) => new.to_string(),
        None => part.to_owned(),
    };
    let user_part = map(user_part, &table.uids);
    match group_part {
        Some(group) => format!("{user_part}:{}", map(group, &table.gids)),
        None => user_part,
    }
}

/// One image of the output.
struct Written {
    manifest: Vec<u8>,
    manifest_digest: Digest,
    config_digest: Digest,
    /// Layer blobs as `(digest, media type)`, bottom first.
    layers: Vec<(Digest, String)>,
}

/// Everything the destination holds.
pub fn layout(
    source: &Source,
    plan: &mut Plan,
    scans: &[Vec<LayerScan>],
    rewritten: &BTreeMap<Digest, RewrittenLayer>,
    destination: &Destination,
) -> Result<Layout, FixError> {
    let mut layout = Layout::default();
    // An OCI layout is carried over whole (other tags, attestations, nested indexes); what
    // the fix replaced is pruned at the end. A docker archive holds only what its
    // manifest.json names.
    let whole = !matches!(destination, Destination::DockerArchive { .. });
    if source.kind == LayoutKind::Oci && whole {
        for name in source.storage.blob_names()? {
            layout.files.insert(
                name.clone(),
                BlobContent::Source(source.storage.open(&name)?),
            );
        }
    }
    let mut written = Vec::new();
    for ((image, image_plan), image_scans) in source.images.iter().zip(&mut plan.images).zip(scans)
    {
        let image_written = write_image(
            image,
            image_plan,
            image_scans,
            rewritten,
            &plan.table,
            &mut layout,
        )?;
        image_plan.new_config_digest = Some(image_written.config_digest.clone());
        image_plan.new_manifest_digest = Some(image_written.manifest_digest.clone());
        written.push(image_written);
    }
    match destination {
        Destination::DockerArchive { name, .. } => {
            docker_manifest(source, &written, name.as_deref(), &mut layout)
        }
        Destination::Oci { tag, .. } | Destination::OciArchive { tag, .. } => {
            oci_index(source, &written, tag.as_deref(), &mut layout)?;
            prune_unreachable(&mut layout)?;
            layout.files.insert(
                "oci-layout".into(),
                BlobContent::Bytes(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            );
        }
    }
    Ok(layout)
}

fn write_image(
    image: &ResolvedImage,
    plan: &ImagePlan,
    scans: &[LayerScan],
    rewritten: &BTreeMap<Digest, RewrittenLayer>,
    table: &IdTable,
    layout: &mut Layout,
) -> Result<Written, FixError> {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for ((source, layer_plan), scan) in image.layers.iter().zip(&plan.layers).zip(scans) {
        let media_type = source
            .media_type
            .clone()
            .unwrap_or_else(|| layer_media_type(scan.compression).to_owned());
        match rewritten
            .get(&layer_plan.digest)
            .filter(|_| layer_plan.rewrite)
        {
            Some(new) => {
                layout.add_blob(&new.digest, BlobContent::Staged(new.staged.clone()));
                layers.push((new.digest.clone(), new.size, media_type));
                diff_ids.push(new.diff_id.clone());
            }
            None => {
                layout.add_blob(&scan.digest, BlobContent::Source(source.blob.clone()));
                layers.push((scan.digest.clone(), source.blob.len(), media_type));
                diff_ids.push(scan.diff_id.clone());
            }
        }
    }
    let changed = plan.layers.iter().any(|l| l.rewrite) || plan.user.is_some();
    let config = if changed {
        edit_config(&image.config_bytes, &diff_ids, plan)?
    } else {
        image.config_bytes.clone()
    };
    let config_digest = Digest::of(&config);
    let manifest = match (&image.manifest, changed) {
        (Some(original), false) => original.clone(),
        (Some(original), true) => {
            edit_manifest(original, &config, &layers, &diff_ids, image, table)?
        }
        (None, _) => new_manifest(&config, &layers, image, table),
    };
    let manifest_digest = Digest::of(&manifest);
    layout.add_blob(&config_digest, BlobContent::Bytes(config));
    layout.add_blob(&manifest_digest, BlobContent::Bytes(manifest.clone()));
    Ok(Written {
        manifest,
        manifest_digest,
        config_digest,
        layers: layers
            .into_iter()
            .map(|(digest, _, media_type)| (digest, media_type))
            .collect(),
    })
}

fn layer_media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => media_type::OCI_LAYER,
        Compression::Gzip => media_type::OCI_LAYER_GZIP,
        Compression::Zstd => media_type::OCI_LAYER_ZSTD,
    }
}

fn parse(bytes: &[u8], what: &'static str) -> Result<Value, FixError> {
    Ok(parse_json(bytes, what, what)?)
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value serializes")
}

/// The config with new diff_ids and user; every other field as it was.
fn edit_config(
    original: &[u8],
    diff_ids: &[Digest],
    plan: &ImagePlan,
) -> Result<Vec<u8>, FixError> {
    let mut config = parse(original, "the image configuration")?;
    config["rootfs"]["diff_ids"] =
        json!(diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>());
    if let Some((_, user)) = &plan.user {
        config["config"]["User"] = json!(user);
    }
    Ok(to_bytes(&config))
}

fn annotate(manifest: &mut Value, image: &ResolvedImage, table: &IdTable) {
    if !manifest.get("annotations").is_some_and(Value::is_object) {
        manifest["annotations"] = json!({});
    }
    if let Some(digest) = &image.manifest_digest {
        manifest["annotations"][SOURCE_ANNOTATION] = json!(digest.to_string());
    }
    manifest["annotations"][TABLE_ANNOTATION] = json!(table.to_string());
}

fn edit_manifest(
    original: &[u8],
    config: &[u8],
    layers: &[(Digest, u64, String)],
    diff_ids: &[Digest],
    image: &ResolvedImage,
    table: &IdTable,
) -> Result<Vec<u8>, FixError> {
    let mut manifest = parse(original, "the image manifest")?;
    manifest["config"]["digest"] = json!(Digest::of(config).to_string());
    manifest["config"]["size"] = json!(config.len());
    if let Some(descriptors) = manifest["layers"].as_array_mut() {
        for ((descriptor, (digest, size, _)), diff_id) in
            descriptors.iter_mut().zip(layers).zip(diff_ids)
        {
            if descriptor_digest(descriptor).as_ref() != Some(digest) {
                describe_new_blob(descriptor, diff_id);
            }
            descriptor["digest"] = json!(digest.to_string());
            descriptor["size"] = json!(size);
        }
    }
    annotate(&mut manifest, image, table);
    Ok(to_bytes(&manifest))
}

/// Annotations on a layer descriptor that describe the bytes of the blob, not the layer:
/// offsets into a zstd:chunked blob's table of contents and an eStargz blob's TOC digest.
/// A rewritten, recompressed blob has none of them right, and a puller that trusted them
/// would read the wrong chunks; without them it reads the blob as a plain layer.
const BLOB_ANNOTATION_PREFIXES: [&str; 2] = [
    "io.github.containers.zstd-chunked.",
    "containerd.io/snapshot/stargz/",
];
/// containerd's record of a layer's diff_id on its descriptor.
const UNCOMPRESSED_ANNOTATION: &str = "containerd.io/uncompressed";

/// Brings a descriptor whose blob was rewritten up to date beyond its digest and size: the
/// embedded copy of the old blob goes, and so do annotations about the old bytes.
fn describe_new_blob(descriptor: &mut Value, diff_id: &Digest) {
    if let Some(fields) = descriptor.as_object_mut() {
        fields.remove("data");
    }
    // `get_mut`, not indexing: indexing a missing key would insert a null.
    if let Some(value) = descriptor
        .get_mut("annotations")
        .and_then(|annotations| annotations.get_mut(UNCOMPRESSED_ANNOTATION))
    {
        *value = json!(diff_id.to_string());
    }
    drop_annotations(descriptor, |key| {
        BLOB_ANNOTATION_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
    });
}

/// Removes a descriptor's annotations whose key `unwanted` picks, and the `annotations`
/// object itself if nothing is left in it.
fn drop_annotations(descriptor: &mut Value, unwanted: impl Fn(&str) -> bool) {
    let Some(fields) = descriptor.as_object_mut() else {
        return;
    };
    let Some(annotations) = fields.get_mut("annotations").and_then(Value::as_object_mut) else {
        return;
    };
    annotations.retain(|key, _| !unwanted(key));
    if annotations.is_empty() {
        fields.remove("annotations");
    }
}

/// An OCI manifest for an image that came without one (from a docker archive).
fn new_manifest(
    config: &[u8],
    layers: &[(Digest, u64, String)],
    image: &ResolvedImage,
    table: &IdTable,
) -> Vec<u8> {
    let layers: Vec<Value> = layers
        .iter()
        .map(|(digest, size, media_type)| json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}))
        .collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_MANIFEST,
        "config": {"mediaType": media_type::OCI_CONFIG, "digest": Digest::of(config).to_string(), "size": config.len()},
        "layers": layers,
    });
    annotate(&mut manifest, image, table);
    to_bytes(&manifest)
}

/// `manifest.json` of a docker archive: the config and layers by member name, and the tags.
fn docker_manifest(source: &Source, written: &[Written], name: Option<&str>, layout: &mut Layout) {
    let items: Vec<Value> = written
        .iter()
        .zip(&source.images)
        .map(|(image, resolved)| {
            let tags = repo_tags(resolved, name);
            json!({
                "Config": blob_name(&image.config_digest),
                "RepoTags": (!tags.is_empty()).then_some(tags),
                "Layers": image.layers.iter().map(|(digest, _)| blob_name(digest)).collect::<Vec<_>>(),
            })
        })
        .collect();
    // The manifest blob itself is not part of a docker archive.
    for image in written {
        layout.files.remove(&blob_name(&image.manifest_digest));
    }
    layout.files.insert(
        "manifest.json".into(),
        BlobContent::Bytes(to_bytes(&Value::Array(items))),
    );
}

/// The `RepoTags` of an image in a docker archive: the destination's name, else every tag
/// the source gave it, else its OCI name where that is a full reference.
fn repo_tags(image: &ResolvedImage, name: Option<&str>) -> Vec<String> {
    if let Some(name) = name {
        return vec![name.to_owned()];
    }
    if !image.repo_tags.is_empty() {
        return image.repo_tags.clone();
    }
    // An OCI `ref.name` is often a bare tag (`latest`), which names no repository.
    image
        .name
        .as_deref()
        .filter(|name| name.contains('/') || name.contains(':'))
        .and_then(|name| repo_tag(name).ok())
        .into_iter()
        .collect()
}

/// `index.json`: the source's own index with the changed manifests (and any index above them)
/// replaced, or a new one for a source that had none.
fn oci_index(
    source: &Source,
    written: &[Written],
    tag: Option<&str>,
    layout: &mut Layout,
) -> Result<(), FixError> {
    let index = match source.kind {
        LayoutKind::Oci => {
            let replaced: BTreeMap<Digest, &Written> = source
                .images
                .iter()
                .zip(written)
                .filter_map(|(image, w)| Some((image.manifest_digest.clone()?, w)))
                .filter(|(old, w)| *old != w.manifest_digest)
                .collect();
            let original = parse(
                &source.storage.open("index.json")?.read_json_bytes()?,
                "index.json",
            )?;
            let (mut index, _) = rebuild_index(source, original, &replaced, layout, 0)?;
            if let Some(tag) = tag {
                retag(&mut index, source.tag.as_deref(), tag)?;
            }
            index
        }
        LayoutKind::DockerArchive => {
            if tag.is_some() && written.len() > 1 {
                return Err(FixError::TagNamesOneImage(written.len()));
            }
            let manifests: Vec<Value> = written
                .iter()
                .zip(&source.images)
                .map(|(image, resolved)| {
                    let reference = tag.map(str::to_owned).or_else(|| resolved.name.clone());
                    let mut descriptor = json!({
                        "mediaType": media_type::OCI_MANIFEST,
                        "digest": image.manifest_digest.to_string(),
                        "size": image.manifest.len(),
                        "platform": resolved.platform,
                    });
                    if let Some(reference) = reference {
                        descriptor["annotations"] = json!({ REF_NAME: reference });
                    }
                    descriptor
                })
                .collect();
            json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": manifests})
        }
    };
    layout
        .files
        .insert("index.json".into(), BlobContent::Bytes(to_bytes(&index)));
    Ok(())
}

/// Whether a top-level descriptor of `index.json` is one the source was read through:
/// every one when the source named no tag, else those carrying that tag.
fn selected(descriptor: &Value, source_tag: Option<&str>) -> bool {
    source_tag.is_none_or(|tag| descriptor["annotations"][REF_NAME].as_str() == Some(tag))
}

/// Gives `tag` to the top-level descriptors the source was read through, changed or not,
/// and takes it from every other one, so that it names the fixed image alone. A retagged
/// descriptor loses containerd's full image name, which would name the image as before.
fn retag(index: &mut Value, source_tag: Option<&str>, tag: &str) -> Result<(), FixError> {
    let Some(descriptors) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let chosen = descriptors
        .iter()
        .filter(|d| selected(d, source_tag))
        .count();
    if chosen > 1 {
        return Err(FixError::TagNamesOneImage(chosen));
    }
    for descriptor in descriptors {
        if selected(descriptor, source_tag) {
            drop_annotations(descriptor, |key| key == CONTAINERD_IMAGE_NAME);
            if !descriptor["annotations"].is_object() {
                descriptor["annotations"] = json!({});
            }
            descriptor["annotations"][REF_NAME] = json!(tag);
        } else if descriptor["annotations"][REF_NAME].as_str() == Some(tag) {
            drop_annotations(descriptor, |key| key == REF_NAME);
        }
    }
    Ok(())
}

/// containerd's (and Docker 25's) annotation with an index entry's full image name.
const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
/// BuildKit's annotation linking an attestation manifest to the image it describes.
const DOCKER_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// Replaces descriptors of changed manifests, following nested indexes; an index whose
/// children changed is written anew. At the top (`depth` 0) only the descriptors the source
/// was read through are followed: another tag of the same manifest keeps naming the image
/// as it was. Returns the index and whether it changed.
fn rebuild_index(
    source: &Source,
    mut index: Value,
    replaced: &BTreeMap<Digest, &Written>,
    layout: &mut Layout,
    depth: usize,
) -> Result<(Value, bool), FixError> {
    let mut changed = false;
    let Some(descriptors) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
        return Ok((index, false));
    };
    for descriptor in descriptors {
        let Some(digest) = descriptor_digest(descriptor) else {
            continue;
        };
        if depth == 0 && !selected(descriptor, source.tag.as_deref()) {
            continue;
        }
        // An attestation names the image it describes by digest.
        let attested = descriptor["annotations"][DOCKER_REFERENCE_DIGEST]
            .as_str()
            .and_then(|text| text.parse::<Digest>().ok())
            .and_then(|old| replaced.get(&old));
        if let Some(written) = attested {
            descriptor["annotations"][DOCKER_REFERENCE_DIGEST] =
                json!(written.manifest_digest.to_string());
            changed = true;
        }
        let new = if let Some(written) = replaced.get(&digest) {
            Some((written.manifest_digest.clone(), written.manifest.len()))
        } else if is_index(descriptor) && depth < 8 {
            let child = parse(
                &source
                    .storage
                    .open(&blob_name(&digest))?
                    .read_json_bytes()?,
                "an image index",
            )?;
            let (child, child_changed) = rebuild_index(source, child, replaced, layout, depth + 1)?;
            child_changed.then(|| {
                let bytes = to_bytes(&child);
                let digest = Digest::of(&bytes);
                let size = bytes.len();
                layout.add_blob(&digest, BlobContent::Bytes(bytes));
                (digest, size)
            })
        } else {
            None
        };
        if let Some((digest, size)) = new {
            descriptor["digest"] = json!(digest.to_string());
            descriptor["size"] = json!(size);
            changed = true;
        }
    }
    Ok((index, changed))
}

/// Drops the blobs nothing in the new index reaches any more (the layers, configs and
/// manifests that were replaced), so the output does not grow by the old versions.
fn prune_unreachable(layout: &mut Layout) -> Result<(), FixError> {
    let mut reachable = std::collections::BTreeSet::new();
    let mut pending: Vec<Value> = vec![document(layout, "index.json")?];
    while let Some(value) = pending.pop() {
        let descriptors = ["manifests", "layers", "blobs"]
            .iter()
            .flat_map(|key| value[key].as_array().cloned().unwrap_or_default())
            .chain(["config", "subject"].iter().map(|key| value[key].clone()));
        for descriptor in descriptors {
            let Some(digest) = descriptor_digest(&descriptor) else {
                continue;
            };
            let name = blob_name(&digest);
            // Only manifests and indexes name other blobs; configs, SBOMs and attestation
            // payloads (JSON too, and sometimes large) are kept without being read.
            let names_blobs = matches!(
                descriptor["mediaType"].as_str(),
                Some(
                    media_type::OCI_MANIFEST
                        | media_type::OCI_INDEX
                        | media_type::DOCKER_MANIFEST
                        | media_type::DOCKER_MANIFEST_LIST
                )
            );
            if reachable.insert(name.clone()) && names_blobs {
                pending.push(document(layout, &name)?);
            }
        }
    }
    layout
        .files
        .retain(|name, _| !name.starts_with("blobs/") || reachable.contains(name));
    Ok(())
}

/// The digest a descriptor names, if it names a valid one.
fn descriptor_digest(descriptor: &Value) -> Option<Digest> {
    descriptor["digest"].as_str()?.parse().ok()
}

/// A JSON document of the output layout.
fn document(layout: &Layout, name: &str) -> Result<Value, FixError> {
    let bytes = match layout.files.get(name) {
        Some(BlobContent::Bytes(bytes)) => bytes.clone(),
        Some(BlobContent::Source(blob)) => blob.read_json_bytes()?,
        // Staged files are layers, never documents; a dangling reference is kept as is.
        Some(BlobContent::Staged(_)) | None => return Ok(Value::Null),
    };
    parse(&bytes, "a document of the output")
}

fn is_index(descriptor: &Value) -> bool {
    matches!(
        descriptor["mediaType"].as_str(),
        Some(media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST)
    )
}

impl From<serde_json::Error> for FixError {
    fn from(source: serde_json::Error) -> Self {
        FixError::Transport(TransportError::Json {
            file: "output".into(),
            what: "a document",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_layer_descriptor_loses_what_described_the_old_blob() {
        let diff_id = Digest::of(b"new layer");
        let mut descriptor = json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
            "digest": Digest::of(b"old").to_string(),
            "size": 3,
            "data": "b2xk",
            "annotations": {
                "io.github.containers.zstd-chunked.manifest-checksum": "sha256:00",
                "io.github.containers.zstd-chunked.manifest-position": "1:2:3:4",
                "containerd.io/snapshot/stargz/toc.digest": "sha256:11",
                "containerd.io/uncompressed": "sha256:22",
                "org.example.kept": "yes",
            },
        });
        describe_new_blob(&mut descriptor, &diff_id);
        assert_eq!(descriptor.get("data"), None);
        assert_eq!(
            descriptor["annotations"],
            json!({
                "containerd.io/uncompressed": diff_id.to_string(),
                "org.example.kept": "yes",
            })
        );

        let mut bare = json!({"annotations": {"containerd.io/snapshot/stargz/toc.digest": "x"}});
        describe_new_blob(&mut bare, &diff_id);
        assert_eq!(bare, json!({}));
    }
}
