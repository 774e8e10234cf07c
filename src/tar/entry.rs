//! A logical tar entry: one header with the PAX and GNU long-name records that came before it
//! already applied, as Go's `tar.Reader.Next` returns it.

use std::borrow::Cow;

use serde::Serialize;

use super::header::{Encoding, Format};
use super::pax::Record;

/// Where the value of a uid or gid came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdSource {
    /// The ustar octal header field.
    Octal,
    /// The header field in GNU base-256.
    Base256,
    /// A PAX `uid` or `gid` record, which overrides the header field.
    Pax,
}

impl From<Encoding> for IdSource {
    fn from(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Octal => IdSource::Octal,
            Encoding::Base256 => IdSource::Base256,
        }
    }
}

/// A numeric owner id as the runtime sees it: Go stores ids in a signed 64-bit `int`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id {
    pub value: i64,
    pub source: IdSource,
}

/// What an entry is, with the overlay whiteout conventions of the OCI image-spec
/// (layer.md, "Whiteouts") recognised by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    #[serde(rename = "dir")]
    Directory,
    Symlink,
    #[serde(rename = "hardlink")]
    HardLink,
    #[serde(rename = "char")]
    CharDevice,
    #[serde(rename = "block")]
    BlockDevice,
    Fifo,
    /// `.wh.NAME`: deletes `NAME` from the layers below.
    Whiteout,
    /// `.wh..wh..opq`: hides everything the layers below put in its directory.
    #[serde(rename = "opaque")]
    OpaqueWhiteout,
    /// Any other type flag (contiguous files, GNU volume headers, vendor types).
    Other,
}

/// Basename prefix that marks a whiteout.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Basename of an opaque directory marker.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Prefix of AUFS metadata entries at the layer root, which Docker's naive differ skips.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";

/// One entry of a layer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Offset in the uncompressed layer of the first block belonging to this entry: its PAX
    /// or GNU long-name header when it has one, else its own header.
    pub start: u64,
    /// Offset of the entry's own header block.
    pub header_offset: u64,
    pub format: Format,
    /// The type flag, with the legacy `'\0'` already turned into `'0'` or `'5'`.
    pub typeflag: u8,
    /// The name after PAX `path` and GNU long names are applied, as raw bytes.
    pub name: Vec<u8>,
    pub link_name: Vec<u8>,
    pub uid: Id,
    pub gid: Id,
    /// Bytes of content following the header (zero for header-only types).
    pub data_size: u64,
    /// Extended attributes from `SCHILY.xattr.*` records.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// The PAX extended header that applied to this entry, with its offset.
    pub pax: Option<(u64, Vec<Record>)>,
    /// The name cleaned like Go's `filepath.Clean` and made absolute: `/etc/passwd`, or `/`
    /// for the layer root. Set by [`Entry::resolve`].
    pub path: String,
    /// What the entry is. Set by [`Entry::resolve`].
    pub kind: EntryKind,
    /// Whether Go's `filepath.Clean` turns the name into `.`: the entry that describes the
    /// layer's root directory itself (`./` in most layers; `/` does not count). Set by
    /// [`Entry::resolve`].
    pub is_dot: bool,
    /// Whether the content is a sparse file's map and data (old GNU `S`, or one of GNU
    /// tar's PAX sparse formats) rather than the file's bytes as they are.
    pub sparse: bool,
}

impl Entry {
    /// Computes [`Entry::path`] and [`Entry::kind`] from the name and type flag, once the
    /// name is final.
    pub fn resolve(&mut self) {
        let name = lossy(&self.name);
        self.is_dot = cleans_to_dot(&name);
        self.path = clean_path(&name);
        let basename = self.path.rsplit('/').next().unwrap_or_default();
        // Runtimes tell a whiteout by its name alone: a directory or link named `.wh.x`
        // deletes `x` like a file of that name does.
        self.kind = match basename {
            OPAQUE_MARKER => EntryKind::OpaqueWhiteout,
            name if name.starts_with(WHITEOUT_PREFIX) => EntryKind::Whiteout,
            _ => kind_of(self.typeflag),
        };
    }
}

/// Bytes as text, invalid UTF-8 replaced; names are nearly always valid, and checking that
/// first is much cheaper than the replacing walk.
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Whether Go's `filepath.Clean(name)` is `.`.
fn cleans_to_dot(name: &str) -> bool {
    if name.starts_with('/') {
        return false;
    }
    // Without `..` only a name of dots and slashes cleans to `.`.
    if !name.contains("..") {
        return name.bytes().all(|b| b == b'.' || b == b'/');
    }
    let mut depth = 0usize;
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return false,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    depth == 0
}

/// The kind a type flag names, for entries not named as whiteouts.
fn kind_of(typeflag: u8) -> EntryKind {
    match typeflag {
        b'0' => EntryKind::File,
        b'1' => EntryKind::HardLink,
        b'2' => EntryKind::Symlink,
        b'3' => EntryKind::CharDevice,
        b'4' => EntryKind::BlockDevice,
        b'5' => EntryKind::Directory,
        b'6' => EntryKind::Fifo,
        _ => EntryKind::Other,
    }
}

/// Lexical path cleaning as Go's `path.Clean`, rooted: `.`, empty and `..` elements resolved,
/// so `./a//b/../c/` becomes `/a/c` and the root entry `./` becomes `/`.
pub fn clean_path(name: &str) -> String {
    let relative = name.strip_prefix("./").unwrap_or(name);
    if is_clean(relative) {
        let relative = relative.strip_suffix('/').unwrap_or(relative);
        let mut path = String::with_capacity(relative.len() + 1);
        path.push('/');
        path.push_str(relative);
        return path;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Whether `name` cleans to itself with a leading slash and without a trailing one: no empty,
/// `.` or `..` elements, which is how almost every writer names entries.
fn is_clean(name: &str) -> bool {
    let name = name.strip_suffix('/').unwrap_or(name);
    if name.is_empty() || name.starts_with('/') || name.contains("//") {
        return false;
    }
    // Only a component starting with a dot can be `.` or `..`.
    if !name.starts_with('.') && !name.contains("/.") {
        return true;
    }
    name.split('/').all(|part| part != "." && part != "..")
}

/// The path a whiteout deletes: `/dir/.wh.name` → `/dir/name`.
pub fn whiteout_target(path: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let name = name.strip_prefix(WHITEOUT_PREFIX).unwrap_or(name);
    format!("{dir}/{name}")
}

/// The directory holding `path` (`/` for top-level entries).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_go() {
        let cases = [
            ("./", "/"),
            (".", "/"),
            ("", "/"),
            ("a/b/", "/a/b"),
            ("./a//b/../c", "/a/c"),
            ("/../x", "/x"),
            ("../x", "/x"),
            ("a/.wh..wh..opq", "/a/.wh..wh..opq"),
            ("./a/b/", "/a/b"),
            ("a/./b", "/a/b"),
            ("a/b/.", "/a/b"),
            ("a/..", "/"),
        ];
        for (name, cleaned) in cases {
            assert_eq!(clean_path(name), cleaned, "{name:?}");
        }
    }

    #[test]
    fn root_entries_as_go_cleans_them() {
        for (name, dot) in [
            ("./", true),
            (".", true),
            ("", true),
            ("a/..", true),
            ("/", false),
            ("..", false),
            ("a", false),
            (".wh..wh..opq", false),
        ] {
            assert_eq!(cleans_to_dot(name), dot, "{name:?}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/"), "/");
    }
}
