//! Back ends behind one trait: is it usable here (and if not, how to get it), load a model, run
//! it. The same conformance suite runs against each (`cargo xtask conformance`).

pub mod burn;
#[cfg(feature = "candle")]
pub mod candle;
#[cfg(feature = "candle")]
pub mod candle_onnx;
pub mod ort;
#[cfg(feature = "tch")]
pub mod tch;
pub mod tract;

use std::path::Path;

use crate::model::Format;
use crate::tensor::HostTensor;

/// A tensor with the graph input's or output's name it goes to or comes from.
pub type Named = (String, HostTensor);

/// Where to run (`--device`): `cpu`, `cuda` (ONNX Runtime's CUDA provider, or tch's CUDA device)
/// or `tensorrt` (ONNX Runtime's TensorRT provider); serialized lower-case. tract and this build
/// of candle run on the CPU only.
// The variants are documented here: a doc comment on a variant becomes clap's help for that value
// and would change `--help`.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda,
    Tensorrt,
}

/// Why a back end did not produce outputs.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendError {
    /// The model uses something this back end lacks (operators, dtypes): not the model's fault.
    Unsupported(String),
    /// Loading or running failed.
    Failed(String),
    /// Loading or running failed: one line for the report, and the library's whole account
    /// (shown with `-v`, and in JSON as `detail`).
    Explained {
        /// One line, for the report.
        message: String,
        /// The library's whole account.
        detail: String,
    },
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Unsupported(m)
            | BackendError::Failed(m)
            | BackendError::Explained { message: m, .. } => f.write_str(m),
        }
    }
}

crate::error::message_error! {
    /// Why a back end cannot run here (not in this build, its library missing or unloadable), and
    /// how to get it: one line.
    Unavailable
}

/// A back end that panicked: its bug, caught and reported as its error (see [`guarded`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend} panicked: {message}")]
pub struct Panicked {
    /// The back end's name.
    pub backend: String,
    /// The first line of its panic message.
    pub message: String,
}

impl From<Panicked> for BackendError {
    fn from(e: Panicked) -> BackendError {
        BackendError::Failed(e.to_string())
    }
}

/// Outputs a back end returned that are not the tensors they claim to be.
impl From<crate::tensor::TensorError> for BackendError {
    fn from(e: crate::tensor::TensorError) -> BackendError {
        BackendError::Failed(e.0)
    }
}

/// What a back end learned while loading (shown in the report).
#[derive(Debug, Clone, Default)]
pub struct LoadNotes {
    /// One sentence each: what the back end changed or assumed to load the model.
    pub notes: Vec<String>,
    /// The ONNX graph the back end ran instead of the model's own, when it prepared one
    /// (crate::prepare): `check` runs it on ONNX Runtime too, against the original.
    pub prepared: Option<Vec<u8>>,
    /// Inputs the loaded model holds as constants (their values those of the inputs it was
    /// loaded with): it runs other data only if these are the same.
    pub fixed: Vec<usize>,
}

/// A back end: whether it is usable here, and loading a model on it. One per [`REGISTRY`] row.
pub trait Backend: Send + Sync {
    /// Its name in [`REGISTRY`].
    fn name(&self) -> &'static str;
    /// The model formats it runs.
    fn formats(&self) -> &'static [Format] {
        row(self.name()).map_or(&[], |r| r.formats)
    }
    /// The back end's version when it is usable here, or why not and how to get it.
    fn availability(&self) -> Result<String, Unavailable>;
    /// Prepares `model` for these inputs (their dtypes and shapes fix symbolic dimensions).
    fn load(
        &self,
        path: &Path,
        info: &crate::model::ModelInfo,
        inputs: &[Named],
        device: Device,
    ) -> Result<(Box<dyn Loaded>, LoadNotes), BackendError>;
}

/// A model loaded on a back end, ready to run any number of times.
pub trait Loaded {
    /// Runs the model; outputs in the model's output order, by name.
    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Named>, BackendError>;
}

