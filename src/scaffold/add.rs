//! `cargo infer add`: the framework, the model and a small `src/inference.rs` added to an existing
//! crate. `Cargo.toml` is edited with `toml_edit`, so that comments, ordering and formatting
//! survive; running it twice changes nothing the second time.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table};

use super::{dep_item, dependencies, metadata_table, render, Files};
use crate::decide::{Decision, Framework};
use crate::error::{one_line, ExpectedError, FileError, ModelError};
use crate::model::ModelInfo;

/// The manifest of the package to edit: `--package P`, or the one whose directory holds the
/// current one.
pub fn find_manifest(
    manifest_path: Option<&Path>,
    package: Option<&str>,
) -> Result<PathBuf, ExpectedError> {
    let mut cmd = cargo_metadata::MetadataCommand::new();
    cmd.no_deps();
    if let Some(p) = manifest_path {
        cmd.manifest_path(p);
    }
    let meta = cmd.exec().map_err(|e| -> ExpectedError {
        match manifest_path.filter(|p| p.is_file()) {
            // A manifest that is there but that cargo refuses: the manifest is the problem.
            Some(p) => {
                FileError::new(p, format!("cargo metadata: {}", one_line(&e.to_string()))).into()
            }
            None => ExpectedError::Usage(format!(
                "not in a Cargo project: {}",
                one_line(&e.to_string())
            )),
        }
    })?;
    let cwd = std::env::current_dir().map_err(|e| ExpectedError::Usage(e.to_string()))?;
    let pkg = match package {
        Some(name) => meta
            .packages
            .iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = meta.packages.iter().map(|p| p.name.as_str()).collect();
                ExpectedError::Usage(format!(
                    "no package `{name}` here (there are: {})",
                    names.join(", ")
                ))
            })?,
        None => meta
            .packages
            .iter()
            .filter(|p| cwd.starts_with(p.manifest_path.parent().unwrap().as_std_path()))
            .max_by_key(|p| p.manifest_path.as_str().len())
            .or_else(|| meta.root_package())
            .ok_or_else(|| {
                ExpectedError::Usage("several packages here: choose one with --package".into())
            })?,
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
) -> Result<Vec<String>, ExpectedError> {
    if !super::scaffold_row(d.choice).addable {
        return Err(ExpectedError::Usage(format!(
            "`add` sets up {} in this release; {} is not: it generates the model's code in a build script — make a project with `cargo infer init --framework {}`, or choose another --framework",
            names(),
            d.choice.as_str(),
            d.choice.as_str()
        )));
    }
    let root = manifest.parent().unwrap();
    let adding = Adding::read(model, d)?;
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| FileError::io(manifest, "cannot read", &e))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| FileError::new(manifest, e.to_string()))?;
    let (module_inputs, data_files) =
        adding.edit_manifest(manifest, &mut doc, inputs, opts.ort_download)?;
    let mut plan = Plan {
        root,
        force: opts.force,
        writes: Vec::new(),
        changed: Vec::new(),
    };
    let new_text = doc.to_string();
    if new_text != text {
        plan.writes
            .push((manifest.to_path_buf(), new_text.into_bytes()));
        plan.changed.push("Cargo.toml".to_string());
    }
    adding.plan_model_files(&mut plan, data_files, prepared)?;
    let module = adding.module(&module_inputs, opts.ort_download)?;
    plan.want(
        PathBuf::from("src/inference.rs"),
        module.into_bytes(),
        "the inference module",
    )?;
    if let Some(super::Ci::Github) = opts.ci {
        let (path, workflow) = workflow_at_root(root, d)?;
        let shown = path.display().to_string();
        plan.want_at(path, shown, workflow.into_bytes(), "the check workflow")?;
    }
    Ok(plan.write()?)
}

/// The model `add` sets up, as read before the crate is edited.
struct Adding<'a> {
    model: &'a Path,
    d: &'a Decision,
    info: ModelInfo,
    pre: super::Preflight,
    /// The model's name under `models/` ([`super::shipped_name`]).
    model_file: String,
    sha: String,
}

impl<'a> Adding<'a> {
    fn read(model: &'a Path, d: &'a Decision) -> Result<Self, ExpectedError> {
        let info = crate::model::inspect(model)?;
        let pre = super::preflight(d.choice, model, &info)?;
        let model_file = super::shipped_name(model);
        let sha = crate::util::sha256_file(model).map_err(|e| ModelError::io(model, &e))?;
        Ok(Adding {
            model,
            d,
            info,
            pre,
            model_file,
            sha,
        })
    }

