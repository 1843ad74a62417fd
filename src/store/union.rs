//! Several layouts read as one, plus documents held in memory: the source of a copy whose
//! images come from several layouts (`export a:x b:y`, a bundle), or that writes documents of
//! its own (the index a platform subset makes).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::spec::digest::Digest;
use crate::store::layout::{FileInfo, LayoutRead};

/// Layouts read as one (see the module documentation). A blob is read from memory when it was
/// added there, else from the source it was assigned to, else from the first source that has
/// it. `index.json` and root files are the first source's.
pub struct Union<'a> {
    name: String,
    sources: Vec<&'a dyn LayoutRead>,
    memory: HashMap<Digest, Arc<[u8]>>,
    owners: HashMap<Digest, usize>,
    /// `index.json` as given ([`Union::set_index`]), instead of the first source's.
    index: Option<Vec<u8>>,
}

impl<'a> Union<'a> {
    /// A union of no layouts yet, named `name` in messages.
    pub fn new(name: impl Into<String>) -> Union<'a> {
        Union {
            name: name.into(),
            sources: Vec::new(),
            memory: HashMap::new(),
            owners: HashMap::new(),
            index: None,
        }
    }

    /// `source` alone (with room for documents in memory).
    pub fn of(source: &'a dyn LayoutRead) -> Union<'a> {
        let mut union = Union::new(source.name());
        union.add_source(source);
        union
    }

    /// Adds a source; returns its position.
    pub fn add_source(&mut self, source: &'a dyn LayoutRead) -> usize {
        self.sources.push(source);
        self.sources.len() - 1
    }

    /// Reads blob `digest` from source `source` (a position [`Union::add_source`] returned).
    pub fn assign(&mut self, digest: Digest, source: usize) {
        self.owners.insert(digest, source);
    }

    /// Holds `bytes` in memory as a sha256 blob; returns its digest.
    pub fn add_blob(&mut self, bytes: Vec<u8>) -> Digest {
        let digest = Digest::sha256_of(&bytes);
        self.memory.insert(digest.clone(), bytes.into());
        digest
    }

    /// Reads `index.json` as `bytes` (a bundle's index before it is written), not the first
    /// source's.
    pub fn set_index(&mut self, bytes: Vec<u8>) {
        self.index = Some(bytes);
    }

    /// The bytes of every blob held in memory.
    pub fn memory(&self) -> impl Iterator<Item = (&Digest, &[u8])> {
        self.memory.iter().map(|(d, b)| (d, &b[..]))
    }

    /// The source a blob is read from, if any holds it.
    fn source_of(&self, digest: &Digest) -> Result<Option<&'a dyn LayoutRead>> {
        if let Some(&i) = self.owners.get(digest) {
            return Ok(self.sources.get(i).copied());
        }
        for source in &self.sources {
            if source.blob_len(digest)?.is_some() {
                return Ok(Some(*source));
            }
        }
        Ok(None)
    }

    fn first(&self) -> Result<&'a dyn LayoutRead> {
        self.sources
            .first()
            .copied()
            .ok_or_else(|| Error::InvalidInput {
                what: self.name.clone(),
                reason: "is a union of no layouts".into(),
            })
    }
}

impl LayoutRead for Union<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn index_bytes(&self) -> Result<Vec<u8>> {
        if let Some(bytes) = &self.index {
            return Ok(bytes.clone());
        }
        self.first()?.index_bytes()
    }

    fn open_blob_raw(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        if let Some(bytes) = self.memory.get(digest) {
            return Ok(Box::new(std::io::Cursor::new(bytes.clone())));
        }
        match self.source_of(digest)? {
            Some(source) => source.open_blob_raw(digest),
            None => Err(Error::BlobNotFound {
                digest: digest.clone(),
                layout: self.name.clone(),
            }),
        }
    }

    fn blob_len(&self, digest: &Digest) -> Result<Option<u64>> {
        if let Some(bytes) = self.memory.get(digest) {
            return Ok(Some(bytes.len() as u64));
        }
        match self.source_of(digest)? {
            Some(source) => source.blob_len(digest),
            None => Ok(None),
        }
    }

    /// The first source's files (a union has no tree of its own).
    fn files(&self) -> Result<Vec<FileInfo>> {
        self.first()?.files()
    }

    fn root_file(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        if let (Some(bytes), "index.json") = (&self.index, name) {
            return Ok(Some(bytes.clone()));
        }
        self.first()?.root_file(name, limit)
    }

    fn local_blob(&self, digest: &Digest) -> Result<Option<std::path::PathBuf>> {
        if self.memory.contains_key(digest) {
            return Ok(None);
        }
        match self.source_of(digest)? {
            Some(source) => source.local_blob(digest),
            None => Ok(None),
        }
    }
}
