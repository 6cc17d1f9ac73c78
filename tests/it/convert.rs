//! `cargo infer convert`: every layout and dtype round-trips, read back by the safetensors crate and
//! by Python's safetensors (tests/convert_check.py; `cargo xtask ci` installs safetensors and onnx
//! for python3), and compared with the source value by value.

use prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use crate::common::{fixtures, one_line_error, MALICIOUS, PWNED};

fn convert(args: &[&str]) -> std::process::Output {
    crate::common::cargo_infer()
        .arg("convert")
        .args(args)
        .output()
        .unwrap()
}

/// (source fixture, reference kind, reference file) — the reference is what another tool wrote:
/// torch's own safetensors export of the same tensors, or the ONNX model read by the onnx package.
fn cases() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "state_dict.pt",
            "safetensors",
            "check/state_dict.safetensors",
        ),
        (
            "state_dict_legacy.pt",
            "safetensors",
            "check/state_dict.safetensors",
        ),
        (
            "checkpoint.pt",
            "safetensors",
            "check/state_dict.safetensors",
        ),
        (
            "check/strided.pt",
            "safetensors",
            "check/strided.safetensors",
        ),
        ("mlp.torchscript.pt", "onnx", "pair/mlp.onnx"),
        ("mlp.onnx", "onnx", "mlp.onnx"),
        ("mlp_external.onnx", "onnx", "mlp_external.onnx"),
        ("mlp.safetensors", "safetensors", "mlp.safetensors"),
    ]
}

