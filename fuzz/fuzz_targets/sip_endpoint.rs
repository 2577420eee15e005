#![no_main]
#![allow(clippy::disallowed_methods)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phonebridge_sip::fuzz_targets::endpoint(data, std::time::Instant::now()));