    /// The manifest edited: the framework's dependencies the crate lacks, and the model in
    /// `[package.metadata.infer]` with its declared check. Returns the model module's inputs and
    /// the data recorded for the check.
    fn edit_manifest(
        &self,
        manifest: &Path,
        doc: &mut DocumentMut,
        inputs: &crate::check::inputs::InputOptions,
        ort_download: bool,
    ) -> Result<(Vec<super::Io>, Files), ExpectedError> {
        let d = self.d;
        let about_manifest = |m: String| ExpectedError::from(FileError::new(manifest, m));
        if !doc.contains_key("dependencies") {
            doc.insert("dependencies", Item::Table(Table::new()));
        }
        let deps = doc["dependencies"]
            .as_table_like_mut()
            .ok_or_else(|| about_manifest("[dependencies] is not a table".into()))?;
        // The module's inputs at the shapes it will be given (custom modules take what emit reads).
        let module_inputs = if d.choice == Framework::Custom {
            vec![]
        } else {
            super::sample_inputs(self.model, &self.info, inputs)?
        };
        let half = module_inputs.iter().any(|i| i.dtype == "float16");
        for (k, v, def, feats) in super::with_half(
            dependencies(d.choice, &d.constraints, ort_download, self.info.format),
            half,
        ) {
            if !deps.contains_key(k) {
                deps.insert(k, dep_item(&v, def, &feats));
            }
        }
        let model_ref = format!("models/{}", self.model_file);
        let infer =
            infer_table(doc, metadata_table(&model_ref, &self.sha, d)).map_err(about_manifest)?;
        let (entry, data_files) =
            declared_with_data(self.model, &self.info, d, inputs, &self.model_file)?;
        super::declare(manifest, infer, entry)?;
        Ok((module_inputs, data_files))
    }

    /// The model under `models/`, the data recorded for its check, its external data, the files
    /// the framework needs beside it and, for a model prepared for tract, the original beside it.
    fn plan_model_files(
        &self,
        plan: &mut Plan,
        data_files: Files,
        prepared: Option<&super::PreparedFrom>,
    ) -> Result<(), ExpectedError> {
        let model = self.model;
        plan.want(
            PathBuf::from("models").join(&self.model_file),
            std::fs::read(model).map_err(|e| ModelError::io(model, &e))?,
            "the model",
        )?;
        for (rel, bytes) in data_files {
            plan.want(rel, bytes, "data recorded for `cargo infer check`")?;
        }
        for ext in super::external_files(model, &self.info, "models") {
            let (rel, src) = ext.map_err(|m| ModelError::new(model, m))?;
            let bytes = std::fs::read(&src).map_err(|e| ModelError::io(&src, &e))?;
            plan.want(rel, bytes, "external data")?;
        }
        for c in &self.pre.companions {
            let src = model.with_file_name(c);
            plan.want(
                PathBuf::from("models").join(c),
                super::read_file(&src)?,
                "a file the model needs",
            )?;
        }
        // A model prepared for tract: the original beside it.
        if let Some(p) = prepared {
            plan.want(
                PathBuf::from("models/original").join(super::shipped_name(&p.original)),
                std::fs::read(&p.original).map_err(|e| ModelError::io(&p.original, &e))?,
                "the model before it was prepared for tract",
            )?;
            let original = crate::model::inspect(&p.original)?;
            for ext in super::external_files(&p.original, &original, "models/original") {
                let (rel, src) = ext.map_err(|m| ModelError::new(&p.original, m))?;
                let bytes = std::fs::read(&src).map_err(|e| ModelError::io(&src, &e))?;
                plan.want(rel, bytes, "the original's external data")?;
            }
        }
        Ok(())
    }

    /// The model's module (src/inference.rs): emitted for custom; else the framework's
    /// `inference.rs` template, or its `lib.rs` where it has none (tch, candle and fastembed
    /// projects keep the model's code in src/lib.rs: the same module).
    fn module(
        &self,
        module_inputs: &[super::Io],
        ort_download: bool,
    ) -> Result<String, ExpectedError> {
        let f = self.d.choice;
        if f == Framework::Custom {
            return Ok(super::generated_module(
                self.model,
                &self.model_file,
                &self.sha,
                crate::emit::Precision::F32,
                crate::emit::WeightsMode::Inline,
            )?
            .0);
        }
        let ctx = super::module_context(
            &self.pre,
            self.d,
            &self.model_file,
            &super::model_expr(&self.model_file, None),
            module_inputs,
            ort_download,
        );
        let dir = f.as_str();
        let template = if super::has_template(&format!("{dir}/inference.rs")) {
            "inference.rs"
        } else {
            "lib.rs"
        };
        render(&format!("{dir}/{template}"), &ctx)
            .map_err(|e| ModelError::new(self.model, e.to_string()).into())
    }
}

