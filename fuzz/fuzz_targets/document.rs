//! Document parsing and validation never panic on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ocikit::document::Document::parse(data, None, "fuzz");
    let _ = ocikit::layout::IndexFile::parse(data, "fuzz");
    let _ = ocikit::validate::validate_document(data, None, "fuzz", true);
});
