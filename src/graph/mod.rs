//! What references what, read-only over a store: the one graph walk (`walk`), documents read
//! once per layout (`documents`), resolving references (`resolve`), every referrer
//! convention (`referrers`), and what a copy of some images must carry (`closure`).

pub mod closure;
pub mod documents;
pub mod referrers;
pub mod resolve;
pub mod walk;
