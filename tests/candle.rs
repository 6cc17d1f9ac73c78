//! The candle back end (`--features candle`): weights-only models bound to their architecture,
//! checked against what torch computed for the same weights (xtask/fixtures.py), and against the
//! BERT's ONNX export on ort and tract. `cargo xtask ci` runs these.

use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "it/common/mod.rs"]
mod common;
use common::{backend, check_json, fixtures, one_line_error};

fn candle(name: &str) -> String {
    fixtures()
        .join("candle")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn output_shape(b: &Value, name: &str) -> Vec<u64> {
    b["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output {name} in {b}"))["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect()
}

#[test]
fn bert_and_llama_run_with_the_shapes_of_their_config() {
    let (code, v) = check_json(&[&candle("bert"), "--dim", "batch=2"]);
    assert_eq!(code, 0, "{v}");
    let b = backend(&v["models"][0], "candle");
    assert_eq!(b["status"], "pass");
    assert_eq!(output_shape(b, "last_hidden_state"), [2, 8, 32]);
    assert_eq!(output_shape(b, "pooled"), [2, 32]);

    let (code, v) = check_json(&[&candle("llama"), "--dim", "sequence=5"]);
    assert_eq!(code, 0, "{v}");
    let b = backend(&v["models"][0], "candle");
    assert_eq!(output_shape(b, "logits"), [1, 128]);
    // Token ids are synthesised inside the vocabulary.
    let notes = v["models"][0]["notes"].to_string();
    assert!(notes.contains("[0, 127]"), "{notes}");
}

#[test]
fn candle_matches_torch_on_the_same_weights() {
    for (model, io) in [
        ("bert", "bert"),
        ("llama", "llama"),
        ("llama-f32.gguf", "llama"),
    ] {
        let inputs = candle(&format!("{io}.inputs.npz"));
        let expected = candle(&format!("{io}.expected.npz"));
        let (code, v) = check_json(&[&candle(model), "--input", &inputs, "--expected", &expected]);
        assert_eq!(code, 0, "{model}: {v}");
        let cmp = v["models"][0]["comparisons"].as_array().unwrap();
        assert!(!cmp.is_empty());
        assert!(
            cmp.iter()
                .all(|c| c["right"] == "expected" && c["pass"] == true),
            "{model}: {v}"
        );
    }
    // q8_0 is within quantization error of torch, and not bit-close: the comparison is real.
    let inputs = candle("llama.inputs.npz");
    let expected = candle("llama.expected.npz");
    let q8 = candle("llama-q8_0.gguf");
    let (code, v) = check_json(&[
        &q8,
        "--input",
        &inputs,
        "--expected",
        &expected,
        "--atol",
        "0.2",
    ]);
    assert_eq!(code, 0, "{v}");
    let (code, v) = check_json(&[&q8, "--input", &inputs, "--expected", &expected]);
    assert_eq!(code, 1, "{v}");
}

#[test]
fn bert_agrees_with_its_onnx_export_on_ort() {
    let (code, v) = check_json(&[
        &candle("bert"),
        "--pair",
        &candle("bert.onnx"),
        "--atol",
        "1e-4",
        "--rtol",
        "1e-4",
    ]);
    assert_eq!(code, 0, "{v}");
    let m = &v["models"][0];
    for b in ["candle", "ort", "tract"] {
        assert_eq!(backend(m, b)["status"], "pass", "{b}: {m}");
    }
    let cmp = m["comparisons"].as_array().unwrap();
    for out in ["last_hidden_state", "pooled"] {
        assert!(
            cmp.iter().any(|c| c["left"] == "ort"
                && c["right"] == "candle"
                && c["output"] == out
                && c["pass"] == true),
            "{out}: {m}"
        );
    }
    // The export's sequence dimension follows candle's default of 8 tokens.
    assert_eq!(
        output_shape(backend(m, "ort"), "last_hidden_state"),
        [1, 8, 32]
    );
}

/// A copy of a fixture directory whose safetensors file is rewritten by `edit`.
fn altered(
    name: &str,
    edit: impl Fn(&str, &[usize], &[u8]) -> Option<(String, Vec<usize>, Vec<u8>)>,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = fixtures().join("candle").join(name);
    let dst = dir.path().join(name);
    std::fs::create_dir(&dst).unwrap();
    std::fs::copy(src.join("config.json"), dst.join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (n, t) in st.tensors() {
        let (n2, shape, data) = edit(&n, t.shape(), t.data()).unwrap_or((
            n.clone(),
            t.shape().to_vec(),
            t.data().to_vec(),
        ));
        out.push((n2, t.dtype(), shape, data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = out
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    std::fs::write(
        dst.join("model.safetensors"),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    (dir, dst)
}

/// `check` on an altered model: it fails (exit 1), and candle's message says why.
fn candle_failure(dir: &Path) -> String {
    let (code, v) = check_json(&[dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{v}");
    backend(&v["models"][0], "candle")["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_renamed_tensor_is_named() {
    let (_keep, dir) = altered("llama", |n, s, d| {
        (n == "model.layers.1.self_attn.q_proj.weight").then(|| {
            (
                "model.layers.1.self_attn.q_prj.weight".into(),
                s.to_vec(),
                d.to_vec(),
            )
        })
    });
    let msg = candle_failure(&dir);
    assert!(
        msg.contains("`model.layers.1.self_attn.q_proj.weight` is missing")
            && msg.contains("`model.layers.1.self_attn.q_prj.weight` instead"),
        "{msg}"
    );
}

#[test]
fn a_wrong_shape_is_named() {
    let (_keep, dir) = altered("bert", |n, s, d| {
        (n == "encoder.layer.0.intermediate.dense.weight").then(|| {
            // 48 rows instead of the config's 64.
            let row = s[1] * 4;
            (n.to_string(), vec![48, s[1]], d[..48 * row].to_vec())
        })
    });
    let msg = candle_failure(&dir);
    assert!(
        msg.contains("`encoder.layer.0.intermediate.dense.weight` has shape [48, 32], but config.json implies [64, 32]"),
        "{msg}"
    );
}

#[test]
fn unsupported_architectures_and_missing_configs_say_what_is_supported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("gpt");
    std::fs::create_dir(&d).unwrap();
    std::fs::copy(
        fixtures().join("candle/llama/model.safetensors"),
        d.join("model.safetensors"),
    )
    .unwrap();
    std::fs::write(
        d.join("config.json"),
        r#"{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 128}"#,
    )
    .unwrap();
    let (code, v) = check_json(&[d.to_str().unwrap()]);
    assert_eq!(code, 1, "{v}");
    let msg = backend(&v["models"][0], "candle")["message"]
        .as_str()
        .unwrap();
    assert!(
        msg.contains("GPT2LMHeadModel") && msg.contains("supported: bert"),
        "{msg}"
    );

    std::fs::remove_file(d.join("config.json")).unwrap();
    let lone = d.join("model.safetensors");
    let (code, v) = check_json(&[lone.to_str().unwrap()]);
    assert_eq!(code, 1, "{v}");
    let msg = backend(&v["models"][0], "candle")["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("no config.json"), "{msg}");
}

#[test]
fn a_vocabulary_only_gguf_is_reported_as_such() {
    let (code, v) = check_json(&[&candle("vocab-only.gguf")]);
    assert_eq!(code, 2, "{v}");
    let msg = v["models"][0]["message"].as_str().unwrap();
    assert!(msg.contains("vocabulary-only"), "{msg}");
    assert!(Path::new(&candle("vocab-only.gguf")).is_file());
}

/// `init` for weights-only models: a candle project per architecture (BERT and Llama from
/// config.json + safetensors, quantized Llama from GGUF) whose own `cargo test` reproduces what the
/// candle back end recorded (candle against torch is proven above).
#[test]
fn init_makes_candle_projects_that_pass_their_own_tests() {
    let dir = tempfile::tempdir().unwrap();
    for (model, output) in [
        ("candle/bert/model.safetensors", "last_hidden_state"),
        ("candle/llama/model.safetensors", "logits"),
        ("candle/llama-q8_0.gguf", "logits"),
    ] {
        let project = common::project::init(dir.path(), model, &[]);
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("choice = \"candle\""),
            "{model}: {manifest}"
        );
        assert!(
            manifest.contains("candle-transformers = \"=0.11.1\"")
                && !manifest.contains("candle-onnx"),
            "{manifest}"
        );
        if model.ends_with(".safetensors") {
            assert!(
                project.join("models/config.json").is_file(),
                "{model}: config.json not copied"
            );
        }
        passes_its_test_and_prints(&project, model, output);
    }
}

/// The project's own `cargo test` passes, and its binary prints `output`'s shape.
fn passes_its_test_and_prints(project: &Path, model: &str, output: &str) {
    common::project::cargo(project, &["test"]);
    let run = common::project::cargo(project, &["run", "--quiet"]);
    assert!(
        String::from_utf8_lossy(&run.stdout).contains(&format!("{output}: shape")),
        "{model}: {}",
        String::from_utf8_lossy(&run.stdout)
    );
}

/// `init --framework candle` on an ONNX graph: a candle-onnx project (no candle-transformers),
/// its inputs of every kind candle takes (a bool goes in as u8), whose own test reproduces what
/// candle-onnx recorded here — and `check` proved candle-onnx against tract and ort above.
#[test]
fn init_makes_candle_onnx_projects_that_pass_their_own_tests() {
    let dir = tempfile::tempdir().unwrap();
    for (model, output) in [("mlp.onnx", "output"), ("control_flow.onnx", "output")] {
        let project = common::project::init(dir.path(), model, &["--framework", "candle"]);
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("candle-onnx = \"=0.11.1\"")
                && !manifest.contains("candle-transformers"),
            "{model}: {manifest}"
        );
        passes_its_test_and_prints(&project, model, output);
    }
    // An input candle-onnx cannot be fed is refused before anything is written.
    let out = common::cargo_infer()
        .arg("init")
        .arg(dir.path().join("int32"))
        .arg("--model")
        .arg(fixtures().join("forms/inputs.onnx"))
        .args(["--framework", "candle"])
        .output()
        .unwrap();
    let err = one_line_error(&out, "candle on an int32 input");
    assert!(err.contains("which candle-onnx does not take"), "{err}");
    assert!(!dir.path().join("int32").exists());
}

#[test]
fn init_for_candle_needs_the_config_next_to_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("candle/bert/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let project = dir.path().join("app");
    let out = common::cargo_infer()
        .arg("init")
        .arg(&project)
        .arg("--model")
        .arg(dir.path().join("model.safetensors"))
        .args(["--framework", "candle"])
        .output()
        .unwrap();
    let err = one_line_error(&out, "init for candle without config.json");
    assert!(err.contains("config.json"), "{err}");
    assert!(!project.exists());
}

/// A GPU constraint reaches the generated project: candle's `cuda` feature and a CUDA device in
/// main.rs (not built here: no CUDA toolkit).
#[test]
fn init_for_candle_on_cuda_asks_for_the_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("gpu");
    common::cargo_infer()
        .arg("init")
        .arg(&project)
        .arg("--model")
        .arg(fixtures().join("candle/llama-q8_0.gguf"))
        .args(["--framework", "candle", "--gpu", "cuda"])
        .assert()
        .success();
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("candle-core = { version = \"=0.11.1\", features = [\"cuda\"] }"),
        "{manifest}"
    );
    let main = std::fs::read_to_string(project.join("src/main.rs")).unwrap();
    assert!(main.contains("Device::new_cuda(0)?"), "{main}");
    assert!(!main.contains("Device::Cpu"), "{main}");
}

/// ONNX graphs through candle-onnx: the same contract as every back end — outputs compared with
/// tract's and ONNX Runtime's, what it lacks named at once and reported as unsupported.
#[test]
fn onnx_graphs_run_on_candle_onnx_and_agree_with_tract_and_ort() {
    let mlp = fixtures().join("mlp.onnx");
    let (code, v) = check_json(&[mlp.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let m = &v["models"][0];
    assert_eq!(backend(m, "candle")["status"], "pass", "{m}");
    let cmp = m["comparisons"].as_array().unwrap();
    for other in ["tract", "ort"] {
        assert!(
            cmp.iter()
                .any(|c| c["left"] == other && c["right"] == "candle" && c["pass"] == true),
            "{other}: {m}"
        );
    }
    // Control flow and a graph whose shape comes from an input.
    for f in ["control_flow.onnx", "dynamic_reshape.onnx", "lstm.onnx"] {
        let (code, v) = check_json(&[fixtures().join(f).to_str().unwrap()]);
        assert_eq!(code, 0, "{f}: {v}");
        assert_eq!(
            backend(&v["models"][0], "candle")["status"],
            "pass",
            "{f}: {v}"
        );
    }

    // Every operator it lacks, named together, before anything runs; the model is still
    // checked on the others when candle was not asked for by name.
    let t = fixtures().join("transformer.onnx");
    let (code, v) = check_json(&[t.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    let c = backend(&v["models"][0], "candle");
    assert_eq!(c["status"], "unsupported");
    assert_eq!(
        c["message"],
        "candle-onnx 0.11.1 lacks operators LayerNormalization, com.microsoft:Gelu"
    );
    let (code, v) = check_json(&[t.to_str().unwrap(), "--backend", "candle"]);
    assert_eq!(code, 1, "{v}");

    // External data: refused, not misread.
    let ext = fixtures().join("mlp_external.onnx");
    let (_, v) = check_json(&[ext.to_str().unwrap(), "--backend", "candle"]);
    let c = backend(&v["models"][0], "candle");
    assert_eq!(c["status"], "unsupported");
    assert!(
        c["message"].as_str().unwrap().contains("external data"),
        "{c}"
    );
}

/// `decide --probe` runs candle on an ONNX model instead of scoring it from a list.
#[test]
fn decide_probes_candle_on_onnx() {
    let out = common::cargo_infer()
        .args(["decide", "--probe", "--format", "json"])
        .arg(fixtures().join("cnn.onnx"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let probe = v["evidence"]["probe"]["candle"].to_string();
    assert!(probe.contains("GlobalAveragePool"), "{v}");
}

/// A sentence-transformers directory (safetensors, tokenizer, 1_Pooling) embeds text on candle as
/// the reference made from its ONNX export with Python's tokenizers, ONNX Runtime and numpy
/// (fixtures/embed-text), and as ort does on that export (`--pair`: candle runs the directory, tract
/// and ort the ONNX twin).
#[test]
fn a_sentence_transformers_directory_embeds_text_on_candle() {
    let dir = fixtures().join("embed-st");
    let reference = |f: &str| fixtures().join("embed-text").join(f);
    let (code, v) = check_json(&[
        dir.to_str().unwrap(),
        "--backend",
        "candle",
        "--expected",
        reference("mean.npz").to_str().unwrap(),
    ]);
    let m = &v["models"][0];
    assert_eq!(code, 0, "{m}");
    let c = backend(m, "candle");
    assert_eq!(
        c["texts"].as_array().unwrap().len(),
        3,
        "built-in texts: {c}"
    );
    assert_eq!(m["embedding"]["pooling_from"], "1_Pooling/config.json");
    assert_eq!(m["embedding"]["dim"], 16);
    assert!(
        m["embedding"].get("fastembed_accepts").is_none(),
        "not ONNX: {m}"
    );
    let vs_expected = m["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["left"] == "candle" && c["right"] == "expected")
        .unwrap();
    assert_eq!(vs_expected["pass"], true, "{vs_expected}");

    // Texts given, against the ONNX export on ort: the padded batch is masked on both.
    let twin = fixtures().join("embed/model.onnx");
    let (code, v) = check_json(&[
        dir.to_str().unwrap(),
        "--pair",
        twin.to_str().unwrap(),
        "--text",
        "the model runs",
        "--text",
        "small text in rust fast",
    ]);
    let m = &v["models"][0];
    assert_eq!(code, 0, "{m}");
    let pair = m["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            let sides = [&c["left"], &c["right"]];
            c["output"] == "embeddings"
                && sides.contains(&&Value::from("candle"))
                && sides.contains(&&Value::from("ort"))
        })
        .unwrap_or_else(|| panic!("no candle vs ort embeddings: {m}"));
    assert_eq!(pair["pass"], true, "{pair}");
}
