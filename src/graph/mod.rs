//! What references what, read-only over a store: resolving references and the referrers of a
//! manifest in every layout convention.

pub mod referrers;
pub mod resolve;
