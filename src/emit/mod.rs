//! `cargo infer emit`: dependency-free Rust for trivial models. A chain of dense layers,
//! element-wise affine steps and activations is read from the model (ONNX, or safetensors weights
//! with `--activations`), folded (BatchNormalization and constant Mul/Add into the dense layer
//! before them), and written as one `no_std`, allocation-free, `unsafe`-free module.

pub mod codegen;
pub mod onnx;
pub mod quant;
pub mod weights;

pub use quant::WeightsDtype;

use std::path::Path;

use crate::error::{ExpectedError, FileError, ModelError};

crate::error::message_error! {
    /// Why a model (or one of its layers) cannot be generated as code: one line about the model,
    /// without its path — the caller names the model.
    Unemittable
}
use crate::model::ModelInfo;

/// An element-wise function applied after a layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// `max(x, 0)` (ONNX `Relu`).
    Relu,
    /// `x` when positive, else `alpha·x` (ONNX `LeakyRelu`; `alpha`).
    LeakyRelu(f32),
    /// `1 / (1 + e^-x)` (ONNX `Sigmoid`).
    Sigmoid,
    /// Hyperbolic tangent (ONNX `Tanh`).
    Tanh,
    /// `max(0, min(1, alpha·x + beta))` (ONNX `HardSigmoid`; `alpha`, `beta`).
    HardSigmoid(f32, f32),
    /// Exact GELU, with the error function (ONNX `Gelu`).
    Gelu,
    /// GELU's tanh approximation (ONNX `Gelu` with `approximate = "tanh"`).
    GeluTanh,
    /// `x` clamped to `[min, max]` (ONNX `Clip`; `min`, `max`, infinite when absent).
    Clip(f32, f32),
    /// `x` when positive, else `alpha·(e^x - 1)` (ONNX `Elu`; `alpha`).
    Elu(f32),
    /// `ln(1 + e^x)` (ONNX `Softplus`).
    Softplus,
}

impl Act {
    /// The ONNX operator it comes from (`Gelu` for both GELUs).
    pub fn name(&self) -> &'static str {
        match self {
            Act::Relu => "Relu",
            Act::LeakyRelu(_) => "LeakyRelu",
            Act::Sigmoid => "Sigmoid",
            Act::Tanh => "Tanh",
            Act::HardSigmoid(..) => "HardSigmoid",
            Act::Gelu | Act::GeluTanh => "Gelu",
            Act::Clip(..) => "Clip",
            Act::Elu(_) => "Elu",
            Act::Softplus => "Softplus",
        }
    }
}

/// One step of the per-sample computation on a flat vector.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// `y[o] = b[o] + Σ_i w[o·n_in + i]·x[i]`, weights stored output-major (the order they are read).
    Dense {
        /// Width of the input vector.
        n_in: usize,
        /// Width of the output vector.
        n_out: usize,
        /// `n_out × n_in` weights, output-major.
        w: Vec<f32>,
        /// `n_out` biases.
        b: Vec<f32>,
    },
    /// `y = [before, x, after]`: the running activation between constant parts (ONNX `Concat`
    /// on the feature axis).
    Concat {
        /// Constants before the running activation.
        before: Vec<f32>,
        /// Constants after it.
        after: Vec<f32>,
    },
    /// `y = x·scale + shift`, element-wise.
    Affine {
        /// Per-element factor, as wide as the running activation.
        scale: Vec<f32>,
        /// Per-element offset, as wide.
        shift: Vec<f32>,
    },
    /// An activation, element by element.
    Act(Act),
    /// Softmax over the whole vector (the feature axis).
    Softmax,
    /// Log of the softmax over the whole vector.
    LogSoftmax,
}

/// A model as a chain of layers.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The model's input name (`input` for a weights-only file).
    pub input_name: String,
    /// The model's output name (`output` for a weights-only file).
    pub output_name: String,
    /// Width of one input sample.
    pub n_in: usize,
    /// Width of one output sample.
    pub n_out: usize,
    /// The steps, in order, applied to one sample.
    pub layers: Vec<Layer>,
    /// The source operators, for the header comment (`Gemm ×2, Relu ×1`).
    pub ops: std::collections::BTreeMap<String, u64>,
}

