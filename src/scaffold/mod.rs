//! `cargo infer init` and `add`: a project (or an existing crate) set up for the framework that
//! `decide` chose, whose own test runs the model against outputs recorded at scaffold time.
//!
//! Files are rendered from `templates/` (embedded, minijinja), `Cargo.toml` is built or edited
//! with `toml_edit`, and everything is written to a temporary directory first and moved into place
//! at the end, so that a failure leaves nothing behind.

pub mod add;

use std::path::{Path, PathBuf};

use minijinja::value::{Value, ValueKind};
use minijinja::{context, AutoEscape, Environment};
use serde::Serialize;
use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};

use crate::backends::{Backend, Device};
use crate::decide::constraints::{Constraints, Gpu, TargetKind};
use crate::decide::{Decision, Framework};
use crate::error::{ExpectedError, FileError, ModelError};
use crate::escape;
use crate::model::{Format, ModelInfo};
use crate::tensor::HostTensor;

/// Versions of each framework's crates that this release of cargo-infer validated (the
/// scaffold tests build and run them); shown by `cargo infer --version -v`.
pub const VALIDATED: &[(&str, &str)] = &[
    ("tract-onnx", "0.23.9"),
    ("ort", "2.0.0-rc.15"),
    ("tch", "0.26.0"),
    ("candle-core", "0.11.1"),
    ("candle-nn", "0.11.1"),
    ("candle-transformers", "0.11.1"),
    ("candle-onnx", "0.11.1"),
    ("serde_json", "1"),
    ("burn", "0.22.0"),
    ("burn-store", "0.22.0"),
    ("burn-onnx", "0.22.0"),
    ("fastembed", "7.7.0"),
    ("half", "2"),
];

/// The requirement that pins a crate to its validated version (`=0.23.9`).
fn exact(krate: &str) -> String {
    format!("={}", validated(krate))
}

/// The version of `krate` in [`VALIDATED`]; panics on a crate not listed there (a bug of ours).
pub fn validated(krate: &str) -> &'static str {
    VALIDATED
        .iter()
        .find(|(k, _)| *k == krate)
        .map(|(_, v)| *v)
        .expect("validated version")
}

/// What `init` and `add` need of one framework (what `decide` needs is its row of
/// `decide::FRAMEWORKS`; the files a project gets are `templates/<id>/`). Adding a framework: a
/// row here, a row there, and the templates directory.
pub struct ScaffoldRow {
    /// The framework this row scaffolds; each has exactly one row.
    pub framework: Framework,
    /// The model formats its project loads.
    pub formats: &'static [Format],
    /// Whether `add` sets it up inside an existing crate (burn does not: it generates the model's
    /// code in a build script, which a crate may already have).
    pub addable: bool,
    /// Files its project needs next to the model, for a model of this format: (name, required).
    /// [`WEIGHT_FILES`] stands for the model's weight files (a sharded safetensors model's shards).
    pub companions: &'static [(Format, &'static [(&'static str, bool)])],
    /// Its dependencies under these constraints for a model of this format; `ort_download`:
    /// link a prebuilt ONNX Runtime.
    pub dependencies: fn(&Constraints, bool, Format) -> Vec<Dependency>,
    /// Build dependencies (crates of [`VALIDATED`], at those versions).
    pub build_dependencies: &'static [&'static str],
    /// Which of its model code a model binds to, found before anything is written (candle's
    /// architecture: `bert`, `llama`, `quantized-llama`); none: one binding for every model.
    pub binding: Option<Binding>,
    /// Whether its project runs the model on ONNX Runtime (which a build without
    /// `--ort-download` loads at run time).
    pub onnx_runtime: bool,
    /// Its README's setup lines and deployment note, given `ort_download`; none: the deployment
    /// target's note alone.
    pub deploy: Option<fn(bool) -> (String, String)>,
}

/// In [`ScaffoldRow::binding`]: the binding of a model (its path and what was read of it).
pub type Binding = fn(&Path, &ModelInfo) -> Result<&'static str, ExpectedError>;

/// In [`ScaffoldRow::companions`]: the model's weight files.
pub const WEIGHT_FILES: &str = "<weight files>";

/// Hugging Face tokenizer files an embedding project reads (all required).
const TOKENIZER_FILES: &[(&str, bool)] = &[
    ("tokenizer.json", true),
    ("config.json", true),
    ("special_tokens_map.json", true),
    ("tokenizer_config.json", true),
];

/// The scaffold registry: one row per framework, looked up by [`scaffold_row`].
pub const SCAFFOLDS: &[ScaffoldRow] = &[
    ScaffoldRow {
        framework: Framework::Tract,
        formats: &[Format::Onnx],
        addable: true,
        companions: &[],
        dependencies: tract_dependencies,
        build_dependencies: &[],
        binding: None,
        onnx_runtime: false,
        deploy: None,
    },
    ScaffoldRow {
        framework: Framework::Ort,
        formats: &[Format::Onnx],
        addable: true,
        companions: &[],
        dependencies: ort_dependencies,
        build_dependencies: &[],
        binding: None,
        onnx_runtime: true,
        deploy: Some(onnx_runtime_deploy),
    },
    ScaffoldRow {
        framework: Framework::Custom,
        formats: &[Format::Onnx],
        addable: true,
        companions: &[],
        dependencies: |_, _, _| vec![],
        build_dependencies: &[],
        binding: None,
        onnx_runtime: false,
        deploy: None,
    },
    ScaffoldRow {
        framework: Framework::Tch,
        formats: &[Format::Torchscript],
        addable: true,
        companions: &[],
        dependencies: |_, _, _| vec![("tch", exact("tch"), true, vec![])],
        build_dependencies: &[],
        binding: None,
        onnx_runtime: false,
        deploy: Some(tch_deploy),
    },
    ScaffoldRow {
        framework: Framework::Candle,
        formats: &[Format::Safetensors, Format::Gguf, Format::Onnx],
        addable: true,
        companions: &[(
            Format::Safetensors,
            &[
                ("config.json", true),
                (WEIGHT_FILES, true),
                ("tokenizer.json", false),
                ("tokenizer_config.json", false),
                ("generation_config.json", false),
            ],
        )],
        dependencies: candle_dependencies,
        build_dependencies: &[],
        binding: Some(candle_arch),
        onnx_runtime: false,
        deploy: None,
    },
    ScaffoldRow {
        framework: Framework::Fastembed,
        formats: &[Format::Onnx],
        addable: true,
        companions: &[(Format::Onnx, TOKENIZER_FILES)],
        dependencies: fastembed_dependencies,
        build_dependencies: &[],
        binding: None,
        onnx_runtime: true,
        deploy: Some(onnx_runtime_deploy),
    },
    ScaffoldRow {
        framework: Framework::Burn,
        formats: &[Format::Onnx],
        addable: false,
        companions: &[],
        dependencies: burn_dependencies,
        build_dependencies: &["burn-onnx"],
        binding: None,
        onnx_runtime: false,
        deploy: Some(burn_deploy),
    },
];

/// The scaffold row of a framework.
pub fn scaffold_row(f: Framework) -> &'static ScaffoldRow {
    SCAFFOLDS
        .iter()
        .find(|r| r.framework == f)
        .expect("every framework has a scaffold row")
}

/// The model formats each framework's scaffold loads.
pub fn scaffold_formats(f: Framework) -> &'static [Format] {
    scaffold_row(f).formats
}

/// The frameworks `add` sets up inside an existing crate, in table order.
pub fn addable() -> impl Iterator<Item = Framework> {
    SCAFFOLDS.iter().filter(|r| r.addable).map(|r| r.framework)
}

/// What a framework's scaffold needs next to the model besides the model itself (`weights`: the
/// safetensors files a candle model consists of): file names in the model's directory.
fn companions(
    f: Framework,
    model: &Path,
    info: &ModelInfo,
    weights: &[String],
) -> Result<Vec<String>, String> {
    let dir = model.parent().unwrap_or(Path::new("."));
    let mut names: Vec<(String, bool)> = Vec::new();
    let listed = scaffold_row(f)
        .companions
        .iter()
        .filter(|(format, _)| *format == info.format)
        .flat_map(|(_, files)| files.iter());
    for &(name, required) in listed {
        if name == WEIGHT_FILES {
            names.extend(weights.iter().map(|w| (w.clone(), required)));
        } else {
            names.push((name.into(), required));
        }
    }
    let model_name = model.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut out = Vec::new();
    for (name, required) in names {
        if Some(&name) == model_name.as_ref() || out.contains(&name) {
            continue;
        }
        if dir.join(&name).is_file() {
            out.push(name);
        } else if required {
            return Err(format!(
                "{} needs {name} next to the model ({} has none)",
                f.as_str(),
                dir.display()
            ));
        }
    }
    Ok(out)
}

/// The ONNX Runtime execution provider the constraints ask for (ort and fastembed projects).
pub fn execution_provider(c: &Constraints) -> Option<&'static str> {
    match c.gpu {
        Gpu::Cuda => Some("CUDA"),
        Gpu::Tensorrt => Some("TensorRT"),
        _ if c.multi_gpu => Some("TensorRT"),
        _ => None,
    }
}

/// What `preflight` found out about the model, for the files that follow.
pub struct Preflight {
    /// Files to copy from beside the model.
    pub companions: Vec<String>,
    /// candle's binding (`bert`, `llama`, `quantized-llama`); empty for other frameworks.
    pub arch: &'static str,
    /// The safetensors files a candle model consists of; empty otherwise.
    pub weights: Vec<String>,
    /// fastembed's name of the pooling a fastembed project uses (`Mean`, `Cls`: the model's
    /// `1_Pooling/config.json`, else mean); empty for other frameworks.
    pub pooling: &'static str,
}

