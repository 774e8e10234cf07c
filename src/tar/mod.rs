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

/// Small archives built byte by byte for the unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::header::{BLOCK_SIZE, HeaderBlock, encode_numeric, field};
    use super::pax;

    #[derive(Default)]
    pub struct Builder {
        bytes: Vec<u8>,
    }

    impl Builder {
        /// A ustar header with octal fields (base-256 where they do not fit).
        pub fn header(name: &str, typeflag: u8, size: usize, uid: i64) -> HeaderBlock {
            let mut block = HeaderBlock([0; BLOCK_SIZE]);
            block.0[..name.len()].copy_from_slice(name.as_bytes());
            block.0[field::MODE].copy_from_slice(b"0000644\0");
            block.0[field::UID].copy_from_slice(&encode_numeric(uid, 8));
            block.0[field::GID].copy_from_slice(&encode_numeric(uid, 8));
            block.0[field::SIZE].copy_from_slice(&encode_numeric(size as i64, 12));
            block.0[field::MTIME].copy_from_slice(b"00000000000\0");
            block.0[field::TYPEFLAG] = typeflag;
            block.0[field::MAGIC].copy_from_slice(b"ustar\0");
            block.0[field::VERSION].copy_from_slice(b"00");
            block.set_checksum();
            block
        }

        fn padded(&mut self, data: &[u8]) {
            self.bytes.extend_from_slice(data);
            self.bytes
                .resize(self.bytes.len().next_multiple_of(BLOCK_SIZE), 0);
        }

        /// A PAX extended header for the next entry.
        pub fn pax(&mut self, records: &[(&str, &[u8])]) {
            let data: Vec<u8> = records
                .iter()
                .flat_map(|(k, v)| pax::format_record(k, v))
                .collect();
            self.bytes
                .extend_from_slice(&Self::header("PaxHeaders/x", b'x', data.len(), 0).0);
            self.padded(&data);
        }

        /// An entry owned by `uid:uid` with `data` as content.
        pub fn file(&mut self, name: &str, typeflag: u8, data: &[u8], uid: i64) {
            self.bytes
                .extend_from_slice(&Self::header(name, typeflag, data.len(), uid).0);
            self.padded(data);
        }

        /// The archive with its two end blocks.
        pub fn finish(mut self) -> Vec<u8> {
            self.bytes.extend_from_slice(&[0; 2 * BLOCK_SIZE]);
            self.bytes
        }
    }
}
