//! The result of a check, as plain data. Its JSON form is a documented interface
//! (docs/json.md): fields are added, never renamed or removed, without a new
//! `schema_version`.

use std::sync::Arc;

use serde::Serialize;

use crate::idmap::NamespaceMap;
use crate::image::{Compression, Digest};
use crate::runtime::Runtime;
use crate::tar::{EntryKind, IdSource};

use super::user::ResolvedUser;
use super::visibility::Visibility;

/// Version of the JSON schema.
pub const SCHEMA_VERSION: u32 = 1;

/// The check of every selected image of a source.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// The image reference as given.
    pub image: String,
    /// The profile checked: a runtime name or `strict`.
    pub runtime: String,
    /// Whether every selected image loads under the profile.
    pub loads: bool,
    /// Whether every selected image's `User` can run under the profile.
    pub starts: bool,
    /// What the runtime prints for the first image that fails to load, or null.
    pub predicted_error: Option<String>,
    pub platforms: Vec<ImageReport>,
}

impl Report {
    pub fn new(image: String, runtime: String, platforms: Vec<ImageReport>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            image,
            runtime,
            loads: platforms.iter().all(|p| p.loads),
            starts: platforms.iter().all(|p| p.starts),
            predicted_error: platforms.iter().find_map(|p| p.predicted_error.clone()),
            platforms,
        }
    }

    /// Whether the image loads and its user can run: exit status 0.
    pub fn passes(&self) -> bool {
        self.loads && self.starts
    }
}

/// The check of one image (one platform).
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub name: Option<String>,
    pub platform: String,
    pub manifest_digest: Option<Digest>,
    pub config_digest: Digest,
    pub loads: bool,
    pub starts: bool,
    pub predicted_error: Option<String>,
    /// The verdict of each runtime checked.
    pub runtimes: Vec<RuntimeVerdict>,
    /// The smallest range of ids, from 0, that holds every owner in the image.
    pub required_id_range: IdRange,
    pub user: Option<UserReport>,
    pub layers: Vec<LayerSummary>,
    /// Entries that make at least one runtime fail.
    pub findings: Vec<Finding>,
    /// Entries that load but come out wrong inside the container.
    pub warnings: Vec<Finding>,
}

/// One runtime's verdict on an image.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeVerdict {
    pub runtime: Runtime,
    pub id_map: NamespaceMap,
    pub loads: bool,
    pub predicted_error: Option<String>,
    /// The layer the runtime stops at.
    pub failing_layer: Option<usize>,
    /// Whether the config's user is inside the map.
    pub user_mappable: bool,
}

/// One past the highest uid and gid used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IdRange {
    pub uid: u64,
    pub gid: u64,
}

/// The config's `User` and the runtimes whose map it falls outside.
#[derive(Debug, Clone, Serialize)]
pub struct UserReport {
    #[serde(flatten)]
    pub resolved: ResolvedUser,
    pub runtimes: Vec<Runtime>,
}

/// One layer at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSummary {
    pub index: usize,
    pub digest: Digest,
    pub diff_id: Digest,
    pub history: Option<String>,
    pub compression: Compression,
    pub entries: u64,
    pub findings: usize,
    pub warnings: usize,
}

/// Where an entry's uid and gid values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IdSources {
    pub uid: IdSource,
    pub gid: IdSource,
}

/// What about an entry is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// Its owner.
    Owner,
    /// An id inside an ACL or file capability.
    Xattr,
}

/// An xattr naming an id out of range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XattrDetail {
    pub name: String,
    pub id: i64,
}

/// One offending entry.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// 0 is the bottom layer.
    pub layer_index: usize,
    pub layer_digest: Digest,
    pub diff_id: Digest,
    /// `created_by` of the build step that made the layer, shared by the layer's findings.
    pub history: Option<Arc<str>>,
    pub path: String,
    pub kind: EntryKind,
    pub uid: i64,
    pub gid: i64,
    pub source: IdSources,
    pub visibility: Visibility,
    /// The runtimes this entry breaks (for a warning, those it misleads).
    pub runtimes: Vec<Runtime>,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xattr: Option<XattrDetail>,
    /// Offset of the entry's first header block in the uncompressed layer.
    pub offset: u64,
}