/// Whether a framework's project can be made for this model (its format, the files it needs next
/// to it), before anything is run or written.
pub fn preflight(f: Framework, model: &Path, info: &ModelInfo) -> Result<Preflight, ExpectedError> {
    let about_model = |m: String| ExpectedError::from(ModelError::new(model, m));
    if !scaffold_formats(f).contains(&info.format) {
        let formats: Vec<&str> = scaffold_formats(f).iter().map(|x| x.as_str()).collect();
        let listed = match formats.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => formats.join(""),
        };
        return Err(about_model(format!(
            "a {} project loads {listed} models; this is {} (choose another --framework)",
            f.as_str(),
            info.format.as_str()
        )));
    }
    let row = scaffold_row(f);
    let arch = match row.binding {
        Some(bind) => bind(model, info)?,
        None => "",
    };
    let weights = if holds_weight_files(row, info.format) {
        weight_files(model).map_err(about_model)?
    } else {
        vec![]
    };
    let pooling = if f == Framework::Fastembed {
        fastembed_pooling(model)?
    } else {
        ""
    };
    Ok(Preflight {
        companions: companions(f, model, info, &weights).map_err(about_model)?,
        arch,
        weights,
        pooling,
    })
}

/// The pooling of a fastembed project, by fastembed's name: the model's own
/// (`1_Pooling/config.json`), else mean. A pooling fastembed lacks is refused: the project would
/// compute other embeddings than the model's.
fn fastembed_pooling(model: &Path) -> Result<&'static str, ExpectedError> {
    use crate::check::text::Pool;
    let pooling = crate::check::text::pooling(model)?;
    match pooling.modes[..] {
        [Pool::Mean] => Ok("Mean"),
        [Pool::Cls] => Ok("Cls"),
        _ => {
            let modes: Vec<&str> = pooling.modes.iter().map(|p| p.name()).collect();
            Err(ModelError::new(
                model,
                format!(
                    "fastembed pools by mean or cls, and {} says {}: a fastembed project would compute other embeddings",
                    pooling.source,
                    modes.join("+")
                ),
            )
            .into())
        }
    }
}

/// Whether a framework's project of a model of this format holds the model's weight files
/// ([`WEIGHT_FILES`] among its companions: a candle safetensors model's shards).
fn holds_weight_files(row: &ScaffoldRow, format: Format) -> bool {
    row.companions
        .iter()
        .any(|(f, files)| *f == format && files.iter().any(|(name, _)| *name == WEIGHT_FILES))
}

/// What the templates of a framework's model module need (`init`'s project and `add`'s
/// src/inference.rs render the same module). `model_file` is the model's name under `models/`;
/// `model_expr` the Rust expression of its path ([`model_expr`]).
fn module_context(
    pre: &Preflight,
    d: &Decision,
    model_file: &str,
    model_expr: &str,
    inputs: &[Io],
    ort_download: bool,
) -> Value {
    // A single weights file is the model itself, under the name it has in the project.
    let weights: Vec<&str> = match pre.weights.as_slice() {
        [_] => vec![model_file],
        many => many.iter().map(String::as_str).collect(),
    };
    context! {
        model_file => model_file,
        model_expr => code(model_expr),
        inputs => inputs,
        arch => code(pre.arch),
        weights => weights,
        bert_defaults => code(&crate::model::hf::bert_defaults().to_string()),
        versions => VALIDATED.iter().map(|(k, v)| (*k, code(v))).collect::<std::collections::BTreeMap<_, _>>(),
        device => execution_provider(&d.constraints).map(code),
        ort_download => ort_download,
        pooling => code(pre.pooling),
    }
}

/// The Rust expression of the model's path in generated code: under the manifest
/// (`models/NAME`), or where it is (`--link`).
pub fn model_expr(model_file: &str, linked: Option<&Path>) -> String {
    match linked {
        Some(p) => escape::rust_str(&p.display().to_string()),
        None => format!(
            "concat!(env!(\"CARGO_MANIFEST_DIR\"), {})",
            escape::rust_str(&format!("/models/{model_file}"))
        ),
    }
}

/// The model's file name in a project: its own when that is safe everywhere it is written
/// (shell lines, YAML, code generators that derive a module name from it), otherwise a cleaned
/// one ([`escape::file_name`]).
pub fn shipped_name(model: &Path) -> String {
    escape::file_name(
        &model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}

/// Code of ours for a template: printed as it is. Everything else a template prints is escaped
/// for the file being rendered ([`crate::escape`]).
fn code(s: &str) -> Value {
    Value::from_safe_string(s.to_string())
}

/// The safetensors files a model consists of: itself, or the shards its index names.
fn weight_files(model: &Path) -> Result<Vec<String>, String> {
    let name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.ends_with(".index.json") {
        return Ok(vec![name]);
    }
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(model).map_err(|e| format!("{}: {e}", model.display()))?,
    )
    .map_err(|e| format!("{}: {e}", model.display()))?;
    let mut files: Vec<String> = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.dedup();
    if files.iter().any(|f| f.contains('/') || f.contains('\\')) {
        return Err(format!(
            "{}: shard names must be plain file names",
            model.display()
        ));
    }
    Ok(files)
}

/// Which of candle's model code a model binds to: `bert`, `llama` (from config.json),
/// `quantized-llama` (GGUF) or `onnx` (the graph, evaluated by candle-onnx).
fn candle_arch(model: &Path, info: &ModelInfo) -> Result<&'static str, ExpectedError> {
    let about_model = |m: String| ExpectedError::from(ModelError::new(model, m));
    if info.format == Format::Onnx {
        // The element types candle-onnx feeds (`candle_onnx::dtype`; bool goes in as u8).
        const FED: &[&str] = &[
            "float32", "float64", "float16", "int64", "uint8", "uint32", "bool",
        ];
        if let Some(i) = info
            .inputs
            .iter()
            .find(|i| !FED.contains(&i.dtype.as_str()))
        {
            return Err(about_model(format!(
                "input `{}` is {}, which candle-onnx does not take (it takes {})",
                i.name,
                i.dtype,
                FED.join(", ")
            )));
        }
        return Ok("onnx");
    }
    if info.format == Format::Gguf {
        let arch = info
            .metadata
            .get("general.architecture")
            .map(String::as_str);
        return match arch {
            Some("llama") if !info.tensors.is_empty() => Ok("quantized-llama"),
            Some("llama") => Err(about_model(
                "this GGUF holds no tensors (a vocabulary-only file)".into(),
            )),
            other => Err(about_model(format!(
                "candle scaffolds bind Llama-family GGUF files; this one is `{}`",
                other.unwrap_or("unnamed")
            ))),
        };
    }
    let config_path = model.with_file_name("config.json");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&config_path).map_err(|e| FileError::io(&config_path, "cannot read", &e))?,
    )
    .map_err(|e| FileError::new(&config_path, format!("not JSON: {e}")))?;
    crate::model::classify::candle_family(&config).ok_or_else(|| {
        let (model_type, _) = crate::model::classify::config_names(&config);
        FileError::new(
            &config_path,
            format!("candle scaffolds bind BERT and Llama configs; this one says model_type `{model_type}`"),
        )
        .into()
    })
}

/// Every template, `<framework>/<file>` → text: the files of `templates/`, listed by build.rs.
const TEMPLATES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// The templates' environment. Auto-escaping is by the kind of file: every string a template
/// prints becomes a Rust string literal in `.rs` files, escaped text in Markdown and a shell word
/// in the workflow — unless the context marked it as code of ours ([`code`]). Filters for the
/// other places a string may go: `comment` (inside a Rust comment), `code` (a Markdown code span),
/// `shell` (a shell word in Markdown). Undefined names are errors.
fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| match name.rsplit('.').next() {
        Some("rs") => AutoEscape::Custom("rust"),
        Some("md") => AutoEscape::Custom("markdown"),
        Some("yml") => AutoEscape::Custom("shell"),
        _ => AutoEscape::Custom("none known"),
    });
    env.set_formatter(|out, state, value| {
        if value.is_safe() {
            return write!(out, "{value}").map_err(minijinja::Error::from);
        }
        let text = match value.kind() {
            ValueKind::Number | ValueKind::Bool => {
                return write!(out, "{value}").map_err(minijinja::Error::from)
            }
            ValueKind::String => value.as_str().unwrap_or_default(),
            kind => {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("a {kind} printed into a generated file"),
                ))
            }
        };
        let escaped = match state.auto_escape() {
            AutoEscape::Custom("rust") => escape::rust_str(text),
            AutoEscape::Custom("markdown") => escape::md_text(text),
            AutoEscape::Custom("shell") => escape::shell_word(text),
            other => {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("no escaping for {other:?}"),
                ))
            }
        };
        out.write_str(&escaped).map_err(minijinja::Error::from)
    });
    env.add_filter("comment", |s: &str| code(&escape::rust_comment(s)));
    env.add_filter("code", |s: &str| code(&escape::md_code(s)));
    env.add_filter("shell", |s: &str| code(&escape::shell_word(s)));
    for (name, src) in TEMPLATES {
        env.add_template(name, src).expect("templates parse");
    }
    env
}

/// Whether there is a template of this name (`<framework>/<file>`).
fn has_template(name: &str) -> bool {
    TEMPLATES.iter().any(|(t, _)| *t == name)
}

/// A template of ours that does not render with what a model gave it: reported as one line
/// naming the template, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}: {message}")]
pub struct TemplateError {
    /// The template (`tract/main.rs`).
    pub template: String,
    /// minijinja's account, one line.
    pub message: String,
}