#[test]
fn every_layout_and_dtype_round_trips_through_python() {
    let dir = tempfile::tempdir().unwrap();
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/convert_check.py");
    for (source, kind, reference) in cases() {
        for dtype in ["none", "f16", "bf16", "f32"] {
            let out = dir
                .path()
                .join(format!("{}-{dtype}.safetensors", source.replace('/', "_")));
            let src = fixtures().join(source);
            let mut args = vec![src.to_str().unwrap(), out.to_str().unwrap()];
            if dtype != "none" {
                args.extend(["--dtype", dtype]);
            }
            let o = convert(&args);
            assert!(
                o.status.success(),
                "{source} {dtype}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let py = Process::new("python3")
                .arg(&checker)
                .arg(&out)
                .arg(kind)
                .arg(fixtures().join(reference))
                .arg(dtype)
                .output()
                .unwrap();
            assert!(
                py.status.success(),
                "{source} {dtype}: python says\n{}{}",
                String::from_utf8_lossy(&py.stdout),
                String::from_utf8_lossy(&py.stderr)
            );
        }
    }
}

#[test]
fn the_safetensors_crate_reads_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    for (source, kind, reference) in cases() {
        if kind != "safetensors" {
            continue;
        }
        let out = dir.path().join("out.safetensors");
        let _ = std::fs::remove_file(&out);
        let src = fixtures().join(source);
        let o = convert(&[src.to_str().unwrap(), out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got_bytes = std::fs::read(&out).unwrap();
        let want_bytes = std::fs::read(fixtures().join(reference)).unwrap();
        let got = safetensors::SafeTensors::deserialize(&got_bytes).unwrap();
        let want = safetensors::SafeTensors::deserialize(&want_bytes).unwrap();
        let mut names: Vec<String> = got.names().into_iter().map(str::to_string).collect();
        let mut want_names: Vec<String> = want.names().into_iter().map(str::to_string).collect();
        names.sort();
        want_names.sort();
        assert_eq!(names, want_names, "{source}");
        for n in &names {
            let (g, w) = (got.tensor(n).unwrap(), want.tensor(n).unwrap());
            assert_eq!(g.dtype(), w.dtype(), "{source} {n}");
            assert_eq!(g.shape(), w.shape(), "{source} {n}");
            assert_eq!(g.data(), w.data(), "{source} {n}");
        }
        let (_, meta) = safetensors::SafeTensors::read_metadata(&got_bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(
            meta["source"],
            Path::new(source).file_name().unwrap().to_str().unwrap()
        );
        assert_eq!(
            meta["source_sha256"],
            cargo_infer::util::sha256_file(&src).unwrap()
        );
    }
}

#[test]
fn a_nested_key_is_picked_and_checkpoint_values_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let src = fixtures().join("checkpoint.pt");
    let o = convert(&[
        src.to_str().unwrap(),
        out.to_str().unwrap(),
        "--key",
        "state_dict",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tensors"], 4);
    assert_eq!(v["metadata"]["epoch"], "7");
    assert_eq!(v["metadata"]["state_dict_key"], "state_dict");
    // A key that holds nothing names the keys that do.
    let other = dir.path().join("other.safetensors");
    let o = convert(&[
        src.to_str().unwrap(),
        other.to_str().unwrap(),
        "--key",
        "ema",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`ema`") && err.contains("state_dict"), "{err}");
    assert!(!other.exists());
}

#[test]
fn refusals_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = Path::new(PWNED);
    let _ = std::fs::remove_file(marker);
    let mut cases: Vec<(PathBuf, &str, Vec<&str>)> = MALICIOUS
        .iter()
        .map(|m| (fixtures().join(m), "unsafe pickle", vec![]))
        .collect();
    cases.extend([
        (fixtures().join("tiny-llama.gguf"), "GGUF", vec![]),
        (fixtures().join("mlp.onnx"), "--key", vec!["--key", "model"]),
        (
            fixtures().join("bad/lfs-pointer.onnx"),
            "lfs-pointer.onnx",
            vec![],
        ),
        (fixtures().join("missing.pt"), "missing.pt", vec![]),
    ]);
    for (src, want, extra) in cases {
        let out = dir.path().join("out.safetensors");
        let mut args = vec![src.to_str().unwrap(), out.to_str().unwrap()];
        args.extend(extra);
        let o = convert(&args);
        let err = one_line_error(&o, &src.display().to_string());
        assert!(err.contains(want), "{}: {err}", src.display());
        assert!(!out.exists(), "{}", src.display());
    }
    assert!(!marker.exists(), "a payload ran");
    // Not a .safetensors name; an existing output without --force is left as it was.
    let o = convert(&[
        fixtures().join("mlp.onnx").to_str().unwrap(),
        dir.path().join("w.bin").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let existing = dir.path().join("keep.safetensors");
    std::fs::write(&existing, b"precious").unwrap();
    let o = convert(&[
        fixtures().join("mlp.onnx").to_str().unwrap(),
        existing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
    let o = convert(&[
        fixtures().join("mlp.onnx").to_str().unwrap(),
        existing.to_str().unwrap(),
        "--force",
    ]);
    assert!(o.status.success());
    assert_ne!(std::fs::read(&existing).unwrap(), b"precious");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".cargo-infer-"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Converts `src` (all dtypes) and checks the output with Python's safetensors against
/// `reference`, and with the safetensors crate value by value.
fn round_trips(src: &Path, reference: &str) {
    let dir = tempfile::tempdir().unwrap();
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/convert_check.py");
    for dtype in ["none", "f16", "bf16", "f32"] {
        let out = dir.path().join(format!("{dtype}.safetensors"));
        let mut args = vec![src.to_str().unwrap(), out.to_str().unwrap()];
        if dtype != "none" {
            args.extend(["--dtype", dtype]);
        }
        let o = convert(&args);
        crate::common::assert_success(&o, &format!("{} {dtype}", src.display()));
        let py = Process::new("python3")
            .arg(&checker)
            .arg(&out)
            .arg("safetensors")
            .arg(fixtures().join(reference))
            .arg(dtype)
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "{} {dtype}: python says\n{}{}",
            src.display(),
            String::from_utf8_lossy(&py.stdout),
            String::from_utf8_lossy(&py.stderr)
        );
        if dtype == "none" {
            let got_bytes = std::fs::read(&out).unwrap();
            let want_bytes = std::fs::read(fixtures().join(reference)).unwrap();
            let got = safetensors::SafeTensors::deserialize(&got_bytes).unwrap();
            let want = safetensors::SafeTensors::deserialize(&want_bytes).unwrap();
            let mut names = got.names();
            let mut want_names = want.names();
            names.sort();
            want_names.sort();
            assert_eq!(names, want_names, "{}", src.display());
            for n in names {
                let (g, w) = (got.tensor(n).unwrap(), want.tensor(n).unwrap());
                assert_eq!(
                    (g.dtype(), g.shape(), g.data()),
                    (w.dtype(), w.shape(), w.data()),
                    "{} {n}",
                    src.display()
                );
            }
        }
    }
}

#[test]
fn a_recent_torch_zip_with_zip64_records_converts_to_what_torch_reads() {
    // torch 2.13's archive layout (data descriptors, version-needed 0, ZIP64 end record and
    // locator, .storage_alignment, .data/serialization_id) with a 76-byte first central header;
    // the reference is what torch.load returned, saved by safetensors.torch.
    let src = fixtures().join("torch213_zip64.pt");
    round_trips(&src, "check/torch213_zip64.safetensors");
    // The same with its end record deferring to the ZIP64 record (0xffff / 0xffffffff fields).
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(&src).unwrap();
    let eocd = bytes.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
    bytes[eocd + 8..eocd + 20].copy_from_slice(&[0xff; 12]);
    let p = dir.path().join("zip64-end.pt");
    std::fs::write(&p, &bytes).unwrap();
    round_trips(&p, "check/torch213_zip64.safetensors");
}

#[test]
fn a_legacy_stream_in_key_list_order_converts_to_what_torch_reads() {
    // torch 0.4 on Windows: storages follow the key list's order, not the tensors'.
    round_trips(
        &fixtures().join("legacy_keys_order.pt"),
        "check/legacy_keys_order.safetensors",
    );
}

#[test]
fn tensors_larger_than_memory_are_refused_before_reading() {
    // A legacy stream that honestly holds a 2 TiB float32 storage (a sparse file): inspect
    // reports it; convert, which holds every tensor in memory, refuses it up front.
    let numel: u64 = 1 << 39;
    let mut long = b"\x8a\x06".to_vec();
    long.extend_from_slice(&numel.to_le_bytes()[..6]);
    let mut f =
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.\x80\x02}."
            .to_vec();
    f.extend_from_slice(b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu");
    f.extend_from_slice(&long);
    f.extend_from_slice(b"NtQK\x00");
    f.extend_from_slice(&long);
    f.extend_from_slice(b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.");
    f.extend_from_slice(b"\x80\x02]X\x01\x00\x00\x000a.");
    f.extend_from_slice(&numel.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("huge.pt");
    let file = std::fs::File::create(&src).unwrap();
    std::io::Write::write_all(&mut &file, &f).unwrap();
    file.set_len(f.len() as u64 + numel * 4).unwrap();
    drop(file);
    let o = crate::common::cargo_infer()
        .args(["inspect", "--format", "json"])
        .arg(&src)
        .output()
        .unwrap();
    crate::common::assert_success(&o, "inspect huge.pt");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["weight_bytes"], numel * 4);
    let out = dir.path().join("out.safetensors");
    let o = convert(&[src.to_str().unwrap(), out.to_str().unwrap()]);
    let err = one_line_error(&o, "huge.pt");
    assert!(
        err.contains("huge.pt") && err.contains("in memory"),
        "{err}"
    );
    assert!(!out.exists());
}

/// `convert --for tract`: the prepared ONNX model loads in plain tract as it is, computes what the
/// original computes on ONNX Runtime, says what changed, stands alone (external data inlined), and
/// nothing is written for a model tract cannot load even prepared or for a bad --const.
#[test]
fn convert_for_tract_writes_a_prepared_model_checked_against_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("if.onnx");
    let f = fixtures();
    let o = crate::common::cargo_infer()
        .args(["convert", "--format", "json"])
        .arg(f.join("forms/if_rank.onnx"))
        .arg(&out)
        .args(["--for", "tract", "--const", "sr=16000", "--dim", "n=8"])
        .output()
        .unwrap();
    crate::common::assert_success(&o, "convert --for tract");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let said = v["rewrites"].to_string();
    for s in [
        "folded If `If_sr` to its then branch (sr = 16000)",
        "folded If `If_sr/then_branch/If_wide` to its then branch (sr = 16000)",
        "pinned `x` to [1, 8]",
    ] {
        assert!(said.contains(s), "no `{s}` in {said}");
    }
    let comparisons = v["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len(), 2, "{v}");
    assert!(comparisons.iter().all(|c| c["pass"] == true), "{v}");
    // Plain tract takes the written file as it is.
    let (code, report) = crate::common::check_json(&[out.to_str().unwrap(), "--backend", "tract"]);
    assert_eq!(code, 0, "{report}");
    assert!(!report.to_string().contains("preparation"), "{report}");

    // External data is inlined: the file alone, moved elsewhere, still runs.
    let alone = tempfile::tempdir().unwrap();
    let ext = dir.path().join("ext.onnx");
    let o = convert(&[
        f.join("mlp_external.onnx").to_str().unwrap(),
        ext.to_str().unwrap(),
        "--for",
        "tract",
    ]);
    crate::common::assert_success(&o, "convert --for tract (external data)");
    assert!(String::from_utf8_lossy(&o.stderr).contains("inlined"));
    std::fs::copy(&ext, alone.path().join("ext.onnx")).unwrap();
    let (code, report) = crate::common::check_json(&[
        alone.path().join("ext.onnx").to_str().unwrap(),
        "--backend",
        "tract",
    ]);
    assert_eq!(code, 0, "{report}");

    // Refusals write nothing.
    let never = dir.path().join("never.onnx");
    for (args, phrase) in [
        (
            vec![f.join("forms/if_data.onnx").display().to_string()],
            "tract cannot load it even prepared: optimise: node `neg` (Neg)",
        ),
        (
            vec![
                f.join("forms/if_rank.onnx").display().to_string(),
                "--const".into(),
                "rate=8000".into(),
            ],
            "the model has no input `rate`",
        ),
    ] {
        let o = crate::common::cargo_infer()
            .arg("convert")
            .arg(&args[0])
            .arg(&never)
            .args(["--for", "tract"])
            .args(&args[1..])
            .output()
            .unwrap();
        let err = one_line_error(&o, phrase);
        assert!(err.contains(phrase), "{err}");
        assert!(!never.exists());
    }
}

/// `--input-shape` on an ONNX model sets its symbolic dimensions (`check`, `convert --for tract`),
/// and refuses, as one line, a name the model lacks, another rank, a fixed dimension changed, or
/// another dtype.
#[test]
fn input_shape_sets_an_onnx_models_symbolic_dimensions() {
    let cnn = fixtures().join("cnn.onnx");
    let (code, v) = crate::common::check_json(&[
        cnn.to_str().unwrap(),
        "--backend",
        "tract",
        "--input-shape",
        "image=3x3x16x16",
    ]);
    assert_eq!(code, 0, "{v}");
    let tract = crate::common::backend(&v["models"][0], "tract");
    assert_eq!(
        tract["outputs"][0]["shape"],
        serde_json::json!([3, 10]),
        "{v}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cnn3.onnx");
    let o = convert(&[
        cnn.to_str().unwrap(),
        out.to_str().unwrap(),
        "--for",
        "tract",
        "--input-shape",
        "image=3x3x16x16",
    ]);
    crate::common::assert_success(&o, "convert --for tract --input-shape");
    let written = tract_onnx::pb::ModelProto::decode(&std::fs::read(&out).unwrap()[..]).unwrap();
    let input = &written.graph.unwrap().input[0];
    let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
        input.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        panic!("{input:?}")
    };
    let dims: Vec<_> = t
        .shape
        .as_ref()
        .unwrap()
        .dim
        .iter()
        .map(|d| match d.value {
            Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(v)) => v,
            _ => -1,
        })
        .collect();
    assert_eq!(dims, [3, 3, 16, 16]);

    for (shape, says) in [
        ("picture=1x3x16x16", "no such input"),
        ("image=1x3x16", "rank 4"),
        ("image=1x4x16x16", "dimension 1"),
        ("image=1x3x16x16:int64", "float32, not int64"),
    ] {
        let o = crate::common::cargo_infer()
            .args(["check", "--backend", "tract", "--input-shape", shape])
            .arg(&cnn)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{shape}");
        let err =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{shape}: {err}");
        let target = dir.path().join("refused.onnx");
        let o = convert(&[
            cnn.to_str().unwrap(),
            target.to_str().unwrap(),
            "--for",
            "tract",
            "--input-shape",
            shape,
        ]);
        let err = crate::common::one_line_error(&o, shape);
        assert!(err.contains(says), "{shape}: {err}");
        assert!(!target.exists());
    }
}
