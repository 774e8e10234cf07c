//! `idfit fix`: plans, rewrites, writes and reports.

use std::collections::BTreeMap;
use std::error::Error;
use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use serde_json::json;

use idfit::fix::table::Policy;
use idfit::fix::{self, FixOptions, Plan};
use idfit::progress::Progress;
use idfit::targets;
use idfit::transport::write::Destination;
use idfit::transport::{self, ImageReference, Selection};

use super::args::{FixArgs, FixFormat};
use super::progress::Bar;
use super::text::{printable, short_step};
use super::{PASS, map_options};

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const GOOD: Style = AnsiColor::Green.on_default().bold();

pub fn run(args: &FixArgs, quiet: bool) -> Result<u8, Box<dyn Error + Send + Sync>> {
    let source_reference = ImageReference::parse(&args.source)?;
    let destination = match &args.destination {
        Some(text) => Some(Destination::from_reference(&ImageReference::parse(text)?)?),
        None => None,
    };
    let targets = targets::targets(args.maps.runtime.profile(), &map_options(&args.maps))?;
    let selection = Selection {
        platform: args.maps.platform.clone(),
    };
    let source = transport::open(&source_reference, &selection)?;
    if let Some(destination) = destination.as_ref().filter(|_| !args.dry_run) {
        fix::check_destination(&source, destination, args.force)?;
    }
    let options = fix_options(args);

    let bar = Bar::new(quiet);
    bar.begin(source.images.iter().map(idfit::check::total_bytes).sum());
    let (mut plan, scans) = fix::plan(&source, &targets, &options, &bar)?;
    if let (false, Some(destination)) = (args.dry_run, &destination) {
        fix::apply(
            &source,
            &mut plan,
            &scans,
            &targets,
            destination,
            args.force,
            &bar,
        )?;
    }
    bar.end();
    print(&plan, args, destination.as_ref())?;
    Ok(PASS)
}

fn fix_options(args: &FixArgs) -> FixOptions {
    let table = |pairs: &[super::args::IdPair]| {
        pairs.iter().map(|p| (p.0, p.1)).collect::<BTreeMap<_, _>>()
    };
    let explicit = !args.map_uid.is_empty() || !args.map_gid.is_empty();
    let policy = match (args.policy, explicit) {
        (Some(policy), _) => policy.0,
        (None, true) => Policy::TableOnly,
        (None, false) => Policy::Remap,
    };
    FixOptions {
        policy,
        uids: table(&args.map_uid),
        gids: table(&args.map_gid),
    }
}

fn print(plan: &Plan, args: &FixArgs, destination: Option<&Destination>) -> io::Result<()> {
    let mut out = io::BufWriter::new(anstream::stdout().lock());
    match args.format {
        FixFormat::Json => {
            let report = json!({
                "schema_version": 1,
                "source": args.source,
                "destination": args.destination,
                "dry_run": args.dry_run,
                "plan": plan,
            });
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        FixFormat::Text => write_text(&mut out, plan, args.dry_run, destination)?,
    }
    out.flush()
}

fn write_text(
    out: &mut dyn Write,
    plan: &Plan,
    dry_run: bool,
    destination: Option<&Destination>,
) -> io::Result<()> {
    if plan.table.is_empty() {
        writeln!(out, "nothing is out of range: no layer needs rewriting")?;
    } else {
        writeln!(out, "{BOLD}id table{BOLD:#}: {}", plan.table)?;
    }
    for image in &plan.images {
        let name = image.name.as_deref().unwrap_or("image");
        writeln!(
            out,
            "\n{BOLD}{}{BOLD:#} {}",
            printable(name),
            printable(&image.platform)
        )?;
        for layer in &image.layers {
            let step = layer.history.as_deref().map(short_step).unwrap_or_default();
            match (&layer.new_digest, layer.rewrite) {
                (_, false) => writeln!(
                    out,
                    "  layer {} {} kept {DIM}{step}{DIM:#}",
                    layer.index,
                    layer.digest.short()
                )?,
                (None, true) => writeln!(
                    out,
                    "  layer {} {} {BOLD}rewrite{BOLD:#} {DIM}{step}{DIM:#}",
                    layer.index,
                    layer.digest.short()
                )?,
                (Some(new), true) => writeln!(
                    out,
                    "  layer {} {} → {} {} owners changed {DIM}{step}{DIM:#}",
                    layer.index,
                    layer.digest.short(),
                    new.short(),
                    layer.owners_changed.unwrap_or_default()
                )?,
            }
            for file in &layer.files {
                writeln!(out, "    content of {} changes", printable(file))?;
            }
        }
        if let Some((old, new)) = &image.user {
            writeln!(
                out,
                "  config User `{}` → `{}`",
                printable(old),
                printable(new)
            )?;
        }
        if let (Some(old), Some(new)) = (&image.manifest_digest, &image.new_manifest_digest) {
            writeln!(out, "  manifest {} → {}", old.short(), new.short())?;
        }
    }
    writeln!(out)?;
    let layers = plan.layers_to_rewrite();
    match (dry_run, destination) {
        (true, _) | (_, None) => writeln!(
            out,
            "dry run: {layers} layers would be rewritten; nothing was written"
        ),
        (false, Some(destination)) => writeln!(
            out,
            "{GOOD}wrote{GOOD:#} {} ({layers} layers rewritten, checked again: it loads)",
            destination.path().display()
        ),
    }
}
