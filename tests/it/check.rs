//! `cargo infer check` through the CLI, on both back ends. These tests need ONNX Runtime
//! (`cargo xtask ci` installs it): they fail, not skip, when it is missing.

use std::path::Path;

use serde_json::Value;

use crate::common::{backend, cargo_infer, check_json, fixtures, write_npy, MALICIOUS, PWNED};

fn onnx_fixtures() -> Vec<String> {
    let expected: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    expected
        .into_iter()
        .filter(|(k, v)| k.ends_with(".onnx") && v.get("reference").is_some())
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn ort_is_available_here() {
    // CI installs onnxruntime; without it every other test here would prove only half.
    let (_, v) = check_json(&[fixtures().join("mlp.onnx").to_str().unwrap()]);
    let ort = backend(&v["models"][0], "ort");
    assert_eq!(
        ort["status"], "pass",
        "ONNX Runtime not usable here (run `cargo xtask ci`, which installs it): {ort}"
    );
}

/// Every ONNX fixture, with the generator's inputs, against the reference outputs, on both back
/// ends — except the one built to hold operators tract lacks.
#[test]
fn every_fixture_passes_on_both_back_ends_against_reference_outputs() {
    let models = onnx_fixtures();
    assert!(models.len() >= 7, "{models:?}");
    for name in models {
        let stem = name.trim_end_matches(".onnx");
        let inputs = fixtures().join(format!("check/{stem}.inputs.npz"));
        let expected = fixtures().join(format!("check/{stem}.expected.npz"));
        let model = fixtures().join(&name);
        let mut args = vec![
            model.to_str().unwrap(),
            "--input",
            inputs.to_str().unwrap(),
            "--expected",
            expected.to_str().unwrap(),
        ];
        let tract_lacks = name == "unsupported_op.onnx";
        if !tract_lacks {
            args.extend(["--backend", "all"]);
        }
        let (code, v) = check_json(&args);
        let m = &v["models"][0];
        assert_eq!(code, 0, "{name}: {m}");
        assert_eq!(m["status"], "pass", "{name}");
        let comparisons = m["comparisons"].as_array().unwrap();
        for b in if tract_lacks {
            vec!["ort"]
        } else {
            vec!["tract", "ort"]
        } {
            assert_eq!(backend(m, b)["status"], "pass", "{name}: {b}");
            assert!(
                comparisons
                    .iter()
                    .any(|c| c["left"] == b && c["right"] == "expected" && c["pass"] == true),
                "{name}: {b} was not compared with the expected outputs"
            );
        }
        if !tract_lacks {
            assert!(
                comparisons
                    .iter()
                    .any(|c| c["left"] == "tract" && c["right"] == "ort"),
                "{name}: no tract vs ort"
            );
        }
    }
}

#[test]
fn missing_operators_are_all_named_and_ort_carries_the_model() {
    let model = fixtures().join("unsupported_op.onnx");
    let (code, v) = check_json(&[model.to_str().unwrap()]);
    assert_eq!(code, 0);
    let tract = backend(&v["models"][0], "tract");
    assert_eq!(tract["status"], "unsupported");
    let msg = tract["message"].as_str().unwrap();
    for part in ["Det", "det_a", "det_b", "CenterCropPad", "crop"] {
        assert!(msg.contains(part), "`{part}` missing from: {msg}");
    }
    // Asking for tract by name makes its lack a failure.
    let (code, v) = check_json(&[model.to_str().unwrap(), "--backend", "tract"]);
    assert_eq!(code, 1);
    assert_eq!(v["models"][0]["status"], "fail");
    assert_eq!(v["summary"]["failed"], 1);
}

#[test]
fn tract_gets_constant_inputs_when_it_needs_them() {
    let model = fixtures().join("dynamic_reshape.onnx");
    let inputs = fixtures().join("check/dynamic_reshape.inputs.npz");
    let (code, v) = check_json(&[
        model.to_str().unwrap(),
        "--input",
        inputs.to_str().unwrap(),
        "--backend",
        "tract",
    ]);
    assert_eq!(code, 0, "{v}");
    let tract = backend(&v["models"][0], "tract");
    assert!(
        tract["notes"]
            .to_string()
            .contains("made input `shape` the constant ["),
        "{tract}"
    );
}

#[test]
fn onnx_test_data_sets_next_to_the_model_all_run() {
    let (code, v) = check_json(&[fixtures()
        .join("with_test_data/model.onnx")
        .to_str()
        .unwrap()]);
    assert_eq!(code, 0, "{v}");
    let m = &v["models"][0];
    assert_eq!(
        m["data_sets"],
        serde_json::json!(["test_data_set_0", "test_data_set_1"])
    );
    let vs_expected = m["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["right"] == "expected")
        .count();
    assert_eq!(vs_expected, 4, "two back ends × two data sets");
}

/// No false passes: an expected output moved by more than the tolerance fails the check, with
/// the output named; moved by less, it passes.
#[test]
fn perturbed_expected_output_fails_and_names_the_output() {
    let model = fixtures().join("mlp.onnx");
    let inputs = fixtures().join("check/mlp.inputs.npz");
    let reference =
        cargo_infer::tensor::HostTensor::from_npz(&fixtures().join("check/mlp.expected.npz"))
            .unwrap();
    let (name, t) = &reference[0];
    assert_eq!(name, "output");
    let values: Vec<f32> = t.to_f64().unwrap().iter().map(|v| *v as f32).collect();
    let dir = tempfile::tempdir().unwrap();
    for (delta, should_pass) in [(1e-3f32, false), (1e-7f32, true)] {
        let mut moved = values.clone();
        moved[1] += delta;
        write_npy(&dir.path().join("output.npy"), &t.shape, &moved);
        let (code, v) = check_json(&[
            model.to_str().unwrap(),
            "--input",
            inputs.to_str().unwrap(),
            "--expected",
            dir.path().to_str().unwrap(),
        ]);
        let m = &v["models"][0];
        if should_pass {
            assert_eq!(code, 0, "{m}");
            continue;
        }
        assert_eq!(code, 1, "{m}");
        assert_eq!(m["status"], "fail");
        assert!(
            m["message"].as_str().unwrap().contains("`output`"),
            "{}",
            m["message"]
        );
        let c = m["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["right"] == "expected" && c["pass"] == false)
            .unwrap();
        let min_atol = c["min_atol_to_pass"].as_f64().unwrap();
        assert!(min_atol > 5e-4 && min_atol < 2e-3, "{c}");
        // The reported minimum tolerance really is enough.
        let atol = format!("{}", min_atol * 1.01);
        let (code, _) = check_json(&[
            model.to_str().unwrap(),
            "--input",
            inputs.to_str().unwrap(),
            "--expected",
            dir.path().to_str().unwrap(),
            "--atol",
            &atol,
        ]);
        assert_eq!(code, 0);
    }
}

#[test]
fn unavailable_ort_is_reported_and_fails_only_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, b"not a library").unwrap();
    let model = fixtures().join("mlp.onnx");
    let run = |backend: &str| {
        let out = cargo_infer()
            .args(["check", "--format", "json", "--backend", backend])
            .arg(&model)
            .env("ORT_DYLIB_PATH", &fake)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        )
    };
    let (code, v) = run("auto");
    assert_eq!(code, 0);
    let ort = backend(&v["models"][0], "ort");
    assert_eq!(ort["status"], "unavailable");
    assert!(
        ort["message"]
            .as_str()
            .unwrap()
            .contains(fake.to_str().unwrap()),
        "{ort}"
    );
    let (code, v) = run("ort");
    assert_eq!(code, 1);
    assert_eq!(v["models"][0]["status"], "fail");
}