/// Renders an embedded template (`tract/main.rs`, `common/README.md`) with `ctx`, escaping by its
/// file kind.
pub fn render(template: &str, ctx: &Value) -> Result<String, TemplateError> {
    env()
        .get_template(template)
        .and_then(|t| t.render(ctx))
        .map_err(|e| TemplateError {
            template: template.to_string(),
            message: crate::error::one_line(&e.to_string()),
        })
}

/// What a template knows of one input or output. `name` and `dtype` are the model's and are
/// escaped wherever they are printed; the other strings are code of ours.
#[derive(Debug, Serialize)]
pub struct Io {
    /// The input's or output's name as the model spells it.
    pub name: String,
    /// Its element type as `ModelInfo` names it (`float32`, `int64`).
    pub dtype: String,
    /// The Rust element type (`f32`, `i64`, `half::f16`, `bool`, …).
    pub rust_type: Value,
    /// Concrete dimensions (symbolic ones at 1), comma-separated: for comments.
    pub dims: Value,
    /// The shape as a Rust array of `usize` (`[1, 4]`; `[0usize; 0]` for a scalar).
    pub shape: Value,
    /// The same as `i64`s (`[1i64, 4]`; `[0i64; 0]`).
    pub shape_i64: Value,
    /// Elements in one sample (the product of the concrete dimensions; 1 for a scalar).
    pub numel: usize,
    /// Number of dimensions (0 for a scalar).
    pub rank: usize,
    /// `float`, `int` or `bool` (burn's tensor kinds).
    pub kind: Value,
    /// A sample element, as a Rust expression of `rust_type`.
    pub sample: Value,
    /// A closure from `&rust_type` to `f64` (for comparing with recorded outputs).
    pub to_f64: Value,
}

fn rust_type(dtype: &str) -> Option<(&'static str, &'static str)> {
    Some(match dtype {
        "float32" => ("f32", "0.5f32"),
        "float64" => ("f64", "0.5f64"),
        "float16" => ("half::f16", "half::f16::from_f32(0.5)"),
        "int64" => ("i64", "0i64"),
        "int32" => ("i32", "0i32"),
        "int8" => ("i8", "0i8"),
        "uint8" => ("u8", "0u8"),
        "bool" => ("bool", "false"),
        _ => return None,
    })
}

