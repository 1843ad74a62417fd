//! Block-parallel gzip whose bytes do not depend on the number of threads.
//!
//! The input is cut into blocks of exactly [`BLOCK`] bytes (the last one shorter). Each block is
//! compressed on its own into raw deflate, primed with the last 32 KiB of the block before it
//! as a dictionary (so matches reach back across the cut, as in pigz), and ended with a sync
//! flush (an empty stored block that leaves the stream byte-aligned); the last block ends the
//! deflate stream. The pieces, joined in order between one gzip header and one trailer, are a
//! single gzip member that every gunzip reads. Each piece is a function of its block, the
//! block before it and the level only, so the blob is the same whether one thread or sixteen
//! compressed it: the thread count changes the speed, never the bytes.
//!
//! A stream of at most one block is compressed as one ordinary deflate stream (flate2's gzip
//! encoder, fed in [`super::compress::CHUNK`] pieces), exactly as before blocks existed, so small
//! layers and documents keep their bytes.
//!
//! Threads are the writer's own (started when a second block begins, joined when it is done or
//! dropped), not rayon's: a caller compressing several layers from rayon tasks would otherwise
//! wait on blocks queued behind its own task. At most two blocks per thread are in flight, so
//! memory stays at a few MiB whatever the layer size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Crc, FlushCompress, Status};

use super::compress::CHUNK;

/// The size of the blocks compressed independently. Changing it changes every multi-block
/// gzip blob ocikit writes.
pub const BLOCK: usize = 1024 * 1024;
/// How much of the previous block primes the next one (deflate's whole window).
const DICTIONARY: usize = 32 * 1024;
/// Blocks in flight per thread before the writer waits for the oldest.
const IN_FLIGHT_PER_THREAD: usize = 2;

/// A gzip writer over `W` (see the module documentation). Call [`Writer::finish`] at the end.
pub struct Writer<W: Write> {
    out: W,
    level: u32,
    threads: usize,
    /// The block being filled.
    block: Vec<u8>,
    /// The last [`DICTIONARY`] bytes of the block dispatched last.
    dictionary: Vec<u8>,
    crc: Crc,
    /// Started with the second block; `None` while the stream is one block.
    pool: Option<Pool>,
    /// Compressed blocks not yet written out, oldest first.
    in_flight: VecDeque<Receiver<io::Result<Vec<u8>>>>,
}

impl<W: Write> Writer<W> {
    /// A writer at `level` (0–9) that uses up to `threads` threads (at least one) once the
    /// stream is longer than a block.
    pub fn new(out: W, level: u32, threads: u32) -> Writer<W> {
        Writer {
            out,
            level,
            threads: threads.max(1) as usize,
            block: Vec::new(),
            dictionary: Vec::new(),
            crc: Crc::new(),
            pool: None,
            in_flight: VecDeque::new(),
        }
    }

    /// Ends the stream and returns the writer underneath (not flushed).
    pub fn finish(mut self) -> io::Result<W> {
        if self.pool.is_none() {
            // One block at most: one ordinary deflate stream.
            let mut encoder =
                header_builder().write(self.out, flate2::Compression::new(self.level));
            for piece in self.block.chunks(CHUNK) {
                encoder.write_all(piece)?;
            }
            return encoder.finish();
        }
        self.dispatch(true)?;
        while let Some(next) = self.in_flight.pop_front() {
            write_result(&mut self.out, next)?;
        }
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.out)
    }

    /// The writer underneath.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Sends the current block to be compressed (the last one when `last`), and writes out
    /// the oldest results while too many are in flight.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        if self.pool.is_none() {
            self.out.write_all(&header(self.level))?;
            self.pool = Some(Pool::start(self.threads, self.level)?);
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        self.crc.update(&block);
        let tail = &block[block.len().saturating_sub(DICTIONARY)..];
        let dictionary = std::mem::replace(&mut self.dictionary, tail.to_vec());
        let (reply, result) = channel();
        let job = Job {
            block,
            dictionary,
            last,
            reply,
        };
        if let Some(pool) = &self.pool {
            pool.send(job)?;
        }
        self.in_flight.push_back(result);
        while self.in_flight.len() > self.threads * IN_FLIGHT_PER_THREAD {
            if let Some(oldest) = self.in_flight.pop_front() {
                write_result(&mut self.out, oldest)?;
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // A full block goes only once more input shows it is not the last one.
        if self.block.len() == BLOCK {
            self.dispatch(false)?;
        }
        if self.block.capacity() == 0 {
            self.block.reserve_exact(BLOCK);
        }
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    /// Flushes the writer underneath only: ending a block early would change the bytes.
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The gzip header ocikit writes: no name, no comment, mtime 0, OS 255 ("unknown").
fn header_builder() -> flate2::GzBuilder {
    flate2::GzBuilder::new().mtime(0).operating_system(255)
}

/// The same header as [`header_builder`] writes, as bytes (`XFL` says how hard the level
/// tried, as flate2 and zlib set it).
fn header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9.. => 2,
        0 | 1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

fn write_result<W: Write>(out: &mut W, result: Receiver<io::Result<Vec<u8>>>) -> io::Result<()> {
    let compressed = result
        .recv()
        .map_err(|_| io::Error::other("a gzip compression thread stopped"))??;
    out.write_all(&compressed)
}

/// One block to compress, and where its deflate bytes go.
struct Job {
    block: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    reply: Sender<io::Result<Vec<u8>>>,
}

/// The writer's threads; dropping it ends them.
struct Pool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(threads: usize, level: u32) -> io::Result<Pool> {
        let (jobs, queue) = channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let handle = std::thread::Builder::new()
                .name(format!("gzip-{i}"))
                .spawn(move || work(&queue, level))?;
            handles.push(handle);
        }
        Ok(Pool {
            jobs: Some(jobs),
            threads: handles,
        })
    }

    fn send(&self, job: Job) -> io::Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| io::Error::other("the gzip compression threads stopped"))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the queue ends every thread once it has finished its block.
        self.jobs = None;
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

/// A compression thread: takes blocks until the queue closes.
fn work(queue: &Mutex<Receiver<Job>>, level: u32) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = deflate_block(level, &job.dictionary, &job.block, job.last);
        // The writer may be gone (dropped without finishing): nobody wants the result then.
        let _ = job.reply.send(result);
    }
}

/// Raw deflate of `block`, primed with `dictionary`, ended by a sync flush or, for the last
/// block, the end of the stream.
///
/// Each block gets a new compressor. A reset one would not do: zlib-rs's reset clears the hash
/// heads but keeps the window and the hash chains of the block compressed before, and the match
/// finder reads some of those bytes, so the output would depend on which block the thread had
/// compressed last, that is on the thread count. A new one starts zeroed (half a MiB to clear,
/// against a MiB to compress).
fn deflate_block(level: u32, dictionary: &[u8], block: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let failed =
        |e: flate2::CompressError| io::Error::other(format!("gzip compression failed: {e}"));
    let mut compress = Compress::new(flate2::Compression::new(level), false);
    if !dictionary.is_empty() {
        compress.set_dictionary(dictionary).map_err(failed)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(block.len() / 2 + 4096);
    let mut input = block;
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let before = compress.total_in();
        let status = compress
            .compress_vec(input, &mut out, flush)
            .map_err(failed)?;
        input = &input[(compress.total_in() - before) as usize..];
        match status {
            Status::StreamEnd => return Ok(out),
            // A sync flush is complete once all input is taken and room was left over.
            _ if !last && input.is_empty() && out.len() < out.capacity() => return Ok(out),
            _ => {}
        }
    }
}
