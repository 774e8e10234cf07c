//! The image model: what a layout on disk or in a registry resolves to, independent of where
//! it came from.

pub mod compress;
pub mod digest;
pub mod spec;

pub use digest::{Digest, HashingReader, HashingWriter};
pub use spec::{Compression, Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform};
