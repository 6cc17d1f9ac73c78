//! `cargo infer add`: the framework, the model and a small `src/inference.rs` added to an existing
//! crate. `Cargo.toml` is edited with `toml_edit`, so that comments, ordering and formatting
//! survive; running it twice changes nothing the second time.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table};

use super::{dep_item, dependencies, metadata_table, render};
use crate::decide::{Decision, Framework};

/// The manifest of the package to edit: `--package P`, or the one whose directory holds the
/// current one.
pub fn find_manifest(
    manifest_path: Option<&Path>,
    package: Option<&str>,
) -> Result<PathBuf, String> {
    let mut cmd = cargo_metadata::MetadataCommand::new();
    cmd.no_deps();
    if let Some(p) = manifest_path {
        cmd.manifest_path(p);
    }
    let meta = cmd.exec().map_err(|e| {
        format!(
            "not in a Cargo project: {}",
            crate::error::one_line(&e.to_string())
        )
    })?;
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let pkg = match package {
        Some(name) => meta
            .packages
            .iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = meta.packages.iter().map(|p| p.name.as_str()).collect();
                format!("no package `{name}` here (there are: {})", names.join(", "))
            })?,
        None => meta
            .packages
            .iter()
            .filter(|p| cwd.starts_with(p.manifest_path.parent().unwrap().as_std_path()))
            .max_by_key(|p| p.manifest_path.as_str().len())
            .or_else(|| meta.root_package())
            .ok_or("several packages here: choose one with --package")?,
    };
    Ok(pkg.manifest_path.clone().into_std_path_buf())
}

/// How `add` edits the crate.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    /// Replace files of ours that differ.
    pub force: bool,
    /// ort, fastembed: link the ONNX Runtime `ort` downloads at build time.
    pub ort_download: bool,
    /// Also write the partitioned check workflow at the repository's root.
    pub ci: Option<super::Ci>,
}

/// The directory of the repository around `dir` (the nearest with `.git`), else `dir`.
fn repository_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(dir)
        .to_path_buf()
}

/// What `add` did: the files it changed (empty when everything was already in place).
pub fn add(
    manifest: &Path,
    model: &Path,
    d: &Decision,
    inputs: &crate::check::inputs::InputOptions,
    opts: &AddOptions,
    prepared: Option<&super::PreparedFrom>,
) -> Result<Vec<String>, String> {
    let (force, ort_download) = (opts.force, opts.ort_download);
    if !super::scaffold_row(d.choice).addable {
        return Err(format!(
            "`add` sets up {} in this release; {} is not: it generates the model's code in a build script — make a project with `cargo infer init --framework {}`, or choose another --framework",
            names(),
            d.choice.as_str(),
            d.choice.as_str()
        ));
    }
    let root = manifest.parent().unwrap();
    let info = crate::model::inspect(model).map_err(|e| e.to_string())?;
    let pre = super::preflight(d.choice, model, &info)?;
    let model_file = super::shipped_name(model);
    let sha = crate::util::sha256_file(model).map_err(|e| e.to_string())?;
    let mut writes: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut changed = Vec::new();

    let text =
        std::fs::read_to_string(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        format!(
            "{}: {}",
            manifest.display(),
            crate::error::one_line(&e.to_string())
        )
    })?;
    if !doc.contains_key("dependencies") {
        doc.insert("dependencies", Item::Table(Table::new()));
    }
    let deps = doc["dependencies"]
        .as_table_like_mut()
        .ok_or("[dependencies] is not a table")?;
    // The module's inputs at the shapes it will be given (custom modules take what emit reads).
    let module_inputs = if d.choice == Framework::Custom {
        vec![]
    } else {
        super::sample_inputs(model, &info, inputs)?
    };
    let half = module_inputs.iter().any(|i| i.dtype == "float16");
    for (k, v, def, feats) in
        super::with_half(dependencies(d.choice, &d.constraints, ort_download), half)
    {
        if !deps.contains_key(k) {
            deps.insert(k, dep_item(&v, def, &feats));
        }
    }
    let package = doc["package"]
        .as_table_mut()
        .ok_or("no [package] table (a virtual workspace manifest?): use --package")?;
    if !package.contains_key("metadata") {
        let mut t = Table::new();
        t.set_implicit(true);
        package.insert("metadata", Item::Table(t));
    }
    let metadata = package["metadata"]
        .as_table_mut()
        .ok_or("[package.metadata] is not a table")?;
    let model_ref = format!("models/{model_file}");
    let wanted = metadata_table(&model_ref, &sha, d);
    let infer = match metadata.get_mut("infer").and_then(Item::as_table_mut) {
        Some(existing) => {
            for (k, v) in wanted.iter() {
                let same = existing.get(k).map(|e| e.to_string().trim().to_string())
                    == Some(v.to_string().trim().to_string());
                if !same {
                    existing.insert(k, v.clone());
                }
            }
            existing
        }
        None => {
            metadata.insert("infer", Item::Table(wanted));
            metadata["infer"].as_table_mut().expect("just inserted")
        }
    };
    let (entry, data_files) = declared_with_data(model, &info, d, inputs, &model_file)?;
    super::declare(infer, entry)?;
    let new_text = doc.to_string();
    if new_text != text {
        writes.push((manifest.to_path_buf(), new_text.into_bytes()));
        changed.push("Cargo.toml".to_string());
    }

    let mut want_file = |rel: PathBuf, bytes: Vec<u8>, what: &str| -> Result<(), String> {
        let path = root.join(&rel);
        match std::fs::read(&path) {
            Ok(old) if old == bytes => Ok(()),
            Ok(_) if !force => Err(format!(
                "{} exists and differs; pass --force to replace it ({what})",
                path.display()
            )),
            _ => {
                changed.push(rel.display().to_string());
                writes.push((path, bytes));
                Ok(())
            }
        }
    };
    want_file(
        PathBuf::from("models").join(&model_file),
        std::fs::read(model).map_err(|e| e.to_string())?,
        "the model",
    )?;
    for (rel, bytes) in data_files {
        want_file(rel, bytes, "data recorded for `cargo infer check`")?;
    }
    for ext in &info.details.external_data {
        let src = crate::model::contained(model, &ext.file).map_err(|o| o.to_string())?;
        want_file(
            PathBuf::from("models").join(&ext.file),
            std::fs::read(&src).map_err(|e| e.to_string())?,
            "external data",
        )?;
    }
    for c in &pre.companions {
        let src = model.with_file_name(c);
        want_file(
            PathBuf::from("models").join(c),
            std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?,
            "a file the model needs",
        )?;
    }
    // A model prepared for tract: the original beside it.
    if let Some(p) = prepared {
        want_file(
            PathBuf::from("models/original").join(super::shipped_name(&p.original)),
            std::fs::read(&p.original).map_err(|e| format!("{}: {e}", p.original.display()))?,
            "the model before it was prepared for tract",
        )?;
        let original = crate::model::inspect(&p.original).map_err(|e| e.to_string())?;
        for ext in &original.details.external_data {
            let src = crate::model::contained(&p.original, &ext.file).map_err(|o| o.to_string())?;
            want_file(
                PathBuf::from("models/original").join(&ext.file),
                std::fs::read(&src).map_err(|e| e.to_string())?,
                "the original's external data",
            )?;
        }
    }
    let module = if d.choice == Framework::Custom {
        super::generated_module(
            model,
            &model_file,
            &sha,
            crate::emit::Precision::F32,
            crate::emit::WeightsMode::Inline,
        )?
        .0
    } else {
        let ctx = super::module_context(
            &pre,
            d,
            &model_file,
            &super::model_expr(&model_file, None),
            &module_inputs,
            ort_download,
        );
        // tch, candle and fastembed projects keep the model's code in src/lib.rs: the same module.
        let template = match d.choice {
            Framework::Tch | Framework::Candle | Framework::Fastembed => "lib.rs",
            _ => "inference.rs",
        };
        render(&format!("{}/{template}", d.choice.as_str()), &ctx)?
    };
    want_file(
        PathBuf::from("src/inference.rs"),
        module.into_bytes(),
        "the inference module",
    )?;
    if let Some(super::Ci::Github) = opts.ci {
        let (path, workflow) = workflow_at_root(root, d)?;
        match std::fs::read(&path) {
            Ok(old) if old == workflow.as_bytes() => {}
            Ok(_) if !force => {
                return Err(format!(
                    "{} exists and differs; pass --force to replace it (the check workflow)",
                    path.display()
                ))
            }
            _ => {
                changed.push(path.display().to_string());
                writes.push((path, workflow.into_bytes()));
            }
        }
    }
    for (p, _) in &writes {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
    }
    crate::util::write_all_or_nothing(&writes).map_err(|e| e.to_string())?;
    Ok(changed)
}

