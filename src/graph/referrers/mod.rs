//! Referrers inside a layout: the one module that knows the three conventions of PRODUCT.md
//! §"Referrers inside a layout", reads them all and writes them.
//!
//! - **(a) index**: an `index.json` entry whose manifest has a `subject`. oras writes them
//!   untagged; a pull from a registry without the referrers API (skopeo `copy --all`, oras)
//!   gives them names. Named or not, they are referrers of their subject; a name stays a name
//!   (a named referrer is also an image for gc and resolvable by that name), while an untagged
//!   one is bookkeeping only.
//! - **(b) tag**: the distribution-spec fallback tag, an index named `sha256-<hex of subject>`
//!   listing the referrers' descriptors (regctl).
//! - **(c) scan**: only the blob, referenced from nowhere (cosign); found by reading every
//!   document-sized blob of `blobs/`, and only on request.
//!
//! The truth is always the referrer's own manifest: a descriptor that bookkeeping lists is
//! counted under a subject only if the manifest behind it names that subject.
//!
//! - [`conventions`]: what a referrer is, fallback-tag names, which entries are bookkeeping.
//! - [`discovery`]: reading every convention ([`Discovery`]), merged, subject by subject.
//! - [`tree`]: referrers of referrers.
//! - [`fallback`]: writing bookkeeping (untagged entries, fallback indexes).
//! - [`mod@sync`]: rewriting the bookkeeping from the truth ([`sync()`]).

pub mod conventions;
pub mod discovery;
pub mod fallback;
pub mod sync;
pub mod tree;

pub use conventions::{
    fallback_tag, fallback_tag_subject, is_bookkeeping, is_fallback_tag, referrer_subject, Format,
    Source,
};
pub use discovery::{Discovery, Filter, Referrer, Scope};
pub(crate) use fallback::descriptor_value;
pub use fallback::{edit_fallback, record, unlist, Pending};
pub use sync::{sync, SyncReport};
pub use tree::Node;
