//! The only code that touches layout files or archive bytes: layout directories (blobs,
//! `index.json`, locks) and layout archives read in place.

pub mod archive;
pub mod layout;
pub mod open;

pub use open::{open_read, open_write, parse_reference, Check};
