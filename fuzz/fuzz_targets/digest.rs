//! Digest parsing never panics, and what parses prints back as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(digest) = ocikit::Digest::parse(text) {
            assert_eq!(digest.as_str(), text);
            assert_eq!(format!("{}:{}", digest.algorithm(), digest.encoded()), text);
        }
    }
});