impl Chain {
    /// Folds affine steps into the dense layer before them, constant parts of a concatenation
    /// into the dense layer after it (their products join its bias), merges consecutive affine
    /// steps and concatenations, and drops identities: fewer passes over the data, same numbers
    /// (to rounding).
    pub fn fold(mut self) -> Chain {
        let mut out: Vec<Layer> = Vec::new();
        for l in self.layers.drain(..) {
            match (out.last_mut(), l) {
                (Some(Layer::Concat { before, after }), Layer::Dense { n_in, n_out, w, b }) => {
                    let (a, z) = (before.len(), after.len());
                    let kept = n_in - a - z;
                    let mut w2 = Vec::with_capacity(n_out * kept);
                    let mut b2 = b;
                    for (o, row) in w.chunks_exact(n_in).enumerate() {
                        let constant: f64 = row[..a]
                            .iter()
                            .zip(before.iter())
                            .chain(row[a + kept..].iter().zip(after.iter()))
                            .map(|(w, c)| *w as f64 * *c as f64)
                            .sum();
                        b2[o] = (b2[o] as f64 + constant) as f32;
                        w2.extend_from_slice(&row[a..a + kept]);
                    }
                    out.pop();
                    out.push(Layer::Dense {
                        n_in: kept,
                        n_out,
                        w: w2,
                        b: b2,
                    });
                }
                (
                    Some(Layer::Concat { before, after }),
                    Layer::Concat {
                        before: b2,
                        after: a2,
                    },
                ) => {
                    let mut joined = b2;
                    joined.extend_from_slice(before);
                    *before = joined;
                    after.extend(a2);
                }
                (Some(Layer::Dense { n_in, w, b, .. }), Layer::Affine { scale, shift }) => {
                    for (o, (s, t)) in scale.iter().zip(&shift).enumerate() {
                        for v in &mut w[o * *n_in..(o + 1) * *n_in] {
                            *v *= s;
                        }
                        b[o] = b[o] * s + t;
                    }
                }
                (
                    Some(Layer::Affine {
                        scale: s1,
                        shift: t1,
                    }),
                    Layer::Affine {
                        scale: s2,
                        shift: t2,
                    },
                ) => {
                    for i in 0..s1.len() {
                        t1[i] = t1[i] * s2[i] + t2[i];
                        s1[i] *= s2[i];
                    }
                }
                (_, l) => out.push(l),
            }
        }
        out.retain(|l| !matches!(l, Layer::Affine { scale, shift } if scale.iter().all(|s| *s == 1.0) && shift.iter().all(|t| *t == 0.0)));
        self.layers = out;
        self
    }

    /// The width of the running activation that layer `i` receives.
    pub fn width_before(&self, i: usize) -> usize {
        let mut n = self.n_in;
        for l in &self.layers[..i] {
            match l {
                Layer::Dense { n_out, .. } => n = *n_out,
                Layer::Concat { before, after } => n += before.len() + after.len(),
                _ => {}
            }
        }
        n
    }

    /// Stored numbers in the chain: weights, biases, affine factors and offsets, concatenated
    /// constants.
    pub fn parameters(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Dense { w, b, .. } => w.len() + b.len(),
                Layer::Affine { scale, shift } => scale.len() + shift.len(),
                Layer::Concat { before, after } => before.len() + after.len(),
                _ => 0,
            })
            .sum()
    }
}

/// `--precision`: the arithmetic of the generated forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// f32 throughout.
    F32,
    /// f64 accumulation and activations (weights and outputs stay f32).
    F64,
}

/// `--weights`: where the generated code keeps its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightsMode {
    /// Inline up to 65,536 parameters, a file beyond (rustc compiles huge literals slowly).
    Auto,
    /// `static` arrays in the module.
    Inline,
    /// A little-endian `.bin` file next to the module, through `include_bytes!`.
    File,
}

