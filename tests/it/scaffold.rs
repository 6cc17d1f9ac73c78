//! `cargo infer init` and `add`: generated projects build and their own tests pass (offline,
//! one shared target directory so that frameworks compile once); `add` keeps every byte of a
//! hand-written manifest it does not need to touch, and is idempotent.

use std::path::{Path, PathBuf};

use crate::common::project::{cargo, cargo_with, init, pin_lock, project_cargo, DEV_PROFILE};
use crate::common::{assert_success, cargo_infer, fixtures, one_line_error};

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
            "tests/npy/mod.rs",
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
    let err = one_line_error(&out, "init into a non-empty directory");
    assert_eq!(
        err,
        format!(
            "error: {}: exists and is not empty (hint: pass --force to write into it)\n",
            busy.display()
        )
    );
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
            "state_dict.pt",
            "candle",
            "a candle project loads safetensors, gguf or onnx models; this is pytorch",
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

/// `init` and `add` name the file a problem is in — the package name, the manifest, a file of
/// the crate's — not the model's path in front of another file's problem.
#[test]
fn init_and_add_errors_name_the_file_they_are_about() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("mlp.onnx");
    let out = cargo_infer()
        .arg("init")
        .arg(dir.path().join("p"))
        .arg("--model")
        .arg(&model)
        .args(["--name", "123"])
        .output()
        .unwrap();
    let err = one_line_error(&out, "init --name 123");
    assert_eq!(
        err.trim_end(),
        "error: `123` is not a valid package name; give one with --name"
    );
    assert!(!dir.path().join("p").exists());

    // A manifest cargo refuses: the manifest is named.
    let broken = existing_crate("[package\n", "");
    let manifest = broken.path().join("Cargo.toml");
    let out = cargo_infer()
        .args(["add", "--framework", "tract"])
        .arg(&model)
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .unwrap();
    let err = one_line_error(&out, "add to a broken manifest");
    assert!(
        err.starts_with(&format!("error: {}: cargo metadata:", manifest.display())),
        "{err}"
    );

    // A file of the crate's where `add` would write: that file is named, nothing is written.
    let krate = existing_crate(
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        "",
    );
    std::fs::write(krate.path().join("src/inference.rs"), "// mine\n").unwrap();
    let before = std::fs::read_to_string(krate.path().join("Cargo.toml")).unwrap();
    let err = one_line_error(
        &add_to(krate.path(), "tract", "mlp.onnx"),
        "add over a file",
    );
    let ours = krate.path().join("src/inference.rs");
    assert!(
        err.starts_with(&format!("error: {}: exists and differs", ours.display()))
            && !err.contains("mlp.onnx"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(krate.path().join("Cargo.toml")).unwrap(),
        before
    );
    // ... with what to do about it, after the error, as nextest words a hint.
    assert!(
        err.ends_with("(hint: pass --force to replace it)\n"),
        "{err}"
    );

    // A sample input that is not one: the data file is named, not the model, by init and add
    // alike (add used to go on without recording data).
    let bad = dir.path().join("x.npy");
    std::fs::write(&bad, b"not numpy").unwrap();
    let out = cargo_infer()
        .arg("init")
        .arg(dir.path().join("q"))
        .arg("--model")
        .arg(&model)
        .arg("--input")
        .arg(format!("x={}", bad.display()))
        .output()
        .unwrap();
    let err = one_line_error(&out, "init with a bad --input");
    assert!(
        err.starts_with(&format!("error: {}: not a .npy file", bad.display())),
        "{err}"
    );
    assert!(!dir.path().join("q").exists());
    let before = std::fs::read_to_string(krate.path().join("Cargo.toml")).unwrap();
    let out = cargo_infer()
        .args(["add", "--framework", "tract"])
        .arg(&model)
        .arg("--input")
        .arg(format!("x={}", bad.display()))
        .current_dir(krate.path())
        .output()
        .unwrap();
    let err = one_line_error(&out, "add with a bad --input");
    assert!(
        err.starts_with(&format!("error: {}: not a .npy file", bad.display())),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(krate.path().join("Cargo.toml")).unwrap(),
        before
    );
    // A flag naming an input the model lacks is the flag's error, without a path.
    let out = cargo_infer()
        .arg("init")
        .arg(dir.path().join("q"))
        .arg("--model")
        .arg(&model)
        .args(["--dim", "batch=2", "--input-shape", "nope=1x4"])
        .output()
        .unwrap();
    let err = one_line_error(&out, "init with --input-shape of no input");
    assert!(
        err.starts_with("error: --input-shape `nope`: the model has no such input"),
        "{err}"
    );
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
    let original = "# My service. Keep this comment.\n[package]\nname    =   \"svc\"   # aligned on purpose\nversion = \"0.3.0\"\nedition = \"2021\"\n\n[dependencies]\n# logging\nlog = \"0.4\"\nserde = { version = \"1\", features = [\"derive\"] }   # trailing note\n\n[features]\ndefault = []\n".to_string()
        + DEV_PROFILE;
    let original = original.as_str();
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
    pin_lock(dir.path());
    std::fs::write(dir.path().join("src/lib.rs"), "pub mod inference;\n").unwrap();
    let manifest = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), manifest.replace("log = \"0.4\"\nserde = { version = \"1\", features = [\"derive\"] }   # trailing note\n", "")).unwrap();
    // `build`, not `check`: tract's crates are already built for the other tract projects (the
    // crate has their profile).
    cargo(dir.path(), &["build"]);
}

