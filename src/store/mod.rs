//! The only code that touches layout files or archive bytes: layout directories (blobs,
//! `index.json`, locks), layout archives read in place, and blobs moved between them
//! (`transfer`).

pub mod archive;
pub mod layout;
pub mod open;
pub mod transfer;

pub use open::{open_or_init, open_read, open_write, parse_reference, Check};
