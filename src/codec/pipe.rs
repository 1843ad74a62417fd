//! Copying a stream while hashing it, with reading and writing on one thread and hashing on
//! another: a copy that is verified costs about what the slower of the two costs, not their
//! sum. Blob copies (into a layout, into an archive) go through it.
//!
//! Memory is a few fixed chunks, recycled, whatever the stream's length; a stream no longer
//! than one chunk is copied on the calling thread, so small blobs cost no thread.

use std::io::{self, Read};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;

use crate::spec::digest::{Algorithm, Digest, Hasher};

/// The size of the chunks read and written.
pub const CHUNK: usize = 1024 * 1024;
/// How many chunks may wait to be written.
const AHEAD: usize = 4;

/// What was copied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Copied {
    /// The digest of the bytes read.
    pub digest: Digest,
    /// How many bytes were read (and written).
    pub size: u64,
}

/// Why a copy stopped.
#[derive(Debug)]
pub enum PipeError {
    /// Reading failed.
    Read(io::Error),
    /// Writing failed.
    Write(io::Error),
}

/// Copies at most `limit` bytes of `reader` to `write`, hashing them with `algorithm`; `size`
/// is how long the stream is expected to be (when it is at most one chunk the copy stays on
/// this thread). Stops at the end of the stream or at `limit`, whichever comes first.
pub fn copy_hashed(
    reader: &mut (dyn Read + Send),
    algorithm: Algorithm,
    size: u64,
    limit: u64,
    write: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<Copied, PipeError> {
    let mut reader = reader.take(limit);
    if size <= CHUNK as u64 {
        let mut hasher = Hasher::new(algorithm);
        let mut buf = vec![0u8; (size as usize + 1).min(CHUNK)];
        let mut total = 0u64;
        loop {
            let n = fill(&mut reader, &mut buf).map_err(PipeError::Read)?;
            if n == 0 {
                return Ok(Copied {
                    digest: hasher.finish(),
                    size: total,
                });
            }
            hasher.update(&buf[..n]);
            write(&buf[..n]).map_err(PipeError::Write)?;
            total += n as u64;
        }
    }
    // This thread reads and writes (the I/O), the other hashes: on two cores a verified copy
    // then costs about what the slower of the two costs. Chunks are shared, read-only, and
    // come back from the hasher to be read into again.
    std::thread::scope(|scope| {
        let (to_hash, chunks) = sync_channel::<(Arc<Vec<u8>>, usize)>(AHEAD);
        let (give_back, returned) = channel::<Arc<Vec<u8>>>();
        let hashing = scope.spawn(move || {
            let mut hasher = Hasher::new(algorithm);
            for (chunk, n) in chunks.iter() {
                hasher.update(&chunk[..n]);
                if give_back.send(chunk).is_err() {
                    break;
                }
            }
            hasher.finish()
        });
        let mut total = 0u64;
        let mut spare: Vec<Arc<Vec<u8>>> = Vec::new();
        let mut in_flight = 0usize;
        let outcome = loop {
            // A chunk the hasher is done with, when there is one (or when too many are out).
            let mut buf = loop {
                if let Some(mut chunk) = spare.pop() {
                    if let Some(owned) = Arc::get_mut(&mut chunk) {
                        break std::mem::take(owned);
                    }
                }
                let back = if in_flight > AHEAD {
                    returned.recv().ok()
                } else {
                    returned.try_recv().ok()
                };
                match back {
                    Some(chunk) => {
                        in_flight -= 1;
                        spare.push(chunk);
                    }
                    None => break vec![0u8; CHUNK],
                }
            };
            buf.resize(CHUNK, 0);
            let n = match fill(&mut reader, &mut buf) {
                Ok(n) => n,
                Err(e) => break Err(PipeError::Read(e)),
            };
            if n == 0 {
                break Ok(());
            }
            total += n as u64;
            let chunk = Arc::new(buf);
            if to_hash.send((chunk.clone(), n)).is_err() {
                break Err(PipeError::Read(io::Error::other(
                    "the hashing thread stopped",
                )));
            }
            in_flight += 1;
            if let Err(e) = write(&chunk[..n]) {
                break Err(PipeError::Write(e));
            }
        };
        drop(to_hash);
        let digest = hashing.join();
        outcome?;
        let digest =
            digest.map_err(|_| PipeError::Read(io::Error::other("the hashing thread panicked")))?;
        Ok(Copied {
            digest,
            size: total,
        })
    })
}

/// Reads until `buf` is full or the stream ends; returns how much was read.
pub(crate) fn fill(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match stream.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_hashes_small_and_large_streams_alike() {
        for len in [0usize, 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut out = Vec::new();
            let copied = copy_hashed(
                &mut &data[..],
                Algorithm::Sha256,
                len as u64,
                u64::MAX,
                &mut |b| {
                    out.extend_from_slice(b);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(copied.digest, Digest::sha256_of(&data), "{len}");
            assert_eq!(copied.size, len as u64);
            assert_eq!(out, data);
            // A size hint that is wrong changes nothing but the thread used.
            let copied = copy_hashed(&mut &data[..], Algorithm::Sha256, 0, u64::MAX, &mut |_| {
                Ok(())
            })
            .unwrap();
            assert_eq!(copied.size, len as u64);
        }
    }

    #[test]
    fn the_limit_bounds_what_is_read_and_errors_say_which_side() {
        let data = vec![1u8; 3 * CHUNK];
        let copied =
            copy_hashed(&mut &data[..], Algorithm::Sha256, 10, 11, &mut |_| Ok(())).unwrap();
        assert_eq!(copied.size, 11);
        let failed = copy_hashed(
            &mut &data[..],
            Algorithm::Sha256,
            data.len() as u64,
            u64::MAX,
            &mut |_| Err(io::Error::other("disk full")),
        );
        assert!(matches!(failed, Err(PipeError::Write(_))));
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("bad sector"))
            }
        }
        for size in [1, 10 * CHUNK as u64] {
            let failed = copy_hashed(&mut Broken, Algorithm::Sha256, size, u64::MAX, &mut |_| {
                Ok(())
            });
            assert!(matches!(failed, Err(PipeError::Read(_))), "{size}");
        }
    }
}
