//! The tch back end (TorchScript on libtorch), built with `--features tch`: `cargo xtask ci`
//! installs libtorch 2.13 and runs these. Without the feature this file is not built (see
//! Cargo.toml); tests/check.rs asserts what the default build says instead.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;

#[path = "it/common/mod.rs"]
mod common;
use common::{assert_success, backend, check_json, fixtures, MALICIOUS, PWNED};

fn fixture(name: &str) -> String {
    fixtures().join(name).to_string_lossy().into_owned()
}

#[test]
fn doctor_reports_libtorch() {
    let tch = common::doctor_backend("tch");
    assert_eq!(tch["status"], "available", "{tch}");
    assert!(
        tch["detail"].as_str().unwrap().contains("libtorch_cpu"),
        "{tch}"
    );
}

#[test]
fn torchscript_runs_with_given_shapes() {
    let (code, v) = check_json(&[
        &fixture("mlp.torchscript.pt"),
        "--input-shape",
        "x=3x4",
        "--runs",
        "3",
    ]);
    let m = &v["models"][0];
    assert_eq!(code, 0, "{v}");
    assert_eq!(m["status"], "pass");
    let tch = backend(m, "tch");
    assert_eq!(tch["status"], "pass");
    assert!(tch["version"].as_str().unwrap().starts_with("tch 0.26.0"));
    assert!(tch["steady_median_ms"].as_f64().is_some());
}

#[test]
fn torchscript_without_shapes_says_what_to_give() {
    let (code, v) = check_json(&[&fixture("mlp.torchscript.pt")]);
    assert_eq!(code, 2, "{v}");
    let msg = v["models"][0]["message"].as_str().unwrap();
    assert!(msg.contains("--input-shape x="), "{msg}");
}

