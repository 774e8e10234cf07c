//! The layer rewriter against archives written by real tools: GNU tar in each of its formats,
//! bsdtar, and Python's tarfile. An empty table must give the input back byte for byte; a real
//! table may change only header blocks (and PAX header content), and GNU tar must read the
//! result with the new owners.
//!
//! Building the inputs needs root (to chown files to 1000000) and the tools; under CI=true a
//! missing tool fails the test.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{chown, symlink};
use std::path::Path;
use std::process::Command;

use idfit::tar::rewrite::{self, Edits};
use idfit::tar::{Reader, Streamed};

const HIGH: u32 = 1_000_000;
const NEW: i64 = 60001;

fn tool_available(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").as_deref() == Ok("true") {
        panic!("`{name}` is needed to build test archives; scripts/runtimes.sh installs it");
    }
    found
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// A tree with every entry kind, a long name, a hard link and a high owner.
fn build_tree(root: &Path) {
    // Longer than the 100-byte name field, but splittable into ustar's prefix and name.
    let long = root.join(format!("dir/{}/{}", "d".repeat(60), "n".repeat(60)));
    fs::create_dir_all(long.parent().unwrap()).unwrap();
    fs::write(&long, b"long name").unwrap();
    fs::write(root.join("dir/high"), vec![b'x'; 1500]).unwrap();
    fs::write(root.join("dir/low"), b"low").unwrap();
    fs::hard_link(root.join("dir/high"), root.join("dir/high-link")).unwrap();
    // A file with a hole, which GNU tar (with --sparse) and bsdtar store as sparse.
    let sparse = fs::File::create(root.join("dir/sparse")).unwrap();
    sparse.set_len(1 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"data after a hole", 600 << 10).unwrap();
    symlink("high", root.join("dir/high-symlink")).unwrap();
    let paths = [
        long.clone(),
        long.parent().unwrap().to_owned(),
        root.join("dir/high"),
        root.join("dir/high-symlink"),
        root.join("dir/sparse"),
        root.join("dir"),
    ];
    for path in paths {
        std::os::unix::fs::lchown(&path, Some(HIGH), Some(HIGH)).unwrap();
    }
    chown(root.join("dir/low"), Some(5), Some(5)).unwrap();
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `(name, archive bytes)` for each writer and format available.
fn archives(root: &Path, out: &Path) -> Vec<(String, Vec<u8>)> {
    let root_arg = root.to_str().unwrap();
    let mut writers: Vec<(String, &str, Vec<String>)> = Vec::new();
    for format in ["gnu", "oldgnu", "posix", "ustar"] {
        let args = [
            "--numeric-owner",
            "--sort=name",
            "-C",
            root_arg,
            "-cf",
            "{out}",
            "dir",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--format={format}"));
        // ustar has no way to store a sparse file.
        if format != "ustar" {
            args.push("--sparse".into());
        }
        writers.push((format!("gnu-tar-{format}.tar"), "tar", args));
    }
    // bsdtar's ustar writer drops entries whose ids need more than six octal digits, so it
    // cannot carry the case.
    for format in ["pax", "gnutar"] {
        let args = [
            "--numeric-owner",
            "--format",
            format,
            "-C",
            root_arg,
            "-cf",
            "{out}",
            "dir",
        ];
        writers.push((
            format!("bsdtar-{format}.tar"),
            "bsdtar",
            args.iter().map(|a| a.to_string()).collect(),
        ));
    }
    for format in ["PAX_FORMAT", "GNU_FORMAT"] {
        let script = format!(
            "import tarfile,sys,os\nos.chdir(sys.argv[2])\nwith tarfile.open(sys.argv[1],'w',format=tarfile.{format}) as t: t.add('dir')"
        );
        let args = vec![
            "-c".to_owned(),
            script,
            "{out}".to_owned(),
            root_arg.to_owned(),
        ];
        writers.push((format!("python-{format}.tar"), "python3", args));
    }
    writers
        .into_iter()
        .filter(|(_, program, _)| tool_available(program))
        .map(|(name, program, args)| {
            let path = out.join(&name);
            let args = args.iter().map(|a| {
                if a == "{out}" {
                    path.to_str().unwrap().to_owned()
                } else {
                    a.clone()
                }
            });
            run(Command::new(program).args(args));
            let bytes = fs::read(&path).unwrap();
            (name, bytes)
        })
        .collect()
}

fn rewrite_with(input: &[u8], uids: &BTreeMap<i64, i64>, gids: &BTreeMap<i64, i64>) -> Vec<u8> {
    let keep = |_: &str, _: &[u8]| None;
    let edits = Edits {
        uids,
        gids,
        content_paths: &[],
        content: &keep,
    };
    let mut output = Vec::new();
    rewrite::rewrite(input, &mut output, &edits).unwrap();
    output
}

fn owners(archive: &[u8]) -> Vec<(String, i64, i64)> {
    let mut reader = Reader::new(Streamed(archive));
    let mut owners = Vec::new();
    while let Some(entry) = reader.next_entry().unwrap() {
        owners.push((entry.path, entry.uid.value, entry.gid.value));
    }
    owners
}

#[test]
fn real_archives_change_only_where_ownership_lives() {
    if !is_root() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "this test must run as root in CI"
        );
        eprintln!("skipped: building archives owned by {HIGH} needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (root, out) = (work.path().join("tree"), work.path().join("out"));
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&out).unwrap();
    build_tree(&root);
    let table = BTreeMap::from([(i64::from(HIGH), NEW)]);
    let made = archives(&root, &out);
    assert!(!made.is_empty(), "no archive writer found");

    for (name, input) in made {
        let unchanged = rewrite_with(&input, &BTreeMap::new(), &BTreeMap::new());
        assert!(unchanged == input, "{name}: an empty table changed bytes");

        let output = rewrite_with(&input, &table, &table);
        let before = owners(&input);
        let after = owners(&output);
        assert!(
            before.iter().any(|(path, ..)| path == "/dir/sparse"),
            "{name}: the sparse file is not read under its real name: {before:?}"
        );
        assert_eq!(before.len(), after.len(), "{name}");
        for ((path, uid, gid), (new_path, new_uid, new_gid)) in before.iter().zip(&after) {
            assert_eq!(path, new_path, "{name}");
            let expect = |id: &i64| if *id == i64::from(HIGH) { NEW } else { *id };
            assert_eq!(
                (expect(uid), expect(gid)),
                (*new_uid, *new_gid),
                "{name}: {path}"
            );
        }
        assert_only_headers_differ(&name, &input, &output);
        assert_gnu_tar_reads(&name, &output, &out);
    }
}

/// Equal lengths (a PAX record shrinking by two digits stays inside its block): every block
/// that differs must parse as a header or be a PAX header's data.
fn assert_only_headers_differ(name: &str, input: &[u8], output: &[u8]) {
    assert_eq!(input.len(), output.len(), "{name}: length changed");
    let headers = header_blocks(input);
    for (index, (a, b)) in input.chunks(512).zip(output.chunks(512)).enumerate() {
        if a != b {
            assert!(
                headers.contains(&index),
                "{name}: block {index} is content but changed"
            );
        }
    }
}

/// Indexes of header blocks and PAX data blocks.
fn header_blocks(archive: &[u8]) -> Vec<usize> {
    let mut reader = Reader::new(Streamed(archive)).keeping_raw();
    let mut blocks = Vec::new();
    while let Some(entry) = reader.next_entry().unwrap() {
        for record in reader.take_raw().records {
            let first = record.offset as usize / 512;
            blocks.extend(first..first + 1 + record.padded.len() / 512);
        }
        blocks.push(entry.header_offset as usize / 512);
    }
    blocks
}

fn assert_gnu_tar_reads(name: &str, output: &[u8], dir: &Path) {
    let path = dir.join(format!("rewritten-{name}"));
    fs::write(&path, output).unwrap();
    let listing = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        listing.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(!text.contains(&HIGH.to_string()), "{name}:\n{text}");
    assert!(text.contains(&format!("{NEW}/{NEW}")), "{name}:\n{text}");
}
