//! Where a copy writes: the storage seam's writing side.
//!
//! Reading is [`LayoutRead`], implemented by layout directories and archives read in place.
//! Writing is [`Destination`]: blobs, then names (`index.json`), in the order that keeps the
//! destination whole if the writer dies. It is implemented by a layout directory (through its
//! [`LayoutWriter`]: blobs linked or copied in parallel, each durable before `index.json` is
//! updated under the layout's locks) and by an archive being written
//! ([`crate::store::archive::ArchiveWriter`]: one tar stream, blobs in digest order,
//! `index.json` last, renamed into place at the end). A registry client will be one more.
//!
//! Copy, export, import and bundles are one graph walk over a source into a destination; the
//! walk decides *what* (`ops::transfer`), the destination *how*.

use std::io::Read;

use rayon::prelude::*;

use crate::error::Result;
use crate::progress::Progress;
use crate::spec::digest::Digest;
use crate::store::layout::{IndexFile, LayoutRead, LayoutWriter, Link, Placed, WrittenBlob};

/// A blob to write: its digest and size, as the descriptors that reach it give them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

/// How the blobs of one [`Destination::write_blobs`] got there.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Placements {
    /// Blobs the destination had already.
    pub present: usize,
    pub reflinked: usize,
    pub hardlinked: usize,
    /// Blobs whose bytes were read, verified and written.
    pub copied: usize,
    /// Bytes of the blobs written (linked or copied), not counting those present.
    pub bytes: u64,
}

impl Placements {
    /// Counts one blob of `size` bytes.
    pub fn add(&mut self, placed: Placed, size: u64) {
        match placed {
            Placed::Present => self.present += 1,
            Placed::Reflinked => self.reflinked += 1,
            Placed::Hardlinked => self.hardlinked += 1,
            Placed::Copied => self.copied += 1,
        }
        if placed != Placed::Present {
            self.bytes += size;
        }
    }

    /// Blobs that are new in the destination.
    pub fn written(&self) -> usize {
        self.reflinked + self.hardlinked + self.copied
    }
}

/// What editing referrer bookkeeping needs of a store: its documents read back, and small
/// documents (a fallback-tag index) written to it.
pub trait DocumentStore: Sync {
    /// The store as it is now, for reading.
    fn reader(&self) -> &dyn LayoutRead;
    /// Stores `content` as a sha256 blob.
    fn write_document(&self, content: &mut dyn Read) -> Result<WrittenBlob>;
}

impl DocumentStore for LayoutWriter<'_> {
    fn reader(&self) -> &dyn LayoutRead {
        self.layout()
    }

    fn write_document(&self, content: &mut dyn Read) -> Result<WrittenBlob> {
        self.write_blob(content, None)
    }
}

/// Somewhere blobs and names can be written (see the module documentation).
///
/// The order is always: [`write_blobs`](Destination::write_blobs) (as often as needed), then
/// [`update_index`](Destination::update_index) once the blobs it names are written. How each
/// step is made safe is the destination's: a layout syncs its blobs before `index.json` is
/// replaced; an archive writes `index.json` as its last entry when it is finished.
pub trait Destination: Sync {
    /// How it is named in messages.
    fn name(&self) -> String;

    /// Whether it holds blob `digest` already (a copy skips it).
    fn has_blob(&self, digest: &Digest) -> Result<bool>;

    /// Writes every blob of `blobs` it does not hold, read from `source`; each is verified
    /// against its digest and size as it is read (or, when linked, its size checked: see
    /// [`LayoutWriter::copy_blob`]). `link` says whether blobs may be linked (layouts only).
    /// Progress is reported in bytes of `blobs`.
    fn write_blobs(
        &self,
        source: &dyn LayoutRead,
        blobs: &[BlobRef],
        link: Link,
        progress: &dyn Progress,
    ) -> Result<Placements>;

    /// Applies `change` to its `index.json` (`change` returns whether it changed anything).
    fn update_index(&self, change: &mut dyn FnMut(&mut IndexFile) -> Result<bool>) -> Result<()>;

    /// The destination as a [`DocumentStore`], when bookkeeping already in it can be read back
    /// and merged with (a layout). `None` for a destination that holds only what this copy
    /// writes (an archive being written), where there is nothing to merge with.
    fn documents(&self) -> Option<&dyn DocumentStore>;
}

impl Destination for LayoutWriter<'_> {
    fn name(&self) -> String {
        self.layout().name()
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.layout().blob_len(digest)?.is_some())
    }

    fn write_blobs(
        &self,
        source: &dyn LayoutRead,
        blobs: &[BlobRef],
        link: Link,
        progress: &dyn Progress,
    ) -> Result<Placements> {
        progress.total(blobs.iter().map(|b| b.size).sum());
        // Largest first, so that two large blobs do not end up last on one thread.
        let mut order: Vec<&BlobRef> = blobs.iter().collect();
        order.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.digest.cmp(&b.digest)));
        let placed: Vec<(Placed, u64)> = order
            .par_iter()
            .map(|blob| {
                let placed = self.copy_blob(source, &blob.digest, blob.size, link)?;
                progress.advance(blob.size);
                Ok((placed, blob.size))
            })
            .collect::<Result<_>>()?;
        let mut placements = Placements::default();
        for (how, size) in placed {
            placements.add(how, size);
        }
        Ok(placements)
    }

    fn update_index(&self, change: &mut dyn FnMut(&mut IndexFile) -> Result<bool>) -> Result<()> {
        LayoutWriter::update_index(self, |index| Ok(((), change(index)?)))
    }

    fn documents(&self) -> Option<&dyn DocumentStore> {
        Some(self)
    }
}