#[test]
fn torchscript_from_an_input_file_against_torch_outputs() {
    // Inputs and the outputs torch itself computed (xtask/fixtures.py); no shapes needed.
    let inputs = fixture("check/mlp.torchscript.inputs.npz");
    let expected = fixture("check/mlp.torchscript.expected.npz");
    let (code, v) = check_json(&[
        &fixture("mlp.torchscript.pt"),
        "--input",
        &inputs,
        "--expected",
        &expected,
    ]);
    assert_eq!(code, 0, "{v}");
    let m = &v["models"][0];
    assert_eq!(m["data_sets"][0], "given");
    let c = &m["comparisons"][0];
    assert_eq!(
        (c["left"].as_str(), c["right"].as_str()),
        (Some("tch"), Some("expected")),
        "{m}"
    );
    assert_eq!(c["pass"], true);

    // The same expected outputs, one value changed by more than the tolerance: caught.
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("expected.npz");
    let mut src = zip::ZipArchive::new(std::fs::File::open(&expected).unwrap()).unwrap();
    let mut dst = zip::ZipWriter::new(std::fs::File::create(&changed).unwrap());
    for i in 0..src.len() {
        let mut f = src.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        let n = data.len();
        let last = f32::from_le_bytes(data[n - 4..].try_into().unwrap()) + 1e-3;
        data[n - 4..].copy_from_slice(&last.to_le_bytes());
        dst.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        dst.write_all(&data).unwrap();
    }
    dst.finish().unwrap();
    let (code, v) = check_json(&[
        &fixture("mlp.torchscript.pt"),
        "--input",
        &inputs,
        "--expected",
        changed.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["models"][0]["comparisons"][0]["output"], "output_0");
    assert_eq!(v["models"][0]["comparisons"][0]["pass"], false);
}

#[test]
fn wrong_input_shape_fails_with_the_error_line_only() {
    let (code, v) = check_json(&[&fixture("mlp.torchscript.pt"), "--input-shape", "x=2x5"]);
    assert_eq!(code, 1, "{v}");
    let msg = backend(&v["models"][0], "tch")["message"].as_str().unwrap();
    assert!(
        msg.contains("mat1 and mat2 shapes cannot be multiplied"),
        "{msg}"
    );
    assert!(
        !msg.contains('\n') && !msg.contains("frame #") && !msg.contains("Traceback"),
        "{msg}"
    );
}

#[test]
fn a_broken_archive_fails_with_one_line() {
    // The TorchScript archive without its constants: libtorch refuses it with a C++ backtrace.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.pt");
    let mut src =
        zip::ZipArchive::new(std::fs::File::open(fixtures().join("mlp.torchscript.pt")).unwrap())
            .unwrap();
    let mut dst = zip::ZipWriter::new(std::fs::File::create(&broken).unwrap());
    for i in 0..src.len() {
        let mut f = src.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        if name.ends_with("constants.pkl") {
            continue;
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        dst.start_file(
            name,
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
        dst.write_all(&data).unwrap();
    }
    dst.finish().unwrap();
    let (code, v) = check_json(&[broken.to_str().unwrap(), "--input-shape", "x=1x4"]);
    assert_eq!(code, 1, "{v}");
    let msg = backend(&v["models"][0], "tch")["message"].as_str().unwrap();
    assert!(msg.starts_with("load: "), "{msg}");
    assert!(msg.contains("constants.pkl"), "{msg}");
    assert!(!msg.contains('\n') && !msg.contains("frame #"), "{msg}");
}

#[test]
fn cuda_is_asked_for_and_not_faked() {
    let (code, v) = check_json(&[
        &fixture("mlp.torchscript.pt"),
        "--input-shape",
        "x=1x4",
        "--device",
        "cuda",
    ]);
    assert_eq!(code, 1, "{v}");
    let tch = backend(&v["models"][0], "tch");
    assert_eq!(tch["status"], "error");
    assert!(tch["message"].as_str().unwrap().contains("CUDA"), "{tch}");
}

#[test]
fn torchscript_and_its_onnx_export_agree() {
    let (code, v) = check_json(&[
        &fixture("mlp.torchscript.pt"),
        "--pair",
        &fixture("pair/mlp.onnx"),
        "--dim",
        "batch=4",
    ]);
    assert_eq!(code, 0, "{v}");
    let m = &v["models"][0];
    for b in ["tch", "tract", "ort"] {
        assert_eq!(backend(m, b)["status"], "pass", "{b}: {m}");
    }
    let cmp = m["comparisons"].as_array().unwrap();
    assert!(
        cmp.iter()
            .any(|c| (c["left"] == "tch" || c["right"] == "tch")
                && c["output"] == "probs"
                && c["pass"] == true),
        "{m}"
    );
}

#[test]
fn an_altered_export_is_caught() {
    let (code, v) = check_json(&[
        &fixture("mlp.torchscript.pt"),
        "--pair",
        &fixture("pair/mlp_altered.onnx"),
    ]);
    assert_eq!(code, 1, "{v}");
    let m = &v["models"][0];
    assert_eq!(m["status"], "fail");
    let bad: Vec<&Value> = m["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pass"] == false)
        .collect();
    assert!(!bad.is_empty(), "{m}");
    assert!(bad
        .iter()
        .all(|c| (c["left"] == "tch" || c["right"] == "tch") && c["output"] == "probs"));
    // tract and ort agree with each other: the export changed, not a runtime.
    assert!(m["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["left"] == "tract" && c["right"] == "ort" && c["pass"] == true));
    // TorchScript's intermediate tensors cannot be exposed: bisect says so, once, and why.
    let notes = m["notes"].to_string();
    assert_eq!(
        notes.matches("bisect is not available for tch").count(),
        1,
        "{notes}"
    );
    assert!(notes.contains("it runs torchscript models"), "{notes}");
    assert!(!m.to_string().contains("\"divergence\""), "{m}");
}

#[test]
fn unsafe_checkpoints_fail_before_libtorch_sees_them() {
    let marker = Path::new(PWNED);
    let _ = std::fs::remove_file(marker);
    for name in MALICIOUS {
        let (code, v) = check_json(&[&fixture(name), "--backend", "tch", "--input-shape", "x=1x4"]);
        assert_eq!(code, 1, "{name}: {v}");
        assert!(v["models"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unsafe pickle"));
        assert!(
            v["models"][0]["backends"].as_array().unwrap().is_empty(),
            "{name}: {v}"
        );
    }
    assert!(!marker.exists());
}

/// `init` for a TorchScript module: a tch project (LIBTORCH at build time, its lib directory as
/// run path) whose own `cargo test` reproduces what libtorch computed at scaffold time, and whose
/// binary runs without LD_LIBRARY_PATH.
#[test]
fn init_makes_a_tch_project_that_passes_its_own_test() {
    assert!(
        std::env::var_os("LIBTORCH").is_some(),
        "LIBTORCH must name libtorch for the generated project's build (cargo xtask ci sets it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let project = common::project::init(
        dir.path(),
        "mlp.torchscript.pt",
        &["--input-shape", "x=2x4"],
    );
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("choice = \"tch\""), "{manifest}");
    assert!(manifest.contains("tch = \"=0.26.0\""), "{manifest}");
    let bytes = std::fs::read(project.join("tests/data/input_0.npy")).unwrap();
    assert_eq!(npyz::NpyFile::new(&bytes[..]).unwrap().shape(), &[2, 4]);
    common::project::cargo(&project, &["test"]);
    let run = common::project::project_cargo(&project, &["run", "--quiet", "--offline"])
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert_success(&run, "the tch project's binary without LD_LIBRARY_PATH");
    assert!(String::from_utf8_lossy(&run.stdout).contains("output 0:"));
}

#[test]
fn init_for_torchscript_without_shapes_says_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    let out = common::cargo_infer()
        .arg("init")
        .arg(&project)
        .arg("--model")
        .arg(fixture("mlp.torchscript.pt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--input-shape x="), "{err}");
    assert!(!project.exists());
}
