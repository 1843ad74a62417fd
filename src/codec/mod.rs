//! Streaming transforms over `Read`/`Write` that know nothing of layouts: compression and
//! reproducible layer tars.

pub mod layer;
