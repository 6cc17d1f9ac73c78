//! `cargo infer convert IN OUT`: weights into `.safetensors`, in pure Rust — from a PyTorch
//! state_dict or checkpoint (zip or legacy; the pickle is parsed, never run, and refused when it
//! would run code), from an ONNX model's initializers (external data read), or from another
//! safetensors file (to cast). Float tensors can be cast to f16/bf16/f32; `__metadata__` records
//! where the weights came from.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backends::Named;
use crate::error::{ExpectedError, FileError, ModelError};
use crate::model::dtype::DType;
use crate::model::{self, Format};
use crate::tensor::HostTensor;

/// `--dtype`: what float tensors become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
// The variants are `--dtype`'s possible values, named as the flag spells them; a doc comment on
// one would become its help text and change `--help`.
#[allow(missing_docs)]
pub enum CastTo {
    F16,
    Bf16,
    F32,
}

impl CastTo {
    fn dtype(self) -> DType {
        match self {
            CastTo::F16 => DType::F16,
            CastTo::Bf16 => DType::BF16,
            CastTo::F32 => DType::F32,
        }
    }
}

/// How `convert` writes safetensors, from its flags.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// The nested dict of a checkpoint whose tensors to take (`model`, `state_dict`, `ema`).
    pub key: Option<String>,
    /// `--dtype`: cast float tensors to this; `None` keeps every dtype.
    pub dtype: Option<CastTo>,
    /// `--force`: replace an existing output (never the input itself).
    pub force: bool,
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Converted {
    /// The input's path, as given.
    pub input: String,
    /// The written file's path, as given.
    pub output: String,
    /// The input's format (`pytorch`, `torchscript`, `onnx`, `safetensors`).
    pub format: &'static str,
    /// Tensors written.
    pub tensors: usize,
    /// Their elements, summed.
    pub parameters: u64,
    /// Size of the written file, bytes.
    pub bytes: u64,
    /// Tensors per dtype in the output.
    pub dtypes: BTreeMap<String, usize>,
    /// The `__metadata__` written: what the input carried, then `source`, `source_sha256`,
    /// `source_format`, `converted_by`, and `format`/`dtype` when they apply.
    pub metadata: BTreeMap<String, String>,
}

fn cast(t: &HostTensor, to: DType) -> HostTensor {
    if t.dtype == to || !t.dtype.is_plain_float() {
        return t.clone();
    }
    let values = t.to_f64().unwrap_or_default();
    let mut data = Vec::with_capacity(to.byte_len(values.len()));
    for v in values {
        match to {
            DType::F32 => data.extend((v as f32).to_le_bytes()),
            DType::F16 => data.extend(half::f16::from_f64(v).to_le_bytes()),
            DType::BF16 => data.extend(half::bf16::from_f64(v).to_le_bytes()),
            _ => data.extend(v.to_le_bytes()),
        }
    }
    HostTensor {
        dtype: to,
        shape: t.shape.clone(),
        data,
        strings: Vec::new(),
    }
}

