#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dits_core::fuzzing::mp4_layout(data));
