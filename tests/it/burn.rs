//! `check --backend burn`: the model as burn-onnx turns it into Rust, built into a cached harness
//! and checked against tract and ONNX Runtime. The harnesses build in the scaffold tests' shared
//! target directory, so burn compiles once for them and for the burn projects `init` makes.

use serde_json::Value;

use crate::common::project::{shared_target, shared_target_env};
use crate::common::{backend, cargo_infer, fixtures};

fn check_burn(model: &str, extra: &[&str]) -> (i32, Value) {
    let out = cargo_infer()
        .envs(shared_target_env())
        .arg("check")
        .arg(fixtures().join(model))
        .args(["--backend", "burn", "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{model}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

fn compared(m: &Value, left: &str, right: &str) -> bool {
    m["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["left"] == left && c["right"] == right && c["pass"] == true)
}

#[test]
fn burn_runs_the_generated_code_and_is_checked_against_tract_and_ort() {
    for model in ["mlp.onnx", "cnn.onnx", "lstm.onnx"] {
        let (code, v) = check_burn(model, &[]);
        let m = &v["models"][0];
        assert_eq!(code, 0, "{model}: {m}");
        assert_eq!(backend(m, "burn")["status"], "pass", "{model}: {m}");
        assert_eq!(backend(m, "burn")["required"], true);
        assert!(
            compared(m, "burn", "tract") && compared(m, "burn", "ort"),
            "{model}: {m}"
        );
    }

    // A MobileNet-style tail on a 1x1 image (the size `check` gives symbolic dimensions): burn
    // floors the MaxPool's output to nothing where tract and ONNX Runtime keep one pixel. burn is
    // the one that disagrees with both, so it alone fails; at 4x4 all three agree.
    let (code, v) = check_burn("burn/maxpool_over_input.onnx", &[]);
    let m = &v["models"][0];
    assert_eq!(code, 1, "{m}");
    assert_eq!(backend(m, "burn")["status"], "fail", "{m}");
    for other in ["tract", "ort"] {
        assert_eq!(backend(m, other)["status"], "pass", "{other}: {m}");
    }
    assert!(compared(m, "tract", "ort"), "{m}");
    let (code, v) = check_burn(
        "burn/maxpool_over_input.onnx",
        &["--dim", "height=4", "--dim", "width=4"],
    );
    assert_eq!(code, 0, "{v}");

    // What burn-onnx refuses at build time is unsupported, in its own words, with the ONNX name
    // of the node it names by its own.
    let (code, v) = check_burn("burn/same_lower_dynamic.onnx", &[]);
    let m = &v["models"][0];
    assert_eq!(code, 1, "{m}");
    let b = backend(m, "burn");
    assert_eq!(b["status"], "unsupported", "{m}");
    let msg = b["message"].as_str().unwrap();
    assert!(
        msg.starts_with("burn-onnx 0.22.0 cannot import it:")
            && msg.contains("SAME_LOWER")
            && msg.contains("'conv2d1' (ONNX node `conv`)"),
        "{msg}"
    );
    for other in ["tract", "ort"] {
        assert_eq!(backend(m, other)["status"], "pass", "{other}: {m}");
    }
}

/// burn builds a crate: never run unasked, by `auto` or `all`.
#[test]
fn burn_runs_only_when_asked_for_by_name() {
    for choice in [&[][..], &["--backend", "all"][..]] {
        let out = cargo_infer()
            .arg("check")
            .arg(fixtures().join("mlp.onnx"))
            .args(choice)
            .args(["--format", "json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let names: Vec<&str> = v["models"][0]["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        assert!(!names.contains(&"burn"), "{choice:?}: {names:?}");
    }
}

/// `decide --probe-burn` runs burn's generated code against the others: a model burn computes
/// differently excludes burn; plain `--probe` leaves burn to its operator list.
#[test]
fn decide_probe_burn_excludes_burn_where_it_computes_differently() {
    let decide = |flags: &[&str]| -> Value {
        let out = cargo_infer()
            .envs(shared_target_env())
            .arg("decide")
            .arg(fixtures().join("burn/maxpool_over_input.onnx"))
            .args(flags)
            .args(["--format", "json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let burn = |v: &Value| -> Value {
        v["ranking"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["framework"] == "burn")
            .cloned()
            .unwrap()
    };
    let v = decide(&["--probe-burn"]);
    let b = burn(&v);
    assert_eq!(b["verdict"], "excluded", "{v}");
    assert!(b["reasons"].to_string().contains("disagrees with"), "{b}");
    let v = decide(&["--probe"]);
    assert_ne!(burn(&v)["verdict"], "excluded", "{v}");
    assert!(v["evidence"]["probe"].get("burn").is_none(), "{v}");
}

/// `init --framework burn` records the project's outputs with burn itself when its harness is
/// warm (after burn agrees with tract on them), and refuses a model burn computes differently;
/// with a cold harness it records with tract, and the project says which.
#[test]
fn init_for_burn_records_with_burn_when_its_harness_is_warm() {
    // Warm: burn compiled in the shared target directory.
    let (code, v) = check_burn("mlp.onnx", &[]);
    assert_eq!(code, 0, "{v}");
    let dir = tempfile::tempdir().unwrap();
    let init = |model: &str, target: &std::path::Path, name: &str| {
        cargo_infer()
            .env("CARGO_TARGET_DIR", target)
            .env("CARGO_PROFILE_DEV_DEBUG", "false")
            .arg("init")
            .arg(dir.path().join(name))
            .arg("--model")
            .arg(fixtures().join(model))
            .args(["--framework", "burn"])
            .output()
            .unwrap()
    };
    let out = init("mlp.onnx", &shared_target(), "warm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let readme = std::fs::read_to_string(dir.path().join("warm/README.md")).unwrap();
    assert!(
        readme.contains("recorded with burn-onnx 0.22.0"),
        "{readme}"
    );

    // burn floors this MaxPool to nothing where tract keeps a pixel: no project is written.
    let out = init("burn/maxpool_over_input.onnx", &shared_target(), "wrong");
    let err = crate::common::one_line_error(&out, "init burn on a model burn computes differently");
    assert!(err.contains("burn computes another"), "{err}");
    assert!(!dir.path().join("wrong").exists());

    // Cold (a target directory without burn): tract records, and the README says so.
    let cold = tempfile::tempdir().unwrap();
    let out = init("mlp.onnx", cold.path(), "cold");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let readme = std::fs::read_to_string(dir.path().join("cold/README.md")).unwrap();
    assert!(readme.contains("recorded with tract-onnx"), "{readme}");
}
