//! Text in: `check --text`, and the fastembed path of a sentence encoder with its tokenizer files
//! (fixtures/embed). The reference embeddings (fixtures/embed-text) were made without
//! cargo-infer: Python's tokenizers, ONNX Runtime and numpy pooling (xtask/fixtures.py).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{backend, cargo_infer, check_json, fixtures};

const DEFAULT_TEXTS: [&str; 3] = [
    "A man is playing a guitar.",
    "A man plays the guitar.",
    "The stock market fell sharply today.",
];

fn model() -> String {
    fixtures().join("embed/model.onnx").display().to_string()
}

fn reference(name: &str) -> String {
    fixtures()
        .join("embed-text")
        .join(name)
        .display()
        .to_string()
}

/// A copy of the embedding fixture's directory, to change its files.
fn copy_of_embed(dir: &Path) -> PathBuf {
    for f in std::fs::read_dir(fixtures().join("embed")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    dir.join("model.onnx")
}

fn embeddings(b: &Value) -> Vec<Vec<f64>> {
    serde_json::from_value(b["embeddings"].clone()).unwrap()
}

fn comparison<'a>(m: &'a Value, left: &str, right: &str) -> &'a Value {
    m["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["left"] == left && c["right"] == right && c["output"] == "embeddings")
        .unwrap_or_else(|| panic!("no {left} vs {right} on embeddings in {m}"))
}

#[test]
fn an_encoder_with_a_tokenizer_is_checked_the_fastembed_way() {
    let (code, v) = check_json(&[&model(), "--expected", &reference("mean.npz")]);
    let m = &v["models"][0];
    assert_eq!(code, 0, "{m}");
    assert_eq!(m["data_sets"], serde_json::json!(["text"]));
    for name in ["tract", "ort"] {
        let b = backend(m, name);
        assert_eq!(b["status"], "pass", "{b}");
        assert_eq!(b["texts"], serde_json::json!(DEFAULT_TEXTS));
        let e = embeddings(b);
        assert_eq!(e.len(), 3);
        for v in &e {
            assert_eq!(v.len(), 16);
            let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-6, "{norm}");
        }
        // Against embeddings Python made with ONNX Runtime and numpy.
        let c = comparison(m, name, "expected");
        assert_eq!(c["pass"], true, "{c}");
        assert!(c["max_abs"].as_f64().unwrap() < 1e-5, "{c}");
    }
    assert_eq!(comparison(m, "tract", "ort")["pass"], true);
    let e = &m["embedding"];
    assert_eq!(e["dim"], 16);
    assert_eq!(e["output"], "last_hidden_state");
    assert_eq!(e["pooling"], serde_json::json!(["mean"]));
    assert_eq!(e["normalized"], true);
    assert_eq!(e["fastembed_accepts"], true, "{e}");
    let p = &e["paraphrase"];
    assert!(p["paraphrase_cosine"].as_f64().unwrap() <= 1.0);
    assert_eq!(
        p["holds"].as_bool().unwrap(),
        p["paraphrase_cosine"].as_f64() > p["unrelated_cosine"].as_f64()
    );
}

#[test]
fn the_wrong_pooling_fails_against_the_reference() {
    // The fixture has no 1_Pooling: mean pooling, which the [CLS] reference does not match.
    let (code, v) = check_json(&[&model(), "--expected", &reference("cls.npz")]);
    let m = &v["models"][0];
    assert_eq!(code, 1, "{m}");
    assert_eq!(m["status"], "fail");
    assert_eq!(comparison(m, "tract", "expected")["pass"], false);
}

#[test]
fn sentence_transformers_pooling_config_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_of_embed(dir.path());
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 16, "pooling_mode_cls_token": true,
            "pooling_mode_mean_tokens": false, "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false}"#,
    )
    .unwrap();
    let model = model.to_str().unwrap();
    let (code, v) = check_json(&[model, "--expected", &reference("cls.npz")]);
    let m = &v["models"][0];
    assert_eq!(code, 0, "{m}");
    assert_eq!(m["embedding"]["pooling"], serde_json::json!(["cls"]));
    assert_eq!(m["embedding"]["pooling_from"], "1_Pooling/config.json");

    // A width the output does not have is the model's failure, named.
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 384, "pooling_mode_max_tokens": true}"#,
    )
    .unwrap();
    let (code, v) = check_json(&[model]);
    let m = &v["models"][0];
    assert_eq!(code, 1, "{m}");
    assert!(
        backend(m, "tract")["message"]
            .as_str()
            .unwrap()
            .contains("16 wide where 1_Pooling/config.json says 384"),
        "{m}"
    );
    // Max pooling is honoured here, and fastembed (cls or mean only) would refuse it.
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 16, "pooling_mode_max_tokens": true}"#,
    )
    .unwrap();
    let (code, v) = check_json(&[model]);
    let e = &v["models"][0]["embedding"];
    assert_eq!(code, 0, "{v}");
    assert_eq!(e["pooling"], serde_json::json!(["max"]));
    assert_eq!(e["fastembed_accepts"], false);
    assert!(
        e["fastembed_refusals"][0]
            .as_str()
            .unwrap()
            .contains("not max"),
        "{e}"
    );
}

