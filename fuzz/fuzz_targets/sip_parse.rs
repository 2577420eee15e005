#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| phonebridge_sip::fuzz_targets::parse_message(data));
