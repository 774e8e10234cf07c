//! The `idfit` binary: parses arguments, wires the library together and prints.

mod args;
mod fix;
mod progress;
mod sarif;
mod text;

use std::error::Error;
use std::io::{self, Write};
use std::process::ExitCode;

use anstyle::{AnsiColor, Style};
use clap::Parser;
use tracing_subscriber::EnvFilter;

use idfit::check::{self, report::Report};
use idfit::host::{Host, HostError};
use idfit::targets::{self, MapOptions, TargetError};
use idfit::transport::{self, ImageReference, Selection, TransportError};

use args::{CheckArgs, Cli, Command, Format, MapArgs};

/// Exit status when the image passes.
pub(crate) const PASS: u8 = 0;
/// Exit status when the image would fail.
const FINDINGS: u8 = 1;
/// Exit status on any error.
const ERROR: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.output.quiet, cli.output.verbose);
    let outcome = match &cli.command {
        Command::Check(args) => run_check(args, cli.output.quiet),
        Command::Fix(args) => fix::run(args, cli.output.quiet),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) if is_broken_pipe(error.as_ref()) => ExitCode::from(PASS),
        Err(error) => {
            print_error(error.as_ref());
            ExitCode::from(ERROR)
        }
    }
}

fn init_logging(quiet: bool, verbose: u8) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("idfit={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .without_time()
        .init();
}

fn run_check(args: &CheckArgs, quiet: bool) -> Result<u8, Box<dyn Error + Send + Sync>> {
    let reference = ImageReference::parse(&args.image)?;
    let targets = targets::targets(args.maps.runtime.profile(), &map_options(&args.maps))?;
    let selection = Selection {
        platform: args.maps.platform.clone(),
    };
    let images = transport::open(&reference, &selection)?.images;
    let verify = if args.no_verify {
        check::Verify::Skip
    } else {
        check::Verify::Digests
    };
    let bar = progress::Bar::new(quiet);
    idfit::progress::Progress::begin(&bar, images.iter().map(check::total_bytes).sum());
    let reports = images
        .iter()
        .map(|image| check::check(image, &targets, verify, &bar))
        .collect::<Result<Vec<_>, _>>();
    idfit::progress::Progress::end(&bar);
    let report = Report::new(
        args.image.clone(),
        args.maps.runtime.profile().name().to_owned(),
        reports?,
    );
    print_report(&report, args)?;
    Ok(if report.passes() { PASS } else { FINDINGS })
}

pub(crate) fn map_options(args: &MapArgs) -> MapOptions {
    MapOptions {
        uid_map: args.uid_map.clone(),
        gid_map: args.gid_map.clone(),
        subuid_user: args.subuid_user.clone(),
        host: Host::new(&args.root),
    }
}

fn print_report(report: &Report, args: &CheckArgs) -> io::Result<()> {
    let document = match args.format {
        Format::Text => {
            let mut out = io::BufWriter::new(anstream::stdout().lock());
            text::write(&mut out, report, args.all)?;
            return out.flush();
        }
        Format::Json => serde_json::to_value(report)?,
        Format::Sarif => sarif::to_value(report),
    };
    // JSON has no colour to strip: it goes to stdout as it is.
    let mut out = io::BufWriter::new(io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, &document)?;
    writeln!(out)?;
    out.flush()
}

fn is_broken_pipe(error: &(dyn Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return io.kind() == io::ErrorKind::BrokenPipe;
        }
        current = error.source();
    }
    false
}

/// `error: …`, each cause on a `Caused by:` line, then a `hint:` where one helps.
fn print_error(error: &(dyn Error + 'static)) {
    const RED: Style = AnsiColor::Red.on_default().bold();
    const CYAN: Style = AnsiColor::Cyan.on_default().bold();
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{RED}error{RED:#}: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = writeln!(err, "  Caused by: {cause}");
        source = cause.source();
    }
    if let Some(hint) = hint(error) {
        let _ = writeln!(err, "{CYAN}hint{CYAN:#}: {hint}");
    }
}

/// The hint of whichever of idfit's error types the error is.
fn hint(error: &(dyn Error + 'static)) -> Option<String> {
    if let Some(error) = error.downcast_ref::<TransportError>() {
        error.hint()
    } else if let Some(error) = error.downcast_ref::<check::CheckError>() {
        error.hint()
    } else if let Some(error) = error.downcast_ref::<idfit::fix::FixError>() {
        error.hint()
    } else if let Some(error) = error.downcast_ref::<TargetError>() {
        error.hint()
    } else {
        error.downcast_ref::<HostError>().and_then(HostError::hint)
    }
}
