//! Content digests (OCI image-spec, descriptor.md "Digests") and hashing while streaming.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A `sha256:<64 lowercase hex>` digest. Other algorithms are refused when parsed: no image
/// in use is addressed by them, and a registered algorithm idfit cannot verify would let a
/// corrupt blob through.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

/// A digest string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("`{0}` is not a digest of the form sha256:<64 hex digits>")]
    Malformed(String),
    #[error("digest algorithm `{0}` is not supported, only sha256")]
    Algorithm(String),
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hash(Sha256::digest(bytes).into())
    }

    /// The digest of the concatenated `chunks`.
    pub fn of_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Digest {
        let mut hasher = Sha256::new();
        for chunk in chunks {
            hasher.update(chunk);
        }
        Digest::from_hash(hasher.finalize().into())
    }

    fn from_hash(hash: [u8; 32]) -> Digest {
        Digest {
            hex: hex::encode(hash),
        }
    }

    /// The hex part, as used in `blobs/sha256/<hex>` paths.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// `sha256:` plus the first twelve hex digits, as `docker images` abbreviates.
    pub fn short(&self) -> String {
        format!("sha256:{}", &self.hex[..12])
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (algorithm, hex) = text
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(text.to_owned()))?;
        if algorithm != "sha256" {
            let valid = !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
            return Err(if valid {
                DigestError::Algorithm(algorithm.to_owned())
            } else {
                DigestError::Malformed(text.to_owned())
            });
        }
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if hex.len() != 64 || !hex.bytes().all(lower_hex) {
            return Err(DigestError::Malformed(text.to_owned()));
        }
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Hashes everything read through it, or, when made with [`HashingReader::counting`], only
/// counts it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Option<Sha256>,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Some(Sha256::new()),
            count: 0,
        }
    }

    /// A reader that hashes only if `hash` is set.
    pub fn counting(inner: R, hash: bool) -> Self {
        HashingReader {
            inner,
            hasher: hash.then(Sha256::new),
            count: 0,
        }
    }

    /// Reads what is left, then returns the digest (if hashing) and the byte count of
    /// everything read.
    pub fn finish(mut self) -> io::Result<(Option<Digest>, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let digest = self
            .hasher
            .map(|hasher| Digest::from_hash(hasher.finalize().into()));
        Ok((digest, self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..read]);
        }
        self.count += read as u64;
        Ok(read)
    }
}

/// Hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: io::Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest::from_hash(self.hasher.finalize().into()),
            self.count,
        )
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_hashes() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
        assert_eq!(EMPTY.parse::<Digest>().unwrap(), Digest::of(b""));
        let reader = HashingReader::new(&b"abc"[..]);
        assert_eq!(reader.finish().unwrap(), (Some(Digest::of(b"abc")), 3));
        let counting = HashingReader::counting(&b"abc"[..], false);
        assert_eq!(counting.finish().unwrap(), (None, 3));
    }

    #[test]
    fn refuses_malformed_digests() {
        let cases = [
            ("sha256:abc", DigestError::Malformed("sha256:abc".into())),
            (
                &EMPTY.to_uppercase(),
                DigestError::Malformed(EMPTY.to_uppercase()),
            ),
            ("sha512:00", DigestError::Algorithm("sha512".into())),
            ("nocolon", DigestError::Malformed("nocolon".into())),
        ];
        for (text, error) in cases {
            assert_eq!(text.parse::<Digest>(), Err(error));
        }
    }
}