fn io(name: &str, dtype: &str, shape: &[usize]) -> Result<Io, String> {
    let (rust_type, sample) = rust_type(dtype)
        .ok_or_else(|| format!("{} is {dtype}: not scaffolded yet", escape::md_code(name)))?;
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let array = |suffix: &str| {
        if shape.is_empty() {
            format!("[0{suffix}; 0]")
        } else {
            let first = format!("{}{suffix}", dims[0]);
            format!(
                "[{}]",
                std::iter::once(first)
                    .chain(dims[1..].iter().cloned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    Ok(Io {
        name: name.to_string(),
        dtype: dtype.to_string(),
        rust_type: code(rust_type),
        dims: code(&dims.join(", ")),
        shape: code(&array("usize")),
        shape_i64: code(&array("i64")),
        numel: shape.iter().product(),
        rank: shape.len(),
        kind: code(match rust_type {
            "f32" | "f64" | "half::f16" => "float",
            "bool" => "bool",
            _ => "int",
        }),
        sample: code(sample),
        to_f64: code(&match rust_type {
            "half::f16" => "(|a: &half::f16| a.to_f64())".to_string(),
            "bool" => "(|a: &bool| f64::from(u8::from(*a)))".to_string(),
            t => format!("(|a: &{t}| *a as f64)"),
        }),
    })
}

/// Template facts for each input of a module, at the shapes of the inputs `check` would run:
/// given ones, else synthetic ones with symbolic dimensions from `--dim` (default 1).
pub fn sample_inputs(
    path: &Path,
    info: &ModelInfo,
    inputs: &crate::check::inputs::InputOptions,
) -> Result<Vec<Io>, ExpectedError> {
    let about_model = |e: crate::check::inputs::InputError| e.into_expected(path);
    let (sig, inputs) = crate::check::inputs::signature(info, None, inputs).map_err(about_model)?;
    let (sets, _) = crate::check::inputs::data_sets(path, &sig, &inputs).map_err(about_model)?;
    let set = sets
        .first()
        .ok_or_else(|| ModelError::new(path, "could not make inputs for the model"))?;
    ios(&set.inputs).map_err(|m| ModelError::new(path, m).into())
}

crate::error::message_error! {
    /// Why no burn harness can be made for a model: an input or output of a kind the burn
    /// scaffold does not feed, or a template that does not render.
    HarnessError
}

/// The crate `check --backend burn` builds for a model (saved beside it as `model.onnx`): the
/// burn project's own build script (burn-onnx turns the graph into Rust) and model module, and a
/// `main` that runs `Model::forward` on `tests/data/input_K.npy` and writes `output_K.npy`
/// (float64) into the directory it is given. Its own workspace; the dependencies and profile of
/// every burn project, so that harnesses and projects built in one target directory share burn.
/// `Err`: an input or output of a kind the burn scaffold does not feed (the message says which).
pub fn burn_harness(
    name: &str,
    inputs: &[(String, HostTensor)],
    outputs: &[crate::model::ValueSpec],
) -> Result<Files, HarnessError> {
    let f = Framework::Burn;
    let half = inputs
        .iter()
        .any(|(_, t)| t.dtype == crate::model::dtype::DType::F16);
    let deps = with_half(
        dependencies(f, &Constraints::default(), false, Format::Onnx),
        half,
    );
    let mut doc = package_manifest(name, "0.0.0", f, deps);
    // Not a member of whatever workspace the cache directory is in.
    doc.insert("workspace", Item::Table(Table::new()));
    let outputs = outputs
        .iter()
        .map(|o| {
            let dims: Vec<usize> = o
                .shape
                .iter()
                .map(|d| match d {
                    crate::model::Dim::Known(n) if *n >= 0 => *n as usize,
                    _ => 1,
                })
                .collect();
            if !o.shape_known {
                return Err(format!(
                    "output {} has no declared rank",
                    escape::md_code(&o.name)
                ));
            }
            io(&o.name, &o.dtype, &dims)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = context! {
        model_file => "model.onnx",
        model_path => "model.onnx",
        model_stem => "model",
        lib_name => code(&name.replace('-', "_")),
        versions => VALIDATED.iter().map(|(k, v)| (*k, code(v))).collect::<std::collections::BTreeMap<_, _>>(),
        inputs => ios(inputs)?,
        outputs => outputs,
        half => half,
    };
    let mut files: Files = vec![("Cargo.toml".into(), doc.to_string().into_bytes())];
    for (template, out) in [
        ("burn/build.rs", "build.rs"),
        ("burn/lib.rs", "src/lib.rs"),
        ("burn/harness.rs", "src/main.rs"),
        ("common/npy.rs", "src/npy.rs"),
    ] {
        let text = render(template, &ctx).map_err(|e| HarnessError(e.to_string()))?;
        files.push((out.into(), text.into_bytes()));
    }
    Ok(files)
}

/// Template facts for tensors as they are (names, dtypes, shapes).
fn ios(named: &[(String, HostTensor)]) -> Result<Vec<Io>, String> {
    named
        .iter()
        .map(|(n, t)| io(n, t.dtype_name(), &t.shape))
        .collect()
}

/// What the scaffold records: synthetic inputs (seed 0, symbolic dimensions at 1) and the
/// outputs of the back end that stands for the framework.
pub struct Recorded {
    /// The back end that computed the outputs and its version (`tract-onnx 0.23.9`), without
    /// where its library was found.
    pub with: String,
    /// The inputs run, by the model's input names.
    pub inputs: Vec<(String, HostTensor)>,
    /// What the back end returned for them, by the model's output names.
    pub outputs: Vec<(String, HostTensor)>,
    /// fastembed projects: the embeddings of [`FASTEMBED_TEST_TEXTS`] as `check` computes them
    /// (fastembed's steps), which the project's test asserts fastembed reproduces.
    pub embeddings: Option<RecordedEmbeddings>,
}

/// The texts a fastembed project's test embeds: the same sentence twice, and another.
pub const FASTEMBED_TEST_TEXTS: [&str; 3] =
    ["the model runs", "the model runs", "small text in rust"];

/// What `check`'s fastembed path made of [`FASTEMBED_TEST_TEXTS`].
pub struct RecordedEmbeddings {
    /// One L2-normalised embedding per text, `[texts, width]`.
    pub embeddings: HostTensor,
}

/// Runs the model once to record what the project's test must reproduce, on the back end that
/// checks `framework` if it can, else on any other that loads the format.
pub fn record(
    path: &Path,
    info: &ModelInfo,
    framework: Framework,
    inputs: &crate::check::inputs::InputOptions,
) -> Result<Recorded, ExpectedError> {
    // The back end that runs what the framework runs: its outputs are the ones to reproduce.
    if framework == Framework::Burn && crate::backends::burn::is_warm() {
        return record_burn(path, info, inputs);
    }
    let preferred = crate::decide::row(framework).checked_by;
    let mut rec = record_with(path, info, preferred, inputs)?;
    if framework == Framework::Fastembed {
        rec.embeddings = Some(record_embeddings(path, preferred)?);
    }
    Ok(rec)
}

/// A burn project's outputs from burn itself (its harness warm: seconds), so that the project's
/// test proves burn's own numbers — recorded only when they agree with tract's on the same
/// inputs: a burn that computes something else, or cannot run the model, is refused here rather
/// than scaffolded.
fn record_burn(
    path: &Path,
    info: &ModelInfo,
    inputs: &crate::check::inputs::InputOptions,
) -> Result<Recorded, ExpectedError> {
    let tract = record_with(path, info, "tract", inputs)?;
    let burn = crate::backends::burn::Burn;
    let version = burn
        .availability()
        .map_err(|e| ExpectedError::Usage(format!("recording with burn: {e}")))?;
    let ran = crate::backends::guarded("burn", || {
        burn.load(path, info, &tract.inputs, Device::Cpu)
            .and_then(|(mut l, _)| l.run(&tract.inputs))
    })
    .map_err(|p| p.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    let hint =
        "`cargo infer check --backend burn` shows it; choose another framework with --framework";
    let outputs = ran.map_err(|e| {
        ExpectedError::from(ModelError::new(
            path,
            format!("burn cannot run the model, so a burn project would not either: {e}"),
        ))
        .with_hint(hint)
    })?;
    let tol = crate::check::compare::ToleranceArgs::default();
    for (name, want) in &tract.outputs {
        let c = match outputs.iter().find(|(n, _)| n == name) {
            Some((_, got)) => crate::check::compare::compare(
                ("burn", got),
                (&tract.with, want),
                name,
                "recorded",
                &tol,
            ),
            None => {
                return Err(ExpectedError::from(ModelError::new(
                    path,
                    format!("burn's generated code gives no output `{name}`"),
                ))
                .with_hint(hint))
            }
        };
        if !c.pass {
            return Err(ExpectedError::from(ModelError::new(
                path,
                format!(
                    "burn computes another `{name}` than {} on the same inputs ({}): a burn project would be wrong",
                    tract.with,
                    c.summary()
                ),
            ))
            .with_hint(hint));
        }
    }
    Ok(Recorded {
        with: version.split(" (").next().unwrap_or(&version).to_string(),
        inputs: tract.inputs,
        outputs,
        embeddings: None,
    })
}

/// A fastembed project's reference embeddings: `check`'s fastembed path over
/// [`FASTEMBED_TEST_TEXTS`] on `preferred` (else any back end that passes); its pooling is the
/// one [`preflight`] chose for the project.
fn record_embeddings(path: &Path, preferred: &str) -> Result<RecordedEmbeddings, ExpectedError> {
    let opts = crate::check::CheckOptions {
        texts: FASTEMBED_TEST_TEXTS.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    let all = crate::backends::unasked(None);
    let mut order: Vec<&dyn Backend> = all.iter().map(|b| b.as_ref()).collect();
    order.sort_by_key(|b| b.name() != preferred);
    let mut why = Vec::new();
    for b in order
        .into_iter()
        .filter(|b| b.formats().contains(&Format::Onnx))
    {
        let report = crate::check::check_model(path, &[(b, true)], &opts);
        if report.status == crate::check::ModelStatus::Error {
            return Err(ModelError::new(path, report.message).into());
        }
        match report.backends.iter().find(|r| r.name == b.name()) {
            Some(r)
                if r.status == crate::check::BackendStatus::Pass && !r.embeddings.is_empty() =>
            {
                let dim = r.embeddings[0].len();
                let flat: Vec<f64> = r.embeddings.iter().flatten().copied().collect();
                let bytes = crate::tensor::number_bytes(crate::model::dtype::DType::F64, &flat)
                    .unwrap_or_default();
                let embeddings = HostTensor::from_bytes(
                    crate::model::dtype::DType::F64,
                    vec![r.embeddings.len(), dim],
                    bytes,
                )
                .map_err(|e| ModelError::new(path, e.0))?;
                return Ok(RecordedEmbeddings { embeddings });
            }
            Some(r) => why.push(format!("{}: {}", r.name, r.message)),
            None => why.push(format!("{}: did not run", b.name())),
        }
    }
    Err(ModelError::new(
        path,
        format!(
            "no back end could embed texts with the model to record them ({})",
            why.join("; ")
        ),
    )
    .into())
}

/// [`record`] with the back end to try first named (the others follow).
pub fn record_with(
    path: &Path,
    info: &ModelInfo,
    preferred: &str,
    inputs: &crate::check::inputs::InputOptions,
) -> Result<Recorded, ExpectedError> {
    let all = crate::backends::unasked(None);
    if !all.iter().any(|b| b.name() == preferred) {
        return Err(ExpectedError::Usage(format!(
            "recording the outputs the project must reproduce: {}",
            crate::backends::lacking(preferred)
        )));
    }
    let about_model = |e: crate::check::inputs::InputError| e.into_expected(path);
    let (sig, inputs) = crate::check::inputs::signature(info, None, inputs).map_err(about_model)?;
    let (sets, notes) =
        crate::check::inputs::data_sets(path, &sig, &inputs).map_err(about_model)?;
    // The inputs the user gave; else the first ONNX test data set next to the model; else
    // synthetic ones.
    let set = sets
        .into_iter()
        .next()
        .ok_or_else(|| ModelError::new(path, "could not make inputs for the model"))?;
    let runs_format = |b: &&dyn Backend| b.formats().contains(&info.format);
    let mut order: Vec<&dyn Backend> = all
        .iter()
        .map(|b| b.as_ref())
        .filter(|b| b.name() == preferred)
        .filter(runs_format)
        .collect();
    order.extend(
        all.iter()
            .map(|b| b.as_ref())
            .filter(|b| b.name() != preferred)
            .filter(runs_format),
    );
    let mut why = Vec::new();
    for b in order {
        let version = match b.availability() {
            Ok(v) => v,
            Err(e) => {
                why.push(format!("{}: {e}", b.name()));
                continue;
            }
        };
        // A back end that panics on a damaged model is that back end's error, not a crash.
        let ran = crate::backends::guarded(b.name(), || {
            b.load(path, info, &set.inputs, Device::Cpu)
                .and_then(|(mut l, _)| l.run(&set.inputs))
                .map_err(|e| e.to_string())
        })
        .map_err(|p| p.to_string())
        .and_then(|r| r);
        match ran {
            Ok(outputs) => {
                // The run's version without where its library was found here: the generated
                // files name what computed the numbers, not this machine's paths.
                let with = version.split(" (").next().unwrap_or(&version).to_string();
                return Ok(Recorded {
                    with,
                    inputs: set.inputs,
                    outputs,
                    embeddings: None,
                });
            }
            Err(e) => why.push(format!("{}: {e}", b.name())),
        }
    }
    let error = ExpectedError::from(ModelError::new(
        path,
        format!(
            "no back end could run the model to record its outputs ({})",
            why.join("; ")
        ),
    ));
    Err(match crate::check::inputs::defaulted_dims_hint(&notes) {
        Some(hint) => error.with_hint(hint),
        None => error,
    })
}

/// A dependency: (crate, version, default features, features).
pub type Dependency = (&'static str, String, bool, Vec<&'static str>);

/// Dependencies the framework needs under these constraints.
pub fn dependencies(
    f: Framework,
    c: &Constraints,
    ort_download: bool,
    format: Format,
) -> Vec<Dependency> {
    (scaffold_row(f).dependencies)(c, ort_download, format)
}

/// ort's execution-provider features for the GPU the constraints ask for.
fn ort_gpu_features(c: &Constraints) -> Vec<&'static str> {
    match c.gpu {
        Gpu::Cuda => vec!["cuda"],
        Gpu::Tensorrt => vec!["tensorrt"],
        Gpu::Rocm => vec!["rocm"],
        _ if c.multi_gpu => vec!["tensorrt"],
        _ => vec![],
    }
}

fn tract_dependencies(c: &Constraints, _: bool, _: Format) -> Vec<Dependency> {
    let mut features = vec![];
    if c.target_kind == TargetKind::Wasm {
        features.push("getrandom-js");
    }
    vec![("tract-onnx", exact("tract-onnx"), true, features)]
}

/// `ort_download`: ort's own default, which downloads a prebuilt ONNX Runtime at build time and
/// links it; otherwise `load-dynamic`, which builds anywhere and loads the library named by
/// ORT_DYLIB_PATH at run time.
fn ort_dependencies(c: &Constraints, ort_download: bool, _: Format) -> Vec<Dependency> {
    let version = exact("ort");
    if ort_download {
        vec![("ort", version, true, ort_gpu_features(c))]
    } else {
        let mut features = vec!["std", "load-dynamic"];
        features.extend(ort_gpu_features(c));
        vec![("ort", version, false, features)]
    }
}

fn candle_dependencies(c: &Constraints, _: bool, format: Format) -> Vec<Dependency> {
    let features = match c.gpu {
        Gpu::Cuda => vec!["cuda"],
        Gpu::Metal => vec!["metal"],
        _ => vec![],
    };
    // ONNX graphs run on candle-onnx (CPU only: no GPU features), weights on candle-transformers.
    if format == Format::Onnx {
        return ["candle-core", "candle-onnx"]
            .into_iter()
            .map(|k| (k, exact(k), true, vec![]))
            .collect();
    }
    let mut deps: Vec<_> = ["candle-core", "candle-nn", "candle-transformers"]
        .into_iter()
        .map(|k| (k, exact(k), true, features.clone()))
        .collect();
    deps.push((
        "serde_json",
        validated("serde_json").to_string(),
        true,
        vec![],
    ));
    deps
}

/// flex: burn's portable CPU back end (pure Rust, builds for WASM); wgpu/metal/cuda when the
/// constraints ask for a GPU.
fn burn_dependencies(c: &Constraints, _: bool, _: Format) -> Vec<Dependency> {
    let backend = match c.gpu {
        Gpu::Cuda => "cuda",
        Gpu::Metal => "metal",
        Gpu::Wgpu => "wgpu",
        _ => "flex",
    };
    vec![
        ("burn", exact("burn"), true, vec![backend]),
        ("burn-store", exact("burn-store"), true, vec![]),
    ]
}

/// ONNX Runtime as for ort; never fastembed's hub downloads (the model is local).
fn fastembed_dependencies(c: &Constraints, ort_download: bool, _: Format) -> Vec<Dependency> {
    let (fastembed_feature, mut ort_features) = if ort_download {
        ("ort-download-binaries", vec!["std"])
    } else {
        ("ort-load-dynamic", vec!["std", "load-dynamic"])
    };
    ort_features.extend(ort_gpu_features(c));
    vec![
        (
            "fastembed",
            exact("fastembed"),
            false,
            vec![fastembed_feature],
        ),
        ("ort", exact("ort"), false, ort_features),
    ]
}

/// A model with float16 inputs or outputs: the `half` crate for the element type, and ort's
/// `half` feature for its tensors.
pub fn with_half(mut deps: Vec<Dependency>, half: bool) -> Vec<Dependency> {
    if half {
        for (k, _, _, features) in deps.iter_mut() {
            if *k == "ort" {
                features.push("half");
            }
        }
        // No features of its own: the framework's own `half` features stay as they are, so the
        // framework's crates build as in a project without float16.
        deps.push(("half", validated("half").to_string(), false, vec![]));
    }
    deps
}

/// Build dependencies (burn turns the ONNX model into Rust code in the project's build script).
pub fn build_dependencies(f: Framework) -> Vec<(&'static str, String)> {
    scaffold_row(f)
        .build_dependencies
        .iter()
        .map(|k| (*k, exact(k)))
        .collect()
}

/// A project's manifest without its metadata: the package, these dependencies, the framework's
/// build dependencies and (but for generated code) the dev profile every scaffold shares, so that
/// projects built in one target directory reuse each other's compiled crates.
fn package_manifest(name: &str, version: &str, f: Framework, deps: Vec<Dependency>) -> DocumentMut {
    let mut doc = DocumentMut::new();
    let mut package = Table::new();
    package.insert("name", value(name));
    package.insert("version", value(version));
    package.insert("edition", value("2021"));
    package.insert("publish", value(false));
    doc.insert("package", Item::Table(package));
    let mut table = Table::new();
    for (k, v, def, feats) in deps {
        table.insert(k, dep_item(&v, def, &feats));
    }
    doc.insert("dependencies", Item::Table(table));
    let build_deps = build_dependencies(f);
    if !build_deps.is_empty() {
        let mut t = Table::new();
        for (k, v) in build_deps {
            t.insert(k, value(v));
        }
        doc.insert("build-dependencies", Item::Table(t));
    }
    if f != Framework::Custom {
        doc.insert("profile", Item::Table(dev_profile()));
    }
    doc
}

fn dep_item(version: &str, default_features: bool, features: &[&str]) -> Item {
    if default_features && features.is_empty() {
        return value(version);
    }
    let mut t = InlineTable::new();
    t.insert("version", version.into());
    if !default_features {
        t.insert("default-features", false.into());
    }
    if !features.is_empty() {
        let mut a = Array::new();
        for f in features {
            a.push(*f);
        }
        t.insert("features", a.into());
    }
    value(t)
}

/// `[package.metadata.infer]`: the model, its hash, the choice and the constraints that were set.
pub fn metadata_table(model: &str, sha256: &str, d: &Decision) -> Table {
    let mut t = Table::new();
    t.insert("model", value(model));
    t.insert("sha256", value(sha256));
    t.insert("choice", value(d.choice.as_str()));
    let c = &d.constraints;
    if let Some(target) = &c.target {
        t.insert("target", value(target.as_str()));
    }
    if c.gpu != Gpu::None {
        t.insert("gpu", value(c.gpu.as_str()));
    }
    for (on, key) in [
        (c.multi_gpu, "multi-gpu"),
        (c.pure_rust, "pure-rust"),
        (c.exact_precision, "exact-precision"),
        (c.serving, "serving"),
        (c.training, "training"),
    ] {
        if on {
            t.insert(key, value(true));
        }
    }
    if let Some(m) = c.max_binary_size {
        t.insert("max-binary-size", value(m as i64));
    }
    t
}

/// The entry `check` reads from `models` in `[package.metadata.infer]` for a model `init`/`add`
/// set up: its path, the inputs and outputs recorded for it (`check` with no argument then proves
/// the shipped model still gives them), the back end that runs what the framework runs and the
/// tolerance of the project's own test. Names are keys written by toml_edit, which quotes them as
/// TOML needs.
pub fn declared_check(
    model: &str,
    inputs: &[(String, String)],
    expected: &[(String, String)],
    f: Framework,
) -> Table {
    // Name → file, so that no file is matched to an output by guessing.
    let by_name = |files: &[(String, String)]| {
        let mut t = InlineTable::new();
        for (name, file) in files {
            t.insert(name, file.as_str().into());
        }
        value(t)
    };
    let mut t = Table::new();
    t.insert("path", value(model));
    if !inputs.is_empty() {
        t.insert("input", by_name(inputs));
    }
    if !expected.is_empty() {
        t.insert("expected", by_name(expected));
        t.insert("atol", value(TEST_TOLERANCE));
        t.insert("rtol", value(TEST_TOLERANCE));
    }
    t.insert("backend", value(crate::decide::row(f).checked_by));
    t
}

/// The tolerance of a generated project's own test against its recorded outputs, also the
/// tolerance of the check `init`/`add` declare for it (rendered `1e-4` in both).
const TEST_TOLERANCE: f64 = 1e-4;

/// Adds `entry` to the `models` of an `[package.metadata.infer]` table. An entry of the same path
/// takes the new entry's keys and keeps the others (a tolerance or dimension the user set); a
/// list of paths keeps its form (the entry goes in as an inline table). `manifest`: the file the
/// table is in, for the error.
pub fn declare(manifest: &Path, infer: &mut Table, entry: Table) -> Result<(), FileError> {
    let path = entry
        .get("path")
        .and_then(Item::as_str)
        .unwrap_or_default()
        .to_string();
    let same = |p: Option<&str>| p == Some(path.as_str());
    match infer.get_mut("models") {
        None => {
            let mut list = toml_edit::ArrayOfTables::new();
            list.push(entry);
            infer.insert("models", Item::ArrayOfTables(list));
        }
        Some(Item::ArrayOfTables(list)) => {
            let at = list
                .iter()
                .position(|t| same(t.get("path").and_then(Item::as_str)));
            match at.and_then(|k| list.get_mut(k)) {
                Some(t) => {
                    for (k, v) in entry.iter() {
                        t.insert(k, v.clone());
                    }
                }
                None => list.push(entry),
            }
        }
        Some(Item::Value(toml_edit::Value::Array(list))) => {
            let inline = entry.into_inline_table();
            let at = list.iter().position(|v| {
                same(v.as_str())
                    || same(
                        v.as_inline_table()
                            .and_then(|t| t.get("path"))
                            .and_then(|p| p.as_str()),
                    )
            });
            match at.and_then(|k| list.get_mut(k)) {
                Some(toml_edit::Value::InlineTable(t)) => {
                    for (k, v) in inline.iter() {
                        t.insert(k, v.clone());
                    }
                }
                Some(v) => *v = toml_edit::Value::InlineTable(inline),
                None => list.push(inline),
            }
        }
        Some(_) => {
            return Err(FileError::new(
                manifest,
                "[package.metadata.infer] models is neither a list nor an array of tables",
            ))
        }
    }
    Ok(())
}

/// `--ci`: the CI system to write a workflow for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ci {
    /// GitHub Actions: `.github/workflows/cargo-infer.yml`
    Github,
}

/// Where `--ci github` writes its workflow.
pub const GITHUB_WORKFLOW: &str = ".github/workflows/cargo-infer.yml";
/// Partitions the workflow splits the declared checks into.
pub const CI_PARTITIONS: u32 = 4;
/// The ONNX Runtime the workflow installs for the ort back end.
pub const ONNXRUNTIME_PYPI: &str = "1.31.1";

/// The `--ci github` workflow: every declared model checked in [`CI_PARTITIONS`] partitions with
/// the content cache, the reports merged into one verdict and JUnit file; for a new project
/// (`test`: its framework) also its own `cargo test`. `crate_dir`: the crate's directory from the
/// repository's root.
pub fn github_workflow(crate_dir: &str, f: Framework, test: bool) -> Result<String, TemplateError> {
    let checked_by = crate::decide::row(f).checked_by;
    // The cargo feature that builds the back end the checks need (none for those always built).
    let features = crate::backends::row(checked_by)
        .and_then(|r| r.feature)
        .unwrap_or_default();
    let ctx = context! {
        version => env!("CARGO_PKG_VERSION"),
        partitions => CI_PARTITIONS,
        partition_list => (1..=CI_PARTITIONS).collect::<Vec<_>>(),
        manifest => if crate_dir == "." { "Cargo.toml".to_string() } else { format!("{crate_dir}/Cargo.toml") },
        features => features,
        features_key => if features.is_empty() { String::new() } else { format!("-{features}") },
        needs_libtorch => crate::backends::row(checked_by).is_some_and(|r| r.formats.contains(&Format::Torchscript)),
        libtorch => crate::backends::LIBTORCH_VERSION,
        onnxruntime => ONNXRUNTIME_PYPI,
        with_tests => test,
        framework => f.as_str(),
        needs_onnxruntime => scaffold_row(f).onnx_runtime,
    };
    render("common/ci-github.yml", &ctx)
}

/// What `init` was asked for, after `cli` resolved the directory and any prepared model.
pub struct InitOptions {
    /// `--ci github`: the partitioned check workflow instead of the single-job one.
    pub ci: Option<Ci>,
    /// Directory of the new project; its name is the package name unless `name` is given.
    pub path: PathBuf,
    /// The model the project ships: the user's, or the graph prepared for tract (see `prepared`).
    pub model: PathBuf,
    /// `--name`: the package name, before what Cargo refuses is made `-`.
    pub name: Option<String>,
    /// `--link`: refer to the model (or a prepared model's original) by its absolute path instead
    /// of copying it under `models/`; a prepared model itself is always copied.
    pub link: bool,
    /// ort and fastembed: link the ONNX Runtime that `ort` downloads at build time instead of
    /// loading one at run time.
    pub ort_download: bool,
    /// `model` is a graph prepared for tract from this one (crate::prepare).
    pub prepared: Option<PreparedFrom>,
}

/// For a tract choice on an ONNX graph plain tract does not load as it is: the graph prepared for
/// it (crate::prepare), written in `scratch` as `<stem>.tract.onnx`, and where it came from. None
/// when nothing needs preparing (inlined external data alone does not count).
pub fn prepare_for_tract(
    model: &Path,
    info: &ModelInfo,
    d: &Decision,
    inputs: &crate::check::inputs::InputOptions,
    scratch: &Path,
) -> Result<Option<(PathBuf, PreparedFrom)>, crate::error::ExpectedError> {
    if d.choice != Framework::Tract || info.format != Format::Onnx {
        return Ok(None);
    }
    let stem = Path::new(&shipped_name(model))
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let out = scratch.join(format!("{stem}.tract.onnx"));
    let done = crate::prepare::for_tract(
        model,
        &out,
        &crate::prepare::ForTract {
            inputs: inputs.clone(),
            consts: vec![],
            force: true,
            ort_lib: None,
            only_given_constants: true,
        },
    )?;
    if done.rewrites.iter().all(|r| r.op == "external data") {
        return Ok(None);
    }
    let mut flags = Vec::new();
    for crate::check::inputs::DimArg(n, v) in &inputs.dims {
        flags.extend(["--dim".to_string(), format!("{n}={v}")]);
    }
    for i in &inputs.given {
        // Constant values come from a manifest's declared checks, never from init's flags.
        let flag = match i {
            crate::check::inputs::InputArg::Named(n, p) => format!("{n}={}", p.display()),
            crate::check::inputs::InputArg::All(p) => p.display().to_string(),
            crate::check::inputs::InputArg::Value(..) => continue,
        };
        flags.extend(["--input".to_string(), flag]);
    }
    let from = PreparedFrom {
        original: model.to_path_buf(),
        rewrites: done.rewrites.iter().map(|r| r.to_string()).collect(),
        flags,
    };
    Ok(Some((out, from)))
}

/// Where a prepared model came from, what was changed, and how to do it again.
#[derive(Debug, Clone)]
pub struct PreparedFrom {
    /// The model the user gave, which the prepared graph was made from.
    pub original: PathBuf,
    /// Each [`crate::prepare::Rewrite`] made, as one line of text.
    pub rewrites: Vec<String>,
    /// `convert`'s flags beyond the two paths (`--dim n=8` …).
    pub flags: Vec<String>,
}

/// The files of a new project, by relative path.
pub fn project_files(
    opts: &InitOptions,
    info: &ModelInfo,
    d: &Decision,
    pre: &Preflight,
    rec: &Recorded,
) -> Result<Vec<(PathBuf, Vec<u8>)>, ExpectedError> {
    let project = NewProject::new(opts, info, d, pre, rec)?;
    let mut files: Files = vec![("Cargo.toml".into(), project.manifest()?.into_bytes())];
    // The model, its external data, the recorded data.
    if project.linked.is_none() {
        project.copy_model(&mut files)?;
    }
    let original_ref = project.original(&mut files)?;
    project.recorded_data(&mut files)?;
    let ctx = project.template_context(original_ref)?;
    project
        .rendered(&ctx, &mut files)
        .map_err(|e| project.about_model()(e.to_string()))?;
    if d.choice == Framework::Custom {
        project.emitted(&mut files)?;
    }
    files.extend(project.target_config());
    Ok(files)
}

/// Files to write: path and bytes.
pub(crate) type Files = Vec<(PathBuf, Vec<u8>)>;

/// What the parts of a new project share: what `init` was asked, found and recorded, and the
/// names and places derived from it.
struct NewProject<'a> {
    opts: &'a InitOptions,
    info: &'a ModelInfo,
    d: &'a Decision,
    pre: &'a Preflight,
    rec: &'a Recorded,
    crate_name: String,
    /// The model's name under `models/` ([`shipped_name`]).
    model_file: String,
    sha: String,
    /// Where the model is when the project links it (`--link`) instead of holding a copy.
    linked: Option<PathBuf>,
    /// The model as the manifest names it: `models/NAME`, or where it is when linked.
    model_ref: String,
    /// Whether the model takes or gives float16 tensors.
    half: bool,
}

impl<'a> NewProject<'a> {
    fn new(
        opts: &'a InitOptions,
        info: &'a ModelInfo,
        d: &'a Decision,
        pre: &'a Preflight,
        rec: &'a Recorded,
    ) -> Result<Self, ExpectedError> {
        let crate_name = crate_name(opts)?;
        let model_file = shipped_name(&opts.model);
        let sha =
            crate::util::sha256_file(&opts.model).map_err(|e| ModelError::io(&opts.model, &e))?;
        // A prepared model exists nowhere else: it is always copied (the original may be linked).
        let linked = if opts.link && opts.prepared.is_none() {
            Some(std::fs::canonicalize(&opts.model).map_err(|e| ModelError::io(&opts.model, &e))?)
        } else {
            None
        };
        let model_ref = match &linked {
            Some(p) => p.display().to_string(),
            None => format!("models/{model_file}"),
        };
        let half = rec
            .inputs
            .iter()
            .chain(&rec.outputs)
            .any(|(_, t)| t.dtype_name() == "float16");
        Ok(NewProject {
            opts,
            info,
            d,
            pre,
            rec,
            crate_name,
            model_file,
            sha,
            linked,
            model_ref,
            half,
        })
    }

    /// An error about the model (what it holds, what was recorded from it, what renders of it).
    fn about_model(&self) -> impl Fn(String) -> ExpectedError + '_ {
        |m| ModelError::new(&self.opts.model, m).into()
    }

    /// A tensor of the model's that cannot be recorded (a dtype numpy lacks).
    fn about_tensor(&self) -> impl Fn(crate::tensor::TensorError) -> ExpectedError + '_ {
        |e| ModelError::new(&self.opts.model, e.0).into()
    }

    /// `Cargo.toml`: the package, the framework's dependencies, the model's metadata and, for a
    /// framework, an optimised dev profile.
    fn manifest(&self) -> Result<String, ExpectedError> {
        let f = self.d.choice;
        let wanted = with_half(
            dependencies(
                f,
                &self.d.constraints,
                self.opts.ort_download,
                self.info.format,
            ),
            self.half,
        );
        let mut doc = package_manifest(&self.crate_name, "0.1.0", f, wanted);
        doc["package"]
            .as_table_mut()
            .unwrap()
            .insert("metadata", Item::Table(self.metadata()?));
        Ok(doc.to_string())
    }

    /// `[package.metadata]`: `infer`, with the model's declared check on the recorded data.
    fn metadata(&self) -> Result<Table, ExpectedError> {
        let mut meta = Table::new();
        meta.set_implicit(true);
        let mut infer = metadata_table(&self.model_ref, &self.sha, self.d);
        let (inputs, outputs) = recorded_paths("tests/data", self.rec);
        declare(
            &self.opts.path.join("Cargo.toml"),
            &mut infer,
            declared_check(&self.model_ref, &inputs, &outputs, self.d.choice),
        )?;
        infer.set_position(Some(0));
        meta.insert("infer", Item::Table(infer));
        Ok(meta)
    }

    /// The model under `models/`, its external data and the files the framework needs beside it.
    fn copy_model(&self, files: &mut Files) -> Result<(), ExpectedError> {
        let model = &self.opts.model;
        files.push((
            PathBuf::from("models").join(&self.model_file),
            std::fs::read(model).map_err(|e| ModelError::io(model, &e))?,
        ));
        for ext in external_files(model, self.info, "models") {
            let (rel, src) = ext.map_err(self.about_model())?;
            files.push((rel, read_file(&src)?));
        }
        for c in &self.pre.companions {
            let src = model.with_file_name(c);
            files.push((PathBuf::from("models").join(c), read_file(&src)?));
        }
        Ok(())
    }

    /// A prepared model's original: beside it under `models/original/` (its external data too),
    /// or where it is (`--link`). Returns how the project refers to it.
    fn original(&self, files: &mut Files) -> Result<Option<String>, ExpectedError> {
        let Some(p) = &self.opts.prepared else {
            return Ok(None);
        };
        if self.opts.link {
            let at =
                std::fs::canonicalize(&p.original).map_err(|e| ModelError::io(&p.original, &e))?;
            return Ok(Some(at.display().to_string()));
        }
        let name = shipped_name(&p.original);
        files.push((
            PathBuf::from("models/original").join(&name),
            read_file(&p.original)?,
        ));
        let oinfo = crate::model::inspect(&p.original)?;
        for ext in external_files(&p.original, &oinfo, "models/original") {
            let (rel, src) = ext.map_err(|m| ModelError::new(&p.original, m))?;
            files.push((rel, read_file(&src)?));
        }
        Ok(Some(format!("models/original/{name}")))
    }

    /// The recorded inputs and outputs under `tests/data/` (outputs as float64).
    fn recorded_data(&self, files: &mut Files) -> Result<(), ExpectedError> {
        let (inputs, outputs) = recorded_paths("tests/data", self.rec);
        for ((_, path), (_, t)) in inputs.iter().zip(&self.rec.inputs) {
            files.push((path.into(), t.to_npy().map_err(self.about_tensor())?));
        }
        for ((_, path), (_, t)) in outputs.iter().zip(&self.rec.outputs) {
            let bytes = t
                .as_f64()
                .and_then(|t| t.to_npy())
                .map_err(self.about_tensor())?;
            files.push((path.into(), bytes));
        }
        if let Some(e) = &self.rec.embeddings {
            let bytes = e.embeddings.to_npy().map_err(self.about_tensor())?;
            files.push(("tests/data/embeddings.npy".into(), bytes));
        }
        Ok(())
    }

    /// What the project's templates are rendered with (the model module's context included).
    fn template_context(&self, original_ref: Option<String>) -> Result<Value, ExpectedError> {
        let (opts, info, rec, f) = (self.opts, self.info, self.rec, self.d.choice);
        // Names, dtypes and shapes as recorded: what the model really took and gave.
        let inputs = ios(&rec.inputs).map_err(self.about_model())?;
        let outputs = ios(&rec.outputs).map_err(self.about_model())?;
        let c = &self.d.constraints;
        let reasons: Vec<String> = self
            .d
            .ranking
            .first()
            .map(|r| r.reasons.clone())
            .unwrap_or_default();
        let (setup, deploy) = setup_and_deploy(f, c, opts.ort_download);
        let original_name = opts
            .model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prepared = opts.prepared.as_ref();
        let model_file = &self.model_file;
        Ok(context! {
            name => self.crate_name,
            model_format => info.format.as_str(),
            class => info.architecture.class.as_str(),
            framework => f.as_str(),
            version => env!("CARGO_PKG_VERSION"),
            constraints_text => c.describe(),
            reasons => reasons,
            recorded_with => rec.with,
            // The same tolerance the declared check gets (one constant).
            atol => code(&format!("{TEST_TOLERANCE:e}")),
            rtol => code(&format!("{TEST_TOLERANCE:e}")),
            outputs => outputs,
            sample => code("0.5f32"),
            setup => code(&setup),
            deploy => code(&deploy),
            original_name => (original_name != *model_file).then_some(original_name),
            needs_onnxruntime => scaffold_row(f).onnx_runtime && !opts.ort_download,
            gpu => c.gpu.as_str(),
            check_backend => crate::decide::row(f).checked_by,
            libtorch => crate::backends::LIBTORCH_VERSION,
            check_flags => check_flags(info, rec),
            lib_name => code(&self.crate_name.replace('-', "_")),
            sample_ids => code(&sample_ids(rec)),
            embedding_dim => rec.outputs.first().and_then(|(_, t)| t.shape.last().copied()).unwrap_or(0),
            test_texts => code(&format!("[{}]", FASTEMBED_TEST_TEXTS.map(crate::escape::rust_str).join(", "))),
            model_path => self.model_ref.clone(),
            model_stem => Path::new(model_file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            prepared_from => original_ref,
            rewrites => prepared.map(|p| p.rewrites.clone()).unwrap_or_default(),
            prepare_flags => prepared.map(|p| p.flags.clone()).unwrap_or_default(),
            half => self.half,
            ..module_context(self.pre, self.d, model_file, &model_expr(model_file, self.linked.as_deref()), &inputs, opts.ort_download)
        })
    }

    /// The files rendered from the templates: the framework's main, test and (where it has them)
    /// lib and build script, the test's npy reader, the README, the workflow, `.gitignore`.
    fn rendered(&self, ctx: &Value, files: &mut Files) -> Result<(), TemplateError> {
        let f = self.d.choice;
        let dir = f.as_str();
        files.push((
            "src/main.rs".into(),
            render(&format!("{dir}/main.rs"), ctx)?.into_bytes(),
        ));
        files.push((
            "tests/model.rs".into(),
            render(&format!("{dir}/test.rs"), ctx)?.into_bytes(),
        ));
        files.push((
            "tests/npy/mod.rs".into(),
            render("common/npy.rs", ctx)?.into_bytes(),
        ));
        for (template, out) in [("lib.rs", "src/lib.rs"), ("build.rs", "build.rs")] {
            let name = format!("{dir}/{template}");
            if has_template(&name) {
                files.push((out.into(), render(&name, ctx)?.into_bytes()));
            }
        }
        files.push((
            "README.md".into(),
            render("common/README.md", ctx)?.into_bytes(),
        ));
        // One workflow: the project's check and test, or (`--ci github`) the declared checks in
        // partitions with their cache, and the test.
        match self.opts.ci {
            None => files.push((
                ".github/workflows/model.yml".into(),
                render("common/model.yml", ctx)?.into_bytes(),
            )),
            Some(Ci::Github) => files.push((
                GITHUB_WORKFLOW.into(),
                github_workflow(".", f, true)?.into_bytes(),
            )),
        }
        files.push((".gitignore".into(), b"/target\n".to_vec()));
        Ok(())
    }

    /// The `emit` module of a custom project (src/model.rs) and its weights file, if any.
    fn emitted(&self, files: &mut Files) -> Result<(), ModelError> {
        let precision = if self.d.constraints.exact_precision {
            crate::emit::Precision::F64
        } else {
            crate::emit::Precision::F32
        };
        let (code, blob) = generated_module(
            &self.opts.model,
            &self.model_file,
            &self.sha,
            precision,
            crate::emit::WeightsMode::Auto,
        )?;
        files.push(("src/model.rs".into(), code.into_bytes()));
        if let Some(b) = blob {
            files.push(("src/model.weights.bin".into(), b));
        }
        Ok(())
    }

    /// `.cargo/config.toml` with a `build-target` alias, for a WASM or bare-metal target.
    fn target_config(&self) -> Option<(PathBuf, Vec<u8>)> {
        let c = &self.d.constraints;
        let target = c
            .target
            .as_deref()
            .filter(|_| matches!(c.target_kind, TargetKind::Wasm | TargetKind::BareMetal))?;
        let mut alias = Table::new();
        let mut command = Array::new();
        for word in ["build", "--release", "--target", target] {
            command.push(word);
        }
        alias.insert("build-target", value(command));
        let mut config = DocumentMut::new();
        config.insert("alias", Item::Table(alias));
        Some((
            ".cargo/config.toml".into(),
            format!("# `cargo test` runs on the host; `cargo build-target` builds for the deployment target.\n{config}").into_bytes(),
        ))
    }
}

/// The package name: `--name`, else the directory's name, with what Cargo refuses made `-`.
fn crate_name(opts: &InitOptions) -> Result<String, ExpectedError> {
    let name = opts.name.clone().unwrap_or_else(|| {
        opts.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model-app".into())
    });
    let crate_name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if crate_name.is_empty() || crate_name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(ExpectedError::Usage(format!(
            "`{name}` is not a valid package name; give one with --name"
        )));
    }
    Ok(crate_name)
}

/// `[profile.dev.package."*"] opt-level = 1`: frameworks are slow unoptimised; this also lets
/// projects share compiled dependencies.
fn dev_profile() -> Table {
    let mut star = Table::new();
    star.insert("opt-level", value(1));
    let mut pkg = Table::new();
    pkg.set_implicit(true);
    pkg.insert("*", Item::Table(star));
    let mut devp = Table::new();
    devp.set_implicit(true);
    devp.insert("package", Item::Table(pkg));
    let mut profile = Table::new();
    profile.set_implicit(true);
    profile.insert("dev", Item::Table(devp));
    profile
}

/// Tensor names and the files that hold them.
type ByName = Vec<(String, String)>;

/// Where the recorded inputs and outputs go under `dir` (`input_K.npy`, `output_K.npy`), by name:
/// (inputs, outputs), as the declared check lists them.
pub(crate) fn recorded_paths(dir: &str, rec: &Recorded) -> (ByName, ByName) {
    let paths = |named: &[(String, HostTensor)], kind: &str| -> ByName {
        named
            .iter()
            .enumerate()
            .map(|(k, (n, _))| (n.clone(), format!("{dir}/{kind}_{k}.npy")))
            .collect()
    };
    (paths(&rec.inputs, "input"), paths(&rec.outputs, "output"))
}

/// The external data files of a model, one by one: (its path under `under`, where it is), each
/// checked to be inside the model's directory.
pub(crate) fn external_files<'a>(
    model: &'a Path,
    info: &'a ModelInfo,
    under: &'a str,
) -> impl Iterator<Item = Result<(PathBuf, PathBuf), String>> + 'a {
    info.details.external_data.iter().map(move |ext| {
        let src = crate::model::contained(model, &ext.file).map_err(|o| o.to_string())?;
        Ok((PathBuf::from(under).join(&ext.file), src))
    })
}

/// A file's bytes; its path in the error.
fn read_file(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|e| FileError::io(path, "cannot read", &e))
}