/// `add` where the model already is: run from the model's own directory, and with the model
/// already at the place `add` copies it to. Never a panic, and the model is never truncated by
/// being copied onto itself.
#[test]
fn add_from_the_models_directory_keeps_the_model_whole() {
    let manifest = "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    let model = std::fs::read(fixtures().join("cnn.onnx")).unwrap();
    for (place, cwd, arg) in [
        ("models/cnn.onnx", "models", "cnn.onnx"),
        ("models/cnn.onnx", ".", "models/cnn.onnx"),
        ("cnn.onnx", ".", "cnn.onnx"),
    ] {
        let dir = existing_crate(manifest, "");
        let at = dir.path().join(place);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(&at, &model).unwrap();
        let out = cargo_infer()
            .args(["add", "--framework", "tract", arg])
            .current_dir(dir.path().join(cwd))
            .output()
            .unwrap();
        assert_success(&out, &format!("add {arg} from {cwd}"));
        assert_eq!(std::fs::read(&at).unwrap(), model, "{place} changed");
        assert_eq!(
            std::fs::read(dir.path().join("models/cnn.onnx")).unwrap(),
            model
        );
        assert!(dir.path().join("src/inference.rs").is_file());
    }
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

/// Where the hostile fixture's payload would write if a name ever ran as code.
const NAMES_PAYLOAD: &str = "/tmp/cargo-infer-pwned-names";

/// The model's input and output names, as `inspect` reads them.
fn io_names(model: &Path) -> (Vec<String>, Vec<String>) {
    let out = cargo_infer()
        .args(["inspect", "--format", "json"])
        .arg(model)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = |k: &str| {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|io| io["name"].as_str().unwrap().to_string())
            .collect()
    };
    (names("inputs"), names("outputs"))
}

