//! `cargo infer decide`: every branch of the decision flowchart and every row of the framework
//! table, on fixture models, asserting the choice *and* the rules behind it.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

use crate::common::fixtures;

fn decide(model: &str, flags: &[&str], cwd: Option<&Path>) -> (i32, Value, String) {
    let mut cmd = Command::cargo_bin("cargo-infer").unwrap();
    cmd.arg("decide")
        .arg(fixtures().join(model))
        .args(flags)
        .args(["--format", "json"]);
    // Outside any Cargo project unless one is given, so that this crate's manifest is not read.
    cmd.current_dir(
        cwd.map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir),
    );
    let out = cmd.output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fired(v: &Value) -> Vec<String> {
    v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fired"] == true)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn ranked<'a>(v: &'a Value, f: &str) -> &'a Value {
    v["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["framework"] == f)
        .unwrap()
}

/// (model, flags, choice, rules that must fire, frameworks that must be viable).
type Case = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const CASES: &[Case] = &[
    // Need GPU acceleration? CUDA required → ort or tch-rs.
    (
        "cnn.onnx",
        &["--gpu", "cuda"],
        "ort",
        &["S-CUDA", "X-GPU"],
        &[],
    ),
    // Multi-GPU / TensorRT → ort with TensorRT EP.
    (
        "cnn.onnx",
        &["--gpu", "tensorrt"],
        "ort",
        &["X-TENSORRT", "S-MULTI-GPU"],
        &[],
    ),
    (
        "cnn.onnx",
        &["--multi-gpu"],
        "ort",
        &["X-TENSORRT", "S-MULTI-GPU"],
        &[],
    ),
    // CPU only, WASM → candle or tract (tract for ONNX, candle viable).
    (
        "lstm.onnx",
        &["--target", "wasm32-unknown-unknown"],
        "tract",
        &["X-WASM", "S-WASM"],
        &["candle"],
    ),
    // Need PyTorch .pt models? → tch-rs.
    ("mlp.torchscript.pt", &[], "tch", &["S-TORCHSCRIPT"], &[]),
    // Need ONNX models? → ort; pure Rust → tract or burn.
    ("cnn.onnx", &[], "ort", &["S-ONNX"], &["tract"]),
    (
        "cnn.onnx",
        &["--pure-rust"],
        "tract",
        &["X-PURE-RUST", "S-PURE-RUST"],
        &["burn"],
    ),
    // Pure Rust + training → burn.
    (
        "cnn.onnx",
        &["--pure-rust", "--training"],
        "burn",
        &["X-TRAINING", "S-TRAINING"],
        &[],
    ),
    // Running LLMs → candle, from GGUF and from safetensors shards.
    ("tiny-llama.gguf", &[], "candle", &["S-LLM"], &[]),
    (
        "sharded/model.safetensors.index.json",
        &[],
        "candle",
        &["S-LLM"],
        &[],
    ),
    // Sentence-embedding encoder (with the tokenizer files fastembed reads) → fastembed-rs.
    (
        "embed/model.onnx",
        &[],
        "fastembed",
        &["S-EMBEDDING"],
        &["ort"],
    ),
    // Edge/embedded: bare metal or a 1 MB binary with a small MLP → custom code.
    (
        "mlp.onnx",
        &["--target", "thumbv7em-none-eabihf"],
        "custom",
        &["X-BARE-METAL", "S-TRIVIAL-TARGET"],
        &[],
    ),
    (
        "mlp.onnx",
        &["--max-binary-size", "1MB"],
        "custom",
        &["X-BINARY-SIZE", "S-TRIVIAL-TARGET"],
        &[],
    ),
    (
        "mlp.onnx",
        &["--exact-precision"],
        "custom",
        &["S-TRIVIAL-TARGET"],
        &[],
    ),
    // Edge/embedded with an OS and room for a runtime → tract (smallest binary, no system libs).
    (
        "cnn.onnx",
        &["--max-binary-size", "10MB"],
        "tract",
        &["X-BINARY-SIZE", "S-EDGE"],
        &[],
    ),
    // Production serving with SLA → ort.
    (
        "lstm.onnx",
        &["--serving"],
        "ort",
        &["S-SERVING"],
        &["tract"],
    ),
    // Metal → candle; WGPU → burn (table rows' GPU columns).
    (
        "tiny-llama.gguf",
        &["--gpu", "metal"],
        "candle",
        &["X-GPU"],
        &[],
    ),
    ("cnn.onnx", &["--gpu", "wgpu"], "burn", &["X-GPU"], &[]),
];

#[test]
fn every_flowchart_branch_and_table_row() {
    for (model, flags, choice, rules, viable) in CASES {
        let (code, v, err) = decide(model, flags, None);
        assert_eq!(code, 0, "{model} {flags:?}: {err}");
        assert_eq!(v["choice"], *choice, "{model} {flags:?}: {}", v["ranking"]);
        assert_eq!(ranked(&v, choice)["verdict"], "recommended");
        let fired = fired(&v);
        for r in *rules {
            assert!(
                fired.iter().any(|f| f == r),
                "{model} {flags:?}: rule {r} did not fire ({fired:?})"
            );
        }
        for f in *viable {
            assert_eq!(
                ranked(&v, f)["verdict"],
                "viable",
                "{model} {flags:?}: {f} should stay viable"
            );
        }
        // Every framework appears once, with reasons for its place.
        let ranking = v["ranking"].as_array().unwrap();
        assert_eq!(ranking.len(), 7);
        assert!(
            ranking
                .iter()
                .all(|r| !r["reasons"].as_array().unwrap().is_empty() || r["score"] == 0.0),
            "{model}"
        );
    }
}

#[test]
fn hard_exclusions_name_their_rule() {
    let (_, v, _) = decide("cnn.onnx", &["--target", "wasm32-unknown-unknown"], None);
    for f in ["ort", "tch", "fastembed"] {
        let r = ranked(&v, f);
        assert_eq!(r["verdict"], "excluded");
        assert!(r["reasons"].to_string().contains("X-WASM"), "{r}");
    }
    let (_, v, _) = decide("cnn.onnx", &["--gpu", "cuda"], None);
    assert!(ranked(&v, "tract")["reasons"].to_string().contains("X-GPU"));
    let (_, v, _) = decide("cnn.onnx", &["--gpu", "tensorrt"], None);
    for f in ["tract", "candle", "tch", "burn", "custom"] {
        assert_eq!(ranked(&v, f)["verdict"], "excluded", "{f}");
    }
    // An encoder without a tokenizer beside it: fastembed could not load it, so it is not chosen.
    let (_, v, _) = decide("transformer.onnx", &[], None);
    let f = ranked(&v, "fastembed");
    assert_eq!(f["verdict"], "excluded", "{f}");
    assert!(
        f["reasons"].to_string().contains("X-FASTEMBED-FILES")
            && f["reasons"]
                .to_string()
                .contains("needs tokenizer.json next to the model"),
        "{f}"
    );
    assert_ne!(v["choice"], "fastembed");
    // Operator coverage is measured on the model: the transformer's com.microsoft::Gelu.
    assert!(
        ranked(&v, "candle")["reasons"]
            .to_string()
            .contains("com.microsoft::Gelu"),
        "{}",
        ranked(&v, "candle")
    );
    // A small MLP is trivial, with the budget shown.
    let (_, v, _) = decide("mlp.onnx", &[], None);
    assert!(
        v["evidence"]["trivial"]["Ok"]
            .as_str()
            .unwrap()
            .contains("budget 500000"),
        "{}",
        v["evidence"]
    );
    let (_, v, _) = decide("cnn.onnx", &[], None);
    assert!(ranked(&v, "custom")["reasons"]
        .to_string()
        .contains("X-NOT-TRIVIAL"));
}

#[test]
fn missing_ops_with_pure_rust_is_an_error_naming_ops_and_alternatives() {
    let (code, _, err) = decide("unsupported_op.onnx", &["--pure-rust"], None);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 1, "{err}");
    for part in [
        "tract lacks",
        "Det (nodes det_a, det_b)",
        "CenterCropPad (node crop)",
        "would run on: ort",
    ] {
        assert!(err.contains(part), "`{part}` missing: {err}");
    }
    // Without --pure-rust, ort takes it.
    let (code, v, _) = decide("unsupported_op.onnx", &[], None);
    assert_eq!(code, 0);
    assert_eq!(v["choice"], "ort");
}

