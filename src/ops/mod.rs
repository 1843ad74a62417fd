//! One module per capability, mirroring the binary's subcommands: each checks its inputs, writes
//! through the store and returns a report.

pub mod artifact;
pub mod bundle;
pub mod catalog;
pub mod convert;
pub mod copy;
pub mod export;
pub mod gc;
pub mod image;
pub mod import;
pub mod inspect;
pub mod layer;
pub mod tag;
pub mod transfer;
pub mod unpack;
pub mod validate;