/// A copy of a fixture under a file name that is itself hostile (quotes, a command
/// substitution, a newline, braces, a GitHub Actions expression).
fn hostile_copy(dir: &Path, fixture: &str) -> PathBuf {
    let name = "m\"); $(touch /tmp/cargo-infer-pwned-names) ${{ github.token }} `x`\n{}.onnx";
    let src = fixtures().join(fixture);
    let dest = dir.join("in").join(name);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    for entry in std::fs::read_dir(src.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() && entry.path() != src {
            std::fs::copy(entry.path(), dest.with_file_name(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(&src, &dest).unwrap();
    dest
}

/// What every project made from a hostile model must hold: the payload never ran, the names
/// reach the workflow and README only escaped, and the program printed the exact output names.
fn assert_names_stayed_data(project: &Path, outputs: &[String], printed: &str) {
    assert!(
        !Path::new(NAMES_PAYLOAD).exists(),
        "a model's name ran as code in {}",
        project.display()
    );
    for o in outputs {
        assert!(
            printed.contains(o.as_str()),
            "the program did not print the exact name {o:?}:\n{printed}"
        );
    }
    let workflow = std::fs::read_to_string(project.join(".github/workflows/model.yml")).unwrap();
    assert!(!workflow.contains("${{ github.token"), "{workflow}");
    assert!(!workflow.contains("$(touch"), "{workflow}");
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(!readme.contains("$(touch"), "{readme}");
    // The model was kept under a clean name; the README names the original.
    let models: Vec<String> = std::fs::read_dir(project.join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        models.iter().any(|m| m.ends_with(".onnx")
            && m.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))),
        "{models:?}"
    );
    assert!(readme.contains("The model was given as"), "{readme}");
}

/// Models come from the internet: a tensor or file name that holds a quote, a newline, braces,
/// `*/` or a payload must stay a string in every file `init` writes, for every framework. The
/// projects build, pass their own tests, and print the names exactly.
#[test]
fn hostile_names_never_become_code() {
    let _ = std::fs::remove_file(NAMES_PAYLOAD);
    let dir = tempfile::tempdir().unwrap();
    let model = hostile_copy(dir.path(), "hostile/names.onnx");
    let (inputs, outputs) = io_names(&model);
    assert!(inputs[0].contains('\n') && outputs[0].contains("\");"));
    for framework in ["tract", "ort", "custom"] {
        let project = dir.path().join(format!("hostile-{framework}"));
        cargo_infer()
            .arg("init")
            .arg(&project)
            .arg("--model")
            .arg(&model)
            .args(["--framework", framework])
            .assert()
            .success();
        pin_lock(&project);
        let test = cargo(&project, &["test"]);
        assert!(
            String::from_utf8_lossy(&test.stdout)
                .contains("test reproduces_recorded_outputs ... ok"),
            "{framework}"
        );
        let run = cargo(&project, &["run", "--quiet"]);
        assert_names_stayed_data(&project, &outputs, &String::from_utf8_lossy(&run.stdout));
        // The generated code names the model's input exactly too.
        if framework == "custom" {
            let code = std::fs::read_to_string(project.join("src/model.rs")).unwrap();
            assert!(
                code.contains(&format!("INPUT_NAME: &str = {:?};", inputs[0])),
                "{code}"
            );
        }
    }
}

/// `emit` writes the model's file name into its header comment and its names into constants:
/// a newline in either cannot end the comment or the literal.
#[test]
fn emit_keeps_hostile_names_in_comments_and_literals() {
    let dir = tempfile::tempdir().unwrap();
    let model = hostile_copy(dir.path(), "hostile/names.onnx");
    let out_file = dir.path().join("model.rs");
    cargo_infer()
        .arg("emit")
        .arg(&model)
        .arg("-o")
        .arg(&out_file)
        .assert()
        .success();
    let code = std::fs::read_to_string(&out_file).unwrap();
    for line in code.lines().take_while(|l| !l.starts_with("#![")) {
        assert!(line.is_empty() || line.starts_with("//"), "{line:?}");
    }
    let (inputs, outputs) = io_names(&model);
    assert!(code.contains(&format!("pub const INPUT_NAME: &str = {:?};", inputs[0])));
    assert!(code.contains(&format!("pub const OUTPUT_NAME: &str = {:?};", outputs[0])));
}

/// Every form of input real models take — a symbolic batch, scalar int64 and float inputs, a
/// bool, int32 ids, float16 — and outputs of the same kinds: tract and ort projects build, pass
/// their own tests and run (burn's in the online test below).
#[test]
fn every_input_form_scaffolds_a_project_that_builds() {
    let dir = tempfile::tempdir().unwrap();
    for framework in ["tract", "ort"] {
        let project = init(
            dir.path(),
            "forms/inputs.onnx",
            &["--framework", framework, "--dim", "batch=2"],
        );
        let test = cargo(&project, &["test"]);
        assert!(
            String::from_utf8_lossy(&test.stdout)
                .contains("test reproduces_recorded_outputs ... ok"),
            "{framework}"
        );
        let run = cargo(&project, &["run", "--quiet"]);
        let printed = String::from_utf8_lossy(&run.stdout);
        for name in ["y", "sr_next", "not_flag", "ids_next", "h_squared"] {
            assert!(printed.contains(name), "{framework}: {printed}");
        }
    }
}

/// The hostile names through burn (burn-onnx turns the model into Rust: the names must not reach
/// that code as code either) and fastembed (its one output named with the payload). Online, like
/// the other burn and fastembed projects.
#[test]
fn hostile_names_never_become_code_in_burn_and_fastembed() {
    let _ = std::fs::remove_file(NAMES_PAYLOAD);
    let dir = tempfile::tempdir().unwrap();
    for (fixture, framework) in [
        ("hostile/names.onnx", "burn"),
        ("hostile/embed/model.onnx", "fastembed"),
    ] {
        let model = hostile_copy(&dir.path().join(framework), fixture);
        let (_, outputs) = io_names(&model);
        let project = dir.path().join(format!("hostile-{framework}"));
        cargo_infer()
            .arg("init")
            .arg(&project)
            .arg("--model")
            .arg(&model)
            .args(["--framework", framework])
            .assert()
            .success();
        pin_lock(&project);
        cargo_with(&project, &["test"], false);
        let run = cargo_with(&project, &["run", "--quiet"], false);
        let printed = String::from_utf8_lossy(&run.stdout);
        // fastembed's program prints embeddings, not output names.
        let names: &[String] = if framework == "burn" { &outputs } else { &[] };
        assert_names_stayed_data(&project, names, &printed);
    }
}

/// A model that cannot run with its symbolic dimensions at 1: `init` says which it defaulted and
/// how to set them, in one line, and writes nothing; `--dim` or a sample `--input` records it.
#[test]
fn init_names_defaulted_dimensions_and_takes_real_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("forms/needs_dims.onnx");
    let target = dir.path().join("refused");
    let out = cargo_infer()
        .arg("init")
        .arg(&target)
        .arg("--model")
        .arg(&model)
        .args(["--framework", "tract"])
        .output()
        .unwrap();
    let err = one_line_error(&out, "needs_dims at 1");
    assert!(
        err.contains("batch=1, sequence=1") && err.contains("--dim sequence=512"),
        "{err}"
    );
    assert!(!target.exists());

    let read_npy_shape = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        let header = String::from_utf8_lossy(&bytes[10..]).into_owned();
        header[header.find("'shape': ").unwrap() + 9..]
            .split(')')
            .next()
            .unwrap()
            .to_string()
            + ")"
    };
    let with_dim = dir.path().join("with-dim");
    cargo_infer()
        .arg("init")
        .arg(&with_dim)
        .arg("--model")
        .arg(&model)
        .args(["--framework", "tract", "--dim", "sequence=6"])
        .assert()
        .success();
    assert_eq!(
        read_npy_shape(&with_dim.join("tests/data/input_0.npy")),
        "(1, 6)"
    );
    assert_eq!(
        read_npy_shape(&with_dim.join("tests/data/output_0.npy")),
        "(3, 2)"
    );

    // A sample input of the user's, recorded as given.
    let sample = cargo_infer::tensor::HostTensor::from_bytes(
        cargo_infer::model::dtype::DType::F32,
        vec![2, 4],
        (0..8).flat_map(|v| (v as f32).to_le_bytes()).collect(),
    )
    .unwrap();
    let npy = dir.path().join("x.npy");
    std::fs::write(&npy, sample.to_npy().unwrap()).unwrap();
    let given = dir.path().join("given");
    cargo_infer()
        .arg("init")
        .arg(&given)
        .arg("--model")
        .arg(&model)
        .args(["--framework", "tract", "--input"])
        .arg(format!("x={}", npy.display()))
        .assert()
        .success();
    assert_eq!(
        std::fs::read(given.join("tests/data/input_0.npy")).unwrap(),
        std::fs::read(&npy).unwrap()
    );
    assert_eq!(
        read_npy_shape(&given.join("tests/data/output_0.npy")),
        "(4, 2)"
    );
}