/// Builds a back end of this build; the ONNX Runtime library path is the one setting any takes.
pub type Constructor = fn(ort_lib: Option<&Path>) -> Box<dyn Backend>;

/// One back end, whether or not this build has it. Everything the commands need to know about a
/// back end without loading a model comes from here: `check`'s `--backend` values and choice,
/// `decide --probe`, `doctor`'s rows, and the back end `init` records outputs with (a framework
/// names it in `decide::FRAMEWORKS`, `checked_by`). A back end is named after the seed framework
/// it is (`tract`, `ort`, `tch`, `candle`).
///
/// Adding one: a module implementing [`Backend`], and a row here.
pub struct BackendRow {
    /// Its name: `--backend` value, report column, JSON `name` (`tract`, `ort`, `tch`, `candle`).
    pub name: &'static str,
    /// The cargo feature that builds it (`None`: always built).
    pub feature: Option<&'static str>,
    /// The model formats it runs.
    pub formats: &'static [Format],
    /// How to get it when this build lacks it (the constructor is `None`).
    pub missing: fn() -> String,
    /// `None` when this build was made without [`BackendRow::feature`].
    pub constructor: Option<Constructor>,
    /// Run only when asked for by name (`--backend burn`), never by `auto` or `all` nor probed
    /// by `decide`: its first run builds a crate for minutes.
    pub by_name_only: bool,
}

impl BackendRow {
    /// Whether this build has the back end (its feature was on).
    pub fn built(&self) -> bool {
        self.constructor.is_some()
    }
}

/// The libtorch release the `tch` feature (tch 0.26.0) is built and validated against.
pub const LIBTORCH_VERSION: &str = "2.13.0";

/// Every back end, in report order.
pub const REGISTRY: &[BackendRow] = &[
    BackendRow {
        name: "tract",
        feature: None,
        formats: &[Format::Onnx],
        missing: String::new,
        constructor: Some(|_| Box::new(tract::Tract)),
        by_name_only: false,
    },
    BackendRow {
        name: "ort",
        feature: None,
        formats: &[Format::Onnx],
        missing: String::new,
        constructor: Some(|lib| Box::new(ort::Ort::new(lib))),
        by_name_only: false,
    },
    BackendRow {
        name: "tch",
        feature: Some("tch"),
        formats: &[Format::Torchscript],
        missing: tch_missing,
        #[cfg(feature = "tch")]
        constructor: Some(|_| Box::new(tch::Tch)),
        #[cfg(not(feature = "tch"))]
        constructor: None,
        by_name_only: false,
    },
    BackendRow {
        name: "candle",
        feature: Some("candle"),
        formats: &[Format::Safetensors, Format::Gguf, Format::Onnx],
        missing: || "not available in this build: rebuild with `--features candle`".into(),
        #[cfg(feature = "candle")]
        constructor: Some(|_| Box::new(candle::Candle)),
        #[cfg(not(feature = "candle"))]
        constructor: None,
        by_name_only: false,
    },
    BackendRow {
        name: "burn",
        feature: None,
        formats: &[Format::Onnx],
        missing: String::new,
        constructor: Some(|_| Box::new(burn::Burn)),
        by_name_only: true,
    },
];

/// The row of the back end called `name`.
pub fn row(name: &str) -> Option<&'static BackendRow> {
    REGISTRY.iter().find(|r| r.name == name)
}

/// The back ends this build has, in report order.
pub fn all(ort_lib: Option<&Path>) -> Vec<Box<dyn Backend>> {
    REGISTRY
        .iter()
        .filter_map(|r| r.constructor.map(|make| make(ort_lib)))
        .collect()
}

/// Whether the back end called `name` runs only when asked for by name
/// ([`BackendRow::by_name_only`]).
pub fn by_name_only(name: &str) -> bool {
    row(name).is_some_and(|r| r.by_name_only)
}

