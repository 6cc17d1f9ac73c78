//! `cargo infer inspect` against every fixture, compared with what the generator wrote
//! (`fixtures/expected.json`), and against every kind of bad input.

use std::path::Path;

use serde_json::Value;

mod common;
use common::{cargo_infer, fixtures, one_line_error};

fn expected() -> serde_json::Map<String, Value> {
    let text =
        std::fs::read_to_string(fixtures().join("expected.json")).expect("fixtures/expected.json");
    serde_json::from_str(&text).unwrap()
}

fn inspect_json(path: &Path) -> Value {
    let out = cargo_infer()
        .args(["inspect", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Fields every fixture entry may state; each is compared when the generator wrote it.
#[test]
fn every_fixture_reads_as_the_generator_wrote_it() {
    let mut checked = 0;
    for (name, want) in expected() {
        if want.get("error").is_some() {
            continue;
        }
        let got = inspect_json(&fixtures().join(&name));
        let ctx = |field: &str| format!("{name}: field `{field}`");
        for field in [
            "format",
            "inputs",
            "outputs",
            "operators",
            "opsets",
            "tensor_count",
            "parameters",
            "weight_bytes",
        ] {
            if let Some(w) = want.get(field) {
                assert_eq!(&got[field], w, "{}", ctx(field));
            }
        }
        if let Some(w) = want.get("metadata").filter(|m| !m.is_null()) {
            assert_eq!(&got["metadata"], w, "{}", ctx("metadata"));
        }
        if let Some(w) = want.get("architecture") {
            assert_eq!(
                &got["architecture"]["class"],
                w,
                "{}",
                ctx("architecture.class")
            );
            assert!(
                !got["architecture"]["reasons"]
                    .as_array()
                    .unwrap()
                    .is_empty(),
                "{}",
                ctx("architecture.reasons")
            );
        }
        assert_eq!(
            &got["safety"]["verdict"],
            &want["safety"],
            "{}",
            ctx("safety")
        );
        for (field, key) in [
            ("custom_domains", "custom_domains"),
            ("state_dict_key", "state_dict_key"),
            ("signature", "signature"),
        ] {
            if let Some(w) = want.get(field) {
                let g = &got[key];
                if field == "signature" {
                    // The archive spells the receiver's type; the argument list is what matters.
                    assert!(
                        g.as_str().unwrap().contains("x: Tensor) -> Tensor"),
                        "{}: {g}",
                        ctx(field)
                    );
                } else {
                    assert_eq!(g, w, "{}", ctx(field));
                }
            }
        }
        if let Some(w) = want.get("external_data") {
            let files: Vec<&Value> = got["external_data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| &f["file"])
                .collect();
            assert_eq!(
                files,
                w.as_array().unwrap().iter().collect::<Vec<_>>(),
                "{}",
                ctx("external_data")
            );
            assert!(got["external_data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["exists"] == true));
        }
        let tensors = got["tensors"].as_array().unwrap();
        if let Some(w) = want.get("tensor_names") {
            let mut names: Vec<&str> = tensors
                .iter()
                .map(|t| t["name"].as_str().unwrap())
                .collect();
            let mut want: Vec<&str> = w
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            names.sort();
            want.sort();
            assert_eq!(names, want, "{}", ctx("tensors"));
        }
        if let Some(w) = want.get("tensors") {
            for (tname, t) in w.as_object().unwrap() {
                let g = tensors
                    .iter()
                    .find(|g| g["name"] == tname.as_str())
                    .unwrap_or_else(|| panic!("{}: no {tname}", ctx("tensors")));
                assert_eq!(g["shape"], t["shape"], "{}: {tname}", ctx("tensors"));
                assert_eq!(g["dtype"], t["dtype"], "{}: {tname}", ctx("tensors"));
            }
        }
        if let Some(w) = want.get("sizes") {
            for (k, v) in w.as_object().unwrap() {
                assert_eq!(&got["sizes"][k], v, "{}: {k}", ctx("sizes"));
            }
        }
        if let Some(w) = want.get("metadata_keys") {
            for (k, v) in w.as_object().unwrap() {
                assert_eq!(&got["metadata"][k], v, "{}: {k}", ctx("metadata"));
            }
        }
        if let Some(w) = want.get("dangerous") {
            let findings = got["safety"]["findings"].to_string();
            for g in w.as_array().unwrap() {
                assert!(
                    findings.contains(g.as_str().unwrap()),
                    "{}: {findings}",
                    ctx("findings")
                );
            }
        } else {
            assert_eq!(
                got["safety"]["findings"],
                serde_json::json!([]),
                "{}",
                ctx("findings")
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} fixtures checked");
}

#[test]
fn bad_files_are_one_line_errors_with_exit_2() {
    let mut checked = 0;
    for (name, want) in expected() {
        let Some(phrase) = want.get("error").and_then(Value::as_str) else {
            continue;
        };
        let path = fixtures().join(&name);
        let out = cargo_infer().arg("inspect").arg(&path).output().unwrap();
        assert!(out.stdout.is_empty(), "{name}: wrote to stdout");
        let err = one_line_error(&out, &name);
        assert!(
            err.contains(&path.display().to_string()),
            "{name}: does not name the file: {err}"
        );
        assert!(err.contains(phrase), "{name}: `{err}` lacks `{phrase}`");
        checked += 1;
    }
    assert!(checked >= 8);
}

#[test]
fn missing_file_and_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    for (path, phrase) in [
        (dir.path().join("nope.onnx"), "no such file"),
        (dir.path().to_path_buf(), "holds no model"),
    ] {
        let out = cargo_infer().arg("inspect").arg(&path).output().unwrap();
        let err = one_line_error(&out, &path.display().to_string());
        assert!(
            err.contains(&path.display().to_string()) && err.contains(phrase),
            "{err}"
        );
    }
}

/// Every regular fixture, cut at many offsets: each cut is an error that names the file, or — for
/// ONNX only, whose top-level fields may end exactly at the cut — a reading that lost nothing but
/// trailing metadata. Never a panic.
#[test]
fn truncations_at_many_offsets_never_panic_and_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cuts = 0;
    for (name, want) in expected() {
        let src = fixtures().join(&name);
        if want.get("error").is_some() || !src.is_file() {
            continue;
        }
        let bytes = std::fs::read(&src).unwrap();
        let full = cargo_infer::model::inspect(&src).unwrap();
        let target = dir.path().join(src.file_name().unwrap());
        // Keep the siblings a model refers to (external data, shards) next to the cut copy.
        for sib in std::fs::read_dir(src.parent().unwrap()).unwrap() {
            let sib = sib.unwrap().path();
            if sib.is_file() && sib != src {
                std::fs::copy(&sib, dir.path().join(sib.file_name().unwrap())).unwrap();
            }
        }
        let mut offsets: Vec<usize> = (0..bytes.len().min(64)).collect();
        let step = (bytes.len() / 97).max(1);
        offsets.extend((64..bytes.len()).step_by(step));
        offsets.push(bytes.len() - 1);
        for &at in &offsets {
            std::fs::write(&target, &bytes[..at]).unwrap();
            match cargo_infer::model::inspect(&target) {
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with(&target.display().to_string()),
                        "{name}@{at}: {msg}"
                    );
                    assert_eq!(msg.lines().count(), 1, "{name}@{at}: {msg}");
                }
                Ok(info) => {
                    assert_eq!(
                        info.format,
                        cargo_infer::model::Format::Onnx,
                        "{name} cut at {at} of {} read as valid",
                        bytes.len()
                    );
                    assert_eq!(
                        (&info.inputs, &info.outputs, &info.operators, &info.tensors),
                        (&full.inputs, &full.outputs, &full.operators, &full.tensors),
                        "{name} cut at {at} read as a different model"
                    );
                }
            }
            cuts += 1;
        }
        for sib in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(sib.unwrap().path()).unwrap();
        }
    }
    assert!(cuts > 1000, "{cuts}");
}

/// Flipped bytes anywhere in every fixture: a reading or an error, never a panic or a hang.
#[test]
fn corrupted_bytes_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (name, want) in expected() {
        let src = fixtures().join(&name);
        if want.get("error").is_some() || !src.is_file() {
            continue;
        }
        let bytes = std::fs::read(&src).unwrap();
        let target = dir.path().join(src.file_name().unwrap());
        for _ in 0..200 {
            let mut b = bytes.clone();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            std::fs::write(&target, &b).unwrap();
            if let Err(e) = cargo_infer::model::inspect(&target) {
                assert_eq!(e.to_string().lines().count(), 1, "{name}: {e}");
            }
        }
    }
}

#[test]
fn malicious_pickles_are_reported_and_never_run() {
    let marker = Path::new(common::PWNED);
    let _ = std::fs::remove_file(marker);
    for name in common::MALICIOUS {
        let got = inspect_json(&fixtures().join(name));
        assert_eq!(got["safety"]["verdict"], "unsafe", "{name}");
        assert_eq!(got["safety"]["risk"], "dangerous", "{name}");
        // The human summary says so too, and the exit code is 0: inspect reports, it does not judge.
        let out = cargo_infer()
            .args(["inspect", "--color", "never"])
            .arg(fixtures().join(name))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("UNSAFE"),
            "{name}"
        );
    }
    assert!(!marker.exists(), "a payload ran");
}

#[test]
fn runs_as_a_cargo_subcommand_and_directly() {
    let model = fixtures().join("mlp.onnx");
    for args in [vec!["infer", "inspect"], vec!["inspect"]] {
        let out = cargo_infer()
            .args(&args)
            .arg(&model)
            .args(["--color", "never"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("ONNX model")
                && text.contains("[batch, 4]")
                && text.contains("class  mlp"),
            "{text}"
        );
    }
    // `--message-format` is the same flag as `--format`.
    let out = cargo_infer()
        .args(["inspect", "--message-format", "json"])
        .arg(&model)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "onnx");
}

#[test]
fn format_comes_from_bytes_not_extension() {
    let dir = tempfile::tempdir().unwrap();
    for (src, disguise, format) in [
        ("mlp.onnx", "model.bin", "onnx"),
        ("mlp.safetensors", "weights.onnx", "safetensors"),
        ("tiny-llama.gguf", "model.pt", "gguf"),
        ("state_dict.pt", "model.safetensors", "pytorch"),
    ] {
        let p = dir.path().join(disguise);
        std::fs::copy(fixtures().join(src), &p).unwrap();
        assert_eq!(inspect_json(&p)["format"], format, "{src} as {disguise}");
    }
}

#[test]
fn help_shows_an_example_for_every_command() {
    let out = cargo_infer().args(["inspect", "--help"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cargo infer inspect model.onnx"));
}

#[test]
fn missing_external_data_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("mlp_external.onnx");
    std::fs::copy(fixtures().join("mlp_external.onnx"), &p).unwrap();
    let got = inspect_json(&p);
    assert_eq!(
        got["external_data"],
        serde_json::json!([{"file": "mlp_external.onnx.data", "exists": false}])
    );
    assert_eq!(got["parameters"], 1410);
    let out = cargo_infer()
        .args(["inspect", "--color", "never"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("mlp_external.onnx.data (MISSING)"));
}
