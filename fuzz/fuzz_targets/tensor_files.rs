//! The readers of `--input` / `--expected` files (`.npy`, `.npz`, ONNX `TensorProto` `.pb`,
//! JSON) on arbitrary bytes; the first byte chooses the kind.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((kind, bytes)) = data.split_first() else {
        return;
    };
    let ext = ["npy", "npz", "pb", "json"][*kind as usize % 4];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("t.{ext}"));
    std::fs::write(&path, bytes).unwrap();
    let _ = cargo_infer::check::inputs::read_tensor_file(&path);
});
