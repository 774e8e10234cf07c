//! Compressing rewritten layers the way they were compressed, with every core, and with output
//! that depends only on the input and the level, never on the number of threads.
//!
//! Gzip is written as pigz writes it: the input is cut into fixed blocks that are deflated in
//! parallel, each primed with the 32 KiB before it so the ratio barely suffers, and ended
//! with a sync flush so the raw deflate streams concatenate into one (RFC 1951 §3.2.3, RFC
//! 1952). Zstd uses libzstd's own workers, whose output the library guarantees to be the
//! same for any number of workers from one upwards.

use std::io::{self, Write};

use flate2::{Compress, Compression as Level, Crc, FlushCompress};
use rayon::prelude::*;

/// Uncompressed bytes per independently deflated block.
const GZIP_BLOCK: usize = 128 << 10;
/// Blocks compressed in one parallel batch; bounds memory to a few MiB.
const GZIP_BATCH: usize = 32;
/// The deflate window: how much of the previous block primes the next.
const WINDOW: usize = 32 << 10;

/// Gzip level used when rewriting: Go's `gzip.DefaultCompression`, which Docker, BuildKit and
/// containerd use for layers.
pub const GZIP_LEVEL: u32 = 6;
/// Uncompressed bytes per zstd worker job.
const ZSTD_JOB_SIZE: u32 = 1 << 20;

/// Zstd level used when rewriting: the level containerd and BuildKit use by default.
pub const ZSTD_LEVEL: i32 = 3;

/// A gzip stream compressed in parallel blocks.
pub struct ParallelGzip<W: Write> {
    inner: W,
    level: u32,
    /// Input not yet compressed: up to a batch of blocks.
    pending: Vec<u8>,
    /// The last window of input already compressed, to prime the next block.
    dictionary: Vec<u8>,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(inner: W, level: u32) -> Self {
        ParallelGzip {
            inner,
            level,
            pending: Vec::with_capacity(GZIP_BLOCK * GZIP_BATCH),
            dictionary: Vec::new(),
            crc: Crc::new(),
            header_written: false,
        }
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.compress_pending(true)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.inner.write_all(&trailer)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn write_header(&mut self) -> io::Result<()> {
        // No name, no mtime, unknown OS: the header Go's compress/gzip writes.
        const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        self.header_written = true;
        self.inner.write_all(&HEADER)
    }

    fn compress_pending(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            self.write_header()?;
        }
        let input = std::mem::take(&mut self.pending);
        let blocks: Vec<&[u8]> = if input.is_empty() {
            vec![&[][..]]
        } else {
            input.chunks(GZIP_BLOCK).collect()
        };
        let count = blocks.len();
        let compressed: Vec<(Vec<u8>, Crc)> = blocks
            .par_iter()
            .enumerate()
            .map(|(i, block)| {
                let primer = if i == 0 {
                    &self.dictionary[..]
                } else {
                    window_before(blocks[i - 1])
                };
                deflate_block(block, primer, self.level, last && i + 1 == count)
            })
            .collect::<io::Result<_>>()?;
        for (bytes, crc) in &compressed {
            self.inner.write_all(bytes)?;
            self.crc.combine(crc);
        }
        if let Some(last_block) = blocks.last() {
            self.dictionary = window_before(last_block).to_vec();
        }
        self.pending = input;
        self.pending.clear();
        Ok(())
    }
}

/// The last window of a block.
fn window_before(block: &[u8]) -> &[u8] {
    &block[block.len().saturating_sub(WINDOW)..]
}

/// Deflates one block as a raw deflate fragment: a sync flush ends every block but the last,
/// which carries the final-block bit.
fn deflate_block(
    block: &[u8],
    primer: &[u8],
    level: u32,
    last: bool,
) -> io::Result<(Vec<u8>, Crc)> {
    let mut crc = Crc::new();
    crc.update(block);
    let mut deflate = Compress::new(Level::new(level), false);
    if !primer.is_empty() {
        deflate.set_dictionary(primer).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(block.len() / 2 + 1024);
    loop {
        let consumed = deflate.total_in() as usize;
        deflate
            .compress_vec(&block[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let done = deflate.total_in() as usize == block.len() && out.len() < out.capacity();
        if done {
            return Ok((out, crc));
        }
        out.reserve(out.capacity().max(4096));
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = GZIP_BLOCK * GZIP_BATCH - self.pending.len();
        let taken = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..taken]);
        if self.pending.len() == GZIP_BLOCK * GZIP_BATCH {
            self.compress_pending(false)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A zstd encoder with libzstd's worker threads, as many as rayon's pool has.
pub fn zstd_encoder<W: Write>(inner: W) -> io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut encoder = zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?;
    let workers = rayon::current_num_threads().max(1) as u32;
    encoder.multithread(workers)?;
    // libzstd's default job is several times the window (8 MiB and more at this level), and
    // each worker holds input and output for one; a fixed smaller job keeps a rewrite under
    // a few tens of MiB. The output still does not depend on the number of workers.
    encoder.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))?;
    // Each job starts from the whole window before it, as a single stream would, so short
    // jobs cost almost no ratio.
    encoder.set_parameter(zstd::stream::raw::CParameter::OverlapSizeLog(9))?;
    encoder.include_checksum(false)?;
    Ok(encoder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut writer = ParallelGzip::new(Vec::new(), GZIP_LEVEL);
        for chunk in data.chunks(70_000) {
            writer.write_all(chunk).unwrap();
        }
        writer.finish().unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 7919) % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn gzip_round_trips_at_block_boundaries() {
        for len in [
            0,
            1,
            GZIP_BLOCK - 1,
            GZIP_BLOCK,
            GZIP_BLOCK * GZIP_BATCH + 17,
            9_000_000,
        ] {
            let data = sample(len);
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&gzip(&data)[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert!(decoded == data, "length {len}");
        }
    }

    #[test]
    fn gzip_output_does_not_depend_on_threads() {
        let data = sample(5_000_000);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| gzip(&data));
        let four = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(|| gzip(&data));
        assert!(one == four);
    }

    #[test]
    fn zstd_round_trips() {
        let data = sample(3_000_000);
        let mut encoder = zstd_encoder(Vec::new()).unwrap();
        encoder.write_all(&data).unwrap();
        let compressed = encoder.finish().unwrap();
        assert_eq!(zstd::decode_all(&compressed[..]).unwrap(), data);
    }
}
