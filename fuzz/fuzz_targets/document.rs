//! Document parsing and validation never panic on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ocikit::spec::document::Document::parse(data, None, "fuzz");
    let _ = ocikit::store::layout::IndexFile::parse(data, "fuzz");
    let _ = ocikit::ops::validate::validate_document(data, None, "fuzz", true);
});