#[test]
fn a_gpu_that_is_not_there_fails_instead_of_running_on_cpu() {
    let model = fixtures().join("mlp.onnx");
    for device in ["cuda", "tensorrt"] {
        let (code, v) = check_json(&[model.to_str().unwrap(), "--device", device]);
        assert_eq!(code, 1, "{device}: {v}");
        let m = &v["models"][0];
        assert_eq!(backend(m, "tract")["status"], "unsupported");
        let ort = backend(m, "ort");
        assert_eq!(ort["status"], "error", "{device}: {ort}");
        assert!(
            ort["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("execution provider"),
            "{ort}"
        );
    }
}

#[test]
fn junit_has_one_case_per_model_and_back_end() {
    let out = cargo_infer()
        .args(["check", "--format", "junit"])
        .arg(fixtures().join("mlp.onnx"))
        .arg(fixtures().join("unsupported_op.onnx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let xml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    assert!(
        xml.contains("unsupported_op.onnx [tract]") && xml.contains("<skipped"),
        "{xml}"
    );
}

#[test]
fn bad_models_and_bad_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.onnx");
    let (code, v) = check_json(&[
        missing.to_str().unwrap(),
        fixtures().join("mlp.onnx").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert_eq!(v["summary"]["errors"], 1);
    assert_eq!(
        v["summary"]["passed"], 1,
        "one bad model does not stop the others"
    );
    let mlp = fixtures().join("mlp.onnx");
    let (code, v) = check_json(&[mlp.to_str().unwrap(), "--input", "nope=x.npy"]);
    assert_eq!(code, 2);
    assert!(v["models"][0]["message"]
        .as_str()
        .unwrap()
        .contains("x.npy"));
    let out = cargo_infer()
        .args(["check", "--backend", "tch"])
        .arg(&mlp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--features tch"));
    let out = cargo_infer()
        .args(["check", "--val-range", "[2,1]"])
        .arg(&mlp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn synthetic_inputs_are_deterministic_and_respect_ranges() {
    let model = fixtures().join("transformer.onnx");
    let (code, v) = check_json(&[
        model.to_str().unwrap(),
        "--dim",
        "batch=2",
        "--dim",
        "seq=5",
        "--seed",
        "7",
    ]);
    assert_eq!(code, 0, "{v}");
    let notes = v["models"][0]["notes"].to_string();
    assert!(
        notes.contains("int64[2, 5]") && notes.contains("index range of the Gather"),
        "{notes}"
    );
    let (_, again) = check_json(&[
        model.to_str().unwrap(),
        "--dim",
        "batch=2",
        "--dim",
        "seq=5",
        "--seed",
        "7",
    ]);
    assert_eq!(
        v["models"][0]["comparisons"][0]["max_abs"],
        again["models"][0]["comparisons"][0]["max_abs"]
    );
    let (code, v) = check_json(&[fixtures().join("mlp.onnx").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        v["models"][0]["notes"].to_string().contains("batch=1"),
        "defaulted dims are said"
    );
}

#[test]
fn weights_only_formats_are_errors_until_their_back_ends_exist() {
    let (code, v) = check_json(&[fixtures().join("mlp.safetensors").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(v["models"][0]["message"]
        .as_str()
        .unwrap()
        .contains("candle"));
}

/// The ONNX test layout's own expected output, moved by more than the tolerance inside its
/// `output_0.pb`, fails the check with the output named.
#[test]
fn perturbed_test_data_set_output_fails() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("with_test_data");
    std::fs::copy(src.join("model.onnx"), dir.path().join("model.onnx")).unwrap();
    for set in ["test_data_set_0", "test_data_set_1"] {
        std::fs::create_dir(dir.path().join(set)).unwrap();
        for f in ["input_0.pb", "output_0.pb"] {
            std::fs::copy(src.join(set).join(f), dir.path().join(set).join(f)).unwrap();
        }
    }
    // The raw float data ends the file: add 0.01 to the last value.
    let pb = dir.path().join("test_data_set_1/output_0.pb");
    let mut bytes = std::fs::read(&pb).unwrap();
    let n = bytes.len();
    let last = f32::from_le_bytes(bytes[n - 4..].try_into().unwrap()) + 0.01;
    bytes[n - 4..].copy_from_slice(&last.to_le_bytes());
    std::fs::write(&pb, bytes).unwrap();
    let (code, v) = check_json(&[dir.path().join("model.onnx").to_str().unwrap()]);
    assert_eq!(code, 1, "{v}");
    let m = &v["models"][0];
    assert!(
        m["message"].as_str().unwrap().contains("`output`")
            && m["message"].as_str().unwrap().contains("test_data_set_1"),
        "{m}"
    );
    let failing: Vec<&Value> = m["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pass"] == false)
        .collect();
    assert_eq!(
        failing.len(),
        2,
        "both back ends against the moved expected value: {failing:?}"
    );
    assert!(failing
        .iter()
        .all(|c| c["right"] == "expected" && c["data_set"] == "test_data_set_1"));
}

#[test]
fn glob_patterns_expand_and_github_gets_annotations() {
    let pattern = fixtures().join("check/../m*.onnx");
    let out = cargo_infer()
        .args(["check", "--format", "json"])
        .arg(&pattern)
        .arg(fixtures().join("missing.onnx"))
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.iter().any(|p| p.ends_with("mlp.onnx"))
            && paths.iter().any(|p| p.ends_with("mlp_external.onnx")),
        "{paths:?}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("::error file=") && l.contains("missing.onnx")),
        "{stderr}"
    );
    let out = cargo_infer()
        .args(["check"])
        .arg(fixtures().join("nothing*.onnx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matches no file"));
}

#[test]
fn models_listed_in_the_manifest_are_checked_when_none_is_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::copy(
        fixtures().join("mlp.onnx"),
        dir.path().join("models/a.onnx"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("cnn.onnx"),
        dir.path().join("models/b.onnx"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.infer]\nmodels = [\"models/*.onnx\"]\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
    let out = cargo_infer()
        .args(["check", "--format", "json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["passed"], 2);
    // Outside any package, no model is a usage error.
    let out = cargo_infer()
        .args(["check"])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model given"));
}

#[cfg(not(feature = "tch"))]
#[test]
fn the_default_build_says_how_to_get_tch() {
    let out = cargo_infer()
        .args(["check", "--backend", "tch"])
        .arg(fixtures().join("mlp.torchscript.pt"))
        .output()
        .unwrap();
    let err = crate::common::one_line_error(&out, "check --backend tch without the feature");
    assert!(err.contains("rebuild with `--features tch`"), "{err}");
    // Auto: the TorchScript module is an error that names the missing back end, not a pass.
    let (code, v) = check_json(&[fixtures().join("mlp.torchscript.pt").to_str().unwrap()]);
    assert_eq!(code, 2);
    let msg = v["models"][0]["message"].as_str().unwrap();
    assert!(msg.contains("tch (rebuild with `--features tch`)"), "{msg}");
    let out = cargo_infer()
        .args(["doctor", "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tch = v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "tch")
        .unwrap();
    assert_eq!(tch["status"], "not-built");
    assert!(tch["detail"].as_str().unwrap().contains("--features tch"));
}

#[test]
fn unsafe_checkpoints_fail_the_check_and_benign_ones_are_not_flagged() {
    let marker = Path::new(PWNED);
    let _ = std::fs::remove_file(marker);
    for name in MALICIOUS {
        let (code, v) = check_json(&[fixtures().join(name).to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: {v}");
        let m = &v["models"][0];
        assert_eq!(m["status"], "fail");
        let msg = m["message"].as_str().unwrap();
        assert!(
            msg.contains("unsafe pickle") && msg.contains("dangerous global"),
            "{msg}"
        );
    }
    assert!(!marker.exists(), "a payload ran");
    for name in ["state_dict.pt", "state_dict_legacy.pt", "checkpoint.pt"] {
        let (code, v) = check_json(&[fixtures().join(name).to_str().unwrap()]);
        let msg = v["models"][0]["message"].as_str().unwrap();
        assert_eq!(code, 2, "{name}: {v}");
        assert!(!msg.contains("unsafe"), "{name}: {msg}");
        assert!(msg.contains("weights"), "{name}: {msg}");
    }
}

#[cfg(not(feature = "candle"))]
#[test]
fn the_default_build_says_how_to_get_candle() {
    for model in ["candle/bert", "candle/llama-q8_0.gguf"] {
        let (code, v) = check_json(&[fixtures().join(model).to_str().unwrap()]);
        assert_eq!(code, 2, "{v}");
        let msg = v["models"][0]["message"].as_str().unwrap();
        assert!(
            msg.contains("candle (rebuild with `--features candle`)"),
            "{msg}"
        );
    }
    let out = cargo_infer()
        .args(["check", "--backend", "candle"])
        .arg(fixtures().join("candle/bert"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        crate::common::doctor_backend("candle")["status"],
        "not-built"
    );
}

#[test]
fn pair_takes_one_model_and_another_format() {
    let mlp = fixtures().join("mlp.onnx");
    let (code, v) = check_json(&[
        mlp.to_str().unwrap(),
        "--pair",
        fixtures().join("cnn.onnx").to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    let msg = v["models"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains(
            "its inputs (image: float32[rank 4]) are not the model's (input: float32[rank 2])"
        ),
        "{msg}"
    );
    let out = cargo_infer()
        .arg("check")
        .arg(&mlp)
        .arg(fixtures().join("cnn.onnx"))
        .arg("--pair")
        .arg(fixtures().join("pair/mlp.onnx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 models were given"));
}

/// The JUnit, JSON and human reports carry the verdict the exit code gives, whatever the back
/// ends' own statuses: a model no back end could run, and a model whose back ends pass but
/// disagree with the expected outputs, are failed test cases (not all `skipped`, not all passed).
#[test]
fn every_report_format_agrees_with_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    // Expected outputs that the model does not give: both back ends run, the comparison fails.
    let wrong = cargo_infer::tensor::HostTensor::from_bytes(
        cargo_infer::model::dtype::DType::F32,
        vec![1, 3],
        vec![0; 12],
    )
    .unwrap();
    std::fs::write(dir.path().join("output.npy"), wrong.to_npy().unwrap()).unwrap();
    let mlp = fixtures().join("mlp.onnx");
    let unsupported = fixtures().join("unsupported_op.onnx");
    let empty = fixtures().join("bad/empty.onnx");
    let expected_dir = dir.path().display().to_string();
    /// What is checked, the arguments, ORT_DYLIB_PATH, the exit code and the model's status.
    type Case<'a> = (&'a str, Vec<String>, Option<&'a str>, i32, &'a str);
    let cases: [Case; 4] = [
        ("pass", vec![mlp.display().to_string()], None, 0, "pass"),
        (
            "wrong expected outputs",
            vec![mlp.display().to_string(), "--expected".into(), expected_dir],
            None,
            1,
            "fail",
        ),
        (
            "no back end could run it",
            vec![unsupported.display().to_string()],
            Some("/nonexistent/libonnxruntime.so"),
            1,
            "fail",
        ),
        (
            "unreadable",
            vec![empty.display().to_string()],
            None,
            2,
            "error",
        ),
    ];
    for (what, args, ort, code, status) in cases {
        let run = |format: &str| {
            let mut cmd = cargo_infer();
            cmd.arg("check").args(&args).args(["--format", format]);
            if let Some(lib) = ort {
                cmd.env("ORT_DYLIB_PATH", lib);
            }
            cmd.output().unwrap()
        };
        let json = run("json");
        assert_eq!(json.status.code(), Some(code), "{what}: json exit code");
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(v["models"][0]["status"], status, "{what}: {v}");
        let human = run("human");
        assert_eq!(human.status.code(), Some(code), "{what}: human exit code");
        let text = String::from_utf8_lossy(&human.stdout);
        let verdict = match status {
            "pass" => "PASS",
            "fail" => "FAIL",
            _ => "ERROR",
        };
        assert!(text.contains(verdict), "{what}: {text}");
        let junit = run("junit");
        assert_eq!(junit.status.code(), Some(code), "{what}: junit exit code");
        let xml = String::from_utf8_lossy(&junit.stdout);
        let count = |attr: &str| -> u64 {
            let head = xml.split("<testsuite ").next().unwrap();
            let at = head.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
            head[at..].split('"').next().unwrap().parse().unwrap()
        };
        let (failures, errors) = (count("failures"), count("errors"));
        match status {
            "pass" => assert_eq!((failures, errors), (0, 0), "{what}: {xml}"),
            "fail" => assert!(failures >= 1, "{what}: {xml}"),
            _ => assert!(errors >= 1, "{what}: {xml}"),
        }
    }
}

/// Exporters that trace with batch 1 record intermediate and output shapes with batch 1 even when
/// the input's batch is symbolic. Checked at batch 2, tract conflicts with those annotations; it
/// runs without them (saying so) and agrees with ONNX Runtime.
#[test]
fn tract_runs_past_stale_shape_annotations() {
    let model = fixtures().join("forms/stale_value_info.onnx");
    let (code, v) = check_json(&[
        model.to_str().unwrap(),
        "--dim",
        "batch=2",
        "--backend",
        "all",
    ]);
    assert_eq!(code, 0, "{v}");
    let m = &v["models"][0];
    assert_eq!(backend(m, "tract")["status"], "pass", "{m}");
    let notes = m["notes"].to_string() + &backend(m, "tract").to_string();
    assert!(notes.contains("value_info"), "{m}");
    assert!(m["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["pass"] == true));
}

/// Graph forms tract refuses as they are (crate::prepare): an `If` on a scalar sample rate whose
/// branches differ in rank, with a nested `If` and an untaken branch that cannot be typed; an
/// opset-11 `Squeeze` with implicit axes. tract runs each once prepared for the data, says what it
/// changed, and agrees with ONNX Runtime on the original graph.
#[test]
fn tract_runs_graph_forms_it_refuses_once_prepared() {
    let cases: [(&str, &[&str]); 2] = [
        (
            "forms/if_rank.onnx",
            &[
                "folded If `If_sr` to its then branch (sr = 16000)",
                "folded If `If_sr/then_branch/If_wide` to its then branch (sr = 16000)",
                "made input `sr` the constant 16000",
            ],
        ),
        (
            "forms/squeeze_opset11.onnx",
            &[
                "wrote axes [0, 2] into Squeeze `squeeze`",
                "pinned `x` to [1, 3]",
            ],
        ),
    ];
    for (file, said) in cases {
        let model = fixtures().join(file);
        let inputs = model.with_extension("inputs.npz");
        let (code, v) = check_json(&[
            model.to_str().unwrap(),
            "--input",
            inputs.to_str().unwrap(),
            "--backend",
            "all",
        ]);
        assert_eq!(code, 0, "{file}: {v}");
        let m = &v["models"][0];
        let tract = backend(m, "tract");
        assert_eq!(tract["status"], "pass", "{file}: {m}");
        let notes = tract.to_string();
        assert!(
            notes.contains("tract passes after preparation"),
            "{file}: {notes}"
        );
        // It failed as it was: the note says how.
        assert!(notes.contains("as is it failed"), "{file}: {notes}");
        for s in said {
            assert!(notes.contains(s), "{file}: no `{s}` in {notes}");
        }
        let comparisons = m["comparisons"].as_array().unwrap();
        assert!(!comparisons.is_empty(), "{file}: {m}");
        assert!(comparisons.iter().all(|c| c["pass"] == true), "{file}: {m}");
        // The prepared graph itself ran on ONNX Runtime and agreed with the original there.
        assert!(
            comparisons
                .iter()
                .any(|c| c["left"] == "ort on tract's prepared graph" && c["right"] == "ort"),
            "{file}: {m}"
        );
    }
    // A graph tract takes as it is is not prepared, and says nothing about it.
    let (code, v) = check_json(&[fixtures().join("mlp.onnx").to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    assert!(!v.to_string().contains("preparation"), "{v}");
}

/// tract's error is one line naming the node, its operator and the rule that failed; the whole
/// chain is in JSON's `detail` and, in the human report, only with -v; it is said once per model.
#[test]
fn tract_errors_name_the_node_and_rule_in_one_line() {
    let model = fixtures().join("forms/if_data.onnx");
    let (code, v) = check_json(&[model.to_str().unwrap(), "--backend", "tract"]);
    assert_eq!(code, 1, "{v}");
    let tract = backend(&v["models"][0], "tract");
    let message = tract["message"].as_str().unwrap();
    assert!(
        message.starts_with("optimise: node `neg` (Neg): Unifying shapes 1,4 and 1,4,1"),
        "{message}"
    );
    assert!(!message.contains("Failed analyse"), "{message}");
    let detail = tract["detail"].as_str().unwrap();
    assert!(detail.contains("Failed analyse for node"), "{detail}");
    let human = |verbose: bool| {
        let mut cmd = cargo_infer();
        cmd.arg("check").arg(&model).args(["--backend", "tract"]);
        if verbose {
            cmd.arg("-v");
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
    };
    let plain = human(false);
    assert_eq!(
        plain.matches("Unifying shapes 1,4 and 1,4,1").count(),
        2,
        "{plain}"
    ); // as is, prepared
    assert!(!plain.contains("detail:"), "{plain}");
    assert!(human(true).contains("detail: optimise: Failed analyse for node"));
}

/// ONNX Runtime logs to stderr by itself (`[W:onnxruntime:…] Removing initializer …`, coloured);
/// stderr must carry only cargo-infer's lines, in every format.
#[test]
fn onnx_runtime_never_writes_its_own_lines_to_stderr() {
    use crate::common::onnx::{model, node, value, FLOAT};
    use tract_onnx::pb;
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("unused_initializer.onnx");
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![node("Relu", &["x"], &["y"])],
        input: vec![value("x", FLOAT, &[1, 4])],
        output: vec![value("y", FLOAT, &[1, 4])],
        initializer: vec![pb::TensorProto {
            name: "unused".into(),
            dims: vec![2],
            data_type: FLOAT,
            float_data: vec![1.0, 2.0],
            ..Default::default()
        }],
        ..Default::default()
    };
    std::fs::write(&m, model(graph)).unwrap();
    let bad = dir.path().join("no_such_op.onnx");
    let graph = pb::GraphProto {
        name: "g".into(),
        node: vec![node("NoSuchOp", &["x"], &["y"])],
        input: vec![value("x", FLOAT, &[1, 4])],
        output: vec![value("y", FLOAT, &[1, 4])],
        ..Default::default()
    };
    std::fs::write(&bad, model(graph)).unwrap();
    for format in ["human", "json"] {
        let out = cargo_infer()
            .args(["check", "--backend", "ort", "--format", format])
            .arg(&m)
            .arg(&bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("onnxruntime:"), "{format}: {err}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("NoSuchOp"),
            "{format}: the load error is in the report: {stdout}"
        );
    }
}

/// The comparison that carries a bisect's finding, and that finding.
fn divergence(v: &Value) -> (&Value, &Value) {
    let c = v["models"][0]["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c.get("divergence").is_some())
        .unwrap_or_else(|| panic!("no divergence in {v:#}"));
    (c, &c["divergence"])
}

fn path_nodes(d: &Value) -> Vec<&str> {
    d["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node"].as_str().unwrap())
        .collect()
}

/// A re-export whose nodes and tensors were all renamed and whose middle convolution's weights
/// changed: the twin's tensors are matched by operator, and bisect names the convolution (in the
/// model's names), with inputs that agree exactly and the error carried to the output.
#[test]
fn bisect_names_the_altered_convolution_of_a_re_export() {
    let model = fixtures().join("bisect/cnn.onnx");
    let twin = fixtures().join("bisect/cnn_altered.onnx");
    let (code, v) = check_json(&[model.to_str().unwrap(), "--pair", twin.to_str().unwrap()]);
    assert_eq!(code, 1, "{v:#}");
    let (c, d) = divergence(&v);
    // The twin runs on one back end, and bisect compares it with the model on that back end.
    assert_eq!(c["right"], "ort:pair", "{c:#}");
    assert_eq!(c["left"], "ort", "{c:#}");
    assert_eq!(d["node"], "conv3", "{d:#}");
    assert_eq!(d["op"], "Conv");
    assert_eq!(d["output"], "c3");
    assert_eq!(d["inputs_max_abs"].as_f64().unwrap(), 0.0, "{d:#}");
    assert!(d["max_abs"].as_f64().unwrap() > 1e-3, "{d:#}");
    assert!(d["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "pads=[1,1,1,1]"));
    assert_eq!(
        path_nodes(d),
        ["conv3", "relu3", "conv4", "relu4", "conv5", "relu5", "gap", "flatten", "fc"]
    );
    // Every intermediate tensor was compared, in two runs of each side (a first small chunk).
    assert_eq!(d["tensors"], 15, "{d:#}");
    // People read it under the failing comparison, and the model's one line names the node.
    let out = cargo_infer()
        .arg("check")
        .arg(&model)
        .arg("--pair")
        .arg(&twin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("first divergence: node `conv3` (Conv; pads=[1,1,1,1]): output `c3`"),
        "{text}"
    );
    assert!(text.contains("error along the path: conv3 "), "{text}");
    assert!(
        v["models"][0]["message"]
            .as_str()
            .unwrap()
            .contains("first divergence at node `conv3` (Conv)"),
        "{v:#}"
    );
}

/// tract and ONNX Runtime part ways at a reverse GRU in the middle of a graph: bisect names the
/// GRU (whose input both computed alike), not the output, and shows the error carried to it.
#[test]
fn bisect_names_the_node_where_tract_and_onnx_runtime_disagree() {
    let model = fixtures().join("bisect/gru_reverse.onnx");
    let (code, v) = check_json(&[model.to_str().unwrap()]);
    assert_eq!(code, 1, "{v:#}");
    let (c, d) = divergence(&v);
    assert_eq!((&c["left"], &c["right"]), (&"tract".into(), &"ort".into()));
    assert_eq!(d["node"], "gru", "{d:#}");
    assert_eq!(d["op"], "GRU");
    assert_eq!(d["output"], "Y");
    assert!(d["inputs_max_abs"].as_f64().unwrap() <= 1e-5, "{d:#}");
    assert_eq!(path_nodes(d), ["gru", "squeeze", "dense1", "tanh"]);
    assert!(d["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "direction=\"reverse\""));
    // Never: the same failure, no bisect.
    let (code, v) = check_json(&[model.to_str().unwrap(), "--bisect", "never"]);
    assert_eq!(code, 1);
    assert!(!v.to_string().contains("divergence"), "{v:#}");
}

/// The same disagreement in the forms exporters write: a symbolic batch checked at 2 with
/// intermediate shapes recorded at batch 1, an `If` on the data before the GRU, weights in an
/// external data file. The probes drop the stale shapes, leave the branches' tensors alone, carry
/// the external data, and name the GRU; nothing is left beside the model.
#[test]
fn bisect_finds_the_node_in_exported_forms() {
    let model = fixtures().join("bisect/exported.onnx");
    let before = std::fs::read_dir(model.parent().unwrap()).unwrap().count();
    let (code, v) = check_json(&[model.to_str().unwrap(), "--dim", "batch=2"]);
    assert_eq!(code, 1, "{v:#}");
    let (c, d) = divergence(&v);
    assert_eq!((&c["left"], &c["right"]), (&"tract".into(), &"ort".into()));
    assert_eq!(d["node"], "gru", "{d:#}");
    assert!(d["inputs_max_abs"].as_f64().unwrap() <= 1e-5, "{d:#}");
    assert_eq!(path_nodes(d), ["gru", "squeeze", "dense1", "tanh"]);
    // The batch the check ran at, not the one the file records.
    let shape = d["outputs"][0]["shape"].as_array().unwrap();
    assert_eq!(shape[2], 2, "{d:#}");
    assert_eq!(
        std::fs::read_dir(model.parent().unwrap()).unwrap().count(),
        before
    );
}

/// Back ends that agree: no bisect runs unless asked for; asked for, it says every intermediate
/// tensor agrees.
#[test]
fn agreeing_back_ends_are_not_bisected_unless_asked() {
    let model = fixtures().join("bisect/cnn.onnx");
    let (code, v) = check_json(&[model.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    assert!(
        !v["models"][0]["notes"].to_string().contains("bisect"),
        "{v:#}"
    );
    assert!(!v.to_string().contains("divergence"), "{v:#}");
    let (code, v) = check_json(&[model.to_str().unwrap(), "--bisect", "always"]);
    assert_eq!(code, 0, "{v:#}");
    let notes = v["models"][0]["notes"].to_string();
    assert!(
        notes.contains("bisect: all 15 intermediate tensors of tract and ort agree"),
        "{notes}"
    );
}

/// `--report`: one self-contained page that a real browser (headless Chromium, which `cargo xtask
/// ci` installs) opens without a console error, showing the culprit node; its screenshot is kept
/// under target/ as a CI artefact.
#[test]
fn the_html_report_shows_the_culprit_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = cargo_infer()
        .arg("check")
        .arg(fixtures().join("bisect/gru_reverse.onnx"))
        .arg("--report")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("First divergence: node <code>gru</code> (GRU)"),
        "{html}"
    );
    // Charts: the errors' histogram and scatter, the path and the graph around the culprit.
    for class in ["histogram", "scatter", "path", "graph"] {
        assert!(
            html.contains(&format!("<div class=\"{class}\"><svg")),
            "no {class} chart"
        );
    }
    for external in ["<script", "<link", " src=\"", "href=\"http", "@import"] {
        assert!(
            !html.contains(external),
            "the page loads something: {external}"
        );
    }
    assert!(html
        .match_indices("url(")
        .all(|(i, _)| html[i..].starts_with("url(#")));
    let chromium = |args: &[&str]| {
        std::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .args(args)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium (apt-get install chromium; `cargo xtask ci` installs it)")
    };
    let dom = chromium(&["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let shown = String::from_utf8_lossy(&dom.stdout);
    assert!(shown.contains("id=\"culprit\""), "{shown}");
    assert!(shown.contains("<code>gru</code>"), "{shown}");
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(
        !log.lines()
            .any(|l| l.contains("CONSOLE") || l.contains("Uncaught")),
        "console: {log}"
    );
    let shot =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let taken = chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1200,2400",
        "--hide-scrollbars",
    ]);
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}
