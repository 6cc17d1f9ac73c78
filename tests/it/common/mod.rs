//! Helpers shared by the CLI tests.
#![allow(dead_code)]

pub mod onnx;
pub mod project;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The binary, with `check`'s content cache off (tests that are about the cache turn it on with
/// `env_remove("CARGO_INFER_NO_CACHE")` and their own `--cache-dir`).
pub fn cargo_infer() -> Command {
    let mut cmd = Command::cargo_bin("cargo-infer").unwrap();
    cmd.env("CARGO_INFER_NO_CACHE", "1");
    cmd
}

/// Asserts that a command succeeded, showing its stderr (and `what`) when it did not.
pub fn assert_success(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that a command was refused the way every user mistake is — exit 2 and exactly one
/// line on stderr — and returns that line.
pub fn one_line_error(out: &std::process::Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    err
}

/// Runs check with JSON output; returns the exit code and the report.
pub fn check_json(args: &[&str]) -> (i32, Value) {
    let out = cargo_infer()
        .arg("check")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

/// One back end's entry in a model's report.
pub fn backend<'a>(model: &'a Value, name: &str) -> &'a Value {
    model["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {model}"))
}

/// `doctor --format json`'s entry for a back end.
pub fn doctor_backend(name: &str) -> Value {
    let out = cargo_infer()
        .args(["doctor", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

/// The malicious fixtures; their payload would create [`PWNED`].
pub const MALICIOUS: [&str; 3] = [
    "malicious_global.pt",
    "malicious_memo.pkl",
    "malicious_nested.pt",
];

pub const PWNED: &str = "/tmp/cargo-infer-pwned";

/// Writes a float32 .npy by hand (the format is a magic, a header dict and the data).
pub fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for v in values {
        bytes.extend(v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}