/// What `emit` generates and how, from its flags.
pub struct EmitOptions {
    /// `--precision`.
    pub precision: Precision,
    /// `--weights`.
    pub weights: WeightsMode,
    /// `--max-params`: the largest model, in parameters, generated as code.
    pub max_params: u64,
    /// For weights-only files: the activation after each linear layer.
    pub activations: Option<Vec<String>>,
    /// How dense weights are stored (`--weights-dtype`).
    pub weights_dtype: WeightsDtype,
    /// Also write the x86_64 AVX2 kernels, chosen at run time (`--simd`).
    pub simd: bool,
    /// Refuse stored weights that change an output by more than this (`--max-error`).
    pub max_error: Option<f64>,
    /// Samples to measure that on besides `check`'s (`--input`).
    pub inputs: Vec<crate::check::inputs::InputArg>,
}

impl Default for EmitOptions {
    fn default() -> Self {
        EmitOptions {
            precision: Precision::F32,
            weights: WeightsMode::Auto,
            max_params: crate::model::trivial::DEFAULT_BUDGET,
            activations: None,
            weights_dtype: WeightsDtype::F32,
            simd: false,
            max_error: None,
            inputs: Vec::new(),
        }
    }
}

/// `--simd` with `--precision f64`: the AVX2 kernels accumulate in f32.
pub const SIMD_F64: &str = "--simd accumulates in f32; drop --precision f64 or --simd";

/// Synthetic samples the error of stored weights is measured on: sample `k` is what `check
/// --seed k` feeds a one-sample input (uniform in [-1, 1]), so sample 0 is `check`'s own input.
pub const ERROR_SAMPLES: u64 = 64;

/// What storing the weights in `--weights-dtype` does to the outputs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredError {
    /// The `--weights-dtype` measured (`f16`, `int8`).
    pub dtype: &'static str,
    /// The largest difference from the f32 weights' outputs.
    pub max_abs: f64,
    /// The largest output of the f32 weights (what `max_abs` compares with).
    pub max_output: f64,
    /// Samples the outputs were compared on (`--input` ones, then synthetic ones).
    pub samples: usize,
}

impl StoredError {
    /// One line for the report: the largest error, the outputs' scale and the number of samples.
    pub fn describe(&self) -> String {
        format!(
            "largest output error against the f32 weights {:.2e} (outputs up to {:.3}) on {} samples",
            self.max_abs, self.max_output, self.samples
        )
    }
}

/// The samples: `--input` data (split into samples of `n_in`), then the synthetic ones.
fn error_samples(
    model: &Path,
    chain: &Chain,
    given: &[crate::check::inputs::InputArg],
) -> Result<Vec<Vec<f32>>, ExpectedError> {
    let mut out = Vec::new();
    for g in given {
        let path = match g {
            crate::check::inputs::InputArg::Named(_, p)
            | crate::check::inputs::InputArg::All(p) => p,
            crate::check::inputs::InputArg::Value(..) => {
                return Err(ExpectedError::Usage(
                    "--input: emit takes files (NAME=FILE or FILE.npz), not values".into(),
                ))
            }
        };
        for (_, t) in crate::check::inputs::read_tensor_file(path)? {
            let v: Vec<f32> = t
                .to_f64()
                .ok_or_else(|| FileError::new(path, "not numbers"))?
                .into_iter()
                .map(|v| v as f32)
                .collect();
            if v.is_empty() || v.len() % chain.n_in != 0 {
                return Err(FileError::new(
                    path,
                    format!(
                        "{} values, not samples of the model's {} inputs",
                        v.len(),
                        chain.n_in
                    ),
                )
                .into());
            }
            out.extend(v.chunks(chain.n_in).map(|c| c.to_vec()));
        }
    }
    for seed in 0..ERROR_SAMPLES {
        let mut rng = crate::tensor::Rng::new(seed);
        let t = crate::tensor::synthetic(
            crate::model::dtype::DType::F32,
            vec![1, chain.n_in],
            -1.0,
            1.0,
            &mut rng,
        )
        .map_err(|e| ModelError::new(model, e.0))?;
        out.push(
            t.to_f64()
                .unwrap_or_default()
                .into_iter()
                .map(|v| v as f32)
                .collect(),
        );
    }
    Ok(out)
}