/// burn-onnx takes scalar inputs and gives scalar outputs as Rust values, the rest as tensors of
/// its three kinds: the project of the every-form model builds, passes its test and runs.
#[test]
fn every_input_form_scaffolds_a_burn_project_that_builds() {
    let dir = tempfile::tempdir().unwrap();
    let project = init(
        dir.path(),
        "forms/inputs.onnx",
        &["--framework", "burn", "--dim", "batch=2"],
    );
    let test = cargo_with(&project, &["test"], false);
    assert!(
        String::from_utf8_lossy(&test.stdout).contains("test reproduces_recorded_outputs ... ok")
    );
    let run = cargo_with(&project, &["run", "--quiet"], false);
    let printed = String::from_utf8_lossy(&run.stdout);
    for name in ["y", "sr_next", "not_flag", "ids_next", "h_squared"] {
        assert!(printed.contains(name), "{printed}");
    }
}

/// A graph plain tract does not load (an If on the sample rate whose branches differ in rank):
/// `init` for tract ships it prepared (models/<stem>.tract.onnx) with the original beside it,
/// says in the README what changed and how to make it again, records the outputs from the
/// original on ONNX Runtime, and the project's own test passes on plain tract.
#[test]
fn init_ships_a_graph_prepared_for_tract_that_plain_tract_runs() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = fixtures().join("forms/if_rank.inputs.npz");
    let project = init(
        dir.path(),
        "forms/if_rank.onnx",
        &["--framework", "tract", "--input", inputs.to_str().unwrap()],
    );
    assert!(project.join("models/if_rank.tract.onnx").is_file());
    assert_eq!(
        std::fs::read(project.join("models/original/if_rank.onnx")).unwrap(),
        std::fs::read(fixtures().join("forms/if_rank.onnx")).unwrap()
    );
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    for s in [
        "folded If \\`If\\_sr\\` to its then branch (sr = 16000)",
        "cargo infer convert models/original/if_rank.onnx models/if_rank.tract.onnx --for tract",
        "recorded with onnxruntime",
    ] {
        assert!(readme.contains(s), "no `{s}` in {readme}");
    }
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("models/if_rank.tract.onnx"), "{manifest}");
    let test = cargo(&project, &["test"]);
    assert!(
        String::from_utf8_lossy(&test.stdout).contains("test reproduces_recorded_outputs ... ok")
    );

    // `add` does the same in an existing crate, says so, and a second run changes nothing.
    let user = existing_crate(
        &format!(
            "[package]\nname = \"vad-app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{DEV_PROFILE}"
        ),
        "pub mod inference;\n",
    );
    let add = || {
        cargo_infer()
            .args(["add", "--framework", "tract"])
            .arg(fixtures().join("forms/if_rank.onnx"))
            .arg("--input")
            .arg(&inputs)
            .current_dir(user.path())
            .output()
            .unwrap()
    };
    let first = add();
    assert_success(&first, "add");
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        said.contains("prepared for tract") && said.contains("folded If `If_sr`"),
        "{said}"
    );
    assert!(user.path().join("models/if_rank.tract.onnx").is_file());
    assert!(user.path().join("models/original/if_rank.onnx").is_file());
    let second = add();
    assert!(String::from_utf8_lossy(&second.stderr).contains("nothing to do"));
    pin_lock(user.path());
    cargo(user.path(), &["build"]);
}
