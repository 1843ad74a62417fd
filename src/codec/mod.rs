//! Streaming transforms over `Read`/`Write` that know nothing of layouts: compression,
//! reproducible layer tars, and escape-safe extraction to disk.

pub mod extract;
pub mod layer;
