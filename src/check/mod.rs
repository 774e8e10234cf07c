//! The check engine: reads every layer of an image in parallel and decides, per runtime,
//! whether the image loads and where it stops if not.

pub mod report;
pub mod scan;
pub mod user;
pub mod visibility;

use std::sync::Arc;

use rayon::prelude::*;

use crate::idmap::NamespaceMap;
use crate::progress::Progress;
use crate::runtime::{Problem, Runtime, Severity};
use crate::tar::TarError;
use crate::transport::{ResolvedImage, TransportError};

use report::{
    Finding, IdRange, IdSources, ImageReport, LayerSummary, Reason, RuntimeVerdict, UserReport,
    XattrDetail,
};
pub use scan::Verify;
use scan::{Hit, LayerScan, Target};
use user::ResolvedUser;
use visibility::Visibility;

/// Which runtimes an image must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// One runtime.
    Runtime(Runtime),
    /// Every modelled runtime: the image must load on all of them.
    Strict,
}

impl Profile {
    pub fn runtimes(self) -> Vec<Runtime> {
        match self {
            Profile::Runtime(runtime) => vec![runtime],
            Profile::Strict => Runtime::ALL.to_vec(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Runtime(runtime) => runtime.name(),
            Profile::Strict => "strict",
        }
    }
}

/// An image that could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("layer {index} (`{file}`) is not a valid tar archive")]
    Layer {
        index: usize,
        file: String,
        #[source]
        source: TarError,
    },
}

impl CheckError {
    /// What the user can do about it, when there is something.
    pub fn hint(&self) -> Option<String> {
        match self {
            CheckError::Transport(error) => error.hint(),
            CheckError::Layer { .. } => Some(CORRUPT_LAYER_HINT.into()),
        }
    }
}

/// The advice for a layer that is not a readable tar stream.
pub(crate) const CORRUPT_LAYER_HINT: &str =
    "the layer is truncated or corrupt; fetch or save the image again";

/// Checks one image against each runtime with its map.
pub fn check(
    image: &ResolvedImage,
    targets: &[Target],
    verify: Verify,
    progress: &dyn Progress,
) -> Result<ImageReport, CheckError> {
    let scans = scan_image(image, targets, verify, progress)?;
    Ok(assemble(image, targets, &scans.iter().collect::<Vec<_>>()))
}

/// Reads every layer of an image, in parallel.
pub fn scan_image(
    image: &ResolvedImage,
    targets: &[Target],
    verify: Verify,
    progress: &dyn Progress,
) -> Result<Vec<LayerScan>, CheckError> {
    image
        .layers
        .par_iter()
        .enumerate()
        .map(|(index, layer)| scan::scan_layer(index, layer, targets, verify, progress))
        .collect()
}

/// The total size of the blobs `check` will read, for progress.
pub fn total_bytes(image: &ResolvedImage) -> u64 {
    image.layers.iter().map(|layer| layer.blob.len()).sum()
}

/// The report on an image from the scans of its layers.
///
/// The scans are borrowed one by one, so that a caller can mix scans it keeps with new ones.
pub fn assemble(image: &ResolvedImage, targets: &[Target], scans: &[&LayerScan]) -> ImageReport {
    let history = image.config.layer_history();
    let paths: Vec<&scan::LayerPaths> = scans.iter().map(|scan| &scan.paths).collect();
    let mut findings = Vec::new();
    let mut warnings = Vec::new();
    for (index, scan) in scans.iter().enumerate() {
        let context = LayerContext {
            index,
            scan,
            history: history.get(index).cloned().flatten().map(Arc::from),
        };
        for hit in &scan.hits {
            let visibility = visibility::visibility(&paths, index, &hit.path, hit.ordinal);
            split_hit(&context, hit, visibility, &mut findings, &mut warnings);
        }
    }
    let user = resolve_user(image, scans);
    let verdicts: Vec<RuntimeVerdict> = targets
        .iter()
        .map(|target| verdict(target, scans, user.as_ref()))
        .collect();
    let layers = summarize_layers(scans, &history, &findings, &warnings);
    ImageReport {
        name: image.name.clone(),
        platform: image.platform.to_string(),
        manifest_digest: image.manifest_digest.clone(),
        config_digest: image.config_digest.clone(),
        loads: verdicts.iter().all(|v| v.loads),
        starts: verdicts.iter().all(|v| v.user_mappable),
        predicted_error: verdicts.iter().find_map(|v| v.predicted_error.clone()),
        required_id_range: required_range(scans, user.as_ref()),
        user: user.map(|resolved| UserReport {
            runtimes: verdicts
                .iter()
                .filter(|v| !v.user_mappable)
                .map(|v| v.runtime)
                .collect(),
            resolved,
        }),
        runtimes: verdicts,
        layers,
        findings,
        warnings,
    }
}

struct LayerContext<'a> {
    index: usize,
    scan: &'a LayerScan,
    history: Option<Arc<str>>,
}

