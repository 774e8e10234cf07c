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
use crate::tar::{Entry, EntryKind, entry};
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
    /// Rootful Podman storing images remapped (`remap-uids`/`remap-gids` in
    /// containers-storage.conf) with a driver that applies the map while extracting (vfs;
    /// overlay on kernels with idmapped mounts defers the map to mount time instead).
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
        let kind = entry.kind;
        match self {
            // overlay2 merges an entry named `.` into the existing layer directory; it maps
            // every other owner before converting whiteouts.
            Runtime::Docker => !entry.is_dot,
            // The naive differ handles whiteouts and AUFS metadata before mapping, but has no
            // special case for the root entry.
            Runtime::DockerVfs | Runtime::Podman => {
                let meta = entry
                    .path
                    .strip_prefix('/')
                    .is_some_and(|p| p.starts_with(entry::WHITEOUT_META_PREFIX));
                !matches!(kind, EntryKind::Whiteout | EntryKind::OpaqueWhiteout) && !meta
            }
            // Devices cannot be created in a user namespace and the opaque marker becomes an
            // xattr, so neither is chowned; a whiteout becomes a device node chowned to its
            // owner.
            Runtime::Rootless => {
                let skipped = [
                    EntryKind::CharDevice,
                    EntryKind::BlockDevice,
                    EntryKind::OpaqueWhiteout,
                ];
                !entry.is_dot && !skipped.contains(&kind)
            }
        }
    }

    /// Checks one entry's owner and extended attributes against `map`.
    pub fn check(self, entry: &Entry, map: &NamespaceMap) -> Option<Problem> {
        if !self.chowns(entry) {
            return None;
        }
        if self
            .unmapped_id(map, entry.uid.value, entry.gid.value)
            .is_some()
        {
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

    /// Whether the runtime gives an entry an owner id `id` from one side (uid or gid) of a
    /// namespace map without error.
    pub fn accepts_id(self, map: &IdMap, id: i64) -> bool {
        match self {
            Runtime::Rootless => !kernel_refuses(map, id),
            // Docker's `IdentityMapping.ToHost` passes an id equal to the host id of
            // container root through unmapped (so on 0:100000:65536, 100000 loads);
            // containers/storage has no such exception.
            Runtime::Docker | Runtime::DockerVfs => map.to_host(0) == Some(id) || map.contains(id),
            Runtime::Podman => map.contains(id),
        }
    }

    /// The id the runtime names when it refuses an owner: the uid when it is out of range,
    /// else the gid, as both Docker and containers/storage check them in that order.
    fn unmapped_id(self, map: &NamespaceMap, uid: i64, gid: i64) -> Option<i64> {
        if !self.accepts_id(&map.uid, uid) {
            return Some(uid);
        }
        (!self.accepts_id(&map.gid, gid)).then_some(gid)
    }

    /// The text the runtime prints when it stops at this entry.
    pub fn message(self, subject: Subject<'_>, map: &NamespaceMap, problem: &Problem) -> String {
        let path = subject.path;
        match (self, problem) {
            (Runtime::Rootless, Problem::Owner) => {
                // A whiteout is created as a device at the path it deletes, with chown(2).
                let (call, path) = match subject.kind {
                    EntryKind::Whiteout => ("chown", entry::whiteout_target(path)),
                    _ => ("lchown", path.to_owned()),
                };
                format!(
                    "processing tar file(potentially insufficient UIDs or GIDs available in \
                     user namespace (requested {}:{} for {path}): Check /etc/subuid and \
                     /etc/subgid if configured locally and run podman-system-migrate: \
                     {call} {path}: invalid argument): exit status 1",
                    subject.uid, subject.gid
                )
            }
            (Runtime::Rootless, Problem::Xattr { .. }) => {
                format!("processing tar file(lsetxattr {path}: invalid argument): exit status 1")
            }
            (_, Problem::Owner) => {
                let id = self.unmapped_id(map, subject.uid, subject.gid).unwrap_or(0);
                match self {
                    Runtime::DockerVfs => format!(
                        "ApplyLayer exit status 1 stdout:  stderr: Container ID {id} cannot be \
                         mapped to a host ID"
                    ),
                    Runtime::Podman => format!(
                        "ApplyLayer stdout:  stderr: container ID {id} cannot be mapped to a \
                         host ID exit status 1"
                    ),
                    _ => format!(
                        "Error processing tar file(exit status 1): Container ID {id} cannot be \
                         mapped to a host ID"
                    ),
                }
            }
            (_, Problem::Xattr { name, id, .. }) => format!(
                "{name} of {path} names id {id}, stored unshifted: inside the container it \
                 belongs to someone else"
            ),
        }
    }
}

/// What a runtime's message names of the entry it stopped at.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The cleaned path, from the root.
    pub path: &'a str,
    pub kind: EntryKind,
    pub uid: i64,
    pub gid: i64,
}

