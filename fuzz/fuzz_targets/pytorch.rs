//! The model readers on arbitrary bytes, from a corpus of pytorch files (seeded from fixtures/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cargo_infer_fuzz::inspect_bytes(data));
