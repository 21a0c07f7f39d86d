#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dits_filter::fuzzing::filter_protocol(data));