impl<'a> From<&'a Entry> for Subject<'a> {
    fn from(entry: &'a Entry) -> Self {
        Subject {
            path: &entry.path,
            kind: entry.kind,
            uid: entry.uid.value,
            gid: entry.gid.value,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::header::Format;
    use crate::tar::{Id, IdSource};
    use crate::xattr::{self, tests::acl, tests::capability_v3};

    const B: i64 = 1_000_000;

    fn entry(name: &str, typeflag: u8, uid: i64, gid: i64) -> Entry {
        let id = |value| Id {
            value,
            source: IdSource::Octal,
        };
        let mut entry = Entry {
            start: 0,
            header_offset: 0,
            format: Format::Ustar,
            typeflag,
            name: name.as_bytes().to_vec(),
            link_name: Vec::new(),
            uid: id(uid),
            gid: id(gid),
            data_size: 0,
            xattrs: Vec::new(),
            pax: None,
            path: String::new(),
            kind: EntryKind::Other,
            is_dot: false,
            sparse: false,
        };
        entry.resolve();
        entry
    }

    /// Loads on (docker, docker-vfs, rootless), measured on the real runtimes with the usual
    /// maps (0:100000:65536, and 0:1000:1,1:200000:65536 for rootless).
    #[test]
    fn verdicts_match_the_measured_runtimes() {
        let cases: &[(&str, u8, i64, i64, [bool; 3])] = &[
            ("x", b'0', 5, 5, [true, true, true]),
            ("x", b'0', B, 0, [false, false, false]),
            ("x", b'0', 0, B, [false, false, false]),
            ("x", b'0', 100000, 100000, [true, true, false]),
            ("x", b'0', 65535, 65535, [true, true, true]),
            ("x", b'0', 65536, 0, [false, false, true]),
            ("x", b'0', 65537, 0, [false, false, false]),
            ("x", b'0', -1, 0, [false, false, true]),
            ("x", b'0', -2, 0, [false, false, false]),
            ("x", b'0', 1 << 32, 0, [false, false, true]),
            ("x", b'0', (1 << 32) + 5, 0, [false, false, true]),
            ("./", b'5', B, B, [true, false, true]),
            (".", b'5', B, B, [true, false, true]),
            ("/", b'5', B, B, [false, false, false]),
            (".wh.x", b'0', B, B, [false, true, false]),
            ("dir/.wh..wh..opq", b'0', B, B, [false, true, true]),
            (".wh..wh.plnk/foo", b'0', B, B, [false, true, false]),
            ("b", b'1', B, 0, [false, false, false]),
            ("s", b'2', B, 0, [false, false, false]),
            ("d/", b'5', B, 0, [false, false, false]),
            ("c", b'3', B, 0, [false, false, true]),
            ("blk", b'4', B, 0, [false, false, true]),
            ("p", b'6', B, 0, [false, false, false]),
        ];
        let runtimes = [Runtime::Docker, Runtime::DockerVfs, Runtime::Rootless];
        let rootless = NamespaceMap {
            uid: parse_map("0:1000:1,1:200000:65536"),
            gid: parse_map("0:1000:1,1:200000:65536"),
        };
        for (name, typeflag, uid, gid, expected) in cases {
            let entry = entry(name, *typeflag, *uid, *gid);
            // Rootful Podman on vfs skips what the naive differ skips, like docker-vfs, but
            // has no pass-through for the host id of container root.
            let podman = expected[1] && *uid != 100000 && *gid != 100000;
            assert_eq!(
                Runtime::Podman
                    .check(&entry, &Runtime::Podman.default_map())
                    .is_none(),
                podman,
                "{name} {uid}:{gid} on podman"
            );
            for (runtime, loads) in runtimes.iter().zip(expected) {
                let map = if *runtime == Runtime::Rootless {
                    rootless.clone()
                } else {
                    runtime.default_map()
                };
                let problem = runtime.check(&entry, &map);
                assert_eq!(problem.is_none(), *loads, "{name} {uid}:{gid} on {runtime}");
            }
        }
    }

    #[test]
    fn messages_match_the_measured_text() {
        let map = Runtime::Docker.default_map();
        let cases = [
            (
                Runtime::Docker,
                entry("x", b'0', 70000, 80000),
                "Error processing tar file(exit status 1): Container ID 70000 cannot be mapped to a host ID",
            ),
            (
                Runtime::Docker,
                entry("x", b'0', 0, B),
                "Error processing tar file(exit status 1): Container ID 1000000 cannot be mapped to a host ID",
            ),
            (
                Runtime::DockerVfs,
                entry("x", b'0', -1, 0),
                "ApplyLayer exit status 1 stdout:  stderr: Container ID -1 cannot be mapped to a host ID",
            ),
            (
                Runtime::Rootless,
                entry("./a//b", b'0', B, 0),
                "processing tar file(potentially insufficient UIDs or GIDs available in user namespace (requested 1000000:0 for /a/b): Check /etc/subuid and /etc/subgid if configured locally and run podman-system-migrate: lchown /a/b: invalid argument): exit status 1",
            ),
            (
                Runtime::Rootless,
                entry(".wh.x", b'0', B, B),
                "processing tar file(potentially insufficient UIDs or GIDs available in user namespace (requested 1000000:1000000 for /x): Check /etc/subuid and /etc/subgid if configured locally and run podman-system-migrate: chown /x: invalid argument): exit status 1",
            ),
        ];
        for (runtime, entry, expected) in cases {
            let problem = runtime.check(&entry, &map).unwrap();
            assert_eq!(runtime.message((&entry).into(), &map, &problem), expected);
        }
    }

    #[test]
    fn xattrs_fail_rootless_and_warn_elsewhere() {
        let rootless = Runtime::Rootless.default_map();
        let docker = Runtime::Docker.default_map();
        let cases = [
            (xattr::ACL_ACCESS, acl(B as u32, 0), Some(Severity::Error)),
            (xattr::ACL_ACCESS, acl(5, B as u32), Some(Severity::Error)),
            (xattr::ACL_ACCESS, acl(5, 5), None),
            (
                xattr::CAPABILITY,
                capability_v3(B as u32),
                Some(Severity::Error),
            ),
            (xattr::CAPABILITY, capability_v3(0), None),
        ];
        for (name, value, rootless_severity) in cases {
            let mut file = entry("x", b'0', 0, 0);
            file.xattrs.push((name.to_owned(), value));
            let severity = |runtime: Runtime, map| runtime.check(&file, map).map(|p| p.severity());
            assert_eq!(
                severity(Runtime::Rootless, &rootless),
                rootless_severity,
                "{name}"
            );
            let docker_severity = rootless_severity.map(|_| Severity::Warning);
            assert_eq!(
                severity(Runtime::Docker, &docker),
                docker_severity,
                "{name}"
            );
        }
    }
}
