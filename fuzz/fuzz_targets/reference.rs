//! Reference parsing never panics, and a parsed reference without a prefix survives a round trip
//! through its display form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocikit::spec::reference::{Reference, Transport};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(reference) = Reference::parse(text) {
            if reference.transport == Transport::Auto {
                let again =
                    Reference::parse(&reference.to_string()).expect("a displayed reference parses");
                assert_eq!(again, reference);
            }
        }
    }
});
