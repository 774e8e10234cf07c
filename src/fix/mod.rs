//! `fix`: rewrites only the layers that hold an offending entry so that the image loads under
//! every runtime checked, and leaves every other blob as it was.
//!
//! The work has three steps: [`plan`] turns the check's findings into an id table and a set of
//! layers to rewrite; [`apply`] rewrites those layers and assembles the new image around the
//! untouched blobs; the result is checked again before it is moved into place.

pub mod layer;
mod output;
pub mod table;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::check::report::{ImageReport, Reason};
use crate::check::scan::{self, LayerScan, Target, Verify};
use crate::check::{self, CheckError};
use crate::image::Digest;
use crate::progress::{Progress, Silent};
use crate::tar::TarError;
use crate::transport::write::{self, Destination};
use crate::transport::{self, Selection, Source, TransportError};

use layer::RewrittenLayer;
use table::{IdTable, Policy, Side, SideInput, TableError};

/// Annotation on a fixed manifest naming the manifest it was made from.
pub const SOURCE_ANNOTATION: &str = "org.idfit.source-manifest";
/// Annotation on a fixed manifest recording the id table applied.
pub const TABLE_ANNOTATION: &str = "org.idfit.id-table";

/// How ids are replaced.
#[derive(Debug, Clone)]
pub struct FixOptions {
    pub policy: Policy,
    pub uids: BTreeMap<i64, i64>,
    pub gids: BTreeMap<i64, i64>,
}

/// Anything that stops a fix.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("layer {index} cannot be rewritten")]
    Layer {
        index: usize,
        #[source]
        source: TarError,
    },
    #[error("cannot stage `{}`", path.display())]
    Stage {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("a docker archive holds one image, but the source has {0}")]
    OneImageOnly(usize),
    #[error("a destination tag names one image, but the source has {0}")]
    TagNamesOneImage(usize),
    #[error("the fixed image for {platform} still fails: {message}")]
    StillFails { platform: String, message: String },
    #[error("the written output lacks an image the fix made")]
    Incomplete,
}

impl FixError {
    pub fn hint(&self) -> Option<String> {
        match self {
            FixError::OneImageOnly(_) => {
                Some("pick one with --platform, or write to oci: or oci-archive:".into())
            }
            FixError::TagNamesOneImage(_) => Some(
                "name the source image by its tag (oci:DIR:TAG), or leave the destination \
                 untagged to keep the source's tags"
                    .into(),
            ),
            FixError::Table(TableError::Uncovered { .. }) => {
                Some("add --map-uid/--map-gid entries for it, or --policy remap".into())
            }
            FixError::Transport(error) => error.hint(),
            FixError::Check(error) => error.hint(),
            // An I/O error here is as likely writing the staged layer (a full disk) as
            // reading the source.
            FixError::Layer {
                source: TarError::Io { .. },
                ..
            } => None,
            FixError::Layer { .. } => Some(check::CORRUPT_LAYER_HINT.into()),
            FixError::StillFails { .. } | FixError::Incomplete => Some(
                "this is a bug in idfit's rewrite: please report it with the output of \
                 `idfit check --all --format json` on the source"
                    .into(),
            ),
            FixError::Table(_) | FixError::Stage { .. } => None,
        }
    }
}

/// What a fix does.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub table: IdTable,
    pub images: Vec<ImagePlan>,
}

impl Plan {
    pub fn layers_to_rewrite(&self) -> usize {
        self.images
            .iter()
            .flat_map(|i| &i.layers)
            .filter(|l| l.rewrite)
            .count()
    }
}

/// What a fix does to one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePlan {
    pub name: Option<String>,
    pub platform: String,
    pub manifest_digest: Option<Digest>,
    pub config_digest: Digest,
    pub layers: Vec<LayerPlan>,
    /// The config's `User` before and after, when it changes.
    pub user: Option<(String, String)>,
    /// The digests written, once applied.
    pub new_manifest_digest: Option<Digest>,
    pub new_config_digest: Option<Digest>,
}

/// What a fix does to one layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerPlan {
    pub index: usize,
    pub digest: Digest,
    pub diff_id: Digest,
    pub history: Option<String>,
    pub rewrite: bool,
    /// Account files whose content changes.
    pub files: Vec<String>,
    pub new_digest: Option<Digest>,
    pub new_diff_id: Option<Digest>,
    /// Entries whose owner changed, once applied.
    pub owners_changed: Option<u64>,
}

/// Checks every image and plans the fix.
pub fn plan(
    source: &Source,
    targets: &[Target],
    options: &FixOptions,
    progress: &dyn Progress,
) -> Result<(Plan, Vec<Vec<LayerScan>>), FixError> {
    let mut scans = Vec::new();
    let mut reports = Vec::new();
    for image in &source.images {
        let image_scans = check::scan_image(image, targets, Verify::Digests, progress)?;
        reports.push(check::assemble(
            image,
            targets,
            &image_scans.iter().collect::<Vec<_>>(),
        ));
        scans.push(image_scans);
    }
    let table = build_table(&reports, &scans, targets, options)?;
    let images = source
        .images
        .iter()
        .zip(&scans)
        .map(|(image, image_scans)| plan_image(image, image_scans, &table))
        .collect();
    Ok((Plan { table, images }, scans))
}

