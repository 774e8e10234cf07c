//! What `idfit fix` output must do on the real runtimes: load where the source did not, run
//! with the owners the printed id table promises, keep a multi-platform index whole, and
//! succeed where the usual advice (`chown` in a new layer) does not, while changing nothing
//! in a layer but the ownership in its headers and the account files.
//!
//! The runtimes are those of `tests/runtime_differential.rs`: `scripts/runtimes.sh start`,
//! then export what `scripts/runtimes.sh env` prints. Without them the tests are skipped,
//! except under `CI=true`, where that is a failure. Must run as root.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use support::archive::{self, Compression, Format, PlatformImage};
use support::bench::{
    ACCOUNT_FILES, Bench, layer_diffs, layer_summary, on_each, only_image, reason, table_text,
    verdict,
};
use support::blocks::LayerDiff;
use support::cases::{self, Case};
use support::idfit;
use support::inspect;
use support::runtimes::{Outcome, Runtime};
use support::tar::{Layer, dir, file, file_with, symlink};

/// An id outside every map under test.
const B: i64 = 1_000_000;
/// Where the run test finds a static busybox (Debian's busybox-static).
const BUSYBOX: &str = "/bin/busybox";

// --- 1. the corpus ------------------------------------------------------------------------

/// Corpus cases `idfit fix` refuses on purpose, and why. None so far: every case that fails
/// somewhere fails for an id idfit can replace, or for a format Docker 20.10 cannot read.
const REFUSED: &[(&str, &str)] = &[];