/// Files to write: path and bytes.
type Files = Vec<(PathBuf, Vec<u8>)>;

/// The check `cargo infer check` runs for a model `add` sets up: its entry in `models`, and its
/// inputs and outputs recorded now (under tests/data/<model>/) — or, when no back end here runs
/// it, the model alone.
fn declared_with_data(
    model: &Path,
    info: &crate::model::ModelInfo,
    d: &Decision,
    inputs: &crate::check::inputs::InputOptions,
    model_file: &str,
) -> Result<(Table, Files), String> {
    let model_ref = format!("models/{model_file}");
    let data_dir = format!(
        "tests/data/{}",
        Path::new(model_file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    );
    let Ok(rec) = super::record(model, info, d.choice, inputs) else {
        return Ok((
            super::declared_check(&model_ref, &[], &[], d.choice),
            Vec::new(),
        ));
    };
    let mut files: Files = Vec::new();
    let mut given = Vec::new();
    for (k, (n, t)) in rec.inputs.iter().enumerate() {
        let f = format!("{data_dir}/input_{k}.npy");
        files.push((f.clone().into(), super::npy(t)?));
        given.push((n.clone(), f));
    }
    let mut expected = Vec::new();
    for (k, (n, t)) in rec.outputs.iter().enumerate() {
        let f = format!("{data_dir}/output_{k}.npy");
        files.push((f.clone().into(), super::npy(t)?));
        expected.push((n.clone(), f));
    }
    Ok((
        super::declared_check(&model_ref, &given, &expected, d.choice),
        files,
    ))
}

/// `--ci github`: where the workflow goes (the repository's root) and its text, which checks the
/// crate at `root` through its manifest.
fn workflow_at_root(root: &Path, d: &Decision) -> Result<(PathBuf, String), String> {
    let crate_dir = std::fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let repo = repository_root(&crate_dir);
    let rel = crate_dir.strip_prefix(&repo).unwrap_or(Path::new(""));
    // `/`-separated, as the workflow's shell (bash on ubuntu) wants it.
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let rel = if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    };
    let workflow = super::github_workflow(&rel, d.choice, false)?;
    Ok((repo.join(super::GITHUB_WORKFLOW), workflow))
}

fn names() -> String {
    super::addable()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