fn build_table(
    reports: &[ImageReport],
    scans: &[Vec<LayerScan>],
    targets: &[Target],
    options: &FixOptions,
) -> Result<IdTable, FixError> {
    let (mut uids, mut gids) = offending_ids(reports, scans, targets);
    uids.explicit = options.uids.clone();
    gids.explicit = options.gids.clone();
    uids.offending.extend(options.uids.keys());
    gids.offending.extend(options.gids.keys());
    Ok(IdTable {
        uids: table::build_side(Side::Uid, &uids, options.policy, targets)?,
        gids: table::build_side(Side::Gid, &gids, options.policy, targets)?,
    })
}

/// The ids some runtime refuses, and every id the images use.
fn offending_ids(
    reports: &[ImageReport],
    scans: &[Vec<LayerScan>],
    targets: &[Target],
) -> (SideInput, SideInput) {
    let mut uids = SideInput::default();
    let mut gids = SideInput::default();
    for finding in reports
        .iter()
        .flat_map(|r| r.findings.iter().chain(&r.warnings))
    {
        for target in targets
            .iter()
            .filter(|t| finding.reason == Reason::Owner && finding.runtimes.contains(&t.runtime))
        {
            if !target.runtime.accepts_id(&target.map.uid, finding.uid) {
                uids.offending.insert(finding.uid);
            }
            if !target.runtime.accepts_id(&target.map.gid, finding.gid) {
                gids.offending.insert(finding.gid);
            }
        }
    }
    let outside = |id: &i64, side: fn(&Target) -> &crate::idmap::IdMap| {
        targets.iter().any(|t| !side(t).contains(*id))
    };
    for scan in scans.iter().flatten() {
        uids.offending.extend(
            scan.xattr_uids
                .iter()
                .filter(|id| outside(id, |t| &t.map.uid)),
        );
        gids.offending.extend(
            scan.xattr_gids
                .iter()
                .filter(|id| outside(id, |t| &t.map.gid)),
        );
        uids.used.extend(scan.uids.iter().chain(&scan.xattr_uids));
        gids.used.extend(scan.gids.iter().chain(&scan.xattr_gids));
        for (_, ids) in &scan.account_files {
            uids.used.extend(&ids.uids);
            gids.used.extend(&ids.gids);
        }
    }
    for user in reports.iter().filter_map(|r| r.user.as_ref()) {
        // The process's ids are in use even where no file or account line names them: a
        // new id must not hand the process files that were not its own.
        uids.used.extend(user.resolved.uid);
        gids.used.extend(user.resolved.gid);
        if !user.runtimes.is_empty() {
            uids.offending
                .extend(user.resolved.uid.filter(|id| outside(id, |t| &t.map.uid)));
            gids.offending
                .extend(user.resolved.gid.filter(|id| outside(id, |t| &t.map.gid)));
        }
    }
    (uids, gids)
}

fn plan_image(image: &transport::ResolvedImage, scans: &[LayerScan], table: &IdTable) -> ImagePlan {
    let history = image.config.layer_history();
    let hits =
        |set: &BTreeSet<i64>, map: &BTreeMap<i64, i64>| set.iter().any(|id| map.contains_key(id));
    let layers = scans
        .iter()
        .enumerate()
        .map(|(index, scan)| {
            let files: Vec<String> = scan
                .account_files
                .iter()
                .filter(|(_, ids)| hits(&ids.uids, &table.uids) || hits(&ids.gids, &table.gids))
                .map(|(path, _)| path.clone())
                .collect();
            let owners = hits(&scan.uids, &table.uids) || hits(&scan.gids, &table.gids);
            let xattrs = hits(&scan.xattr_uids, &table.uids) || hits(&scan.xattr_gids, &table.gids);
            LayerPlan {
                index,
                digest: scan.digest.clone(),
                diff_id: scan.diff_id.clone(),
                history: history.get(index).cloned().flatten(),
                rewrite: owners || xattrs || !files.is_empty(),
                files,
                new_digest: None,
                new_diff_id: None,
                owners_changed: None,
            }
        })
        .collect();
    let user = image.config.user().and_then(|user| {
        let new = output::rewrite_user(user, table);
        (new != user).then(|| (user.to_owned(), new))
    });
    ImagePlan {
        name: image.name.clone(),
        platform: image.platform.to_string(),
        manifest_digest: image.manifest_digest.clone(),
        config_digest: image.config_digest.clone(),
        layers,
        user,
        new_manifest_digest: None,
        new_config_digest: None,
    }
}