/// One corpus case that fails somewhere, and what became of it.
struct CorpusRow {
    case: &'static str,
    /// idfit's verdict on the source per runtime (the differential test holds it to the
    /// runtimes' own), or `n/a` where Docker 20.10 cannot read the format at all.
    source: Vec<(Runtime, &'static str)>,
    fix: String,
    /// The fixed archive, once written.
    output: Option<PathBuf>,
    /// The runtimes that can read the output: a zstd layer stays zstd, which Docker
    /// 20.10 cannot decompress.
    readers: Vec<Runtime>,
    fixed: Vec<(Runtime, Outcome)>,
    check: String,
    layers: String,
    problems: Vec<String>,
}

#[test]
fn every_failing_corpus_case_loads_everywhere_after_fix() {
    let Some(bench) = Bench::new() else {
        return;
    };
    let corpus = [
        cases::ownership(),
        cases::encodings(),
        cases::kinds(),
        cases::xattrs(),
        cases::layering(),
        cases::compression(),
    ];
    let mut rows: Vec<CorpusRow> = corpus
        .iter()
        .flatten()
        .filter_map(|case| fix_case(&bench, case))
        .collect();
    load_fixed(&bench, &mut rows);

    let table = render_corpus(&bench.loaders, &rows);
    println!("corpus cases that fail somewhere, fixed with --runtime strict:\n{table}");
    let problems: Vec<String> = rows.iter().flat_map(|r| r.problems.clone()).collect();
    assert!(
        problems.is_empty(),
        "idfit fix output is wrong:\n{table}\n{}",
        problems.join("\n")
    );
}

/// Writes the case and, if some runtime fails it, fixes it. `None` when every runtime loads
/// it as built.
fn fix_case(bench: &Bench, case: &Case) -> Option<CorpusRow> {
    let source = bench.path(&format!("{}.tar", case.name));
    let bytes = archive::build(case.format, &case.tag(), &case.layers, case.compression);
    fs::write(&source, bytes).expect("write the case's archive");
    let reference = format!("{}:{}", case.format.transport(), source.display());
    let verdicts: Vec<(Runtime, &'static str)> = bench
        .loaders
        .iter()
        .map(|&runtime| (runtime, source_verdict(bench, case, runtime, &reference)))
        .collect();
    if verdicts.iter().all(|(_, v)| *v == "loads") {
        return None;
    }

    let mut row = CorpusRow {
        case: case.name,
        source: verdicts,
        fix: String::new(),
        output: None,
        readers: match case.compression {
            Compression::Zstd => bench.zstd_readers(),
            _ => bench.loaders.clone(),
        },
        fixed: Vec::new(),
        check: "-".into(),
        layers: "-".into(),
        problems: Vec::new(),
    };
    fix_and_inspect(bench, case, &source, &mut row);
    Some(row)
}

/// Fixes the case into a docker archive, then checks the output and compares its layers
/// with the source's, filling in `row`.
fn fix_and_inspect(bench: &Bench, case: &Case, source: &Path, row: &mut CorpusRow) {
    let reference = format!("{}:{}", case.format.transport(), source.display());
    let output = bench.path(&format!("{}-fixed.tar", case.name));
    let destination = format!("docker-archive:{}", output.display());
    let fixed = bench.fix(&reference, &destination, &output);
    let refusal = REFUSED.iter().find(|(name, _)| *name == case.name);
    match (fixed.exit_code, refusal) {
        (Some(0), _) => {}
        (_, Some((_, why))) => {
            row.fix = format!("refused: {why}");
            return;
        }
        (code, None) => {
            row.fix = format!("exit {code:?}");
            let problem = format!(
                "{}: `idfit fix` exited {code:?}: {}",
                case.name, fixed.stderr
            );
            row.problems.push(problem);
            return;
        }
    }

    row.fix = table_text(&fixed);
    row.output = Some(output.clone());
    let (code, report) = bench.check(&destination);
    row.check = code.map_or("none".into(), |c| c.to_string());
    if code != Some(0) {
        let problem = format!(
            "{}: `idfit check` of the output exited {code:?}:\n{report}",
            case.name
        );
        row.problems.push(problem);
    }
    match layer_summary(source, &output) {
        Ok(summary) => row.layers = summary,
        Err(e) => {
            row.layers = "CHANGED".into();
            row.problems.push(format!("{}: {e}", case.name));
        }
    }
}

fn source_verdict(bench: &Bench, case: &Case, runtime: Runtime, reference: &str) -> &'static str {
    if case.not_compared.contains(&runtime) {
        return "n/a";
    }
    idfit::check(&bench.runtimes, runtime, reference).verdict()
}

/// Loads every fixed image on every runtime that can read it, all runtimes at once and
/// many images per `load`: the images go together in merged archives, and a runtime that
/// refuses one loads its images alone, so the table names the ones it refuses.
fn load_fixed(bench: &Bench, rows: &mut [CorpusRow]) {
    let loads = on_each(&bench.loaders, |runtime| {
        let outputs: Vec<PathBuf> = rows
            .iter()
            .filter(|row| row.readers.contains(&runtime))
            .filter_map(|row| row.output.clone())
            .collect();
        bench.load_merged(runtime, &outputs)
    });

    for (runtime, outcomes) in loads {
        for (output, outcome) in outcomes {
            let row = rows
                .iter_mut()
                .find(|row| row.output.as_ref() == Some(&output))
                .expect("every output belongs to a row");
            if !outcome.loaded {
                let why = reason(&outcome.stderr);
                let problem = format!(
                    "{}: the fixed image fails on {}: {why}",
                    row.case,
                    runtime.idfit_name()
                );
                row.problems.push(problem);
            }
            row.fixed.push((runtime, outcome));
        }
    }
}

fn render_corpus(available: &[Runtime], rows: &[CorpusRow]) -> String {
    let names: Vec<&str> = available.iter().map(|r| r.idfit_name()).collect();
    let case_width = rows.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    let fix_width = rows
        .iter()
        .map(|r| r.fix.chars().count())
        .max()
        .unwrap_or(3);
    let cells = |verdicts: Vec<&str>| {
        verdicts
            .iter()
            .map(|v| format!("{v:11}"))
            .collect::<String>()
    };
    let source = |row: &CorpusRow| {
        let find = |r: &Runtime| {
            row.source
                .iter()
                .find(|(s, _)| s == r)
                .map_or("-", |(_, v)| *v)
        };
        cells(available.iter().map(find).collect())
    };
    let fixed = |row: &CorpusRow| {
        let find = |r: &Runtime| verdict(row.fixed.iter().find(|(f, _)| f == r).map(|(_, o)| o));
        cells(available.iter().map(find).collect())
    };

    let mut out = format!(
        "{:case_width$}  {:33}  {:fix_width$}  {:33}  check  layers of the output\n",
        "case",
        format!("idfit on source: {}", names.join(" ")),
        "id table",
        format!("fixed image: {}", names.join(" ")),
    );
    for row in rows {
        out += &format!(
            "{:case_width$}  {:33}  {:fix_width$}  {:33}  {:5}  {}\n",
            row.case,
            source(row),
            row.fix,
            fixed(row),
            row.check,
            row.layers,
        );
    }
    out += "\nn/a: Docker 20.10 reads no OCI layout and no zstd layer, so the source is not \
            compared there; -: the fixed image keeps its zstd layer and is loaded on podman only\n";
    out
}

// --- 2. running the fixed image -------------------------------------------------------------

/// Printed inside the container: owners of /app's entries, the user's ids, a listing for
/// the reader, and whether the file deleted in a later layer came back.
const PROBE: &str = "busybox stat -c '%n %u:%g' /app /app/data /app/mixed /app/root; \
                     echo \"id $(busybox id -u):$(busybox id -g)\"; \
                     busybox ls -ln /app; \
                     if busybox test -e /scratch; then echo 'scratch present'; fi";

#[test]
fn fixed_image_runs_with_the_owners_of_the_printed_table() {
    let Some(bench) = Bench::new() else {
        return;
    };
    let busybox = fs::read(BUSYBOX).unwrap_or_else(|e| {
        panic!("{BUSYBOX}: {e}; install busybox-static (scripts/runtimes.sh start does)")
    });
    let source = bench.path("busybox-app.tar");
    let config = json!({ "User": "app", "Cmd": ["/bin/sh"] });
    let tag = "idfit-fix/busybox-app:latest";
    let bytes = archive::build_with_config(
        Format::DockerArchive,
        tag,
        &busybox_layers(&busybox),
        Compression::Gzip,
        config,
    );
    fs::write(&source, bytes).expect("write the busybox image");

    let (fixed, output) = bench.fix_to_archive(&source, "busybox-app-fixed.tar");

    // The documented default: each out-of-range id its own unused id from 60001 up. The
    // interim owner 1000001, deleted by the whiteout in layer 2, still gets one, because
    // layer 1 must unpack before the whiteout can apply.
    let uids = fixed.table("uids");
    let gids = fixed.table("gids");
    assert_eq!(uids, [(B, 60001), (B + 1, 60002)].into(), "uid table");
    assert_eq!(gids, [(B, 60001)].into(), "gid table");
    let expected = expected_owners(uids[&B], gids[&B]);

    let runs = on_each(&bench.available, |runtime| {
        run_probe(&bench, runtime, &output)
    });
    let mut report = format!("id table: {}\n", table_text(&fixed));
    for (runtime, seen) in &runs {
        report += &format!(
            "\n{} sees:\n{}\n",
            runtime.idfit_name(),
            seen.as_deref().unwrap_or_else(|e| e)
        );
    }
    println!("{report}");
    for (runtime, seen) in &runs {
        let seen = seen
            .as_deref()
            .unwrap_or_else(|e| panic!("{}: {e}\n{report}", runtime.idfit_name()));
        assert_eq!(
            owners_seen(seen),
            expected,
            "owners seen on {}\n{report}",
            runtime.idfit_name()
        );
        assert!(
            !seen.contains("scratch present"),
            "the whiteout did not apply on {}",
            runtime.idfit_name()
        );
    }
}

/// What [`PROBE`] must print for `app` remapped to `user:group`: the table's ids where
/// the source had 1000000, in-range owners as they were.
fn expected_owners(user: i64, group: i64) -> Vec<(String, String)> {
    let app = format!("{user}:{group}");
    [
        ("/app", app.clone()),
        ("/app/data", app.clone()),
        ("/app/mixed", format!("5:{group}")),
        ("/app/root", "0:0".to_string()),
        ("id", app),
    ]
    .map(|(name, ids)| (name.to_string(), ids))
    .to_vec()
}

/// The `name uid:gid` lines of [`PROBE`]'s output.
fn owners_seen(output: &str) -> Vec<(String, String)> {
    let owner_line =
        |(name, ids): &(&str, &str)| (name.starts_with('/') || *name == "id") && !ids.contains(' ');
    output
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(owner_line)
        .map(|(name, ids)| (name.to_string(), ids.to_string()))
        .collect()
}

/// Three layers: a busybox base with `app` declared as 1000000 and /app owned by it; a
/// build step leaving `/scratch` owned by 1000001; a step deleting it.
fn busybox_layers(busybox: &[u8]) -> Vec<Layer> {
    let passwd = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000000:1000000:app:/app:/bin/sh\n";
    let group = b"root:x:0:\napp:x:1000000:\n";
    let base = Layer::of([
        dir("bin/").into(),
        file_with("bin/busybox", busybox).mode(0o755).into(),
        symlink("bin/sh", "busybox").into(),
        dir("etc/").into(),
        file_with("etc/passwd", passwd).into(),
        file_with("etc/group", group).into(),
        dir("tmp/").mode(0o1777).into(),
        dir("app/").owner(B, B).into(),
        file_with("app/data", b"written by app\n")
            .owner(B, B)
            .into(),
        file("app/mixed").owner(5, B).into(),
        file("app/root").into(),
    ]);
    let interim = Layer::of([file_with("scratch", b"build output\n")
        .owner(B + 1, 0)
        .into()]);
    let cleanup = Layer::of([file(".wh.scratch").into()]);
    vec![base, interim, cleanup]
}

/// Loads the fixed image, runs [`PROBE`] in it as its configured user, removes it.
fn run_probe(bench: &Bench, runtime: Runtime, archive: &Path) -> Result<String, String> {
    let (outcome, images) = bench.runtimes.load_kept(runtime, archive);
    let result = match (outcome.loaded, images.first()) {
        (false, _) => Err(format!("load failed: {}", reason(&outcome.stderr))),
        (true, None) => Err("load printed no image name".to_string()),
        (true, Some(image)) => {
            let arguments = [
                "run",
                "--rm",
                "--network",
                "none",
                image,
                "/bin/busybox",
                "sh",
                "-c",
                PROBE,
            ];
            let run = bench.runtimes.client(runtime, &arguments);
            let stdout = String::from_utf8_lossy(&run.stdout).to_string();
            if run.status.success() {
                Ok(stdout)
            } else {
                Err(format!(
                    "run failed: {}{stdout}",
                    String::from_utf8_lossy(&run.stderr)
                ))
            }
        }
    };
    for image in images {
        bench.runtimes.remove(runtime, &image);
    }
    result
}

// --- 3. a multi-platform index --------------------------------------------------------------

#[test]
fn multi_platform_index_keeps_both_platforms() {
    let Some(bench) = Bench::new() else {
        return;
    };
    let native = native_architecture();
    let other = if native == "arm64" { "amd64" } else { "arm64" };
    let source = bench.path("multi.tar");
    fs::write(&source, multi_platform_archive(native, other)).expect("write the index");
    for (_, outcome) in bench.load(&bench.rootless(), &source) {
        let refused = outcome.stderr.contains("(requested 1000000:0 for /x)");
        assert!(
            refused,
            "podman must refuse the source for /x: {}",
            outcome.stderr
        );
    }

    let output = bench.path("multi-fixed.tar");
    let source_reference = format!("oci-archive:{}", source.display());
    let output_reference = format!("oci-archive:{}", output.display());
    let fixed = bench.fix(&source_reference, &output_reference, &output);
    assert_eq!(
        fixed.exit_code,
        Some(0),
        "idfit fix failed: {}",
        fixed.stderr
    );
    let (code, report) = bench.check(&output_reference);
    assert_eq!(code, Some(0), "idfit check of the output:\n{report}");

    let manifests = same_platforms_new_manifests(&source, &output);
    let rows = load_platforms(&bench, &output, [native, other]);
    let table: String = rows
        .iter()
        .map(|(what, runtime, outcome)| {
            let name = runtime.idfit_name();
            let why = reason(&outcome.stderr);
            format!(
                "{what:24}  {name:10}  {:5}  {why}\n",
                verdict(Some(outcome))
            )
        })
        .collect();
    println!("multi-platform index, manifests before and after:\n{manifests}\n{table}");
    for (what, runtime, outcome) in &rows {
        let name = runtime.idfit_name();
        assert!(outcome.loaded, "{what} on {name}:\n{table}");
    }
}

/// An index of two platforms, each with one layer holding `x` owned by 1000000. The two
/// layers differ in content but not in size or position, as layers built from the same
/// steps for two platforms often do (every uncompressed layer is a multiple of 512 bytes).
fn multi_platform_archive(native: &'static str, other: &'static str) -> Vec<u8> {
    let platform = |architecture: &'static str| PlatformImage {
        architecture,
        layers: vec![Layer::of([
            file_with("x", architecture.as_bytes()).owner(B, 0).into(),
            file_with("y", b"kept").owner(5, 5).into(),
        ])],
    };
    archive::oci_multi_platform(
        "idfit-fix/multi:latest",
        &[platform(native), platform(other)],
    )
}

