//! Moving blobs between layouts: the one primitive that every command copying a blob from one
//! layout (or archive) into another uses.

use crate::error::{Error, Result};
use crate::spec::document::Descriptor;
use crate::store::layout::{LayoutRead, LayoutWriter};

/// How [`copy_blob`] put a blob into the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copied {
    /// The target had it already.
    Present,
    /// Hard-linked to the source's file (verified first).
    Linked,
    /// Streamed, verified on the way.
    Copied,
}

/// Puts the blob `descriptor` names from `source` into the layout `target` writes, unless it
/// is there already. With `link`, a blob file of a directory layout on the same file system
/// is hard-linked rather than copied; either way its bytes are checked against the digest
/// and size before the blob appears in `blobs/`, so a corrupt source blob is an error, never a
/// corrupt target.
pub fn copy_blob(
    source: &dyn LayoutRead,
    target: &LayoutWriter<'_>,
    descriptor: &Descriptor,
    link: bool,
) -> Result<Copied> {
    let (digest, size) = (&descriptor.digest, descriptor.size);
    if target.layout().blob_len(digest)?.is_some() {
        return Ok(Copied::Present);
    }
    if link {
        if let Some(path) = source.local_blob_path(digest) {
            if target.link_blob(&path, digest, size)?.is_some() {
                return Ok(Copied::Linked);
            }
        }
    }
    let algorithm = digest.known_algorithm().ok_or_else(|| Error::Unsupported {
        what: format!("blob {digest}"),
        reason: "cannot be stored: ocikit computes only sha256 and sha512 digests".into(),
    })?;
    let mut blob = source.open_blob(digest, Some(size))?;
    let mut sink = target.blob_sink(algorithm)?;
    // The source is verified as it is read (a mismatch names the source blob), and nothing
    // is committed unless the whole of it matched.
    blob.copy_to(&mut sink)?;
    sink.finish()?.commit()?;
    Ok(Copied::Copied)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::spec::digest::Digest;
    use crate::store::layout::Layout;

    #[test]
    fn copies_links_and_refuses_corrupt_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let (from, _) = Layout::init(&dir.path().join("from")).unwrap();
        let (to, _) = Layout::init(&dir.path().join("to")).unwrap();
        let blob = from
            .writer()
            .unwrap()
            .write_blob_bytes(b"layer bytes")
            .unwrap();
        let descriptor = Descriptor::new("application/octet-stream", blob.digest.clone(), 11);
        let writer = to.writer().unwrap();
        assert_eq!(
            copy_blob(&from, &writer, &descriptor, true).unwrap(),
            Copied::Linked
        );
        let (a, b) = (from.blob_path(&blob.digest), to.blob_path(&blob.digest));
        assert_eq!(a.metadata().unwrap().ino(), b.metadata().unwrap().ino());
        assert_eq!(
            copy_blob(&from, &writer, &descriptor, true).unwrap(),
            Copied::Present
        );

        let other = from.writer().unwrap().write_blob_bytes(b"config").unwrap();
        let other = Descriptor::new("application/octet-stream", other.digest, 6);
        assert_eq!(
            copy_blob(&from, &writer, &other, false).unwrap(),
            Copied::Copied
        );
        assert_eq!(
            to.read_blob_limited(&other.digest, Some(6)).unwrap(),
            b"config"
        );

        // A source blob whose bytes are not its digest's is refused, linked or copied, and
        // leaves nothing in the target.
        let digest = Digest::sha256_of(b"right");
        std::fs::write(from.blob_path(&digest), b"wrong").unwrap();
        let bad = Descriptor::new("application/octet-stream", digest.clone(), 5);
        for link in [true, false] {
            let err = copy_blob(&from, &writer, &bad, link).unwrap_err();
            assert!(err.to_string().contains("corrupt"), "{err}");
            assert!(!to.blob_path(&digest).exists());
        }
        let leftovers = std::fs::read_dir(to.root())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy()
                    .starts_with(crate::store::layout::TEMP_PREFIX)
            })
            .count();
        assert_eq!(leftovers, 0);
    }
}