/// The README's setup lines and deployment note: the framework's own, else the deployment
/// target's.
fn setup_and_deploy(f: Framework, c: &Constraints, ort_download: bool) -> (String, String) {
    if let Some(notes) = scaffold_row(f).deploy {
        return notes(ort_download);
    }
    let target = || escape::md_code(c.target.as_deref().unwrap_or(""));
    let deploy = match c.target_kind {
        TargetKind::Wasm => format!(
            "Deploy: `cargo build-target` builds for {} (see .cargo/config.toml).",
            target()
        ),
        TargetKind::BareMetal => format!(
            "Deploy: `cargo build-target` builds for {}; `src/model.rs` needs no std and no allocator.",
            target()
        ),
        _ => String::new(),
    };
    (String::new(), deploy)
}

/// ort's and fastembed's setup and deployment: ONNX Runtime downloaded and linked at build time
/// (`ort_download`), or loaded at run time.
fn onnx_runtime_deploy(ort_download: bool) -> (String, String) {
    if ort_download {
        (
            String::new(),
            "Deploy: `ort` downloaded a prebuilt ONNX Runtime at build time and linked it (its default features): nothing to point at ONNX Runtime at run time. Building needs access to that download; where there is none, make the project without --ort-download (load-dynamic).".to_string(),
        )
    } else {
        (
            "pip install onnxruntime   # or any ONNX Runtime ≥ 1.17\nexport ORT_DYLIB_PATH=$(python3 -c 'import onnxruntime, glob, os; print(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), \"capi\", \"libonnxruntime.so*\"))[0])')\n".to_string(),
            "Deploy: ship libonnxruntime next to the binary and set ORT_DYLIB_PATH (`load-dynamic`), or switch the `ort` dependency to its default features to link the prebuilt ONNX Runtime that `ort` downloads at build time.".to_string(),
        )
    }
}

