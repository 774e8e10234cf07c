//! The report for people: one block per image, findings grouped by layer with the build step
//! that made them, a summary of the offending ids, and what to do.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use idfit::check::report::{Finding, ImageReport, Reason, Report};
use idfit::check::visibility::Visibility;
use idfit::image::Compression;
use idfit::runtime::Runtime;

/// Findings listed per layer before the rest are summarised, unless `--all`.
const LISTED_PER_LAYER: usize = 10;

const BAD: Style = AnsiColor::Red.on_default().bold();
const GOOD: Style = AnsiColor::Green.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

pub fn write(out: &mut dyn Write, report: &Report, all: bool) -> io::Result<()> {
    for (number, image) in report.platforms.iter().enumerate() {
        if number > 0 {
            writeln!(out)?;
        }
        write_image(out, image, all)?;
    }
    Ok(())
}

fn write_image(out: &mut dyn Write, image: &ImageReport, all: bool) -> io::Result<()> {
    let name = image.name.as_deref().unwrap_or("image");
    writeln!(
        out,
        "{BOLD}{}{BOLD:#} {} {DIM}config {}{DIM:#}",
        printable(name),
        printable(&image.platform),
        image.config_digest.short()
    )?;
    write_verdicts(out, image)?;
    write_layers(out, image, all)?;
    write_user(out, image)?;
    write_summary(out, image)
}

fn write_verdicts(out: &mut dyn Write, image: &ImageReport) -> io::Result<()> {
    for verdict in &image.runtimes {
        let runtime = verdict.runtime;
        let map = format!("uid {} gid {}", verdict.id_map.uid, verdict.id_map.gid);
        match &verdict.predicted_error {
            None => writeln!(
                out,
                "  {GOOD}loads{GOOD:#}     {runtime:<10} {DIM}{map}{DIM:#}"
            )?,
            Some(error) => {
                let layer = verdict.failing_layer.unwrap_or_default();
                writeln!(
                    out,
                    "  {BAD}fails{BAD:#}     {runtime:<10} {DIM}{map}{DIM:#}"
                )?;
                writeln!(out, "            at layer {layer}: {}", printable(error))?;
            }
        }
    }
    Ok(())
}

fn write_layers(out: &mut dyn Write, image: &ImageReport, all: bool) -> io::Result<()> {
    for layer in image.layers.iter().filter(|l| l.findings + l.warnings > 0) {
        let step = layer.history.as_deref().map(short_step).unwrap_or_default();
        writeln!(out)?;
        writeln!(
            out,
            "{BOLD}layer {}{BOLD:#} {} {DIM}{step}{DIM:#}",
            layer.index,
            layer.digest.short()
        )?;
        let in_layer = |list: &[Finding]| -> Vec<Finding> {
            list.iter()
                .filter(|f| f.layer_index == layer.index)
                .cloned()
                .collect()
        };
        write_findings(out, &in_layer(&image.findings), all, false)?;
        write_findings(out, &in_layer(&image.warnings), all, true)?;
    }
    Ok(())
}

