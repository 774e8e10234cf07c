//! The real runtimes the differential test loads images into, found through the variables
//! `scripts/runtimes.sh env` prints:
//!
//! - `IDFIT_DOCKER_OVERLAY2_HOST` and `IDFIT_DOCKER_VFS_HOST`: `dockerd --userns-remap`
//!   sockets, one per storage driver, because the drivers extract layers with different code;
//! - `IDFIT_ROOTLESS_USER`: a user whose rootless Podman runs `podman load`, started through
//!   `runuser` (so the test must run as root);
//! - `IDFIT_PODMAN_ROOTFUL_STORAGE_CONF`: the storage.conf of a rootful Podman store whose
//!   `remap-uids`/`remap-gids` shift every layer it writes (containers-storage.conf(5)),
//!   with the containers.conf to use beside it. Only the differential test loads into it.
//!
//! Each load is followed by removing whatever it created, so cases do not see each other.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const OVERLAY2_VAR: &str = "IDFIT_DOCKER_OVERLAY2_HOST";
const VFS_VAR: &str = "IDFIT_DOCKER_VFS_HOST";
const ROOTLESS_VAR: &str = "IDFIT_ROOTLESS_USER";
const PODMAN_ROOTFUL_VAR: &str = "IDFIT_PODMAN_ROOTFUL_STORAGE_CONF";
/// The user `dockerd --userns-remap=default` creates and takes its ranges from.
const DOCKER_REMAP_USER: &str = "dockremap";

/// A runtime under test, named as idfit's `--runtime` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Runtime {
    DockerOverlay2,
    DockerVfs,
    Rootless,
    PodmanRootful,
}

impl Runtime {
    /// The runtimes every real-runtime test loads into.
    pub const ALL: [Runtime; 3] = [
        Runtime::DockerOverlay2,
        Runtime::DockerVfs,
        Runtime::Rootless,
    ];

    /// [`ALL`](Self::ALL) and rootful Podman, which the differential test and the fix
    /// corpus test load into; the fix tests that run containers use [`ALL`](Self::ALL).
    pub const DIFFERENTIAL: [Runtime; 4] = [
        Runtime::DockerOverlay2,
        Runtime::DockerVfs,
        Runtime::Rootless,
        Runtime::PodmanRootful,
    ];

    pub fn idfit_name(self) -> &'static str {
        match self {
            Runtime::DockerOverlay2 => "docker",
            Runtime::DockerVfs => "docker-vfs",
            Runtime::Rootless => "rootless",
            Runtime::PodmanRootful => "podman",
        }
    }

    fn variable(self) -> &'static str {
        match self {
            Runtime::DockerOverlay2 => OVERLAY2_VAR,
            Runtime::DockerVfs => VFS_VAR,
            Runtime::Rootless => ROOTLESS_VAR,
            Runtime::PodmanRootful => PODMAN_ROOTFUL_VAR,
        }
    }
}

/// What a runtime did with one image.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub loaded: bool,
    pub stderr: String,
}

/// A rootless user and the namespace map its Podman gets.
#[derive(Debug, Clone)]
pub struct RootlessUser {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// Rootful Podman's own store: its storage.conf, the containers.conf beside it, and the map
/// the store applies to every layer it writes.
#[derive(Debug, Clone)]
pub struct RootfulStore {
    storage_conf: PathBuf,
    containers_conf: PathBuf,
    /// `remap-uids` and `remap-gids`, one `CONTAINER:HOST:SIZE` per entry.
    uid_map: Vec<String>,
    gid_map: Vec<String>,
}

/// The runtimes that were configured, and the id maps to hand idfit for each.
#[derive(Debug, Clone, Default)]
pub struct Runtimes {
    overlay2: Option<String>,
    vfs: Option<String>,
    rootless: Option<RootlessUser>,
    podman_rootful: Option<RootfulStore>,
}

impl Runtimes {
    /// Reads the environment for the differential test, which loads into every runtime of
    /// [`Runtime::DIFFERENTIAL`]. Returns `None` (after saying why) when nothing is
    /// configured outside CI; in CI (`CI=true`) a missing runtime is a failure, because a
    /// skipped differential test would look like a passing one.
    pub fn from_env() -> Option<Runtimes> {
        Runtimes::from_env_among("the runtime differential test", &Runtime::DIFFERENTIAL)
    }