/// Asserts the fixed index lists the same platforms, each under a new manifest whose layer
/// was rewritten in ownership only; returns them as lines `platform  old → new`.
fn same_platforms_new_manifests(source: &Path, output: &Path) -> String {
    let before = platform_manifests(source);
    let after = platform_manifests(output);
    let platforms =
        |list: &[(String, String)]| list.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        platforms(&after),
        platforms(&before),
        "platforms of the fixed index"
    );
    for ((platform, old), (_, new)) in before.iter().zip(&after) {
        assert_ne!(old, new, "{platform} kept its manifest");
    }

    for (old, new) in inspect::images(source).iter().zip(inspect::images(output)) {
        let diffs = layer_diffs(old, &new).unwrap_or_else(|e| panic!("{}: {e}", old.platform));
        let rewritten = diffs.iter().all(Option::is_some);
        assert!(rewritten, "{}: the offending layer was kept", old.platform);
    }
    let line = |((platform, old), (_, new)): (&(String, String), &(String, String))| {
        format!("{platform:12}  {old:.19} → {new:.19}\n")
    };
    before.iter().zip(&after).map(line).collect()
}

/// Podman loads the OCI archive and picks the native platform. Docker 20.10 reads no OCI
/// layout, so skopeo hands it each platform as a docker archive.
fn load_platforms(
    bench: &Bench,
    output: &Path,
    architectures: [&str; 2],
) -> Vec<(String, Runtime, Outcome)> {
    let mut rows = Vec::new();
    for (runtime, outcome) in bench.load(&bench.rootless(), output) {
        rows.push((
            format!("oci-archive {}", architectures[0]),
            runtime,
            outcome,
        ));
    }
    for architecture in architectures {
        let converted = bench.path(&format!("multi-fixed-{architecture}.tar"));
        skopeo_to_docker_archive(output, architecture, &converted);
        for (runtime, outcome) in bench.load(&bench.dockers(), &converted) {
            rows.push((format!("skopeo'd {architecture}"), runtime, outcome));
        }
    }
    rows
}