/// `[package.metadata.infer]`, made or updated to hold the keys of `wanted` (those that already
/// say the same are left as they are written).
fn infer_table(doc: &mut DocumentMut, wanted: Table) -> Result<&mut Table, String> {
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
    if !metadata.get("infer").is_some_and(Item::is_table) {
        metadata.insert("infer", Item::Table(wanted));
        return Ok(metadata["infer"].as_table_mut().expect("just inserted"));
    }
    let existing = metadata["infer"].as_table_mut().expect("a table");
    for (k, v) in wanted.iter() {
        let same = existing.get(k).map(|e| e.to_string().trim().to_string())
            == Some(v.to_string().trim().to_string());
        if !same {
            existing.insert(k, v.clone());
        }
    }
    Ok(existing)
}

/// The writes `add` plans in the crate at `root`, and what they change.
struct Plan<'a> {
    root: &'a Path,
    /// Replace files of ours that differ.
    force: bool,
    writes: Files,
    changed: Vec<String>,
}

impl Plan<'_> {
    /// A file at `rel` under the crate, of these bytes (`what` it is, for the refusal).
    fn want(&mut self, rel: PathBuf, bytes: Vec<u8>, what: &str) -> Result<(), ExpectedError> {
        let path = self.root.join(&rel);
        self.want_at(path, rel.display().to_string(), bytes, what)
    }

    /// A file at `path` (`shown` in what changed): nothing when it already holds these bytes;
    /// refused when it holds others, unless forced.
    fn want_at(
        &mut self,
        path: PathBuf,
        shown: String,
        bytes: Vec<u8>,
        what: &str,
    ) -> Result<(), ExpectedError> {
        match std::fs::read(&path) {
            Ok(old) if old == bytes => Ok(()),
            Ok(_) if !self.force => Err(ExpectedError::from(FileError::new(
                &path,
                format!("exists and differs ({what})"),
            ))
            .with_hint("pass --force to replace it")),
            _ => {
                self.changed.push(shown);
                self.writes.push((path, bytes));
                Ok(())
            }
        }
    }

    /// Writes every planned file, all or nothing; returns what changed.
    fn write(self) -> Result<Vec<String>, FileError> {
        for (p, _) in &self.writes {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| FileError::io(parent, "cannot create", &e))?;
            }
        }
        crate::util::write_all_or_nothing(&self.writes)?;
        Ok(self.changed)
    }
}

/// The check `cargo infer check` runs for a model `add` sets up: its entry in `models`, and its
/// inputs and outputs recorded now (under tests/data/<model>/) — or, when no back end here runs
/// it, the model alone. A data file or flag the user gave that does not fit is an error.
fn declared_with_data(
    model: &Path,
    info: &crate::model::ModelInfo,
    d: &Decision,
    inputs: &crate::check::inputs::InputOptions,
    model_file: &str,
) -> Result<(Table, Files), ExpectedError> {
    let model_ref = format!("models/{model_file}");
    let data_dir = format!(
        "tests/data/{}",
        Path::new(model_file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    );
    let alone = || {
        (
            super::declared_check(&model_ref, &[], &[], d.choice),
            Vec::new(),
        )
    };
    let recorder = crate::decide::row(d.choice).checked_by;
    if !crate::backends::all(None)
        .iter()
        .any(|b| b.name() == recorder)
    {
        return Ok(alone());
    }
    let rec = match super::record(model, info, d.choice, inputs) {
        Ok(rec) => rec,
        Err(e @ (ExpectedError::File(_) | ExpectedError::Usage(_))) => return Err(e),
        // No back end here runs the model: `check` will say so where one does.
        Err(_) => return Ok(alone()),
    };
    let (given, expected) = super::recorded_paths(&data_dir, &rec);
    let mut files: Files = Vec::new();
    let npy = |t: &crate::tensor::HostTensor| t.to_npy().map_err(|e| ModelError::new(model, e.0));
    for ((_, f), (_, t)) in given.iter().zip(&rec.inputs) {
        files.push((f.into(), npy(t)?));
    }
    for ((_, f), (_, t)) in expected.iter().zip(&rec.outputs) {
        files.push((f.into(), npy(t)?));
    }
    Ok((
        super::declared_check(&model_ref, &given, &expected, d.choice),
        files,
    ))
}

/// `--ci github`: where the workflow goes (the repository's root) and its text, which checks the
/// crate at `root` through its manifest.
fn workflow_at_root(root: &Path, d: &Decision) -> Result<(PathBuf, String), ExpectedError> {
    let crate_dir =
        std::fs::canonicalize(root).map_err(|e| FileError::io(root, "cannot read", &e))?;
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
    let workflow = super::github_workflow(&rel, d.choice, false)
        .map_err(|e| ExpectedError::Usage(e.to_string()))?;
    Ok((repo.join(super::GITHUB_WORKFLOW), workflow))
}

fn names() -> String {
    super::addable()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
