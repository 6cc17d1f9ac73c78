//! The restricted pickle reader on arbitrary bytes: it parses, never executes, and never panics,
//! overflows its stack or allocates without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = cargo_infer::model::pickle::parse(data) {
        let _ = cargo_infer::model::pickle::findings(&parsed, false, "fuzz");
    }
});
