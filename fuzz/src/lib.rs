//! What the fuzz targets share.

/// Writes `data` to a file in a fresh directory and inspects it, as `cargo infer inspect` would:
/// the format is told by the bytes, so the onnx, safetensors, pytorch and gguf targets differ only
/// in the corpus each starts from. Never a panic, a hang or an allocation the file does not
/// justify; an error is a fine outcome.
pub fn inspect_bytes(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    std::fs::write(&path, data).unwrap();
    let _ = cargo_infer::model::inspect(&path);
}