/// `(os/architecture, manifest digest)` of every image the archive's indexes list.
fn platform_manifests(path: &Path) -> Vec<(String, String)> {
    inspect::oci_indexes(path)
        .iter()
        .flat_map(|index| index["manifests"].as_array().cloned().unwrap_or_default())
        .filter(|d| !d["platform"].is_null())
        .map(|d| {
            let platform = format!(
                "{}/{}",
                d["platform"]["os"].as_str().unwrap_or("?"),
                d["platform"]["architecture"].as_str().unwrap_or("?")
            );
            (platform, d["digest"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

fn native_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no OCI architecture name for {other}"),
    }
}

fn skopeo_to_docker_archive(source: &Path, architecture: &str, destination: &Path) {
    let source = format!("oci-archive:{}", source.display());
    let output = Command::new("skopeo")
        .args(["--override-arch", architecture, "copy", "--quiet", &source])
        .arg(format!(
            "docker-archive:{}:idfit-fix/multi-{architecture}:latest",
            destination.display()
        ))
        .output()
        .expect("run skopeo (scripts/runtimes.sh installs it)");
    assert!(
        output.status.success(),
        "skopeo copy {source} ({architecture}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// --- 4. chown in a new layer ----------------------------------------------------------------

#[test]
fn chown_in_a_new_layer_still_fails_where_fix_loads() {
    let Some(bench) = Bench::new() else {
        return;
    };
    let source = bench.path("chowned.tar");
    let bytes = archive::build(
        Format::DockerArchive,
        "idfit-fix/chowned:latest",
        &chowned_layers(),
        Compression::None,
    );
    fs::write(&source, bytes).expect("write the chowned image");

    let (fixed, output) = bench.fix_to_archive(&source, "chowned-fixed.tar");
    assert_eq!(
        fixed.rewritten_layers(),
        [true, true, false, false],
        "the accounts layer and the app layer are rewritten, the others kept"
    );

    let before = bench.load(&bench.available, &source);
    let after = bench.load(&bench.available, &output);
    let diffs = layer_diffs(&only_image(&source), &only_image(&output));
    let table = render_chowned(&before, &after, &diffs);
    println!("chown in a new layer, then idfit fix:\n{table}");

    for (runtime, outcome) in &before {
        assert!(
            !outcome.loaded,
            "{} loaded the chowned image:\n{table}",
            runtime.idfit_name()
        );
        if *runtime != Runtime::Rootless {
            assert!(
                outcome
                    .stderr
                    .contains("Container ID 1000000 cannot be mapped to a host ID"),
                "{}",
                outcome.stderr
            );
        }
    }
    for (runtime, outcome) in &after {
        assert!(
            outcome.loaded,
            "{} refused the fixed image:\n{table}",
            runtime.idfit_name()
        );
    }
    let diffs = diffs.unwrap_or_else(|e| panic!("{e}\n{table}"));
    assert!(
        diffs[2].is_none() && diffs[3].is_none(),
        "kept layers must be the same blobs"
    );
    let accounts = diffs[0].as_ref().expect("layer 0 rewritten");
    assert_eq!(
        accounts.content, ACCOUNT_FILES,
        "layer 0: only the account files' content changes"
    );
    let app = diffs[1].as_ref().expect("layer 1 rewritten");
    assert!(
        app.content.is_empty(),
        "layer 1: no content changes, only headers"
    );
}

/// The usual advice applied: the base declares `app` as 1000000, the next layer unpacks
/// files owned by it, an unrelated layer follows, and a last layer re-owns the files to
/// 0:0 — `RUN chown -R 0:0 /app` — which copies them up rather than changing layer 1.
fn chowned_layers() -> Vec<Layer> {
    let passwd = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000000:1000000::/app:/bin/sh\n";
    let group = b"root:x:0:\napp:x:1000000:\n";
    let accounts = Layer::of([
        dir("etc/").into(),
        file_with("etc/passwd", passwd).into(),
        file_with("etc/group", group).into(),
    ]);
    let app = |uid, gid| {
        Layer::of([
            dir("app/").owner(uid, gid).into(),
            file_with("app/server.js", &[b'j'; 1500])
                .owner(uid, gid)
                .into(),
            file_with("app/package.json", b"{}\n")
                .owner(uid, gid)
                .into(),
        ])
    };
    let unrelated = Layer::of([file_with("etc/motd", b"hello\n").owner(5, 5).into()]);
    vec![accounts, app(B, B), unrelated, app(0, 0)]
}

fn render_chowned(
    before: &[(Runtime, Outcome)],
    after: &[(Runtime, Outcome)],
    diffs: &Result<Vec<Option<LayerDiff>>, String>,
) -> String {
    let mut out = format!(
        "{:10}  {:6}  {:6}  source's error\n",
        "runtime", "source", "fixed"
    );
    for ((runtime, old), (_, new)) in before.iter().zip(after) {
        out += &format!(
            "{:10}  {:6}  {:6}  {}\n",
            runtime.idfit_name(),
            verdict(Some(old)),
            verdict(Some(new)),
            reason(&old.stderr)
        );
    }
    match diffs {
        Ok(diffs) => {
            for (index, diff) in diffs.iter().enumerate() {
                out += &match diff {
                    None => format!("layer {index}: same blob\n"),
                    Some(d) => format!(
                        "layer {index}: rewritten; {} of {} blocks differ in headers; \
                         content changed: {}\n",
                        d.header_blocks,
                        d.blocks,
                        d.content.join(" ")
                    ),
                };
            }
        }
        Err(e) => out += &format!("layers: {e}\n"),
    }
    out
}
