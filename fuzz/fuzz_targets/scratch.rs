//! Shared by the targets that write to disk (included as a module, not a target of its own).

use std::path::Path;

/// Where a target writes: tmpfs when there is one, so that writes and fsyncs cost little.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new();
    if shm.is_dir() {
        builder.tempdir_in(shm)
    } else {
        builder.tempdir()
    }
    .expect("a temp dir")
}