fn write_findings(
    out: &mut dyn Write,
    findings: &[Finding],
    all: bool,
    warnings: bool,
) -> io::Result<()> {
    let shown = if all {
        findings.len()
    } else {
        findings.len().min(LISTED_PER_LAYER)
    };
    for finding in &findings[..shown] {
        let owner = format!("{}:{}", finding.uid, finding.gid);
        let what = match (&finding.reason, &finding.xattr) {
            (Reason::Xattr, Some(xattr)) => format!("{} names {}", xattr.name, xattr.id),
            _ => owner,
        };
        let tag = if warnings {
            format!("{WARN}warning{WARN:#} ")
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {tag}{:<7} {:<17} {} {DIM}{}{}{DIM:#}",
            kind_name(finding),
            what,
            printable(&finding.path),
            describe_visibility(finding.visibility),
            runtimes_note(&finding.runtimes),
        )?;
    }
    let hidden = findings.len() - shown;
    if hidden > 0 {
        let visible = findings[shown..]
            .iter()
            .filter(|f| f.visibility.is_visible())
            .count();
        writeln!(
            out,
            "  … and {hidden} more ({visible} of them visible); --all lists every one"
        )?;
    }
    Ok(())
}

fn kind_name(finding: &Finding) -> String {
    serde_json::to_value(finding.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn describe_visibility(visibility: Visibility) -> String {
    match visibility {
        Visibility::Visible => "visible".into(),
        Visibility::Deleted { layer_index } => format!("deleted in layer {layer_index}"),
        Visibility::HiddenByOpaque { layer_index } => {
            format!("hidden by opaque dir in layer {layer_index}")
        }
        Visibility::Replaced { layer_index } => format!("replaced in layer {layer_index}"),
    }
}

fn runtimes_note(runtimes: &[Runtime]) -> String {
    if runtimes.len() == Runtime::ALL.len() {
        return String::new();
    }
    let names: Vec<&str> = runtimes.iter().map(|r| r.name()).collect();
    format!(", {}", names.join(" "))
}

fn write_user(out: &mut dyn Write, image: &ImageReport) -> io::Result<()> {
    let Some(user) = &image.user else {
        return Ok(());
    };
    let ids = match (user.resolved.uid, user.resolved.gid) {
        (Some(uid), Some(gid)) => format!("{uid}:{gid}"),
        _ => "unresolved".into(),
    };
    writeln!(out)?;
    if let Some(why) = &user.resolved.unresolved {
        writeln!(
            out,
            "{WARN}user{WARN:#} `{}` ({ids}): {why}",
            printable(&user.resolved.value)
        )?;
    }
    if user.runtimes.is_empty() {
        return writeln!(
            out,
            "user `{}` is {ids}, inside every map checked",
            printable(&user.resolved.value)
        );
    }
    let names: Vec<&str> = user.runtimes.iter().map(|r| r.name()).collect();
    writeln!(
        out,
        "{BAD}user{BAD:#} `{}` is {ids}, outside the map of {}: the container cannot start",
        printable(&user.resolved.value),
        names.join(", ")
    )
}

fn write_summary(out: &mut dyn Write, image: &ImageReport) -> io::Result<()> {
    writeln!(out)?;
    if image.findings.is_empty() {
        writeln!(out, "no entry is out of range")?;
    } else {
        let visible = image
            .findings
            .iter()
            .filter(|f| f.visibility.is_visible())
            .count();
        let interim = image.findings.len() - visible;
        writeln!(
            out,
            "{} entries out of range: {visible} visible in the final filesystem, {interim} deleted or replaced by a later layer or entry",
            image.findings.len()
        )?;
        writeln!(out, "offending ids: {}", offending_ids(image))?;
    }
    let docker = image
        .runtimes
        .iter()
        .any(|v| matches!(v.runtime, Runtime::Docker | Runtime::DockerVfs));
    if docker
        && image
            .layers
            .iter()
            .any(|l| l.compression == Compression::Zstd)
    {
        writeln!(
            out,
            "{WARN}note{WARN:#}: Docker before 23.0 cannot read zstd layers at all, whatever their owners"
        )?;
    }
    let range = image.required_id_range;
    writeln!(
        out,
        "the image needs ids 0-{} for users and 0-{} for groups ({} and {} ids)",
        range.uid - 1,
        range.gid - 1,
        range.uid,
        range.gid
    )
}

/// `uid 1000000 (12 entries), gid 1000000 (12 entries)`: the ids some checked map lacks.
fn offending_ids(image: &ImageReport) -> String {
    let mut uids: BTreeMap<i64, usize> = BTreeMap::new();
    let mut gids: BTreeMap<i64, usize> = BTreeMap::new();
    let maps: Vec<_> = image.runtimes.iter().map(|v| &v.id_map).collect();
    for finding in image.findings.iter().filter(|f| f.reason == Reason::Owner) {
        if maps.iter().any(|map| !map.uid.contains(finding.uid)) {
            *uids.entry(finding.uid).or_default() += 1;
        }
        if maps.iter().any(|map| !map.gid.contains(finding.gid)) {
            *gids.entry(finding.gid).or_default() += 1;
        }
    }
    let mut parts = Vec::new();
    for (label, ids) in [("uid", uids), ("gid", gids)] {
        for (id, count) in ids {
            parts.push(format!(
                "{label} {id} ({count} {})",
                if count == 1 { "entry" } else { "entries" }
            ));
        }
    }
    parts.join(", ")
}

/// The build step without BuildKit's shell prefix, cut to one readable line.
pub(super) fn short_step(step: &str) -> String {
    let step = step
        .trim_start_matches("/bin/sh -c #(nop) ")
        .trim_start_matches("/bin/sh -c ");
    let step = printable(&step.split_whitespace().collect::<Vec<_>>().join(" ")).into_owned();
    if step.chars().count() > 70 {
        format!("{}…", step.chars().take(69).collect::<String>())
    } else {
        step
    }
}

/// Text from an image (a path, a build step, a name) with control characters and
/// bidirectional overrides escaped, so that a crafted name cannot move the cursor, recolour,
/// forge lines of the report or show its characters in another order.
pub(super) fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert!(matches!(printable("/usr/bin/ls"), Cow::Borrowed(_)));
        assert_eq!(printable("/a\nb\u{1b}[31m"), "/a\\nb\\u{1b}[31m");
        assert_eq!(
            short_step("/bin/sh -c echo \u{1b}]0;x\u{7}"),
            "echo \\u{1b}]0;x\\u{7}"
        );
        assert_eq!(printable("a\u{202E}b"), "a\\u{202e}b");
    }
}
