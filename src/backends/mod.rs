//! Back ends behind one trait: is it usable here (and if not, how to get it), load a model, run
//! it. The same conformance suite runs against each (`tests/backends.rs`, `cargo xtask conformance`).

#[cfg(feature = "candle")]
pub mod candle;
pub mod ort;
#[cfg(feature = "tch")]
pub mod tch;
pub mod tract;

use std::path::Path;

use crate::tensor::HostTensor;

pub type Named = (String, HostTensor);

/// Where to run.
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
    Explained { message: String, detail: String },
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

/// What a back end learned while loading (shown in the report).
#[derive(Debug, Clone, Default)]
pub struct LoadNotes {
    pub notes: Vec<String>,
    /// The ONNX graph the back end ran instead of the model's own, when it prepared one
    /// (crate::prepare): `check` runs it on ONNX Runtime too, against the original.
    pub prepared: Option<Vec<u8>>,
}

pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    /// The model formats it runs.
    fn formats(&self) -> &'static [crate::model::Format];
    /// The back end's version when it is usable here, or why not and how to get it.
    fn availability(&self) -> Result<String, String>;
    /// Prepares `model` for these inputs (their dtypes and shapes fix symbolic dimensions).
    fn load(
        &self,
        path: &Path,
        info: &crate::model::ModelInfo,
        inputs: &[Named],
        device: Device,
    ) -> Result<(Box<dyn Loaded>, LoadNotes), BackendError>;
}

pub trait Loaded {
    /// Runs the model; outputs in the model's output order, by name.
    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Named>, BackendError>;
}

/// The back ends this build has, in report order.
pub fn all(ort_lib: Option<&Path>) -> Vec<Box<dyn Backend>> {
    #[allow(unused_mut)]
    let mut all: Vec<Box<dyn Backend>> =
        vec![Box::new(tract::Tract), Box::new(ort::Ort::new(ort_lib))];
    #[cfg(feature = "tch")]
    all.push(Box::new(tch::Tch));
    #[cfg(feature = "candle")]
    all.push(Box::new(candle::Candle));
    all
}

/// The back ends that run a model of this format, in a build with every feature, and the cargo
/// feature each needs (None: always built).
/// The libtorch release the `tch` feature (tch 0.26.0) is built and validated against.
pub const LIBTORCH_VERSION: &str = "2.13.0";

pub const FOR_FORMAT: &[(crate::model::Format, &str, Option<&str>)] = &[
    (crate::model::Format::Onnx, "tract", None),
    (crate::model::Format::Onnx, "ort", None),
    (crate::model::Format::Torchscript, "tch", Some("tch")),
    (crate::model::Format::Safetensors, "candle", Some("candle")),
    (crate::model::Format::Gguf, "candle", Some("candle")),
];

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