#[test]
fn texts_given_are_embedded_and_reported() {
    let texts = [
        "the model runs",
        "the model runs fast",
        "small text in rust",
    ];
    let mut args = vec![model()];
    for t in texts {
        args.extend(["--text".to_string(), t.to_string()]);
    }
    args.extend(["--expected".into(), reference("custom.npz")]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, v) = check_json(&argv);
    let m = &v["models"][0];
    assert_eq!(code, 0, "{m}");
    assert_eq!(backend(m, "ort")["texts"], serde_json::json!(texts));
    assert_eq!(comparison(m, "ort", "expected")["pass"], true);

    // People read the width, the pooling, the paraphrase check and fastembed's view.
    let out = cargo_infer().arg("check").args(&argv).output().unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains("embeddings: 16 wide from `last_hidden_state`, mean pooling"),
        "{human}"
    );
    assert!(human.contains("paraphrase check: cosine"), "{human}");
    assert!(human.contains("fastembed: takes the model"), "{human}");

    // One text: no paraphrase check, still a check.
    let (code, v) = check_json(&[&model(), "--text", "rust"]);
    assert_eq!(code, 0, "{v}");
    assert!(v["models"][0]["embedding"].get("paraphrase").is_none());
    assert_eq!(embeddings(backend(&v["models"][0], "tract")).len(), 1);
}

#[test]
fn what_fastembed_would_refuse_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_of_embed(dir.path());
    std::fs::remove_file(dir.path().join("special_tokens_map.json")).unwrap();
    std::fs::write(dir.path().join("tokenizer_config.json"), "{}").unwrap();
    let (code, v) = check_json(&[model.to_str().unwrap()]);
    let e = &v["models"][0]["embedding"];
    assert_eq!(code, 0, "{v}");
    assert_eq!(e["fastembed_accepts"], false);
    let why = e["fastembed_refusals"].to_string();
    for says in [
        "no special_tokens_map.json",
        "no numeric model_max_length",
        "no pad_token",
    ] {
        assert!(why.contains(says), "{says}: {why}");
    }
}

