//! What each container runtime does with a layer entry's owner, and what it prints when it
//! cannot map it.
//!
//! Every rule here was measured against the real runtime (see docs/runtime-behaviour.md and
//! the differential tests). The runtimes read layers with Go's `archive/tar` and chown each
//! entry as they extract it, but they differ in which entries they skip and in who checks the
//! ids: Docker and rootful Podman translate ids in user space with their own map, rootless
//! Podman leaves it to the kernel, which only knows the namespace's map.

use std::fmt;

use serde::Serialize;

use crate::idmap::{IdMap, NamespaceMap};
use crate::tar::{Entry, EntryKind};
use crate::xattr::{self, XattrIds};

/// A runtime whose extraction rules idfit models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Runtime {
    /// `dockerd --userns-remap` with the overlay2 storage driver.
    #[serde(rename = "docker")]
    Docker,
    /// `dockerd --userns-remap` with the vfs driver, which applies layers with the naive differ.
    #[serde(rename = "docker-vfs")]
    DockerVfs,
    /// Rootful Podman with a remapped range (`--userns`/`remap-uids` in storage.conf).
    #[serde(rename = "podman")]
    Podman,
    /// Rootless Podman, Buildah or Docker: the kernel maps ids through the user's namespace.
    #[serde(rename = "rootless")]
    Rootless,
}

impl Runtime {
    /// Every modelled runtime, in the order `strict` consults them.
    pub const ALL: [Runtime; 4] = [
        Runtime::Docker,
        Runtime::DockerVfs,
        Runtime::Podman,
        Runtime::Rootless,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::DockerVfs => "docker-vfs",
            Runtime::Podman => "podman",
            Runtime::Rootless => "rootless",
        }
    }

    /// The map a stock installation uses: `dockremap` (or the `containers` user) owning
    /// 100000-165535, and for rootless a user whose own uid becomes 0 with a subordinate
    /// range of 65536 ids above it.
    pub fn default_map(self) -> NamespaceMap {
        let text = match self {
            Runtime::Rootless => "0:1000:1,1:100000:65536",
            _ => "0:100000:65536",
        };
        let map = parse_map(text);
        NamespaceMap {
            uid: map.clone(),
            gid: map,
        }
    }

    /// Whether the runtime changes the owner of this entry at all.
    fn chowns(self, entry: &Entry) -> bool {
        let kind = entry.kind();
        let path = entry.path();
        let whiteout = matches!(kind, EntryKind::Whiteout | EntryKind::OpaqueWhiteout);
        match self {
            // overlay2 merges the root entry into the existing layer directory and skips it;
            // it converts whiteouts only after mapping their owner.
            Runtime::Docker => path != "/",
            // The naive differ drops whiteouts and AUFS metadata before mapping, but maps the
            // root entry onto the layer directory.
            Runtime::DockerVfs | Runtime::Podman => {
                !whiteout
                    && !path.starts_with(&format!("/{}", crate::tar::entry::WHITEOUT_META_PREFIX))
            }
            // Devices cannot be created in a user namespace, so they are skipped.
            Runtime::Rootless => {
                path != "/" && !matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice)
            }
        }
    }

    /// Checks one entry's owner and extended attributes against `map`.
    pub fn check(self, entry: &Entry, map: &NamespaceMap) -> Option<Problem> {
        if !self.chowns(entry) {
            return None;
        }
        let (uid, gid) = (entry.uid.value, entry.gid.value);
        let owner = match self {
            Runtime::Rootless => kernel_refuses(&map.uid, uid) || kernel_refuses(&map.gid, gid),
            _ => docker_unmapped(map, uid, gid).is_some(),
        };
        if owner {
            return Some(Problem::Owner);
        }
        let ids = xattr::ids_in(&entry.xattrs);
        let bad = ids.iter().find(|ids| !xattr_mappable(map, ids))?;
        Some(Problem::Xattr {
            name: bad.name.clone(),
            id: bad.id,
            severity: match self {
                Runtime::Rootless => Severity::Error,
                _ => Severity::Warning,
            },
        })
    }

    /// The text the runtime prints when it stops at this entry.
    pub fn message(self, entry: &Entry, map: &NamespaceMap, problem: &Problem) -> String {
        let path = entry.path();
        match (self, problem) {
            (Runtime::Rootless, Problem::Owner) => format!(
                "potentially insufficient UIDs or GIDs available in user namespace \
                 (requested {}:{} for {path}): Check /etc/subuid and /etc/subgid if \
                 configured locally and run \"podman system migrate\": lchown {path}: \
                 invalid argument",
                entry.uid.value, entry.gid.value
            ),
            (Runtime::Rootless, Problem::Xattr { .. }) => {
                format!("lsetxattr {path}: invalid argument")
            }
            (_, Problem::Owner) => {
                let id = docker_unmapped(map, entry.uid.value, entry.gid.value).unwrap_or(0);
                let reason = format!("Container ID {id} cannot be mapped to a host ID");
                match self {
                    Runtime::DockerVfs => {
                        format!("ApplyLayer exit status 1 stdout:  stderr: {reason}")
                    }
                    _ => format!("Error processing tar file(exit status 1): {reason}"),
                }
            }
            (_, Problem::Xattr { name, id, .. }) => format!(
                "{name} of {path} names id {id}, stored unshifted: inside the container it \
                 belongs to someone else"
            ),
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How bad a problem is for one runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The runtime refuses the layer.
    Error,
    /// The layer loads, but something inside the container is wrong.
    Warning,
}

/// Why an entry is a problem for a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The owner's uid or gid is out of the map.
    Owner,
    /// An ACL entry or a file capability's root id is out of the map.
    Xattr {
        name: String,
        id: i64,
        severity: Severity,
    },
}

impl Problem {
    pub fn severity(&self) -> Severity {
        match self {
            Problem::Owner => Severity::Error,
            Problem::Xattr { severity, .. } => *severity,
        }
    }
}

/// Docker's `IdentityMapping.ToHost`: an id equal to the host id of container root is passed
/// through unmapped (so on a 0:100000:65536 map, uid 100000 loads); the uid is checked first
/// and named when both are out of range. Returns the id that fails.
fn docker_unmapped(map: &NamespaceMap, uid: i64, gid: i64) -> Option<i64> {
    let root_uid = map.uid.to_host(0);
    let root_gid = map.gid.to_host(0);
    if Some(uid) != root_uid && !map.uid.contains(uid) {
        return Some(uid);
    }
    if Some(gid) != root_gid && !map.gid.contains(gid) {
        return Some(gid);
    }
    None
}

/// `lchown(2)` inside a user namespace: Go passes the id as a machine word and the kernel
/// keeps its low 32 bits, where all ones means "leave unchanged".
fn kernel_refuses(map: &IdMap, id: i64) -> bool {
    let id = id as u32;
    id != u32::MAX && !map.contains(i64::from(id))
}

fn xattr_mappable(map: &NamespaceMap, ids: &XattrIds) -> bool {
    let side = if ids.is_group { &map.gid } else { &map.uid };
    side.contains(ids.id)
}

fn parse_map(text: &str) -> IdMap {
    let mappings = text
        .split(',')
        .map(|m| m.parse().expect("valid built-in map"))
        .collect();
    IdMap::new(mappings).expect("valid built-in map")
}
