//! Advisory locks that keep concurrent ocikit processes from losing each other's work.
//!
//! Two `flock(2)` locks, taken on directories so that no lock file is added to the layout:
//! - the **blobs lock** on `blobs/`: shared by every writer from its first blob write until its
//!   `index.json` update is committed; exclusive for `gc`, which therefore never sweeps a blob a
//!   writer has written but not yet referenced;
//! - the **index lock** on the layout directory: exclusive around every read-modify-write of
//!   `index.json`, so no update is lost.
//!
//! Locks are always taken in that order (blobs, then index) so no two processes can deadlock.
//! Readers take no lock: `index.json` is replaced by an atomic rename, so they always see a
//! whole version. A lock is released when its guard is dropped, or when the process dies.

use std::fs::File;
use std::path::Path;

use crate::error::{IoContext, Result};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// How a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// Locks the directory `dir`, waiting until the lock can be had.
pub fn lock_dir(dir: &Path, mode: Mode) -> Result<LockGuard> {
    let file = File::open(dir).ctx("cannot open for locking", dir)?;
    match mode {
        Mode::Shared => file.lock_shared(),
        Mode::Exclusive => file.lock(),
    }
    .ctx("cannot lock", dir)?;
    Ok(LockGuard { _file: file })
}

/// Tries to lock `dir` without waiting; `None` when someone else holds it.
pub fn try_lock_dir(dir: &Path, mode: Mode) -> Result<Option<LockGuard>> {
    let file = File::open(dir).ctx("cannot open for locking", dir)?;
    let outcome = match mode {
        Mode::Shared => file.try_lock_shared(),
        Mode::Exclusive => file.try_lock(),
    };
    match outcome {
        Ok(()) => Ok(Some(LockGuard { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(crate::Error::io("cannot lock", dir, e)),
    }
}