/// tch's setup and deployment: libtorch, found at build time and at run time.
fn tch_deploy(_: bool) -> (String, String) {
    (
        format!("export LIBTORCH=/path/to/libtorch   # libtorch {v} (or: pip install torch=={v}, then LIBTORCH=<site-packages>/torch)\n", v = crate::backends::LIBTORCH_VERSION),
        "Deploy: the binary needs libtorch's shared libraries; build.rs records $LIBTORCH/lib as its run path, so ship that directory at the same path or set LD_LIBRARY_PATH.".to_string(),
    )
}

/// burn's deployment: the weights file its build script writes.
fn burn_deploy(_: bool) -> (String, String) {
    (
        String::new(),
        "Deploy: build.rs turns the ONNX model into Rust code (burn-onnx) and its weights into a .bpk file in OUT_DIR; `Model::default()` reads that file, so ship it with the binary and use `Model::from_file`, or switch build.rs to `LoadStrategy::Embedded`.".to_string(),
    )
}

/// Token ids for the models that take them (candle's), as a Rust array literal: the first
/// recorded input when it is two-dimensional; empty otherwise.
fn sample_ids(rec: &Recorded) -> String {
    rec.inputs
        .first()
        .and_then(|(_, t)| Some((t.to_f64()?, t.shape.clone())))
        .filter(|(_, shape)| shape.len() == 2)
        .map(|(v, shape)| {
            let rows: Vec<String> = v
                .chunks(shape[1].max(1))
                .map(|r| {
                    let ids: Vec<String> = r.iter().map(|x| format!("{}u32", *x as i64)).collect();
                    format!("[{}]", ids.join(", "))
                })
                .collect();
            format!("[{}]", rows.join(", "))
        })
        .unwrap_or_default()
}

