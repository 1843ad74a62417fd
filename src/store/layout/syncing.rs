//! Syncing a file while it is written: a background thread starts the writeback of what has
//! been written every few MiB, so that the sync before a rename (of a blob, of an archive)
//! finds little left to write, and the disk works while the data is still being produced.

use std::fs::File;
use std::io::{self, Write};
use std::thread::JoinHandle;

/// How many bytes are written between two syncs started in the background.
pub(crate) const SYNC_EVERY: u64 = 8 * 1024 * 1024;

/// A file whose written data is synced by a background thread as it grows, so that the sync
/// before the rename finds little left to write (the writeback overlaps the writing).
pub(crate) struct Syncing {
    file: File,
    since: u64,
    wake: std::sync::mpsc::SyncSender<()>,
}

impl Syncing {
    /// `file`, and the thread that syncs it; the thread ends when the writer is dropped.
    pub(crate) fn start(file: File) -> io::Result<(Syncing, JoinHandle<()>)> {
        let synced = file.try_clone()?;
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::spawn(move || {
            while woken.recv().is_ok() {
                // An error here is met again by the final sync, which reports it.
                let _ = synced.sync_data();
            }
        });
        Ok((
            Syncing {
                file,
                since: 0,
                wake,
            },
            thread,
        ))
    }
}

impl Write for Syncing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.since += n as u64;
        if self.since >= SYNC_EVERY {
            self.since = 0;
            // A sync already pending covers this data too.
            let _ = self.wake.try_send(());
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