#[test]
fn text_without_a_tokenizer_or_with_a_bad_one_is_an_error_naming_it() {
    let (code, v) = check_json(&[
        fixtures().join("mlp.onnx").to_str().unwrap(),
        "--text",
        "hello",
    ]);
    let m = &v["models"][0];
    assert_eq!(code, 2, "{m}");
    assert!(
        m["message"].as_str().unwrap().contains("no tokenizer.json"),
        "{m}"
    );

    let dir = tempfile::tempdir().unwrap();
    let model = copy_of_embed(dir.path());
    std::fs::write(dir.path().join("tokenizer.json"), r#"{"model": 7}"#).unwrap();
    let (code, v) = check_json(&[model.to_str().unwrap(), "--text", "hello"]);
    let m = &v["models"][0];
    assert_eq!(code, 2, "{m}");
    let msg = m["message"].as_str().unwrap();
    assert!(msg.contains("tokenizer.json: not a tokenizer"), "{msg}");
    assert_eq!(msg.lines().count(), 1);

    // Text and inputs both: the user's mistake.
    let out = cargo_infer()
        .args([
            "check",
            &model.display().to_string(),
            "--text",
            "a",
            "--input",
        ])
        .arg(fixtures().join("check/mlp.inputs.npz"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Reference embeddings of another shape are a comparison that fails, not a crash.
    let (code, _) = check_json(&[
        &self::model(),
        "--text",
        "rust",
        "--expected",
        &reference("mean.npz"),
    ]);
    assert_eq!(code, 1);
}

/// The embedding fixture with its one output renamed (a classifier's `logits`, say).
fn with_output_named(dir: &Path, name: &str) -> PathBuf {
    use prost::Message;
    let model = copy_of_embed(dir);
    let mut proto =
        tract_onnx::pb::ModelProto::decode(&std::fs::read(&model).unwrap()[..]).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let old = graph.output[0].name.clone();
    graph.output[0].name = name.into();
    for n in &mut graph.node {
        for o in &mut n.output {
            if *o == old {
                *o = name.into();
            }
        }
    }
    std::fs::write(&model, proto.encode_to_vec()).unwrap();
    model
}

#[test]
fn only_sentence_encoders_take_the_text_path_unasked() {
    // A model with a tokenizer whose output is `logits` (a classifier, a language model) keeps
    // synthetic inputs; asked for text, it fails naming why.
    let dir = tempfile::tempdir().unwrap();
    let model = with_output_named(dir.path(), "logits");
    let model = model.to_str().unwrap();
    let (code, v) = check_json(&[model]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["models"][0]["data_sets"],
        serde_json::json!(["synthetic"])
    );
    let (code, v) = check_json(&[model, "--text", "rust"]);
    assert_eq!(code, 1, "{v}");
    assert!(
        backend(&v["models"][0], "tract")["message"]
            .as_str()
            .unwrap()
            .contains("`logits`"),
        "{v}"
    );
    // --expected holding the model's outputs (not `embeddings`) keeps synthetic inputs too.
    let out = tempfile::tempdir().unwrap();
    crate::common::write_npy(
        &out.path().join("last_hidden_state.npy"),
        &[1, 1, 16],
        &[0.0; 16],
    );
    let (_, v) = check_json(&[&self::model(), "--expected", out.path().to_str().unwrap()]);
    assert_eq!(
        v["models"][0]["data_sets"],
        serde_json::json!(["synthetic"]),
        "{v}"
    );
}

#[test]
fn any_one_output_is_fastembeds_and_a_tokenizer_without_room_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = with_output_named(dir.path(), "features");
    let (code, v) = check_json(&[model.to_str().unwrap(), "--text", "rust"]);
    // One output: fastembed takes it whatever its name.
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        v["models"][0]["embedding"]["fastembed_accepts"], true,
        "{v}"
    );

    // A model_max_length that leaves no room for [CLS] and [SEP]: the file's error, no panic.
    let dir = tempfile::tempdir().unwrap();
    let model = copy_of_embed(dir.path());
    let config = dir.path().join("tokenizer_config.json");
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    c["model_max_length"] = 2.into();
    std::fs::write(&config, c.to_string()).unwrap();
    let (code, v) = check_json(&[model.to_str().unwrap(), "--text", "rust"]);
    let m = &v["models"][0];
    assert_eq!(code, 2, "{m}");
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains("tokenizer_config.json: model_max_length 2 leaves no room"),
        "{m}"
    );
}

/// A fastembed project pools as the model says — `init`'s src/lib.rs and `add`'s
/// src/inference.rs alike — and a pooling fastembed lacks is refused, nothing written.
#[test]
fn fastembed_projects_pool_as_the_model_says() {
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("svc");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(krate.join("src/lib.rs"), "").unwrap();
    let out = cargo_infer()
        .args(["add", "--framework", "fastembed"])
        .arg(model())
        .current_dir(&krate)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let module = std::fs::read_to_string(krate.join("src/inference.rs")).unwrap();
    assert!(module.contains(".with_pooling(Pooling::Mean)"), "{module}");

    let models = tempfile::tempdir().unwrap();
    let with_pooling = |config: &str| {
        let copy = models.path().join(format!("m{}", config.len()));
        std::fs::create_dir_all(copy.join("1_Pooling")).unwrap();
        let m = copy_of_embed(&copy);
        std::fs::write(copy.join("1_Pooling/config.json"), config).unwrap();
        m
    };
    let init = |m: &Path, name: &str| {
        cargo_infer()
            .arg("init")
            .arg(dir.path().join(name))
            .arg("--model")
            .arg(m)
            .args(["--framework", "fastembed"])
            .output()
            .unwrap()
    };
    let cls = with_pooling(r#"{"pooling_mode_cls_token": true}"#);
    let out = init(&cls, "cls");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lib = std::fs::read_to_string(dir.path().join("cls/src/lib.rs")).unwrap();
    assert!(lib.contains(".with_pooling(Pooling::Cls)"), "{lib}");

    let max =
        with_pooling(r#"{"pooling_mode_max_tokens": true, "pooling_mode_mean_tokens": false}"#);
    let out = init(&max, "max");
    let err = crate::common::one_line_error(&out, "fastembed with max pooling");
    assert!(err.contains("fastembed pools by"), "{err}");
    assert!(!dir.path().join("max").exists());
}
