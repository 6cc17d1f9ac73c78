//! The human output of `inspect`, `check`, `decide` and `doctor` on fixtures, as insta snapshots
//! (tests/it/snapshots/). What depends on the machine or the moment — timings, memory, library
//! paths and versions — is redacted; everything else (layout, words, numbers of the model) is
//! compared whole, so a change to what users read shows up in review as a snapshot diff.
//!
//! To accept an intended change: `cargo insta review` (or `INSTA_UPDATE=always cargo test --test
//! it snapshots` and read the diff). Under `CI=true` a missing or different snapshot fails.

use crate::common::{cargo_infer, fixtures};

/// Runs the binary in the fixtures directory (so that paths print as the fixture's relative
/// path) and returns stdout and stderr with the exit code, as one text.
fn run(args: &[&str]) -> String {
    // doctor's tch row names a libtorch it finds (LIBTORCH, python3's torch): none, here, so
    // the snapshot is the same on every machine.
    let out = cargo_infer()
        .current_dir(fixtures())
        .env("LIBTORCH", "/nonexistent/libtorch")
        .args(args)
        .output()
        .unwrap();
    let mut text = format!("exit {}\n", out.status.code().unwrap_or(-1));
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.is_empty() {
        text.push_str("--- stderr\n");
        text.push_str(&err);
    }
    text
}

/// Asserts a snapshot with the redactions every command's output needs.
macro_rules! snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            filters => vec![
                // Durations as `check` and `decide` print them (`3.54 ms`, `102 µs`, `1.2 s`).
                (r"\b\d+(\.\d+)? ?(ns|µs|ms|s)\b", "[time]"),
                (r"peak RSS \d+(\.\d+)? [kMG]?B", "peak RSS [rss]"),
                // Library versions and where they were found.
                (r"tract-onnx \d+\.\d+\.\d+", "tract-onnx [version]"),
                (r"onnxruntime \d+\.\d+\.\d+ \([^)]*\)", "onnxruntime [version] ([path])"),
                (r"\(harness in [^)]*\)", "(harness in [path])"),
                // Rows of doctor that say what this machine has (targets installed, a GPU).
                (r"(?m)^  (ok|no)   (wasm32|bare-metal|cuda-driver) *.*$", "  [state] $2 [detail]"),
                (r"(?m)^installed targets: .*$", "installed targets: [targets]"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $text);
        });
    };
}

#[test]
fn inspect_human_output() {
    for (name, file) in [
        ("inspect_onnx", "mlp.onnx"),
        ("inspect_safetensors", "mlp.safetensors"),
        ("inspect_pytorch", "state_dict.pt"),
        ("inspect_gguf", "tiny-llama.gguf"),
        ("inspect_unsafe_pickle", "malicious_global.pt"),
        ("inspect_hf_directory", "tiny-bert"),
    ] {
        snapshot!(name, run(&["inspect", file]));
    }
}

#[test]
fn check_human_output() {
    snapshot!("check_pass", run(&["check", "mlp.onnx"]));
    snapshot!(
        "check_unsupported_operators",
        run(&["check", "unsupported_op.onnx"])
    );
    snapshot!(
        "check_fail_with_bisect",
        run(&[
            "check",
            "bisect/cnn.onnx",
            "--pair",
            "bisect/cnn_altered.onnx"
        ])
    );
    snapshot!("check_bad_file", run(&["check", "bad/empty.onnx"]));
}

#[test]
fn decide_human_output() {
    snapshot!("decide_onnx", run(&["decide", "mlp.onnx"]));
    snapshot!(
        "decide_wasm",
        run(&["decide", "cnn.onnx", "--target", "wasm32-unknown-unknown"])
    );
    snapshot!("decide_hf_directory", run(&["decide", "tiny-bert"]));
}

#[test]
fn doctor_human_output() {
    snapshot!("doctor", run(&["doctor"]));
}