    /// [`from_env`](Self::from_env) for another test, named in the skip note.
    pub fn from_env_for(test: &str) -> Option<Runtimes> {
        Runtimes::from_env_among(test, &Runtime::DIFFERENTIAL)
    }

    fn from_env_among(test: &str, wanted: &[Runtime]) -> Option<Runtimes> {
        let missing: Vec<&str> = wanted
            .iter()
            .map(|r| r.variable())
            .filter(|v| std::env::var_os(v).is_none())
            .collect();
        if !missing.is_empty() && std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI=true but {} not set: run `scripts/runtimes.sh start` and \
                 `eval \"$(scripts/runtimes.sh env)\"` before the tests",
                missing.join(", ")
            );
        }
        if missing.len() == wanted.len() {
            eprintln!(
                "skipping {test}: {} not set (see scripts/runtimes.sh)",
                missing.join(", ")
            );
            return None;
        }
        if !missing.is_empty() {
            eprintln!(
                "{test}: {} not set, those runtimes are skipped",
                missing.join(", ")
            );
        }

        Some(Runtimes {
            overlay2: std::env::var(OVERLAY2_VAR).ok(),
            vfs: std::env::var(VFS_VAR).ok(),
            rootless: std::env::var(ROOTLESS_VAR)
                .ok()
                .map(|name| RootlessUser::look_up(&name)),
            podman_rootful: std::env::var(PODMAN_ROOTFUL_VAR)
                .ok()
                .filter(|_| wanted.contains(&Runtime::PodmanRootful))
                .map(|path| RootfulStore::read(&path)),
        })
    }

    pub fn available(&self) -> Vec<Runtime> {
        let present = |r: &Runtime| match r {
            Runtime::DockerOverlay2 => self.overlay2.is_some(),
            Runtime::DockerVfs => self.vfs.is_some(),
            Runtime::Rootless => self.rootless.is_some(),
            Runtime::PodmanRootful => self.podman_rootful.is_some(),
        };
        Runtime::DIFFERENTIAL.into_iter().filter(present).collect()
    }

    /// Loads the archive at `path`, then removes the image again.
    pub fn load(&self, runtime: Runtime, path: &Path) -> Outcome {
        let (outcome, images) = self.load_kept(runtime, path);
        for image in images {
            self.remove(runtime, &image);
        }
        outcome
    }

    /// Loads the archive at `path` and leaves it loaded: returns what happened and the
    /// references the runtime printed, which the caller must [`remove`](Self::remove).
    pub fn load_kept(&self, runtime: Runtime, path: &Path) -> (Outcome, Vec<String>) {
        let path = path.to_str().expect("temporary paths are UTF-8");
        let output = self.client(runtime, &["load", "-i", path]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let outcome = Outcome {
            loaded: output.status.success(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        };
        (outcome, loaded_images(&stdout))
    }

    /// Runs `docker ARGUMENTS` against the runtime's daemon, or `podman ARGUMENTS` as the
    /// rootless user or on the rootful store.
    pub fn client(&self, runtime: Runtime, arguments: &[&str]) -> Output {
        match runtime {
            Runtime::DockerOverlay2 => docker(self.overlay2.as_deref(), arguments),
            Runtime::DockerVfs => docker(self.vfs.as_deref(), arguments),
            Runtime::Rootless => self.rootless().podman(arguments),
            Runtime::PodmanRootful => self.podman_rootful().podman(arguments),
        }
    }

    pub fn remove(&self, runtime: Runtime, image: &str) {
        let output = self.client(runtime, &["rmi", "-f", image]);
        if !output.status.success() {
            eprintln!(
                "could not remove {image} from {}: {}",
                runtime.idfit_name(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }

    /// The `--uid-map`/`--gid-map` arguments that describe the runtime's namespace.
    pub fn map_arguments(&self, runtime: Runtime) -> Vec<String> {
        let (uid_map, gid_map) = match runtime {
            Runtime::Rootless => self.rootless().namespace_maps(),
            Runtime::PodmanRootful => {
                let store = self.podman_rootful();
                (store.uid_map.clone(), store.gid_map.clone())
            }
            _ => {
                let uid = subordinate_range("/etc/subuid", DOCKER_REMAP_USER);
                let gid = subordinate_range("/etc/subgid", DOCKER_REMAP_USER);
                (vec![format!("0:{uid}")], vec![format!("0:{gid}")])
            }
        };
        let uid = uid_map
            .into_iter()
            .flat_map(|m| ["--uid-map".to_string(), m]);
        let gid = gid_map
            .into_iter()
            .flat_map(|m| ["--gid-map".to_string(), m]);
        uid.chain(gid).collect()
    }

    fn rootless(&self) -> &RootlessUser {
        self.rootless
            .as_ref()
            .expect("rootless runtime is configured")
    }

    fn podman_rootful(&self) -> &RootfulStore {
        self.podman_rootful
            .as_ref()
            .expect("rootful podman is configured")
    }
}

impl RootfulStore {
    fn read(storage_conf: &str) -> RootfulStore {
        let text = fs::read_to_string(storage_conf)
            .unwrap_or_else(|e| panic!("read {storage_conf} from {PODMAN_ROOTFUL_VAR}: {e}"));
        let storage_conf = PathBuf::from(storage_conf);
        RootfulStore {
            containers_conf: storage_conf.with_file_name("containers.conf"),
            uid_map: remap_option(&text, "remap-uids", &storage_conf),
            gid_map: remap_option(&text, "remap-gids", &storage_conf),
            storage_conf,
        }
    }

    /// Both files replace the system ones, so the system store is left alone.
    fn podman(&self, arguments: &[&str]) -> Output {
        Command::new("podman")
            .env("CONTAINERS_STORAGE_CONF", &self.storage_conf)
            .env("CONTAINERS_CONF", &self.containers_conf)
            .args(arguments)
            .output()
            .expect("run podman on the rootful store")
    }
}

/// The `CONTAINER:HOST:SIZE` entries of `key = "0:100000:65536"` in a storage.conf, the
/// form `--uid-map` takes; several would be comma-separated (scripts/runtimes.sh writes one).
fn remap_option(text: &str, key: &str, file: &Path) -> Vec<String> {
    let value = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(name, _)| name.trim() == key)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("{} has no `{key}`", file.display()));
    value.split(',').map(|m| m.trim().to_string()).collect()
}

impl RootlessUser {
    fn look_up(name: &str) -> RootlessUser {
        let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
        let fields: Vec<&str> = passwd
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields[0] == name)
            .unwrap_or_else(|| panic!("user `{name}` from {ROOTLESS_VAR} is not in /etc/passwd"));
        RootlessUser {
            name: name.to_string(),
            uid: fields[2].parse().expect("numeric uid in /etc/passwd"),
            gid: fields[3].parse().expect("numeric gid in /etc/passwd"),
            home: fields[5].to_string(),
        }
    }

    /// Rootless Podman's namespace: the user's own uid and primary gid become 0 and the
    /// subordinate ranges follow from 1 (what `podman info` shows as `idMappings`).
    fn namespace_maps(&self) -> (Vec<String>, Vec<String>) {
        let uid = subordinate_range("/etc/subuid", &self.name);
        let gid = subordinate_range("/etc/subgid", &self.name);
        (
            vec![format!("0:{}:1", self.uid), format!("1:{uid}")],
            vec![format!("0:{}:1", self.gid), format!("1:{gid}")],
        )
    }

    fn podman(&self, arguments: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", &self.name, "--", "env", "-i"])
            .arg(format!("HOME={}", self.home))
            .arg(format!("USER={}", self.name))
            .arg(format!("XDG_RUNTIME_DIR=/run/user/{}", self.uid))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .arg("podman")
            .args(arguments)
            .output()
            .expect("run podman through runuser")
    }
}

fn docker(host: Option<&str>, arguments: &[&str]) -> Output {
    let host = host.expect("docker runtime is configured");
    Command::new("docker")
        .args(["-H", host])
        .args(arguments)
        .output()
        .expect("run the docker client")
}

/// `docker load` prints `Loaded image: <ref>` or `Loaded image ID: <id>`, podman
/// `Loaded image: <ref>` or `Loaded image(s): <ref>,<ref>`.
fn loaded_images(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(label, _)| label.starts_with("Loaded image"))
        .flat_map(|(_, images)| images.split(','))
        .map(|image| image.trim().to_string())
        .filter(|image| !image.is_empty())
        .collect()
}

/// `start:count` of the first line for `user` in a subordinate id file.
fn subordinate_range(file: &str, user: &str) -> String {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("read {file}: {e}"));
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| *name == user)
        .map(|(_, range)| range.trim().to_string())
        .unwrap_or_else(|| panic!("{file} has no line for `{user}`"))
}
