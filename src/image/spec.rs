//! The JSON documents of an image: OCI image-spec (descriptor.md, image-index.md,
//! manifest.md, config.md) and the Docker image manifest v2 schema 2 they grew from.
//!
//! Only the fields idfit reads are modelled. Code that writes an image back edits the JSON as
//! a value instead, so that fields unknown here survive.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

/// Media types idfit reads, by the spec that names them.
pub mod media_type {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_NONDISTRIBUTABLE: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_NONDISTRIBUTABLE_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_NONDISTRIBUTABLE_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}

/// A layer's compression, from its media type or its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type declares, or `None` for a media type that is not
    /// a layer.
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        use media_type::*;
        match media_type {
            OCI_LAYER | OCI_NONDISTRIBUTABLE | DOCKER_LAYER => Some(Compression::None),
            OCI_LAYER_GZIP
            | OCI_NONDISTRIBUTABLE_GZIP
            | DOCKER_LAYER_GZIP
            | DOCKER_FOREIGN_LAYER_GZIP => Some(Compression::Gzip),
            OCI_LAYER_ZSTD | OCI_NONDISTRIBUTABLE_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The compression the magic bytes at the start of a blob reveal.
    pub fn sniff(start: &[u8]) -> Compression {
        match start {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// The platform an image runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Whether `self` is what a `--platform OS/ARCH[/VARIANT]` filter asks for; without a
    /// variant in the filter any variant matches.
    pub fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || self.variant == wanted.variant)
    }

    /// Attestation and signature manifests carry `unknown/unknown`.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: (*os).to_owned(),
                architecture: (*arch).to_owned(),
                variant: parts.get(2).map(|v| (*v).to_owned()),
            }),
            _ => Err(format!("`{text}` is not of the form OS/ARCH[/VARIANT]")),
        }
    }
}

/// A reference to a blob: its media type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Annotation naming an index entry's tag (image-spec annotations.md).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation BuildKit puts on attestation manifests inside an index.
pub const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// An image index or Docker manifest list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    #[serde(default)]
    pub media_type: Option<String>,
    /// Set on artifacts (signatures, SBOMs, other referrers), which are not images.
    #[serde(default)]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl ImageManifest {
    /// Whether the manifest describes a container image: no artifact type, and a config
    /// of an image configuration's media type. Artifacts (cosign signatures, ORAS and
    /// notation referrers) use the manifest format with other configs.
    pub fn is_image(&self) -> bool {
        self.artifact_type.is_none()
            && matches!(
                self.config.media_type.as_str(),
                media_type::OCI_CONFIG | media_type::DOCKER_CONFIG
            )
    }
}

/// The parts of an image configuration idfit reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<History>,
}

/// The execution parameters of the configuration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "User", default)]
    pub user: Option<String>,
}

/// The layer list by uncompressed digest.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<Digest>,
}

/// One build step.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct History {
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// The `created_by` of the step behind each layer: history entries marked `empty_layer`
    /// made no layer, the others pair with the layers in order.
    pub fn layer_history(&self) -> Vec<Option<String>> {
        self.history
            .iter()
            .filter(|step| !step.empty_layer)
            .map(|step| step.created_by.clone())
            .collect()
    }

    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
        }
    }

    pub fn user(&self) -> Option<&str> {
        self.config
            .as_ref()?
            .user
            .as_deref()
            .filter(|user| !user.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_by_media_type_and_magic() {
        assert_eq!(
            Compression::of_media_type(media_type::DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::of_media_type("application/json"), None);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"etc/"), Compression::None);
        assert_eq!(Compression::sniff(&[]), Compression::None);
    }

    #[test]
    fn history_skips_empty_layers() {
        let config: ImageConfig = serde_json::from_str(
            r#"{"rootfs":{"type":"layers","diff_ids":[]},"history":[
                {"created_by":"ADD x /"},{"created_by":"ENV A=1","empty_layer":true},
                {"created_by":"RUN y"}]}"#,
        )
        .unwrap();
        assert_eq!(
            config.layer_history(),
            [Some("ADD x /".into()), Some("RUN y".into())]
        );
    }

    #[test]
    fn platform_filters() {
        let arm: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(arm.matches(&"linux/arm64".parse().unwrap()));
        assert!(!arm.matches(&"linux/arm64/v7".parse().unwrap()));
        assert!("linux".parse::<Platform>().is_err());
    }
}