/// What `check` needs to know that the model does not say (TorchScript input shapes): its flags.
fn check_flags(info: &ModelInfo, rec: &Recorded) -> Vec<String> {
    rec.inputs
        .iter()
        .filter(|_| info.format == Format::Torchscript)
        .flat_map(|(n, t)| {
            let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            [
                "--input-shape".to_string(),
                format!("{n}={}:{}", dims.join("x"), t.dtype_name()),
            ]
        })
        .collect()
}

/// The `emit` module for a model (and its weights file, when the weights go to one).
pub fn generated_module(
    model: &Path,
    model_file: &str,
    sha: &str,
    precision: crate::emit::Precision,
    weights: crate::emit::WeightsMode,
) -> Result<(String, Option<Vec<u8>>), ModelError> {
    let opts = crate::emit::EmitOptions {
        precision,
        weights,
        ..Default::default()
    };
    let chain = crate::emit::read_chain(model, &opts)?;
    let header = crate::emit::codegen::Header {
        source: model_file,
        sha256: sha,
        weights_note: None,
    };
    crate::emit::codegen::generate(&chain, &header, &opts, "model.weights.bin")
        .map_err(|e| ModelError::new(model, e.0))
}

/// Writes the project: into a fresh temporary sibling directory, then moved into place.
pub fn write_project(
    target: &Path,
    files: &[(PathBuf, Vec<u8>)],
    force: bool,
) -> Result<(), ExpectedError> {
    let exists = target.exists();
    if exists && !force {
        let empty = std::fs::read_dir(target)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(
                ExpectedError::from(FileError::new(target, "exists and is not empty"))
                    .with_hint("pass --force to write into it"),
            );
        }
    }
    if exists {
        // Into an existing directory: each file written all-or-nothing.
        for (p, _) in files {
            if let Some(parent) = target.join(p).parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| FileError::io(parent, "cannot create", &e))?;
            }
        }
        let absolute: Vec<(PathBuf, Vec<u8>)> = files
            .iter()
            .map(|(p, b)| (target.join(p), b.clone()))
            .collect();
        return Ok(crate::util::write_all_or_nothing(&absolute)?);
    }
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(FileError::new(parent, "no such directory").into());
    }
    let tmp = tempfile::Builder::new()
        .prefix(".cargo-infer-init-")
        .tempdir_in(parent)
        .map_err(|e| FileError::io(parent, "cannot write", &e))?;
    for (p, bytes) in files {
        // Errors name the file the project will have, not the temporary directory's.
        let full = tmp.path().join(p);
        std::fs::create_dir_all(full.parent().unwrap())
            .map_err(|e| FileError::io(&target.join(p), "cannot write", &e))?;
        std::fs::write(&full, bytes)
            .map_err(|e| FileError::io(&target.join(p), "cannot write", &e))?;
    }
    let kept = tmp.keep();
    // The temporary directory and its files are owner-only; the project gets the usual modes.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o755));
    }
    std::fs::rename(&kept, target).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        FileError::io(target, "cannot create", &e).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name that would run code if it reached Rust, Markdown or a shell line as it is.
    const HOSTILE: &str = "y\"); std::fs::write(\"/tmp/pwned\", \"x\").unwrap(); println!(\"{}\\\n// */ $(touch x) ${{ github.token }} `x`";

    /// Every template, rendered with every model-derived string hostile: the payload appears
    /// only escaped (its quote after a backslash, no raw newline from it, no `$(`), so a template
    /// that forgot to escape fails here — tch and candle templates included, whose projects are
    /// built only in the feature run.
    #[test]
    fn no_template_prints_a_model_string_raw() {
        let io = |rank: usize| Io {
            name: HOSTILE.into(),
            dtype: HOSTILE.into(),
            rank,
            ..io("x", "float32", &vec![2; rank]).unwrap()
        };
        for arch in ["bert", "llama", "quantized-llama"] {
            let ctx = context! {
                name => HOSTILE, model_format => HOSTILE, class => HOSTILE, framework => HOSTILE,
                version => HOSTILE, constraints_text => HOSTILE, reasons => vec![HOSTILE],
                recorded_with => HOSTILE, atol => code("1e-4"), rtol => code("1e-4"),
                outputs => vec![io(2), io(0)], sample => code("0.5f32"), setup => code(""),
                deploy => code(""), original_name => HOSTILE, needs_onnxruntime => true,
                gpu => HOSTILE, check_backend => HOSTILE, libtorch => HOSTILE,
                check_flags => vec![HOSTILE], lib_name => code("app"), sample_ids => code("[[1u32]]"),
                embedding_dim => 4, model_path => HOSTILE, model_stem => HOSTILE,
                pooling => code("Mean"), test_texts => code("[\"a\"]"),
                model_file => HOSTILE, model_expr => code(&model_expr(HOSTILE, None)),
                inputs => vec![io(2), io(0)], arch => code(arch), weights => vec![HOSTILE, HOSTILE],
                bert_defaults => code("{}"), versions => VALIDATED.iter().map(|(k, v)| (*k, code(v))).collect::<std::collections::BTreeMap<_, _>>(),
                device => Some(code("CUDA")), ort_download => false,
                prepared_from => HOSTILE, rewrites => vec![HOSTILE], prepare_flags => vec![HOSTILE],
                half => true,
                partitions => 4, partition_list => vec![1, 2, 3, 4], manifest => HOSTILE,
                features => HOSTILE, features_key => HOSTILE, needs_libtorch => true,
                onnxruntime => HOSTILE, with_tests => true,
            };
            for (template, _) in TEMPLATES {
                let text = render(template, &ctx).unwrap_or_else(|e| panic!("{e}"));
                // No line break from a name, anywhere.
                assert!(!text.contains("\n// */"), "{template}:\n{text}");
                let shell_lines = text
                    .lines()
                    .filter(|l| l.trim_start().starts_with("cargo infer") || l.contains("run:"));
                for line in shell_lines {
                    for raw in ["$(touch", "${{ github", "`x`", "\"/tmp/pwned"] {
                        assert!(!line.contains(raw), "{template}: {line}");
                    }
                }
                if template.ends_with(".rs") {
                    assert!(!text.contains("write(\"/tmp/pwned"), "{template}:\n{text}");
                }
            }
        }
    }

    #[test]
    fn every_framework_has_one_scaffold_row_and_its_templates() {
        for f in crate::decide::FRAMEWORKS {
            let rows = SCAFFOLDS
                .iter()
                .filter(|r| r.framework == f.framework)
                .count();
            assert_eq!(rows, 1, "{}", f.id);
            for t in ["main.rs", "test.rs"] {
                let name = format!("{}/{t}", f.id);
                assert!(TEMPLATES.iter().any(|(n, _)| *n == name), "no {name}");
            }
            for k in scaffold_row(f.framework).build_dependencies {
                validated(k);
            }
        }
    }

    #[test]
    fn templates_never_opt_out_of_escaping() {
        for (name, src) in TEMPLATES {
            let squeezed: String = src.chars().filter(|c| !c.is_whitespace()).collect();
            assert!(!squeezed.contains("|safe"), "{name} marks a value safe");
            assert!(!squeezed.contains("autoescape"), "{name} changes escaping");
        }
    }
}
