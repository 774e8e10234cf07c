//! Whether an entry is still there in the image a container sees.
//!
//! Layers stack as the OCI image-spec describes (layer.md, "Applying Changesets"): a later
//! entry at the same path replaces an earlier one, a whiteout deletes a path and everything
//! under it, an opaque marker hides what lower layers put in its directory, and a non-directory
//! replacing a directory takes its contents with it. Runtimes refuse an entry whatever happens
//! to it later, so this only tells the user why `find` inside the container cannot see it.

use serde::Serialize;

use super::scan::LayerPaths;

/// The fate of an entry in the final filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Visibility {
    Visible,
    /// A whiteout in `layer_index` deletes it or a directory above it.
    Deleted {
        layer_index: usize,
    },
    /// An opaque marker in `layer_index` hides the directory holding it.
    HiddenByOpaque {
        layer_index: usize,
    },
    /// An entry at the same path in `layer_index` (possibly its own layer, later in the tar)
    /// takes its place.
    Replaced {
        layer_index: usize,
    },
}

impl Visibility {
    pub fn is_visible(self) -> bool {
        self == Visibility::Visible
    }
}

/// The visibility of the entry at `path`, number `ordinal` of layer `layer_index`.
pub fn visibility(
    layers: &[&LayerPaths],
    layer_index: usize,
    path: &str,
    ordinal: u64,
) -> Visibility {
    if layers[layer_index]
        .last(path)
        .is_some_and(|(last, _)| last > ordinal)
    {
        return Visibility::Replaced { layer_index };
    }
    let ancestors = ancestors(path);
    for (above, paths) in layers.iter().enumerate().skip(layer_index + 1) {
        if paths.deletes(path) || ancestors.iter().any(|dir| paths.deletes(dir)) {
            return Visibility::Deleted { layer_index: above };
        }
        if ancestors.iter().any(|dir| paths.makes_opaque(dir)) {
            return Visibility::HiddenByOpaque { layer_index: above };
        }
        if ancestors
            .iter()
            .any(|dir| paths.last(dir).is_some_and(|(_, is_dir)| !is_dir))
        {
            return Visibility::Deleted { layer_index: above };
        }
        if paths.last(path).is_some() {
            return Visibility::Replaced { layer_index: above };
        }
    }
    Visibility::Visible
}

/// `/a/b/c` → `/a/b`, `/a`, `/`.
fn ancestors(path: &str) -> Vec<&str> {
    let mut dirs = Vec::new();
    let mut current = path;
    while current != "/" {
        current = crate::tar::entry::parent(current);
        dirs.push(current);
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::EntryKind;

    fn layer(entries: &[(&str, EntryKind)]) -> LayerPaths {
        let mut paths = LayerPaths::default();
        for (ordinal, (path, kind)) in entries.iter().enumerate() {
            paths.record(path, *kind, ordinal as u64);
        }
        paths
    }

    #[test]
    fn states() {
        use EntryKind::*;
        let base = layer(&[
            ("/app", Directory),
            ("/app/x", File),
            ("/tmp/y", File),
            ("/tmp/y", File),
        ]);
        let deletes = layer(&[("/app/.wh.x", Whiteout)]);
        let opaque = layer(&[("/tmp/.wh..wh..opq", OpaqueWhiteout)]);
        let replaces_dir = layer(&[("/app", File)]);
        let layers = [&base, &deletes, &opaque, &replaces_dir];

        assert_eq!(
            visibility(&layers, 0, "/tmp/y", 2),
            Visibility::Replaced { layer_index: 0 }
        );
        assert_eq!(
            visibility(&layers, 0, "/tmp/y", 3),
            Visibility::HiddenByOpaque { layer_index: 2 }
        );
        assert_eq!(
            visibility(&layers, 0, "/app/x", 1),
            Visibility::Deleted { layer_index: 1 }
        );
        assert_eq!(
            visibility(&layers, 0, "/app", 0),
            Visibility::Replaced { layer_index: 3 }
        );
        assert_eq!(
            visibility(&layers[..1], 0, "/app/x", 1),
            Visibility::Visible
        );
        assert_eq!(
            visibility(&[&base, &replaces_dir], 0, "/app/x", 1),
            Visibility::Deleted { layer_index: 1 }
        );
    }
}
