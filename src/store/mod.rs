//! The only code that touches layout files or archive bytes: layout directories (blobs,
//! `index.json`, locks), layout archives read in place and written as streams, and the seam
//! between them: [`layout::LayoutRead`] to read any of them, [`destination::Destination`] to
//! write into any of them.

pub mod archive;
pub mod destination;
pub mod layout;
pub mod open;
pub mod union;

pub use open::{open_or_init, open_read, open_write, parse_reference, Check};