/// Each output of the model by name, with the dtype it declares (float32 when it declares none a
/// back end could return): for back ends whose own types lose it (candle has no bool, the burn
/// harness writes float64).
pub fn declared_outputs(
    info: &crate::model::ModelInfo,
) -> Vec<(String, crate::model::dtype::DType)> {
    use crate::model::dtype::DType;
    info.outputs
        .iter()
        .map(|o| {
            (
                o.name.clone(),
                DType::from_name(&o.dtype).unwrap_or(DType::F32),
            )
        })
        .collect()
}

/// The back ends of this build that run unasked (`auto`, `all`, probes, recording): all but those
/// run by name only ([`BackendRow::by_name_only`]: burn).
pub fn unasked(ort_lib: Option<&Path>) -> Vec<Box<dyn Backend>> {
    all(ort_lib)
        .into_iter()
        .filter(|b| !by_name_only(b.name()))
        .collect()
}

/// Why this build cannot run the back end called `name`, and how to get it.
pub fn lacking(name: &str) -> Unavailable {
    Unavailable(match row(name) {
        Some(r) => format!("the {name} back end is {}", (r.missing)()),
        None => format!("no back end is called `{name}`"),
    })
}

/// Why a build without tch cannot run TorchScript, naming the libtorch it found if any (through
/// `LIBTORCH`, or python3's torch package, located without importing it).
fn tch_missing() -> String {
    let lib = |dir: &Path| Some(dir.join("lib/libtorch_cpu.so")).filter(|p| p.is_file());
    let found = match std::env::var_os("LIBTORCH") {
        Some(d) => lib(Path::new(&d)),
        None => std::process::Command::new("python3")
            .args(["-c", "import importlib.util as u; s = u.find_spec('torch'); print(s.submodule_search_locations[0] if s else '')"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
            .and_then(|d| lib(Path::new(&d))),
    };
    match found {
        Some(p) => format!("not available in this build (libtorch found at {}): rebuild with `--features tch`", p.display()),
        None => format!("not available in this build: rebuild with `--features tch` (and LIBTORCH pointing at libtorch {LIBTORCH_VERSION})"),
    }
}

thread_local!(static IN_BACKEND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

/// Runs `f`, which calls into a back end (tract, ONNX Runtime, …): a panic there is that back
/// end's bug, not a crash of ours; it comes back as [`Panicked`], its trace kept off the
/// terminal.
pub fn guarded<T>(name: &str, f: impl FnOnce() -> T) -> Result<T, Panicked> {
    quiet_backend_panics();
    let was = IN_BACKEND.with(|b| b.replace(true));
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_BACKEND.with(|b| b.set(was));
    ran.map_err(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Panicked {
            backend: name.to_string(),
            message: first_line(&msg).to_string(),
        }
    })
}

/// Back-end panics are caught and reported per model, so their default trace is kept off the
/// terminal; any other panic (a bug of ours) still prints as usual.
pub(crate) fn quiet_backend_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_BACKEND.with(|f| f.get()) {
                default(info)
            }
        }));
    });
}

/// Shortens a library's error to its first meaningful line (C++ back ends print pages).
pub fn first_line(msg: &str) -> String {
    let line = msg
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown error");
    let mut s: String = line.chars().take(400).collect();
    if line.chars().count() > 400 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_framework_is_checked_by_a_back_end_of_the_registry_that_runs_its_formats() {
        for f in crate::decide::FRAMEWORKS {
            let r = row(f.checked_by).unwrap_or_else(|| panic!("{}: {}", f.id, f.checked_by));
            assert!(
                r.formats.iter().any(|fmt| f.formats.contains(fmt)),
                "{}",
                f.id
            );
        }
    }

    #[test]
    fn the_built_back_ends_are_the_rows_with_a_constructor_in_order() {
        let names: Vec<_> = all(None).iter().map(|b| b.name()).collect();
        let built: Vec<_> = REGISTRY
            .iter()
            .filter(|r| r.built())
            .map(|r| r.name)
            .collect();
        assert_eq!(names, built);
        for r in REGISTRY.iter().filter(|r| !r.built()) {
            assert!(lacking(r.name)
                .0
                .contains(&format!("--features {}", r.feature.unwrap())));
        }
    }
}
