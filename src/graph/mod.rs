//! What references what, read-only over a store: the one graph walk (`walk`), documents read
//! once per layout (`documents`), resolving references (`resolve`), and every referrer
//! convention (`referrers`).

pub mod documents;
pub mod referrers;
pub mod resolve;
pub mod walk;
