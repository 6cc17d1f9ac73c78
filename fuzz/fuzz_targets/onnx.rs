//! The onnx reader on arbitrary bytes (seeded from fixtures/): never a panic, a hang or an
//! allocation the file does not justify; an error is a fine outcome.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    std::fs::write(&path, data).unwrap();
    let _ = cargo_infer::model::inspect(&path);
});
