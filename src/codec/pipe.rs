//! Copying a stream while hashing it, with reading and hashing on one thread and writing on
//! another: a copy that is verified costs about what the slower of the two costs, not their
//! sum. Blob copies (into a layout, into an archive) go through it.
//!
//! Memory is a few fixed chunks, recycled, whatever the stream's length; a stream no longer
//! than one chunk is copied on the calling thread, so small blobs cost no thread.

use std::io::{self, Read};
use std::sync::mpsc::{channel, sync_channel};

use crate::spec::digest::{Algorithm, Digest, Hasher};

/// The size of the chunks read and written.
pub const CHUNK: usize = 1024 * 1024;
/// How many chunks may wait to be written.
const AHEAD: usize = 4;

/// What was copied.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(AHEAD);
        let (free_tx, free_rx) = channel::<Vec<u8>>();
        let reading = scope.spawn(move || -> io::Result<Copied> {
            let mut hasher = Hasher::new(algorithm);
            let mut total = 0u64;
            loop {
                let mut buf = free_rx.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
                let n = fill(&mut reader, &mut buf)?;
                if n == 0 {
                    return Ok(Copied {
                        digest: hasher.finish(),
                        size: total,
                    });
                }
                hasher.update(&buf[..n]);
                total += n as u64;
                if full_tx.send((buf, n)).is_err() {
                    // The writer stopped; its error is the one reported.
                    return Ok(Copied {
                        digest: hasher.finish(),
                        size: total,
                    });
                }
            }
        });
        let mut written = Ok(());
        for (buf, n) in full_rx.iter() {
            if let Err(e) = write(&buf[..n]) {
                written = Err(e);
                break;
            }
            let _ = free_tx.send(buf);
        }
        drop(full_rx);
        let read = reading
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reading thread panicked")));
        written.map_err(PipeError::Write)?;
        read.map_err(PipeError::Read)
    })
}

/// Reads until `buf` is full or the stream ends; returns how much was read.
fn fill(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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
