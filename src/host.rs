//! The host's own ID configuration: /etc/subuid and /etc/subgid (subuid(5), subgid(5)),
//! /etc/passwd for a user's own id, and dockerd's `userns-remap` setting in
//! /etc/docker/daemon.json. All of it is read under a root directory that tests point
//! elsewhere.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::idmap::{IdMap, IdMapError, NamespaceMap};

/// The user dockerd creates and maps with `--userns-remap=default`.
pub const DOCKER_DEFAULT_REMAP_USER: &str = "dockremap";

/// A host configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` line {line}: `{text}` is not NAME:START:COUNT", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("`{}` has no range for `{user}`", path.display())]
    NoRanges { path: PathBuf, user: String },
    #[error("`{}` has no user `{user}`", path.display())]
    NoUser { path: PathBuf, user: String },
    #[error("`{}` is not valid JSON", path.display())]
    DaemonJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the ranges for `{user}` do not form a valid map")]
    Map {
        user: String,
        #[source]
        source: IdMapError,
    },
}

impl HostError {
    pub fn hint(&self) -> Option<String> {
        match self {
            HostError::NoRanges { user, .. } => Some(format!(
                "add a line such as `{user}:100000:65536` to /etc/subuid and /etc/subgid, or pass --uid-map and --gid-map"
            )),
            _ => None,
        }
    }
}

/// The files of a host, under `root`.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn new(root: impl Into<PathBuf>) -> Host {
        Host { root: root.into() }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.root.join(file.trim_start_matches('/'))
    }

    fn read(&self, file: &str) -> Result<Option<String>, HostError> {
        let path = self.path(file);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(HostError::Read { path, source }),
        }
    }

    /// The `(start, count)` ranges of `name` (or its numeric id) in a subordinate id file, in
    /// file order.
    pub fn subordinate_ranges(
        &self,
        file: &str,
        name: &str,
        id: Option<u32>,
    ) -> Result<Vec<(u32, u32)>, HostError> {
        let path = self.path(file);
        let text = self.read(file)?.unwrap_or_default();
        let mut ranges = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || HostError::Line {
                path: path.clone(),
                line: number + 1,
                text: line.to_owned(),
            };
            let fields: Vec<&str> = line.split(':').collect();
            let [owner, start, count] = fields[..] else {
                return Err(bad());
            };
            let (start, count) = (
                start.parse().map_err(|_| bad())?,
                count.parse().map_err(|_| bad())?,
            );
            if owner == name || id.is_some_and(|id| owner == id.to_string()) {
                ranges.push((start, count));
            }
        }
        if ranges.is_empty() {
            return Err(HostError::NoRanges {
                path,
                user: name.to_owned(),
            });
        }
        Ok(ranges)
    }

    /// The uid and gid of a user in /etc/passwd.
    pub fn user_ids(&self, name: &str) -> Result<Option<(u32, u32)>, HostError> {
        let text = self.read("etc/passwd")?.unwrap_or_default();
        Ok(text.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 4 && fields[0] == name)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        }))
    }

    /// dockerd's map for a user (and group): the subordinate ranges stacked from container id
    /// 0, as `idtools.NewIdentityMapping` builds it.
    pub fn docker_map(&self, user: &str, group: &str) -> Result<NamespaceMap, HostError> {
        let ids = self.user_ids(user)?;
        let uid_ranges = self.subordinate_ranges("etc/subuid", user, ids.map(|i| i.0))?;
        let gid_ranges = self.subordinate_ranges("etc/subgid", group, None)?;
        let map = |ranges: &[(u32, u32)]| {
            IdMap::stacked(ranges, 0).map_err(|source| HostError::Map {
                user: user.to_owned(),
                source,
            })
        };
        Ok(NamespaceMap {
            uid: map(&uid_ranges)?,
            gid: map(&gid_ranges)?,
        })
    }

    /// A rootless user's namespace: its own ids as 0, the subordinate ranges from 1, as
    /// newuidmap sets it up for Podman.
    pub fn rootless_map(&self, user: &str) -> Result<NamespaceMap, HostError> {
        let (uid, gid) = self.user_ids(user)?.ok_or_else(|| HostError::NoUser {
            path: self.path("etc/passwd"),
            user: user.to_owned(),
        })?;
        let uid_ranges = self.subordinate_ranges("etc/subuid", user, Some(uid))?;
        let gid_ranges = self.subordinate_ranges("etc/subgid", user, Some(uid))?;
        let map = |own: u32, ranges: &[(u32, u32)]| {
            let mut mappings = vec![format!("0:{own}:1").parse().expect("one id at 0")];
            mappings.extend(IdMap::stacked(ranges, 1)?.mappings().iter().copied());
            IdMap::new(mappings)
        };
        let error = |source| HostError::Map {
            user: user.to_owned(),
            source,
        };
        Ok(NamespaceMap {
            uid: map(uid, &uid_ranges).map_err(error)?,
            gid: map(gid, &gid_ranges).map_err(error)?,
        })
    }

    /// dockerd's `userns-remap` setting as `(user, group)`, if daemon.json sets one.
    pub fn docker_remap_setting(&self) -> Result<Option<(String, String)>, HostError> {
        let file = "etc/docker/daemon.json";
        let Some(text) = self.read(file)? else {
            return Ok(None);
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| HostError::DaemonJson {
                path: self.path(file),
                source,
            })?;
        let Some(setting) = value
            .get("userns-remap")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        let (user, group) = match setting.split_once(':') {
            Some((user, group)) => (user, group),
            None if setting == "default" => (DOCKER_DEFAULT_REMAP_USER, DOCKER_DEFAULT_REMAP_USER),
            None => (setting, setting),
        };
        Ok(Some((user.to_owned(), group.to_owned())))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let host = Host::new(dir.path());
        (dir, host)
    }

    #[test]
    fn docker_stacks_ranges_in_file_order() {
        let (_dir, host) = host_with(&[
            (
                "etc/subuid",
                "dockremap:300000:10\nother:1:5\ndockremap:100000:65536\n",
            ),
            ("etc/subgid", "dockremap:100000:65536\n"),
            ("etc/docker/daemon.json", r#"{"userns-remap": "default"}"#),
        ]);
        let (user, group) = host.docker_remap_setting().unwrap().unwrap();
        let map = host.docker_map(&user, &group).unwrap();
        assert_eq!(map.uid.to_string(), "0:300000:10,10:100000:65536");
        assert_eq!(map.gid.to_string(), "0:100000:65536");
    }

    #[test]
    fn rootless_puts_the_user_at_zero() {
        let (_dir, host) = host_with(&[
            ("etc/passwd", "builder:x:1000:1000::/home/builder:/bin/sh\n"),
            ("etc/subuid", "1000:200000:65536\n"),
            ("etc/subgid", "builder:200000:65536\n"),
        ]);
        let map = host.rootless_map("builder").unwrap();
        assert_eq!(map.uid.to_string(), "0:1000:1,1:200000:65536");
        assert_eq!(map.gid.to_string(), "0:1000:1,1:200000:65536");
    }

    #[test]
    fn errors_name_file_and_line() {
        let (_dir, host) = host_with(&[("etc/subuid", "# ranges\nbroken line\n")]);
        let error = host
            .subordinate_ranges("etc/subuid", "x", None)
            .unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("subuid` line 2: `broken line` is not NAME:START:COUNT"),
            "{error}"
        );
        let (_dir, host) = host_with(&[("etc/subuid", "a:1:2\n")]);
        assert!(matches!(
            host.subordinate_ranges("etc/subuid", "b", None),
            Err(HostError::NoRanges { .. })
        ));
    }
}
