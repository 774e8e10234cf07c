//! Reading layer tarballs as the container runtimes read them.
//!
//! Layers are POSIX tar archives in any of the dialects real writers produce: ustar, PAX
//! (Go, Docker, BuildKit), GNU (GNU tar, with base-256 numbers and long-name entries), old V7
//! and star. [`Reader`] streams [`Entry`] values out of any of them.

pub mod entry;
pub mod header;
pub mod pax;
pub mod reader;
pub mod rewrite;

pub use entry::{Entry, EntryKind, Id, IdSource, clean_path};
pub use header::{BLOCK_SIZE, HeaderBlock};
pub use reader::{Reader, Seekable, Skip, Streamed, TarError};
