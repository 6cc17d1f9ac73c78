//! `cargo infer init` and `add`: generated projects build and their own tests pass (offline,
//! one shared target directory so that frameworks compile once); `add` keeps every byte of a
//! hand-written manifest it does not need to touch, and is idempotent.

use std::path::{Path, PathBuf};

mod common;

use common::project::{cargo, cargo_with, init, project_cargo};
use common::{assert_success, cargo_infer, fixtures, one_line_error};

#[test]
fn generated_projects_build_run_and_pass_their_own_tests() {
    let dir = tempfile::tempdir().unwrap();
    for (model, flags, framework) in [
        ("cnn.onnx", &["--pure-rust"][..], "tract"),
        ("lstm.onnx", &["--serving"][..], "ort"),
        ("mlp.onnx", &["--max-binary-size", "1MB"][..], "custom"),
        ("mlp_external.onnx", &["--framework", "tract"][..], "tract"),
    ] {
        let project = init(dir.path(), model, flags);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&project).unwrap().permissions().mode() & 0o777,
                0o755,
                "{model}: project directory mode"
            );
        }
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("choice = \"{framework}\"")),
            "{model}: {manifest}"
        );
        assert!(manifest.contains("sha256 = "));
        for f in [
            "README.md",
            ".github/workflows/model.yml",
            "tests/model.rs",
            "src/main.rs",
            "tests/data/input_0.npy",
            "tests/data/output_0.npy",
        ] {
            assert!(project.join(f).is_file(), "{model}: {f} missing");
        }
        let out = cargo(&project, &["test"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("test reproduces_recorded_outputs ... ok"),
            "{model}: {text}"
        );
        let out = cargo(&project, &["run", "--quiet"]);
        assert!(!out.stdout.is_empty(), "{model}: main printed nothing");
    }
}

#[test]
fn the_recorded_test_catches_a_changed_model() {
    let dir = tempfile::tempdir().unwrap();
    let project = init(dir.path(), "mlp.onnx", &["--framework", "custom"]);
    // Move the last layer's first bias by 1: the recorded outputs no longer match.
    let path = project.join("src/model.rs");
    let code = std::fs::read_to_string(&path).unwrap();
    let marker = "static B1: [f32; 3] = [\n    ";
    assert!(code.contains(marker), "{code}");
    std::fs::write(&path, code.replace(marker, &format!("{marker}1.0 + "))).unwrap();
    let out = project_cargo(&project, &["test", "--offline"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a changed model passed the recorded test"
    );
}

#[test]
fn init_refuses_non_empty_directories_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "mine").unwrap();
    let out = cargo_infer()
        .arg("init")
        .arg(&busy)
        .arg("--model")
        .arg(fixtures().join("cnn.onnx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    // A bad model: exit 2, no directory, no temporary left over.
    let target = dir.path().join("new");
    let out = cargo_infer()
        .arg("init")
        .arg(&target)
        .arg("--model")
        .arg(fixtures().join("bad/absurd-dims.onnx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!target.exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    // A framework that does not load this format, and one that needs files the model lacks:
    // one line each, nothing written.
    for (model, framework, says) in [
        (
            "mlp.onnx",
            "candle",
            "a candle project loads safetensors or gguf models; this is onnx",
        ),
        (
            "candle/bert.onnx",
            "fastembed",
            "fastembed needs tokenizer.json next to the model",
        ),
        (
            "mlp.torchscript.pt",
            "burn",
            "burn does not read torchscript files",
        ),
    ] {
        let out = cargo_infer()
            .arg("init")
            .arg(&target)
            .arg("--model")
            .arg(fixtures().join(model))
            .args(["--framework", framework])
            .output()
            .unwrap();
        let err = one_line_error(&out, model);
        assert!(err.contains(says), "{model}: {err}");
        assert!(!target.exists());
    }
}

/// burn (the ONNX model turned into Rust by burn-onnx in the project's build script) and
/// fastembed (a sentence-embedding model with its tokenizer files, on ONNX Runtime loaded at run
/// time): the generated projects build, and their own tests reproduce the recorded outputs. These
/// crates are not in this workspace, so cargo resolves them online (crates.io).
#[test]
fn burn_and_fastembed_projects_pass_their_own_tests() {
    let dir = tempfile::tempdir().unwrap();
    for (model, flags, framework) in [
        ("mlp.onnx", &["--framework", "burn"][..], "burn"),
        ("embed/model.onnx", &[][..], "fastembed"),
    ] {
        let project = init(dir.path(), model, flags);
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("choice = \"{framework}\"")),
            "{model}: {manifest}"
        );
        cargo_with(&project, &["test"], false);
        let run = cargo_with(&project, &["run", "--quiet"], false);
        assert!(
            !run.stdout.is_empty(),
            "{model}: the binary printed nothing"
        );
    }
}

#[test]
fn wasm_scaffold_has_no_sys_or_cpp_crates() {
    let dir = tempfile::tempdir().unwrap();
    let project = init(
        dir.path(),
        "lstm.onnx",
        &["--target", "wasm32-unknown-unknown"],
    );
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("getrandom-js"), "{manifest}");
    assert!(std::fs::read_to_string(project.join(".cargo/config.toml"))
        .unwrap()
        .contains("wasm32-unknown-unknown"));
    let out = cargo_with(
        &project,
        &[
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            "wasm32-unknown-unknown",
        ],
        false,
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // What the WASM binary links: the closure of normal (not build) dependencies from the root.
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let root = meta["resolve"]["root"].as_str().unwrap().to_string();
    let mut seen = vec![root.clone()];
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        let node = nodes.iter().find(|n| n["id"] == id.as_str()).unwrap();
        for d in node["deps"].as_array().unwrap() {
            let normal = d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let dep = d["pkg"].as_str().unwrap().to_string();
            if normal && !seen.contains(&dep) {
                seen.push(dep.clone());
                todo.push(dep);
            }
        }
    }
    let names: Vec<&str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| seen.iter().any(|id| id == p["id"].as_str().unwrap()))
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"tract-onnx"));
    let bad: Vec<&&str> = names
        .iter()
        .filter(|n| n.ends_with("-sys") || ["cc", "cmake", "cxx", "ort", "tch"].contains(n))
        .collect();
    assert!(bad.is_empty(), "the WASM dependency graph holds {bad:?}");
}