/// Turns a hit into a finding for the runtimes it breaks and a warning for those it only
/// misleads.
fn split_hit(
    layer: &LayerContext,
    hit: &Hit,
    visibility: Visibility,
    findings: &mut Vec<Finding>,
    warnings: &mut Vec<Finding>,
) {
    let finding = |severity: Severity| {
        let problems: Vec<_> = hit
            .problems
            .iter()
            .filter(|p| p.problem.severity() == severity)
            .collect();
        let first = problems.first()?;
        let (reason, xattr) = match &first.problem {
            Problem::Owner => (Reason::Owner, None),
            Problem::Xattr { name, id, .. } => (
                Reason::Xattr,
                Some(XattrDetail {
                    name: name.clone(),
                    id: *id,
                }),
            ),
        };
        Some(Finding {
            layer_index: layer.index,
            layer_digest: layer.scan.digest.clone(),
            diff_id: layer.scan.diff_id.clone(),
            history: layer.history.clone(),
            path: hit.path.clone(),
            kind: hit.kind,
            uid: hit.uid.value,
            gid: hit.gid.value,
            source: IdSources {
                uid: hit.uid.source,
                gid: hit.gid.source,
            },
            visibility,
            runtimes: problems.iter().map(|p| p.runtime).collect(),
            reason,
            xattr,
            offset: hit.offset,
        })
    };
    findings.extend(finding(Severity::Error));
    warnings.extend(finding(Severity::Warning));
}

/// A runtime applies layers bottom-up and stops at the first entry it cannot map.
fn verdict(target: &Target, scans: &[&LayerScan], user: Option<&ResolvedUser>) -> RuntimeVerdict {
    let first_failure = scans.iter().enumerate().find_map(|(index, scan)| {
        scan.hits.iter().find_map(|hit| {
            hit.problems
                .iter()
                .find(|p| p.runtime == target.runtime && p.problem.severity() == Severity::Error)
                .map(|p| {
                    (
                        index,
                        target
                            .runtime
                            .message(hit.subject(), &target.map, &p.problem),
                    )
                })
        })
    });
    RuntimeVerdict {
        runtime: target.runtime,
        id_map: target.map.clone(),
        loads: first_failure.is_none(),
        failing_layer: first_failure.as_ref().map(|(index, _)| *index),
        predicted_error: first_failure.map(|(_, message)| message),
        user_mappable: user.is_none_or(|user| user_mappable(&target.map, user)),
    }
}

/// The process of the container must have an id inside the namespace, or runc cannot start it.
fn user_mappable(map: &NamespaceMap, user: &ResolvedUser) -> bool {
    let uid_ok = user.uid.is_none_or(|uid| map.uid.contains(uid));
    let gid_ok = user.gid.is_none_or(|gid| map.gid.contains(gid));
    uid_ok && gid_ok
}

/// The config's `User` against the topmost /etc/passwd and /etc/group that survive.
fn resolve_user(image: &ResolvedImage, scans: &[&LayerScan]) -> Option<ResolvedUser> {
    let user = image.config.user()?;
    let paths: Vec<&scan::LayerPaths> = scans.iter().map(|scan| &scan.paths).collect();
    let topmost = |file: &str, content: fn(&LayerScan) -> Option<&Vec<u8>>| {
        scans.iter().enumerate().rev().find_map(|(index, scan)| {
            let bytes = content(scan)?;
            let ordinal = scan.paths.last(file)?.0;
            visibility::visibility(&paths, index, file, ordinal)
                .is_visible()
                .then_some(bytes.as_slice())
        })
    };
    let passwd = topmost(scan::PASSWD, |scan| scan.passwd.as_ref());
    let group = topmost(scan::GROUP, |scan| scan.group.as_ref());
    Some(user::resolve(user, passwd, group))
}

fn required_range(scans: &[&LayerScan], user: Option<&ResolvedUser>) -> IdRange {
    let user_uid = user.and_then(|u| u.uid).unwrap_or(0);
    let user_gid = user.and_then(|u| u.gid).unwrap_or(0);
    let max_uid = scans.iter().map(|s| s.max_uid).fold(user_uid, i64::max);
    let max_gid = scans.iter().map(|s| s.max_gid).fold(user_gid, i64::max);
    IdRange {
        uid: max_uid.max(0) as u64 + 1,
        gid: max_gid.max(0) as u64 + 1,
    }
}

fn summarize_layers(
    scans: &[&LayerScan],
    history: &[Option<String>],
    findings: &[Finding],
    warnings: &[Finding],
) -> Vec<LayerSummary> {
    let count = |list: &[Finding], index| list.iter().filter(|f| f.layer_index == index).count();
    scans
        .iter()
        .enumerate()
        .map(|(index, scan)| LayerSummary {
            index,
            digest: scan.digest.clone(),
            diff_id: scan.diff_id.clone(),
            history: history.get(index).cloned().flatten(),
            compression: scan.compression,
            entries: scan.entries,
            findings: count(findings, index),
            warnings: count(warnings, index),
        })
        .collect()
}