/// Measures what `--weights-dtype` does to the outputs of the model at `path`; an error over
/// `--max-error` refuses.
pub fn stored_error(
    path: &Path,
    chain: &Chain,
    opts: &EmitOptions,
) -> Result<Option<StoredError>, ExpectedError> {
    if opts.weights_dtype == WeightsDtype::F32 {
        return Ok(None);
    }
    let samples = error_samples(path, chain, &opts.inputs)?;
    let stored =
        quant::as_stored(chain, opts.weights_dtype).map_err(|m| ModelError::new(path, m.0))?;
    let (max_abs, max_output) = quant::largest_error(chain, &stored, &samples);
    let e = StoredError {
        dtype: opts.weights_dtype.name(),
        max_abs,
        max_output,
        samples: samples.len(),
    };
    if let Some(limit) = opts.max_error {
        if max_abs.is_nan() || max_abs > limit {
            return Err(ModelError::new(path, format!(
                "{} weights change the outputs by up to {max_abs:.3e} (outputs up to {max_output:.3}, {} samples), over --max-error {limit:e}; use --weights-dtype {} or raise --max-error",
                e.dtype,
                e.samples,
                if opts.weights_dtype == WeightsDtype::Int8 { "f16" } else { "f32" }
            )).into());
        }
    }
    Ok(Some(e))
}

/// Reads the model into a chain, or every reason it cannot be generated as code.
pub fn read_chain(path: &Path, opts: &EmitOptions) -> Result<Chain, ModelError> {
    let info = crate::model::inspect(path)?;
    crate::model::refuse_outside(&info)?;
    read_inspected(path, &info, opts).map_err(|m| ModelError::new(path, m.0))
}

/// [`read_chain`] of a model already inspected; the message is about the model.
fn read_inspected(
    path: &Path,
    info: &ModelInfo,
    opts: &EmitOptions,
) -> Result<Chain, crate::emit::Unemittable> {
    if info.parameters > opts.max_params {
        return Err(format!(
            "{} parameters, over the budget of {} (--max-params): above it the safe generated code is no faster than tract (measured, README); raise --max-params (with --simd the AVX2 kernels ran ahead of tract to 8.4 M parameters in the bench's duels, README), or use `cargo infer decide` to pick a framework",
            info.parameters, opts.max_params
        ).into());
    }
    let chain = match info.format {
        crate::model::Format::Onnx => {
            if let Err(why) = crate::model::trivial::check(info, opts.max_params) {
                return Err(format!("not a trivial model: {}; use `cargo infer decide` to pick a framework", why).into());
            }
            onnx::read(path)?
        }
        crate::model::Format::Safetensors | crate::model::Format::Pytorch => {
            let acts = opts.activations.as_ref().ok_or(
                "this file holds weights only: give the activation after each linear layer with --activations relu,relu,softmax",
            )?;
            weights::read(path, info, acts)?
        }
        f => return Err(format!("emit reads ONNX, or safetensors / PyTorch state_dict weights with --activations; this is {}", f.as_str()).into()),
    };
    Ok(chain.fold())
}

/// `-o` must name a file to write (not a directory, not `.` or `..`).
pub fn check_output(out: &Path) -> Result<(), FileError> {
    if out.is_dir() || out.file_name().is_none() {
        return Err(FileError::new(
            out,
            "is a directory; -o names the Rust file to write (e.g. -o src/model.rs)",
        ));
    }
    Ok(())
}

/// Writes the module to `out` (and its weights file, in `--weights file` mode), all or nothing.
pub fn emit(
    path: &Path,
    out: &Path,
    opts: &EmitOptions,
) -> Result<(Chain, Option<StoredError>), ExpectedError> {
    check_output(out)?;
    let chain = read_chain(path, opts)?;
    let error = stored_error(path, &chain, opts)?;
    let sha = crate::util::sha256_file(path).map_err(|e| ModelError::io(path, &e))?;
    let source_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let weights_file = out.with_extension("weights.bin");
    let weights_name = weights_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (code, blob) = codegen::generate(
        &chain,
        &codegen::Header {
            source: &source_name,
            sha256: &sha,
            weights_note: error.as_ref().map(|e| e.describe()),
        },
        opts,
        &weights_name,
    )
    .map_err(|m| ModelError::new(path, m.0))?;
    let mut files = vec![(out.to_path_buf(), code.into_bytes())];
    if let Some(blob) = blob {
        files.push((weights_file, blob));
    }
    crate::util::write_all_or_nothing(&files)?;
    Ok((chain, error))
}
