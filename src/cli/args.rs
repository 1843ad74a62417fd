//! Typed parsers for the arguments many subcommands share: references, whole layouts, blobs.
//! Each shape is checked here once, with one wording of its error.

use ocikit::spec::digest::Digest;
use ocikit::spec::reference::Reference;

/// A `REF`: `LAYOUT[:NAME][@DIGEST]`, the layout path found on disk (it may contain `:`).
pub fn reference(text: &str) -> anyhow::Result<Reference> {
    Ok(ocikit::store::parse_reference(text)?)
}

/// A `LAYOUT`: a reference with neither a name nor a digest. `what` says which command (or
/// use) takes a whole layout, for the error.
pub fn whole_layout(text: &str, what: &str) -> anyhow::Result<Reference> {
    let reference = reference(text)?;
    if reference.name.is_some() || reference.digest.is_some() {
        anyhow::bail!("{what} works on a whole layout; give just LAYOUT, not {text}");
    }
    Ok(reference)
}

/// A `LAYOUT@DIGEST`: one blob, without a name.
pub fn blob(text: &str) -> anyhow::Result<(Reference, Digest)> {
    let reference = reference(text)?;
    let Some(digest) = reference.digest.clone() else {
        anyhow::bail!("{text} names no blob; write LAYOUT@DIGEST");
    };
    if reference.name.is_some() {
        anyhow::bail!("{text} names a blob by LAYOUT@DIGEST, without a name");
    }
    Ok((reference, digest))
}