#[test]
fn framework_flag_forces_but_never_past_a_hard_exclusion() {
    let (code, v, _) = decide("cnn.onnx", &["--framework", "tract"], None);
    assert_eq!(code, 0);
    assert_eq!(v["choice"], "tract");
    assert_eq!(ranked(&v, "tract")["verdict"], "recommended");
    let (code, _, err) = decide("cnn.onnx", &["--framework", "ort", "--pure-rust"], None);
    assert_eq!(code, 2);
    assert!(err.contains("X-PURE-RUST"), "{err}");
}

fn project(metadata: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!("[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.infer]\n{metadata}\n"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    dir
}

#[test]
fn manifest_constraints_merge_under_flags() {
    let p = project("gpu = \"cuda\"\nmax-binary-size = \"100MB\"");
    let (code, v, err) = decide("cnn.onnx", &[], Some(p.path()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["constraints"]["gpu"], "cuda");
    assert_eq!(v["constraints"]["max_binary_size"], 100_000_000);
    assert!(v["constraints"]["sources"]["gpu"]
        .as_str()
        .unwrap()
        .ends_with("Cargo.toml"));
    assert_eq!(v["choice"], "ort");
    // Flags win over the manifest.
    let (_, v, _) = decide("cnn.onnx", &["--gpu", "wgpu"], Some(p.path()));
    assert_eq!(v["constraints"]["gpu"], "wgpu");
    assert_eq!(v["constraints"]["sources"]["gpu"], "flag");
    // --manifest-path from elsewhere.
    let manifest = p.path().join("Cargo.toml");
    let (_, v, _) = decide(
        "cnn.onnx",
        &["--manifest-path", manifest.to_str().unwrap()],
        None,
    );
    assert_eq!(v["constraints"]["gpu"], "cuda");
}

#[test]
fn bad_manifest_keys_and_values_are_named() {
    for (meta, phrase) in [
        ("gpus = 2", "unknown field `gpus`"),
        ("gpu = \"tpu\"", "tpu"),
        ("max-binary-size = \"huge\"", "huge"),
    ] {
        let p = project(meta);
        let (code, _, err) = decide("cnn.onnx", &[], Some(p.path()));
        assert_eq!(code, 2, "{meta}");
        assert!(
            err.contains(phrase) && err.contains("[package.metadata.infer]"),
            "{meta}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let (code, _, err) = decide("cnn.onnx", &["--max-binary-size", "1XB"], None);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn explain_lists_every_rule() {
    let out = Command::cargo_bin("cargo-infer")
        .unwrap()
        .args([
            "decide",
            "--explain",
            "--color",
            "never",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .arg(fixtures().join("cnn.onnx"))
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for id in [
        "X-FORMAT",
        "X-WASM",
        "S-ONNX",
        "S-WASM",
        "S-TRIVIAL",
        "S-PROBE",
    ] {
        assert!(text.contains(id), "{id} missing from --explain:\n{text}");
    }
    assert!(text.contains("fired X-WASM"), "{text}");
}

#[test]
fn probe_loads_on_real_back_ends() {
    let (code, v, _) = decide("unsupported_op.onnx", &["--probe"], None);
    assert_eq!(code, 0);
    assert!(
        v["evidence"]["probe"]["ort"]["Ok"].is_string(),
        "{}",
        v["evidence"]
    );
    assert!(v["evidence"]["probe"]["tract"]["Err"]
        .as_str()
        .unwrap()
        .contains("Det"));
    assert!(fired(&v).contains(&"X-PROBE".to_string()));
}

#[test]
fn doctor_reports_each_back_end() {
    let out = Command::cargo_bin("cargo-infer")
        .unwrap()
        .args(["doctor", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tract", "ort", "tch", "candle", "burn"]);
    assert_eq!(v["backends"][0]["status"], "available");
    assert_eq!(
        v["backends"][1]["status"], "available",
        "CI installs onnxruntime"
    );
    assert!(v["backends"][2]["detail"]
        .as_str()
        .unwrap()
        .contains("--features tch"));
}

/// decide loads an ONNX model in tract (prepared if need be) before it may choose tract: a model
/// tract cannot load even prepared is excluded by X-LOAD with the loader's one-line reason and the
/// next framework is chosen; one that loads only prepared is chosen, saying so; synthetic inputs
/// that ONNX Runtime cannot run either prove nothing and exclude nothing.
#[test]
fn tract_is_chosen_only_for_models_it_loads() {
    let wasm = ["--target", "wasm32-unknown-unknown"];
    let (code, v, err) = decide("forms/if_data.onnx", &wasm, None);
    assert_eq!(code, 0, "{err}");
    assert_ne!(v["choice"], "tract", "{v}");
    assert!(fired(&v).contains(&"X-LOAD".to_string()), "{v}");
    let tract = ranked(&v, "tract");
    assert_eq!(tract["verdict"], "excluded", "{tract}");
    let why = tract["reasons"].to_string();
    assert!(
        why.contains("X-LOAD") && why.contains("node `neg` (Neg)"),
        "{why}"
    );
    assert_eq!(v["evidence"]["tract_load"]["status"], "failed", "{v}");

    let (code, v, err) = decide("forms/squeeze_opset11.onnx", &wasm, None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["choice"], "tract", "{v}");
    let load = &v["evidence"]["tract_load"];
    assert_eq!(load["status"], "loaded", "{v}");
    assert!(
        load["note"].as_str().unwrap().contains("wrote axes [0, 2]"),
        "{load}"
    );

    let (code, v, err) = decide("forms/if_rank.onnx", &wasm, None);
    assert_eq!(code, 0, "{err}");
    assert!(!fired(&v).contains(&"X-LOAD".to_string()), "{v}");
    let load = &v["evidence"]["tract_load"];
    assert_eq!(load["status"], "skipped", "{v}");
    assert!(
        load["why"]
            .as_str()
            .unwrap()
            .contains("ONNX Runtime fails on the synthetic inputs too"),
        "{load}"
    );

    let (_, v, _) = decide("mlp.onnx", &[], None);
    assert_eq!(v["evidence"]["tract_load"]["status"], "loaded", "{v}");
}

/// Only its parameter budget keeps generated code out of a 512-512-512-10 MLP (530,442
/// parameters, 2.1 MB of float32 weights), and under 1 MB nothing else fits: `decide` fails
/// saying so, with the `emit` command that would fit (int8 weights), and that command runs.
/// Under 3 MB the float32 weights fit (the command without int8); under 300 KB nothing would
/// (no command).
#[test]
fn past_its_budget_generated_code_is_offered_when_nothing_else_fits() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp512.onnx");
    let (bytes, _) =
        crate::emit::random_mlp_of(&mut cargo_infer::tensor::Rng::new(3), &[512, 512, 512, 10]);
    std::fs::write(&model, bytes).unwrap();
    let run = |limit: &str| {
        let out = crate::common::cargo_infer()
            .arg("decide")
            .arg(&model)
            .args(["--max-binary-size", limit])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{limit}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        err.trim_end()
            .rsplit_once("would fit: `")
            .map(|(_, c)| c.trim_end_matches('`').to_string())
    };
    let int8 = run("1MB").expect("an emit command");
    assert!(
        int8.ends_with("-o model.rs --max-params 530442 --weights-dtype int8"),
        "{int8}"
    );
    let f32 = run("3MB").expect("an emit command");
    assert!(f32.ends_with("-o model.rs --max-params 530442"), "{f32}");
    assert_eq!(run("300KB"), None);
    // The command as written (the model's path has no characters to quote here).
    let words: Vec<&str> = int8.split_whitespace().collect();
    assert_eq!(words[..2], ["cargo", "infer"]);
    let out = crate::common::cargo_infer()
        .args(&words[2..])
        .current_dir(dir.path())
        .output()
        .unwrap();
    crate::common::assert_success(&out, "the emit command decide gave");
    let code = std::fs::read_to_string(dir.path().join("model.rs")).unwrap();
    assert!(code.contains("// Weights: int8"), "int8 weights");
    let weights = std::fs::metadata(dir.path().join("model.weights.bin")).unwrap();
    assert!(
        weights.len() < 600_000,
        "{} bytes of weights",
        weights.len()
    );
}
