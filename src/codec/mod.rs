//! Streaming transforms over `Read`/`Write` that know nothing of layouts.

pub mod extract;
