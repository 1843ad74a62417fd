//! Reading a layout tarball without extracting it.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layout::LayoutRead;

/// A layout archive opened for reading.
pub struct Archive {
    path: PathBuf,
}

impl Archive {
    /// Opens a layout archive, detecting its compression from its first bytes.
    pub fn open(path: &Path) -> Result<Archive> {
        Err(Error::Archive {
            path: path.to_path_buf(),
            entry: None,
            message: "reading archives is not implemented yet".into(),
        })
    }
}

impl LayoutRead for Archive {
    fn name(&self) -> String {
        self.path.display().to_string()
    }
    fn index_bytes(&self) -> Result<Vec<u8>> {
        unimplemented!()
    }
    fn open_blob_raw(&self, _digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        unimplemented!()
    }
    fn blob_len(&self, _digest: &Digest) -> Result<Option<u64>> {
        unimplemented!()
    }
}
