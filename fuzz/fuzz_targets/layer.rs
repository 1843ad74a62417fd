//! Reading a layer (`validate --deep`) never panics and always returns the raw digest, whatever
//! the bytes: the first byte chooses the declared compression, the rest is the blob.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocikit::ops::validate::deep::{check_layer, DeepLimits, LayerCheck};
use ocikit::ops::validate::{Findings, Place};
use ocikit::spec::digest::Algorithm;
use ocikit::spec::document::media_type::Compression;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, blob)) = data.split_first() else {
        return;
    };
    let compression = match selector % 3 {
        0 => Compression::None,
        1 => Compression::Gzip,
        _ => Compression::Zstd,
    };
    let check = LayerCheck {
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        compression,
        diff_ids: Vec::new(),
    };
    let mut findings = Findings::new(true);
    let digest = check_layer(
        &mut &blob[..],
        Algorithm::Sha256,
        &check,
        &DeepLimits::default(),
        &mut findings,
        &Place::default(),
    )
    .expect("reading from memory cannot fail");
    assert_eq!(digest, ocikit::Digest::sha256_of(blob));
});