/// The tensors of `input` by name, the metadata they carry, and the file's format.
fn read(
    input: &Path,
    info: &model::ModelInfo,
    key: Option<&str>,
) -> Result<(Vec<Named>, BTreeMap<String, String>), ModelError> {
    if key.is_some() && !matches!(info.format, Format::Pytorch | Format::Torchscript) {
        return Err(ModelError::new(
            input,
            "--key picks a nested dict of a PyTorch checkpoint; this is not one",
        ));
    }
    match info.format {
        Format::Pytorch | Format::Torchscript => {
            let c = model::pytorch::read_tensors(input)?;
            let prefix = match key {
                Some(k) => Some(k.to_string()),
                None => c.nested_key.clone(),
            };
            let mut meta = c.scalars.clone();
            let tensors = match prefix {
                None => c.tensors,
                Some(k) => {
                    let dotted = format!("{k}.");
                    let picked: Vec<(String, HostTensor)> = c
                        .tensors
                        .iter()
                        .filter_map(|(n, t)| n.strip_prefix(&dotted).map(|s| (s.to_string(), t.clone())))
                        .collect();
                    if picked.is_empty() {
                        let mut tops: Vec<&str> = c
                            .tensors
                            .iter()
                            .map(|(n, _)| n.split('.').next().unwrap_or(n))
                            .collect();
                        tops.dedup();
                        return Err(ModelError::new(
                            input,
                            format!(
                                "--key `{k}` holds no tensors (the checkpoint's tensors are under: {})",
                                tops.join(", ")
                            ),
                        ));
                    }
                    meta.insert("state_dict_key".into(), k);
                    picked
                }
            };
            Ok((tensors, meta))
        }
        Format::Onnx => Ok((crate::tensor::onnx_initializers(input)?, BTreeMap::new())),
        Format::Safetensors => {
            if !input.is_file() || input.extension().is_some_and(|e| e == "json") {
                return Err(ModelError::new(
                    input,
                    "a sharded checkpoint or model directory: convert one .safetensors file at a time",
                ));
            }
            let bytes = model::map_file(input)?;
            let st = safetensors::SafeTensors::deserialize(&bytes)
                .map_err(|e| ModelError::new(input, format!("not a safetensors file: {e}")))?;
            let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
                .map_err(|e| ModelError::new(input, format!("not a safetensors file: {e}")))?;
            let meta: BTreeMap<String, String> = header
                .metadata()
                .clone()
                .map(|m| m.into_iter().collect())
                .unwrap_or_default();
            let tensors = header
                .offset_keys()
                .into_iter()
                .map(|name| {
                    let view = st.tensor(&name).map_err(|e| ModelError::new(input, e.to_string()))?;
                    let dtype = DType::from_safetensors(view.dtype()).ok_or_else(|| {
                        ModelError::new(input, format!("tensor `{name}` has dtype {:?}", view.dtype()))
                    })?;
                    let t = HostTensor::from_bytes(dtype, view.shape().to_vec(), view.data().to_vec())
                        .map_err(|e| ModelError::new(input, format!("tensor `{name}`: {e}")))?;
                    Ok((name, t))
                })
                .collect::<Result<_, ModelError>>()?;
            Ok((tensors, meta))
        }
        Format::Gguf => Err(ModelError::new(
            input,
            "GGUF tensors are quantized blocks, not plain arrays: convert reads PyTorch, ONNX and safetensors",
        )),
    }
}

/// Writes `input`'s tensors (cast per `opts`) to the safetensors file `output`, all or nothing;
/// refuses unsafe pickles, data outside the model's directory, an existing output without `--force`.
pub fn convert(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
) -> Result<Converted, ExpectedError> {
    check_output(input, output, opts.force)?;
    let info = model::inspect(input)?;
    model::refuse_outside(&info)?;
    if info.safety.verdict == model::Verdict::Unsafe {
        return Err(ModelError::new(
            input,
            format!(
                "refusing an unsafe pickle: {}",
                info.safety.findings.join("; ")
            ),
        )
        .into());
    }
    let (tensors, mut meta) = read(input, &info, opts.key.as_deref())?;
    if tensors.is_empty() {
        return Err(ModelError::new(input, "holds no tensors to convert").into());
    }
    let tensors: Vec<(String, HostTensor)> = match opts.dtype {
        Some(to) => tensors
            .into_iter()
            .map(|(n, t)| (n, cast(&t, to.dtype())))
            .collect(),
        None => tensors,
    };
    check_tensors(input, &tensors)?;
    record_source(input, &info, opts, &mut meta)?;
    let bytes = serialize(input, output, &tensors, &meta)?;
    crate::util::write_all_or_nothing(&[(output.to_path_buf(), bytes.clone())])?;
    let mut dtypes = BTreeMap::new();
    for (_, t) in &tensors {
        *dtypes.entry(t.dtype_name().to_string()).or_insert(0) += 1;
    }
    Ok(Converted {
        input: input.display().to_string(),
        output: output.display().to_string(),
        format: info.format.as_str(),
        tensors: tensors.len(),
        parameters: tensors
            .iter()
            .map(|(_, t)| t.shape.iter().product::<usize>() as u64)
            .sum(),
        bytes: bytes.len() as u64,
        dtypes,
        metadata: meta,
    })
}