/// A crate of the user's: this manifest and src/lib.rs.
fn existing_crate(manifest: &str, lib: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), lib).unwrap();
    dir
}

fn add_to(dir: &Path, framework: &str, model: &str) -> std::process::Output {
    cargo_infer()
        .args(["add", "--framework", framework])
        .arg(fixtures().join(model))
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn add_keeps_every_unrelated_byte_and_is_idempotent() {
    let original = "# My service. Keep this comment.\n[package]\nname    =   \"svc\"   # aligned on purpose\nversion = \"0.3.0\"\nedition = \"2021\"\n\n[dependencies]\n# logging\nlog = \"0.4\"\nserde = { version = \"1\", features = [\"derive\"] }   # trailing note\n\n[features]\ndefault = []\n";
    let dir = existing_crate(original, "pub mod inference;\n");
    let add = || add_to(dir.path(), "tract", "cnn.onnx");
    let out = add();
    assert_success(&out, "cargo infer add");
    let edited = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
    // Every original line is still there, in order.
    let mut rest = edited.as_str();
    for line in original.lines() {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("lost `{line}` in:\n{edited}"));
        rest = &rest[at + line.len()..];
    }
    assert!(
        edited.contains("tract-onnx = \"=0.23.9\"")
            && edited.contains("[package.metadata.infer]")
            && edited.contains("choice = \"tract\""),
        "{edited}"
    );
    assert!(
        dir.path().join("models/cnn.onnx").is_file()
            && dir.path().join("src/inference.rs").is_file()
    );
    let snapshot = |d: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut v = Vec::new();
        for p in ["Cargo.toml", "src/inference.rs", "models/cnn.onnx"] {
            v.push((d.join(p), std::fs::read(d.join(p)).unwrap()));
        }
        v
    };
    let before = snapshot(dir.path());
    let out = add();
    assert_success(&out, "cargo infer add, again");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to do"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a second add changed something"
    );
    // The crate builds with the module it was given.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"),
        dir.path().join("Cargo.lock"),
    )
    .unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), "pub mod inference;\n").unwrap();
    let manifest = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), manifest.replace("log = \"0.4\"\nserde = { version = \"1\", features = [\"derive\"] }   # trailing note\n", "")).unwrap();
    cargo(dir.path(), &["check"]);
}

#[test]
fn validated_versions_are_listed() {
    let out = cargo_infer().args(["--version", "-v"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("tract-onnx 0.23.9") && text.contains("ort 2.0.0-rc.15"),
        "{text}"
    );
}

/// `add` for a weights-only model: candle's crates, the weights with the config.json they need, and
/// the module a candle project keeps in src/lib.rs (built by the candle scaffold test); twice
/// changes nothing. burn, which generates its code in a build script, is refused.
#[test]
fn add_sets_up_candle_with_the_files_the_weights_need() {
    let original = "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nserde_json = \"1.0\"   # ours\n";
    let dir = existing_crate(original, "");
    let add = |framework: &str, model: &str| add_to(dir.path(), framework, model);
    let out = add("candle", "candle/bert/model.safetensors");
    assert_success(&out, "cargo infer add");
    let edited = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
    assert!(
        edited.contains("candle-transformers = \"=0.11.1\""),
        "{edited}"
    );
    assert!(edited.contains("serde_json = \"1.0\"   # ours"), "{edited}");
    for f in ["models/model.safetensors", "models/config.json"] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let module = std::fs::read_to_string(dir.path().join("src/inference.rs")).unwrap();
    assert!(module.contains("BertModel::load"), "{module}");
    let out = add("candle", "candle/bert/model.safetensors");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
    let out = add("burn", "mlp.onnx");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("burn is not"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--ort-download`: ort's default features (a prebuilt ONNX Runtime downloaded and linked at build
/// time) instead of load-dynamic; the generated code never asks for ORT_DYLIB_PATH. Not built here
/// (this machine cannot reach that download): the manifest, the code, and cargo's resolution.
#[test]
fn ort_download_links_the_prebuilt_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let project = init(
        dir.path(),
        "lstm.onnx",
        &["--framework", "ort", "--ort-download"],
    );
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("ort = \"=2.0.0-rc.15\""), "{manifest}");
    assert!(!manifest.contains("load-dynamic"), "{manifest}");
    for f in [
        "src/main.rs",
        "tests/model.rs",
        ".github/workflows/model.yml",
        "README.md",
    ] {
        let text = std::fs::read_to_string(project.join(f)).unwrap();
        assert!(!text.contains("ORT_DYLIB_PATH"), "{f}:\n{text}");
    }
    assert!(std::fs::read_to_string(project.join("src/main.rs"))
        .unwrap()
        .contains("ort::init().build()?"));
    let out = cargo_with(&project, &["metadata", "--format-version", "1"], false);
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ort_sys = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"].as_str().unwrap().contains("ort-sys"))
        .expect("ort-sys in the graph");
    assert!(
        ort_sys["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "download-binaries"),
        "{ort_sys}"
    );
}
