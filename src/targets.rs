//! Which map each runtime is checked against: given on the command line, read from the host's
//! subordinate id files, taken from dockerd's configuration, or the stock default.

use crate::check::Profile;
use crate::check::scan::Target;
use crate::host::{Host, HostError};
use crate::idmap::{IdMap, IdMapError, IdMapping, NamespaceMap};
use crate::runtime::Runtime;

/// Where maps come from.
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// Explicit uid ranges, `--uid-map`.
    pub uid_map: Vec<IdMapping>,
    /// Explicit gid ranges, `--gid-map`; the uid ranges when empty.
    pub gid_map: Vec<IdMapping>,
    /// A host user whose subordinate ranges form the map.
    pub subuid_user: Option<String>,
    pub host: Host,
}

/// A map that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("invalid ID map")]
    Map(#[from] IdMapError),
    #[error(transparent)]
    Host(#[from] HostError),
}

impl TargetError {
    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        match self {
            TargetError::Map(_) => {
                Some("write each range as CONTAINER:HOST:SIZE, e.g. 0:100000:65536".into())
            }
            TargetError::Host(host) => host.hint(),
        }
    }
}

/// Each runtime of the profile with the map it is checked against.
pub fn targets(profile: Profile, options: &MapOptions) -> Result<Vec<Target>, TargetError> {
    let explicit = explicit_map(options)?;
    profile
        .runtimes()
        .into_iter()
        .map(|runtime| {
            let map = match &explicit {
                Some(map) => map.clone(),
                None => host_map(runtime, options)?,
            };
            tracing::info!("{runtime}: uid map {}, gid map {}", map.uid, map.gid);
            Ok(Target { runtime, map })
        })
        .collect()
}

fn explicit_map(options: &MapOptions) -> Result<Option<NamespaceMap>, TargetError> {
    if options.uid_map.is_empty() && options.gid_map.is_empty() {
        return Ok(None);
    }
    let uid = if options.uid_map.is_empty() {
        &options.gid_map
    } else {
        &options.uid_map
    };
    let gid = if options.gid_map.is_empty() {
        &options.uid_map
    } else {
        &options.gid_map
    };
    Ok(Some(NamespaceMap {
        uid: IdMap::new(uid.clone())?,
        gid: IdMap::new(gid.clone())?,
    }))
}

fn host_map(runtime: Runtime, options: &MapOptions) -> Result<NamespaceMap, TargetError> {
    let host = &options.host;
    if let Some(user) = &options.subuid_user {
        return Ok(match runtime {
            Runtime::Rootless => host.rootless_map(user)?,
            _ => host.docker_map(user, user)?,
        });
    }
    if matches!(runtime, Runtime::Docker | Runtime::DockerVfs) {
        if let Some((user, group)) = host.docker_remap_setting()? {
            return Ok(host.docker_map(&user, &group)?);
        }
    }
    Ok(runtime.default_map())
}
