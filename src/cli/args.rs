//! The command line, as clap definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use idfit::check::Profile;
use idfit::fix::table::Policy;
use idfit::idmap::IdMapping;
use idfit::image::Platform;
use idfit::runtime::Runtime;

const EXIT_STATUS: &str = "\
Exit status:
  0  the image loads (and its user can run) under the chosen runtime
  1  it would not: findings were reported
  2  an error: bad arguments, an unreadable or corrupt image, a host file that cannot be used

Images:
  docker-archive:PATH[:NAME:TAG]   a `docker save` / `podman save` archive
  oci:DIR[:TAG]                    an OCI image layout directory
  oci-archive:PATH[:TAG]           an OCI image layout in a tar file
  PATH                             any of the above, detected";

/// Find and fix image layer entries that a user-namespace runtime cannot map.
#[derive(Debug, Parser)]
#[command(name = "idfit", version, after_long_help = EXIT_STATUS)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print nothing but the report's data; no progress, no warnings
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log what idfit does to stderr; repeat for more (RUST_LOG overrides)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report every layer entry a runtime cannot map, without extracting anything
    #[command(after_long_help = EXIT_STATUS)]
    Check(CheckArgs),
    /// Rewrite only the offending layers so the image loads under the chosen runtime
    #[command(after_long_help = FIX_EXIT_STATUS)]
    Fix(FixArgs),
}

const FIX_EXIT_STATUS: &str = "\
Exit status:
  0  the fixed image was written (or, with --dry-run, the plan was printed)
  2  an error: nothing was written

Policies:
  remap            each out-of-range id gets its own unused in-range id, and the image's
                   /etc/passwd, /etc/group and config User are rewritten to match (default)
  owner=UID:GID    every out-of-range uid becomes UID and every out-of-range gid GID
  table            only --map-uid/--map-gid apply; an id they miss is an error";

#[derive(Debug, Args)]
pub struct FixArgs {
    /// The image to read; it is never modified
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// Where to write: docker-archive:PATH[:NAME:TAG], oci:DIR[:TAG] or oci-archive:PATH[:TAG]
    #[arg(value_name = "DESTINATION", required_unless_present = "dry_run")]
    pub destination: Option<String>,
    #[command(flatten)]
    pub maps: MapArgs,
    /// How out-of-range ids are replaced: remap, owner=UID:GID or table
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<PolicyArg>,
    /// Replace uid FROM by TO (repeatable)
    #[arg(long = "map-uid", value_name = "FROM=TO")]
    pub map_uid: Vec<IdPair>,
    /// Replace gid FROM by TO (repeatable)
    #[arg(long = "map-gid", value_name = "FROM=TO")]
    pub map_gid: Vec<IdPair>,
    /// Print the plan and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace DESTINATION if it exists
    #[arg(long)]
    pub force: bool,
    /// Output format of the report
    #[arg(long, value_enum, default_value_t = FixFormat::Text)]
    pub format: FixFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FixFormat {
    /// For people
    Text,
    /// The plan and its outcome as JSON
    Json,
}

/// `FROM=TO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPair(pub i64, pub i64);

impl std::str::FromStr for IdPair {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not of the form FROM=TO with numeric ids");
        let (from, to) = text.split_once('=').ok_or_else(bad)?;
        let to: u32 = to.trim().parse().map_err(|_| bad())?;
        Ok(IdPair(
            from.trim().parse().map_err(|_| bad())?,
            i64::from(to),
        ))
    }
}

/// A `--policy` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyArg(pub Policy);

impl std::str::FromStr for PolicyArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not remap, owner=UID:GID or table");
        let policy = match text {
            "remap" => Policy::Remap,
            "table" => Policy::TableOnly,
            _ => {
                let owner = text.strip_prefix("owner=").ok_or_else(bad)?;
                let (uid, gid) = owner.split_once(':').ok_or_else(bad)?;
                let id = |s: &str| s.parse::<u32>().map(i64::from).map_err(|_| bad());
                Policy::Owner {
                    uid: id(uid)?,
                    gid: id(gid)?,
                }
            }
        };
        Ok(PolicyArg(policy))
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The image to read
    #[arg(value_name = "IMAGE")]
    pub image: String,
    #[command(flatten)]
    pub maps: MapArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// List every finding instead of a summary per layer
    #[arg(long)]
    pub all: bool,
    /// Do not hash layer contents to verify their digests (manifests and configs are still
    /// verified)
    #[arg(long)]
    pub no_verify: bool,
}

/// How to choose the runtime and its ID map; shared by every command that checks.
#[derive(Debug, Args)]
pub struct MapArgs {
    /// The runtime whose rules decide; `strict` fails what any of them fails
    #[arg(long, value_enum, default_value_t = RuntimeArg::Strict)]
    pub runtime: RuntimeArg,
    /// A uid range CONTAINER:HOST:SIZE of the namespace (repeatable)
    #[arg(long = "uid-map", value_name = "CONTAINER:HOST:SIZE")]
    pub uid_map: Vec<IdMapping>,
    /// A gid range CONTAINER:HOST:SIZE (repeatable); defaults to the uid ranges
    #[arg(long = "gid-map", value_name = "CONTAINER:HOST:SIZE")]
    pub gid_map: Vec<IdMapping>,
    /// Build the map from this user's lines in /etc/subuid and /etc/subgid
    #[arg(long, value_name = "NAME", conflicts_with_all = ["uid_map", "gid_map"])]
    pub subuid_user: Option<String>,
    /// Read host files (/etc/subuid, /etc/docker/daemon.json) under this directory
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Check only this platform of a multi-platform image
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeArg {
    /// dockerd --userns-remap, overlay2 storage
    Docker,
    /// dockerd --userns-remap, vfs storage
    DockerVfs,
    /// rootful Podman with a remapped range
    Podman,
    /// rootless Podman, Buildah or Docker
    Rootless,
    /// all of the above
    Strict,
}

impl RuntimeArg {
    pub fn profile(self) -> Profile {
        match self {
            RuntimeArg::Docker => Profile::Runtime(Runtime::Docker),
            RuntimeArg::DockerVfs => Profile::Runtime(Runtime::DockerVfs),
            RuntimeArg::Podman => Profile::Runtime(Runtime::Podman),
            RuntimeArg::Rootless => Profile::Runtime(Runtime::Rootless),
            RuntimeArg::Strict => Profile::Strict,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: grouped by layer, summarised
    Text,
    /// The stable schema of docs/json.md
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards
    Sarif,
}