/// Whether `output` may be written: a `.safetensors` file, not there yet unless `force`, and
/// never the input itself.
fn check_output(input: &Path, output: &Path, force: bool) -> Result<(), ExpectedError> {
    if output.extension().is_none_or(|e| e != "safetensors") {
        return Err(ExpectedError::Usage(format!(
            "{}: the output must be a .safetensors file",
            output.display()
        )));
    }
    if output.exists() {
        if !force {
            return Err(
                ExpectedError::from(FileError::new(output, "already exists"))
                    .with_hint("pass --force to replace it"),
            );
        }
        if same_file(input, output) {
            return Err(ExpectedError::Usage(format!(
                "{}: input and output are the same file",
                output.display()
            )));
        }
    }
    Ok(())
}

/// Whether safetensors can hold these tensors: one name each, dtypes it has.
fn check_tensors(input: &Path, tensors: &[Named]) -> Result<(), ModelError> {
    let mut seen = std::collections::HashSet::new();
    for (name, t) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(ModelError::new(
                input,
                format!("two tensors are named `{name}`"),
            ));
        }
        if t.dtype.safetensors().is_none() {
            return Err(ModelError::new(
                input,
                format!(
                    "tensor `{name}` is {}, which safetensors cannot hold",
                    t.dtype_name()
                ),
            ));
        }
    }
    Ok(())
}

/// Records in `meta` where the weights came from (file, its sha256, its format), what converted
/// them, and the cast.
fn record_source(
    input: &Path,
    info: &model::ModelInfo,
    opts: &ConvertOptions,
    meta: &mut BTreeMap<String, String>,
) -> Result<(), ModelError> {
    let sha = crate::util::sha256_file(input).map_err(|e| ModelError::io(input, &e))?;
    let source = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    meta.insert("source".into(), source);
    meta.insert("source_sha256".into(), sha);
    meta.insert("source_format".into(), info.format.as_str().into());
    meta.insert(
        "converted_by".into(),
        format!("cargo-infer {}", env!("CARGO_PKG_VERSION")),
    );
    // What transformers expects of PyTorch-origin weights.
    if matches!(info.format, Format::Pytorch | Format::Torchscript) {
        meta.insert("format".into(), "pt".into());
    }
    if let Some(to) = opts.dtype {
        meta.insert("dtype".into(), to.dtype().name().into());
    }
    Ok(())
}

/// The safetensors file of these tensors (checked by [`check_tensors`]) and metadata.
fn serialize(
    input: &Path,
    output: &Path,
    tensors: &[Named],
    meta: &BTreeMap<String, String>,
) -> Result<Vec<u8>, ExpectedError> {
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, t)| {
            let view = safetensors::tensor::TensorView::new(
                t.dtype.safetensors().expect("checked above"),
                t.shape.clone(),
                &t.data,
            )
            .map_err(|e| ModelError::new(input, format!("tensor `{n}`: {e}")))?;
            Ok((n.clone(), view))
        })
        .collect::<Result<_, ModelError>>()?;
    safetensors::serialize(
        views,
        Some(meta.clone().into_iter().collect::<HashMap<_, _>>()),
    )
    .map_err(|e| ExpectedError::Usage(format!("{}: {e}", output.display())))
}

/// Whether two paths name one existing file.
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| -> Option<PathBuf> { std::fs::canonicalize(p).ok() };
    matches!((canon(a), canon(b)), (Some(x), Some(y)) if x == y)
}

/// The line for people: `wrote OUT: N tensors (…), P parameters, B bytes, from FORMAT IN`.
pub fn human(c: &Converted) -> String {
    let dtypes: Vec<String> = c.dtypes.iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!(
        "wrote {}: {} tensors ({}), {} parameters, {} bytes, from {} {}\n",
        c.output,
        c.tensors,
        dtypes.join(", "),
        c.parameters,
        c.bytes,
        c.format,
        c.input
    )
}