/// Rewrites the planned layers, writes the destination, checks it and moves it into place.
pub fn apply(
    source: &Source,
    plan: &mut Plan,
    scans: &[Vec<LayerScan>],
    targets: &[Target],
    destination: &Destination,
    force: bool,
    progress: &dyn Progress,
) -> Result<(), FixError> {
    check_destination(source, destination, force)?;
    let staging = write::staging_dir(destination)?;
    let rewritten = rewrite_layers(source, plan, staging.path(), progress)?;
    let layout = output::layout(source, plan, scans, &rewritten, destination)?;
    let written = write::write_pending(destination, layout)?;
    verify(&written.reference(destination), plan, targets, scans)?;
    written.persist(destination.path(), force)?;
    Ok(())
}

/// Refuses a destination that exists (without `force`) or cannot hold the source's images,
/// before any work is done.
pub fn check_destination(
    source: &Source,
    destination: &Destination,
    force: bool,
) -> Result<(), FixError> {
    write::check_destination(destination, force)?;
    if matches!(destination, Destination::DockerArchive { .. }) && source.images.len() != 1 {
        return Err(FixError::OneImageOnly(source.images.len()));
    }
    Ok(())
}

/// Rewrites each planned layer once, in parallel; a layer shared by several images is
/// rewritten once.
fn rewrite_layers(
    source: &Source,
    plan: &mut Plan,
    dir: &std::path::Path,
    progress: &dyn Progress,
) -> Result<BTreeMap<Digest, RewrittenLayer>, FixError> {
    let mut jobs: BTreeMap<Digest, (usize, &transport::LayerSource)> = BTreeMap::new();
    for (image, image_plan) in source.images.iter().zip(&plan.images) {
        for layer in image_plan.layers.iter().filter(|l| l.rewrite) {
            jobs.entry(layer.digest.clone())
                .or_insert((layer.index, &image.layers[layer.index]));
        }
    }
    let table = &plan.table;
    let done: BTreeMap<Digest, RewrittenLayer> = jobs
        .into_par_iter()
        .map(|(digest, (index, layer))| {
            let rewritten = layer::rewrite_layer(index, &digest, layer, table, dir, progress)?;
            Ok((digest, rewritten))
        })
        .collect::<Result<_, FixError>>()?;
    for layer in plan.images.iter_mut().flat_map(|i| i.layers.iter_mut()) {
        if let Some(new) = done.get(&layer.digest) {
            layer.new_digest = Some(new.digest.clone());
            layer.new_diff_id = Some(new.diff_id.clone());
            layer.owners_changed = Some(new.stats.owners);
        }
    }
    Ok(done)
}

/// Checks the images the fix wrote with the same runtimes; anything still failing is a bug in
/// the rewrite, and the output is thrown away. Images of an OCI layout that the source
/// selection left out (other platforms, other tags) are carried over as they were and not
/// checked. A layer blob carried over unchanged has the same digest, hence the same bytes,
/// as one already scanned: its scan is reused, and only the rewritten layers are read again.
fn verify(
    reference: &transport::ImageReference,
    plan: &Plan,
    targets: &[Target],
    scanned: &[Vec<LayerScan>],
) -> Result<(), FixError> {
    let known: BTreeMap<&Digest, &LayerScan> = scanned
        .iter()
        .flatten()
        .map(|scan| (&scan.digest, scan))
        .collect();
    let fixed: BTreeSet<&Digest> = plan
        .images
        .iter()
        .filter_map(|image| image.new_manifest_digest.as_ref())
        .collect();
    let written = transport::open(reference, &Selection::default())?;
    // A docker archive names no manifest digest: it holds only the fixed image.
    let to_check: Vec<&transport::ResolvedImage> = written
        .images
        .iter()
        .filter(|image| {
            image
                .manifest_digest
                .as_ref()
                .is_none_or(|digest| fixed.contains(digest))
        })
        .collect();
    let found: BTreeSet<&Digest> = to_check
        .iter()
        .filter_map(|image| image.manifest_digest.as_ref())
        .collect();
    let docker_archive = to_check.iter().any(|image| image.manifest_digest.is_none());
    if to_check.is_empty() || !docker_archive && found != fixed {
        return Err(FixError::Incomplete);
    }
    for image in to_check {
        let scans: Vec<Cow<LayerScan>> = image
            .layers
            .par_iter()
            .enumerate()
            .map(|(index, layer)| {
                match layer.digest.as_ref().and_then(|digest| known.get(digest)) {
                    Some(scan) => Ok(Cow::Borrowed(*scan)),
                    None => scan::scan_layer(index, layer, targets, Verify::Digests, &Silent)
                        .map(Cow::Owned),
                }
            })
            .collect::<Result<_, _>>()?;
        let scans: Vec<&LayerScan> = scans.iter().map(AsRef::as_ref).collect();
        let report = check::assemble(image, targets, &scans);
        if !report.loads {
            return Err(FixError::StillFails {
                platform: image.platform.to_string(),
                message: report.predicted_error.unwrap_or_default(),
            });
        }
    }
    Ok(())
}
