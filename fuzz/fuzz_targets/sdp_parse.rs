#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phonebridge_sdp::fuzz_targets::parse_and_negotiate(data));
