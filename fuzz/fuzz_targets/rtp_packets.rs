#![no_main]
use std::sync::OnceLock;
use std::time::Instant;

static ORIGIN: OnceLock<Instant> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let origin = *ORIGIN.get_or_init(Instant::now);
    phonebridge_rtp::fuzz_targets::packets(data, origin)
});
