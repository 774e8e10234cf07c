//! Rewriting one layer blob: decompress, patch owners, recompress the same way, and hash both
//! forms, in one streaming pass with bounded memory.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::accounts;
use crate::check::scan::{GROUP, PASSWD};
use crate::image::compress::{GZIP_LEVEL, ParallelGzip, zstd_encoder};
use crate::image::{Compression, Digest, HashingWriter};
use crate::progress::{Progress, ProgressReader};
use crate::tar::rewrite::{self, Edits, RewriteStats};
use crate::transport::LayerSource;

use super::FixError;
use super::table::IdTable;

/// A rewritten layer, staged in a file.
#[derive(Debug, Clone)]
pub struct RewrittenLayer {
    pub staged: PathBuf,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub compression: Compression,
    pub stats: RewriteStats,
}

/// Rewrites layer `index`, whose blob has `source_digest`, with `table`, staging the result
/// in `dir`.
pub fn rewrite_layer(
    index: usize,
    source_digest: &Digest,
    layer: &LayerSource,
    table: &IdTable,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<RewrittenLayer, FixError> {
    // Named after the source blob, which identifies the job: two platforms may have
    // different layers at the same index and of the same size.
    let staged = dir.join(source_digest.hex());
    let file = File::create(&staged).map_err(|source| FixError::Stage {
        path: staged.clone(),
        source,
    })?;
    let started = Instant::now();
    let compression = Compression::sniff(&layer.blob.head(4)?);
    let input =
        BufReader::with_capacity(1 << 17, ProgressReader::new(layer.blob.reader(), progress));
    let output = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let layer_error = |source| FixError::Layer { index, source };

    let content =
        |path: &str, old: &[u8]| accounts::rewrite(path == PASSWD, old, &table.uids, &table.gids);
    let edits = Edits {
        uids: &table.uids,
        gids: &table.gids,
        content_paths: &[PASSWD, GROUP],
        content: &content,
    };
    let (output, diff_id, stats) = match compression {
        Compression::None => {
            let mut tar = HashingWriter::new(output);
            let stats = rewrite::rewrite(input, &mut tar, &edits).map_err(layer_error)?;
            let (output, diff_id, _) = tar.finish();
            (output, diff_id, stats)
        }
        Compression::Gzip => {
            let decoder = flate2::read::MultiGzDecoder::new(input);
            let mut tar = HashingWriter::new(ParallelGzip::new(output, GZIP_LEVEL));
            let stats = rewrite::rewrite(decoder, &mut tar, &edits).map_err(layer_error)?;
            let (gzip, diff_id, _) = tar.finish();
            (
                gzip.finish().map_err(|e| stage_error(&staged, e))?,
                diff_id,
                stats,
            )
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| stage_error(&staged, e))?;
            let encoder = zstd_encoder(output).map_err(|e| stage_error(&staged, e))?;
            let mut tar = HashingWriter::new(encoder);
            let stats = rewrite::rewrite(decoder, &mut tar, &edits).map_err(layer_error)?;
            let (encoder, diff_id, _) = tar.finish();
            (
                encoder.finish().map_err(|e| stage_error(&staged, e))?,
                diff_id,
                stats,
            )
        }
    };
    let (mut buffered, digest, size) = output.finish();
    buffered.flush().map_err(|e| stage_error(&staged, e))?;
    tracing::info!(
        "layer {index} {} rewritten as {}: {} owners changed, {:.0?}",
        source_digest.short(),
        digest.short(),
        stats.owners,
        started.elapsed()
    );
    Ok(RewrittenLayer {
        staged,
        digest,
        size,
        diff_id,
        compression,
        stats,
    })
}

fn stage_error(path: &Path, source: io::Error) -> FixError {
    FixError::Stage {
        path: path.to_owned(),
        source,
    }
}
