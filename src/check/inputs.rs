//! The data sets a check runs: inputs given on the command line, the ONNX test layout next to the
//! model (`test_data_set_*/input_N.pb`, `output_N.pb`), or synthetic inputs; and the expected
//! outputs that go with them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::backends::Named;
use crate::error::{ExpectedError, FileError, ModelError};
use crate::model::dtype::DType;
use crate::model::{Dim, Format, ModelInfo};
use crate::tensor::{self, HostTensor, Rng};

/// Why the data sets for a model cannot be made: a data file, a flag, or the model itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A data file — given with `--input`/`--expected`, or a test data set next to the model —
    /// cannot be read or does not fit the model. Its path is the file's.
    #[error(transparent)]
    File(#[from] FileError),
    /// A flag names what the model does not have, or a shape it cannot take; the message
    /// starts with the flag.
    #[error("{0}")]
    Usage(String),
    /// The model takes inputs no data can be made for (a sequence, no declared shape); the
    /// message is about the model, without its path.
    #[error("{0}")]
    Model(String),
}

impl InputError {
    fn usage(message: impl Into<String>) -> InputError {
        InputError::Usage(crate::error::one_line(&message.into()))
    }

    fn model(message: impl Into<String>) -> InputError {
        InputError::Model(crate::error::one_line(&message.into()))
    }

    /// The error a command reports, the model's being the model at `model`.
    pub fn into_expected(self, model: &Path) -> ExpectedError {
        match self {
            InputError::File(e) => e.into(),
            InputError::Usage(m) => ExpectedError::Usage(m),
            InputError::Model(m) => ModelError::new(model, m).into(),
        }
    }
}

/// `--input NAME=FILE` or `--input ALL.npz`, or (declared in the manifest) a constant scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum InputArg {
    /// `--input NAME=FILE`: one input from a `.npy`, `.pb` or `.json` file.
    Named(String, PathBuf),
    /// `--input ALL.npz`: every input, by name, from one `.npz`.
    All(PathBuf),
    /// One value of the input's own dtype (a sample rate, a threshold).
    Value(String, f64),
}

impl std::str::FromStr for InputArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // Names may hold `/` and `:`; the last `=` before an existing file splits name and file.
        match s.rsplit_once('=') {
            Some((name, file)) if !name.is_empty() => {
                Ok(InputArg::Named(name.to_string(), PathBuf::from(file)))
            }
            _ => Ok(InputArg::All(PathBuf::from(s))),
        }
    }
}

/// `--val-range [lo,hi]` or `--val-range name:[lo,hi]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValRange {
    /// The input it applies to; `None`: every input without a range of its own.
    pub name: Option<String>,
    /// Lowest value drawn.
    pub lo: f64,
    /// Highest value drawn (never below `lo`).
    pub hi: f64,
}

impl std::str::FromStr for ValRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, range) = match s.rfind(":[") {
            Some(i) => (Some(s[..i].to_string()), &s[i + 1..]),
            None => (None, s),
        };
        let inner = range
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| format!("`{s}`: expected [lo,hi] or name:[lo,hi]"))?;
        let (lo, hi) = inner
            .split_once(',')
            .ok_or_else(|| format!("`{s}`: expected [lo,hi]"))?;
        let num = |v: &str| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{s}`: `{v}` is not a number"))
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo.is_nan() || hi.is_nan() || lo > hi {
            return Err(format!("`{s}`: lo must not exceed hi"));
        }
        Ok(ValRange { name, lo, hi })
    }
}

/// `--dim name=N`.
#[derive(Debug, Clone, PartialEq)]
pub struct DimArg(pub String, pub usize);

impl std::str::FromStr for DimArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (n, v) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected name=N"))?;
        let v = v
            .parse::<usize>()
            .map_err(|_| format!("`{s}`: `{v}` is not a size"))?;
        Ok(DimArg(n.to_string(), v))
    }
}

/// `--input-shape name=1x3x224x224[:dtype]`: an input's shape — for TorchScript, which records
/// none, with its dtype (float32 unless given); for ONNX, the values of its symbolic dimensions
/// (a dtype given must be the model's).
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeArg {
    /// The input's name.
    pub name: String,
    /// Its dimensions.
    pub shape: Vec<usize>,
    /// As given (`None`: float32 for TorchScript, the model's for ONNX).
    pub dtype: Option<String>,
}

impl std::str::FromStr for ShapeArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected name=1x3x224x224[:dtype]"))?;
        let (dims, dtype) = match rest.split_once(':') {
            Some((d, t)) => (d, Some(t)),
            None => (rest, None),
        };
        if let Some(dtype) = dtype.filter(|t| DType::from_name(t).is_none()) {
            return Err(format!(
                "`{s}`: `{dtype}` is not a dtype (float32, int64, …)"
            ));
        }
        let shape = if dims.is_empty() || dims == "scalar" {
            Vec::new()
        } else {
            dims.split('x')
                .map(|d| {
                    d.parse::<usize>()
                        .map_err(|_| format!("`{s}`: `{d}` is not a size"))
                })
                .collect::<Result<_, _>>()?
        };
        Ok(ShapeArg {
            name: name.to_string(),
            shape,
            dtype: dtype.map(str::to_string),
        })
    }
}

/// The inputs of a TorchScript module's `forward`, for data sets: names from its signature (else
/// from the shapes or files given), shapes from `--input-shape`. TorchScript records no shapes,
/// so an input that has neither a shape nor a file is an error — never a guess.
pub fn torchscript_inputs(
    info: &ModelInfo,
    shapes: &[ShapeArg],
    given: &[InputArg],
) -> Result<Vec<crate::model::ValueSpec>, InputError> {
    let given_names: Vec<&str> = given
        .iter()
        .filter_map(|g| match g {
            InputArg::Named(n, _) | InputArg::Value(n, _) => Some(n.as_str()),
            InputArg::All(_) => None,
        })
        .collect();
    let names: Vec<String> = match info.details.signature.as_deref().and_then(forward_params) {
        Some(params) => {
            let mut names = Vec::new();
            for (name, ty) in params {
                if ty != "Tensor" {
                    return Err(InputError::model(format!(
                        "forward takes `{name}: {ty}`; check feeds tensors only"
                    )));
                }
                names.push(name);
            }
            names
        }
        None if !shapes.is_empty() => shapes.iter().map(|s| s.name.clone()).collect(),
        None => given_names.iter().map(|n| n.to_string()).collect(),
    };
    for s in shapes {
        if !names.contains(&s.name) {
            return Err(InputError::usage(format!(
                "--input-shape `{}`: forward has no such input (it takes: {})",
                s.name,
                names.join(", ")
            )));
        }
    }
    let all_given = given.iter().any(|g| matches!(g, InputArg::All(_)));
    let mut missing = Vec::new();
    let specs = names
        .iter()
        .map(|name| match shapes.iter().find(|s| &s.name == name) {
            Some(s) => crate::model::ValueSpec {
                name: name.clone(),
                dtype: s.dtype.clone().unwrap_or_else(|| "float32".into()),
                shape: s.shape.iter().map(|d| Dim::Known(*d as i64)).collect(),
                shape_known: true,
            },
            None => {
                if !all_given && !given_names.contains(&name.as_str()) {
                    missing.push(name.as_str());
                }
                crate::model::ValueSpec {
                    name: name.clone(),
                    dtype: "float32".into(),
                    shape: Vec::new(),
                    shape_known: false,
                }
            }
        })
        .collect();
    if names.is_empty() {
        return Err(InputError::model(
            "TorchScript records no input signature here: give --input-shape NAME=1x3x224x224 or --input NAME=FILE",
        ));
    }
    if !missing.is_empty() {
        let example: Vec<String> = missing
            .iter()
            .map(|n| format!("--input-shape {n}=1x…"))
            .collect();
        return Err(InputError::model(format!(
            "TorchScript records no input shapes; give {} (or --input NAME=FILE)",
            example.join(" ")
        )));
    }
    Ok(specs)
}

/// What a model takes where its file does not say: token ids for weights-only language models
/// (safetensors, GGUF), the `--input-shape`s for TorchScript. `declared`: another file (an ONNX
/// export of the same model) whose inputs stand for this one's.
pub fn signature(
    info: &ModelInfo,
    declared: Option<&ModelInfo>,
    opts: &InputOptions,
) -> Result<(ModelInfo, InputOptions), InputError> {
    let base = declared.unwrap_or(info).clone();
    let mut opts = opts.clone();
    let base = if matches!(info.format, Format::Safetensors | Format::Gguf) {
        let (specs, o) = token_inputs(info, &opts);
        opts = o;
        if base.format == Format::Onnx {
            base
        } else {
            ModelInfo {
                inputs: specs,
                ..base
            }
        }
    } else {
        base
    };
    if base.format == Format::Torchscript {
        let inputs = torchscript_inputs(&base, &opts.shapes, &opts.given)?;
        return Ok((ModelInfo { inputs, ..base }, opts));
    }
    if !opts.shapes.is_empty() {
        let inputs = shaped_inputs(&base.inputs, &opts.shapes)?;
        return Ok((ModelInfo { inputs, ..base }, opts));
    }
    Ok((base, opts))
}

/// A graph's inputs with the `--input-shape`s given: each names an input, keeps its rank and its
/// fixed dimensions, and sets its symbolic ones.
fn shaped_inputs(
    inputs: &[crate::model::ValueSpec],
    shapes: &[ShapeArg],
) -> Result<Vec<crate::model::ValueSpec>, InputError> {
    let mut out = inputs.to_vec();
    for s in shapes {
        let spec = out.iter_mut().find(|i| i.name == s.name).ok_or_else(|| {
            let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
            InputError::usage(format!(
                "--input-shape `{}`: the model has no such input (it takes: {})",
                s.name,
                names.join(", ")
            ))
        })?;
        if let Some(d) = s.dtype.as_ref().filter(|d| **d != spec.dtype) {
            return Err(InputError::usage(format!(
                "--input-shape `{}`: the model's input is {}, not {d}",
                s.name, spec.dtype
            )));
        }
        let shown = |dims: &[Dim]| {
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
        };
        if spec.shape_known && spec.shape.len() != s.shape.len() {
            return Err(InputError::usage(format!(
                "--input-shape `{}`: the model's input has rank {} ({}), not {}",
                s.name,
                spec.shape.len(),
                shown(&spec.shape),
                s.shape.len()
            )));
        }
        if let Some((k, d)) = spec
            .shape
            .iter()
            .zip(&s.shape)
            .enumerate()
            .find_map(|(k, (d, g))| matches!(d, Dim::Known(v) if *v != *g as i64).then_some((k, d)))
        {
            return Err(InputError::usage(format!(
                "--input-shape `{}`: dimension {k} of the model's input is {d} ({}), not {}",
                s.name,
                shown(&spec.shape),
                s.shape[k]
            )));
        }
        spec.shape = s.shape.iter().map(|d| Dim::Known(*d as i64)).collect();
        spec.shape_known = true;
    }
    Ok(out)
}

/// The input of a weights-only language model (safetensors + config.json, GGUF): token ids
/// `input_ids` int64 [batch, sequence], synthesised within the vocabulary and 8 tokens long
/// unless `--val-range input_ids:[..]` / `--dim sequence=N` say otherwise.
pub fn token_inputs(
    info: &ModelInfo,
    opts: &InputOptions,
) -> (Vec<crate::model::ValueSpec>, InputOptions) {
    let mut opts = opts.clone();
    if let Some(vocab) = info.details.sizes.get("vocab_size").filter(|v| **v > 0) {
        // Earlier ranges lose to later ones: the user's, given after, win.
        opts.ranges.insert(
            0,
            ValRange {
                name: Some("input_ids".into()),
                lo: 0.0,
                hi: (*vocab - 1) as f64,
            },
        );
    }
    // The first matching --dim wins: the user's come first.
    opts.dims.push(DimArg("sequence".into(), 8));
    let spec = crate::model::ValueSpec {
        name: "input_ids".into(),
        dtype: "int64".into(),
        shape: vec![
            Dim::Symbolic("batch".into()),
            Dim::Symbolic("sequence".into()),
        ],
        shape_known: true,
    };
    (vec![spec], opts)
}

/// `forward(self, x: Tensor, mask: Tensor) -> Tensor` → [(x, Tensor), (mask, Tensor)].
fn forward_params(sig: &str) -> Option<Vec<(String, String)>> {
    let open = sig.find('(')?;
    let mut depth = 0;
    let mut close = None;
    for (i, c) in sig[open..].char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let inner = &sig[open + 1..close?];
    let mut params = Vec::new();
    let (mut depth, mut start) = (0, 0);
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    for p in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let (name, ty) = p.split_once(':').unwrap_or((p, "Tensor"));
        if name.trim() == "self" {
            continue;
        }
        let ty = ty.split('=').next().unwrap_or(ty).trim();
        params.push((name.trim().to_string(), ty.to_string()));
    }
    Some(params)
}

/// Where a check's data sets come from: given files, the ONNX test layout, or synthetic inputs and
/// how to make them.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// `--input`: inputs given; the missing ones are synthetic.
    pub given: Vec<InputArg>,
    /// `--expected`: a directory of `<output>.npy`/`output_N.npy`/`output_N.pb`, or an `.npz`.
    pub expected: Option<PathBuf>,
    /// Expected outputs by name, a file each (declared checks: `expected = { logits = "…" }`).
    pub expected_files: Vec<(String, PathBuf)>,
    /// `--seed` of the synthetic inputs.
    pub seed: u64,
    /// `--val-range`: ranges of synthetic values; the last given for an input wins.
    pub ranges: Vec<ValRange>,
    /// `--dim`: sizes of symbolic dimensions (unset ones are 1, with a note).
    pub dims: Vec<DimArg>,
    /// `--input-shape`: inputs' shapes (TorchScript's, which records none) or an ONNX model's
    /// symbolic dimensions.
    pub shapes: Vec<ShapeArg>,
}

/// One set of inputs to run, with the outputs expected from them if known.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// `test_data_set_N` (the ONNX test layout), `given` or `synthetic`.
    pub name: String,
    /// One tensor per model input, in the model's order.
    pub inputs: Vec<Named>,
    /// The expected outputs by name, when given or found next to the model.
    pub expected: Option<Vec<Named>>,
}

/// "symbolic dimensions were set to 1 (…): give real sizes with --dim …" when the notes of
/// [`data_sets`] say dimensions were defaulted (a common reason for a model to fail: a streaming
/// model padding a sequence of 1, say).
pub fn defaulted_dims_hint(notes: &[String]) -> Option<String> {
    notes
        .iter()
        .find_map(|n| n.strip_prefix("symbolic dimensions defaulted (set with --dim): "))
        .map(|dims| {
            let last = dims.rsplit(", ").next().unwrap_or("").trim_end_matches("=1");
            format!(
                "symbolic dimensions were set to 1 ({dims}): give real sizes with --dim NAME=N (e.g. --dim {last}=512), or a sample input with --input NAME=FILE"
            )
        })
}

/// The data sets for one model, and notes on what was assumed (defaulted dimensions, ranges).
/// An error is one line, whatever the names in it hold (a model's names may hold newlines).
pub fn data_sets(
    path: &Path,
    info: &ModelInfo,
    opts: &InputOptions,
) -> Result<(Vec<DataSet>, Vec<String>), InputError> {
    let mut notes = Vec::new();
    let expected = match &opts.expected {
        Some(p) => Some(read_expected(p, info)?),
        None if !opts.expected_files.is_empty() => {
            Some(read_expected_files(&opts.expected_files, info)?)
        }
        None => None,
    };
    if !opts.given.is_empty() {
        let given = read_given(&opts.given, info)?;
        let mut inputs = Vec::new();
        let missing: Vec<&str> = info
            .inputs
            .iter()
            .filter(|i| !given.iter().any(|(n, _)| n == &i.name))
            .map(|i| i.name.as_str())
            .collect();
        let synth = if missing.is_empty() {
            Vec::new()
        } else {
            synthetic(info, opts, &mut notes)?
        };
        for spec in &info.inputs {
            match given.iter().find(|(n, _)| n == &spec.name) {
                Some(g) => inputs.push(g.clone()),
                None => inputs.push(
                    synth
                        .iter()
                        .find(|(n, _)| n == &spec.name)
                        .cloned()
                        .unwrap(),
                ),
            }
        }
        if !missing.is_empty() {
            notes.push(format!(
                "inputs not given, synthesised: {}",
                missing.join(", ")
            ));
        }
        for (n, _) in &given {
            if !info.inputs.iter().any(|i| &i.name == n) {
                let names: Vec<&str> = info.inputs.iter().map(|i| i.name.as_str()).collect();
                return Err(InputError::usage(format!(
                    "--input `{n}`: the model has no such input (it has: {})",
                    names.join(", ")
                )));
            }
        }
        return Ok((
            vec![DataSet {
                name: "given".into(),
                inputs,
                expected,
            }],
            notes,
        ));
    }
    let layout = onnx_test_layout(path, info)?;
    if !layout.is_empty() {
        notes.push(format!(
            "{} ONNX test data set(s) found next to the model",
            layout.len()
        ));
        return Ok((layout, notes));
    }
    let inputs = synthetic(info, opts, &mut notes)?;
    Ok((
        vec![DataSet {
            name: "synthetic".into(),
            inputs,
            expected,
        }],
        notes,
    ))
}

/// The tensors in an input or expected-output file (`.npy`, `.npz`, ONNX `TensorProto` `.pb`, JSON),
/// with the names the file gives them.
pub fn read_tensor_file(p: &Path) -> Result<Vec<(Option<String>, HostTensor)>, FileError> {
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let err = |e: tensor::TensorError| FileError::new(p, e.0);
    if ext == "npz" {
        return Ok(HostTensor::from_npz(p)
            .map_err(err)?
            .into_iter()
            .map(|(n, t)| (Some(n), t))
            .collect());
    }
    let bytes = std::fs::read(p).map_err(|e| FileError::io(p, "cannot read", &e))?;
    match ext.as_str() {
        "npy" => Ok(vec![(None, HostTensor::from_npy(&bytes).map_err(err)?)]),
        "pb" => {
            let (name, t) = HostTensor::from_pb(&bytes).map_err(err)?;
            Ok(vec![((!name.is_empty()).then_some(name), t)])
        }
        "json" => Ok(vec![(None, tensor_from_json(&bytes).map_err(err)?)]),
        _ => Err(FileError::new(
            p,
            "unknown tensor file type (use .npy, .npz, .pb or .json)",
        )),
    }
}

/// JSON: `{"dtype": "float32", "shape": [2], "data": [1, 2]}` or a nested array of numbers
/// (float32; nesting gives the shape).
pub(crate) fn tensor_from_json(bytes: &[u8]) -> Result<HostTensor, tensor::TensorError> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let (dtype, shape, flat) = if let Some(obj) = v.as_object() {
        let dtype = obj
            .get("dtype")
            .and_then(|d| d.as_str())
            .unwrap_or("float32");
        let dtype = DType::from_name(dtype).ok_or_else(|| format!("unknown dtype `{dtype}`"))?;
        let mut flat = Vec::new();
        let mut inferred = Vec::new();
        flatten(
            obj.get("data").ok_or("no `data`")?,
            &mut flat,
            &mut inferred,
            0,
        )?;
        let shape = match obj.get("shape") {
            Some(s) => s
                .as_array()
                .ok_or("`shape` is not an array")?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad dimension"))
                .collect::<Result<Vec<_>, _>>()?,
            None => inferred,
        };
        (dtype, shape, flat)
    } else {
        let mut flat = Vec::new();
        let mut shape = Vec::new();
        flatten(&v, &mut flat, &mut shape, 0)?;
        (DType::F32, shape, flat)
    };
    if shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d)) != Some(flat.len()) {
        return Err(format!("shape {shape:?} does not hold {} values", flat.len()).into());
    }
    // Any nonzero number is true (2 or -1 included), as in numpy.
    let data = tensor::number_bytes(dtype, &flat)
        .ok_or_else(|| format!("JSON tensors of {dtype} are not supported"))?;
    HostTensor::from_bytes(dtype, shape, data)
}

fn flatten(
    v: &serde_json::Value,
    out: &mut Vec<f64>,
    shape: &mut Vec<usize>,
    depth: usize,
) -> Result<(), String> {
    match v {
        serde_json::Value::Array(a) => {
            if shape.len() == depth {
                shape.push(a.len());
            } else if shape[depth] != a.len() {
                return Err("ragged nested array".into());
            }
            for x in a {
                flatten(x, out, shape, depth + 1)?;
            }
            Ok(())
        }
        serde_json::Value::Number(n) => {
            out.push(n.as_f64().ok_or("bad number")?);
            Ok(())
        }
        serde_json::Value::Bool(b) => {
            out.push(*b as u8 as f64);
            Ok(())
        }
        _ => Err("JSON tensors hold numbers or booleans".into()),
    }
}

/// Expected outputs named one by one, each file holding one array.
fn read_expected_files(
    files: &[(String, PathBuf)],
    info: &ModelInfo,
) -> Result<Vec<Named>, InputError> {
    files
        .iter()
        .map(|(name, file)| {
            if !info.outputs.iter().any(|o| &o.name == name) {
                let names: Vec<&str> = info.outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(InputError::usage(format!(
                    "expected output `{name}`: the model has no such output (it has: {})",
                    names.join(", ")
                )));
            }
            let mut ts = read_tensor_file(file)?;
            if ts.len() != 1 {
                return Err(FileError::new(
                    file,
                    format!("holds {} arrays; the expected `{name}` is one", ts.len()),
                )
                .into());
            }
            Ok((name.clone(), ts.remove(0).1))
        })
        .collect()
}

fn read_given(args: &[InputArg], info: &ModelInfo) -> Result<Vec<Named>, InputError> {
    let mut out = Vec::new();
    for a in args {
        match a {
            InputArg::Named(name, file) => {
                let mut ts = read_tensor_file(file)?;
                if ts.len() != 1 {
                    return Err(FileError::new(
                        file,
                        format!("holds {} arrays; give an .npz without a name", ts.len()),
                    )
                    .into());
                }
                out.push((name.clone(), ts.remove(0).1));
            }
            InputArg::Value(name, x) => {
                let spec = info
                    .inputs
                    .iter()
                    .find(|i| &i.name == name)
                    .ok_or_else(|| {
                        InputError::usage(format!(
                            "input `{name}` = {x}: the model has no such input"
                        ))
                    })?;
                // Its declared shape when that holds one value ([] or [1]), else a scalar.
                let shape: Vec<i64> = spec
                    .shape
                    .iter()
                    .map(|d| match d {
                        crate::model::Dim::Known(n) => *n,
                        crate::model::Dim::Symbolic(_) => 1,
                    })
                    .collect();
                let shape = if shape.iter().product::<i64>() == 1 {
                    shape
                } else {
                    Vec::new()
                };
                let json = serde_json::json!({"dtype": spec.dtype, "shape": shape, "data": [x]});
                let t = tensor_from_json(json.to_string().as_bytes())
                    .map_err(|e| InputError::usage(format!("input `{name}` = {x}: {e}")))?;
                out.push((name.clone(), t));
            }
            InputArg::All(file) => {
                for (i, (name, t)) in read_tensor_file(file)?.into_iter().enumerate() {
                    let name = name
                        .or_else(|| info.inputs.get(i).map(|s| s.name.clone()))
                        .unwrap_or_default();
                    out.push((name, t));
                }
            }
        }
    }
    Ok(out)
}

/// `--expected DIR` (`<output>.npy`, `output_N.npy` or `output_N.pb` files) or `--expected
/// OUTPUTS.npz`.
fn read_expected(p: &Path, info: &ModelInfo) -> Result<Vec<Named>, InputError> {
    if p.is_dir() {
        let mut out = Vec::new();
        for (i, o) in info.outputs.iter().enumerate() {
            // By name, or by position as test data sets and `init`'s recordings name them.
            let Some(file) = [
                p.join(format!("{}.npy", o.name)),
                p.join(format!("output_{i}.npy")),
                p.join(format!("output_{i}.pb")),
            ]
            .into_iter()
            .find(|f| f.is_file()) else {
                continue;
            };
            let (_, t) = read_tensor_file(&file)?.remove(0);
            out.push((o.name.clone(), t));
        }
        if out.is_empty() {
            return Err(FileError::new(
                p,
                "no <output>.npy, output_N.npy or output_N.pb files for this model's outputs",
            )
            .into());
        }
        return Ok(out);
    }
    let all = read_tensor_file(p)?;
    Ok(all
        .into_iter()
        .enumerate()
        .map(|(i, (n, t))| {
            (
                n.or_else(|| info.outputs.get(i).map(|o| o.name.clone()))
                    .unwrap_or_default(),
                t,
            )
        })
        .collect())
}

/// `test_data_set_*` directories next to the model.
fn onnx_test_layout(path: &Path, info: &ModelInfo) -> Result<Vec<DataSet>, InputError> {
    let Some(dir) = path.parent() else {
        return Ok(Vec::new());
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("test_data_set_"))
        })
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(v) = info
        .inputs
        .iter()
        .chain(&info.outputs)
        .find(|v| !is_tensor_type(&v.dtype))
    {
        return Err(InputError::model(format!(
            "`{}` is a {}: check feeds and compares tensors only",
            v.name, v.dtype
        )));
    }
    let mut sets = Vec::new();
    for d in dirs {
        let numbered = |prefix: &str| -> Vec<PathBuf> {
            (0..)
                .map(|i| d.join(format!("{prefix}_{i}.pb")))
                .take_while(|p| p.is_file())
                .collect()
        };
        let mut inputs = Vec::new();
        for (i, f) in numbered("input").iter().enumerate() {
            let (name, t) = read_tensor_file(f)?.remove(0);
            let name = info
                .inputs
                .get(i)
                .map(|s| s.name.clone())
                .or(name)
                .unwrap_or_default();
            inputs.push((name, t));
        }
        if inputs.len() != info.inputs.len() {
            return Err(FileError::new(
                &d,
                format!(
                    "{} input files for {} model inputs",
                    inputs.len(),
                    info.inputs.len()
                ),
            )
            .into());
        }
        let mut expected = Vec::new();
        for (i, f) in numbered("output").iter().enumerate() {
            let (name, t) = read_tensor_file(f)?.remove(0);
            let name = info
                .outputs
                .get(i)
                .map(|s| s.name.clone())
                .or(name)
                .unwrap_or_default();
            expected.push((name, t));
        }
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        sets.push(DataSet {
            name,
            inputs,
            expected: (!expected.is_empty()).then_some(expected),
        });
    }
    Ok(sets)
}

fn is_tensor_type(dtype: &str) -> bool {
    DType::from_name(dtype).is_some()
}

/// Integer inputs used as indices into a weight (Gather, embeddings) stay within its first axis.
fn index_range(info: &ModelInfo, input: &str) -> Option<(f64, f64)> {
    info.nodes
        .iter()
        .filter(|n| n.op_type == "Gather" && n.inputs.get(1).is_some_and(|i| i == input))
        .find_map(|n| {
            let data = n.inputs.first()?;
            let t = info.tensors.iter().find(|t| &t.name == data)?;
            let rows = *t.shape.first()?;
            (rows > 0).then(|| (0.0, (rows - 1) as f64))
        })
}

fn synthetic(
    info: &ModelInfo,
    opts: &InputOptions,
    notes: &mut Vec<String>,
) -> Result<Vec<Named>, InputError> {
    let mut rng = Rng::new(opts.seed);
    let mut defaulted: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for spec in &info.inputs {
        if !spec.shape_known {
            return Err(InputError::model(format!(
                "input `{}` has no declared shape: give it with --input {}=FILE",
                spec.name, spec.name
            )));
        }
        let shape: Vec<usize> = spec
            .shape
            .iter()
            .map(|d| match d {
                Dim::Known(n) if *n >= 0 => *n as usize,
                Dim::Known(_) => 1,
                Dim::Symbolic(s) => match opts.dims.iter().find(|a| &a.0 == s) {
                    Some(a) => a.1,
                    None => {
                        defaulted.insert(s.clone(), 1);
                        1
                    }
                },
            })
            .collect();
        let dtype = DType::from_name(&spec.dtype).ok_or_else(|| {
            InputError::model(format!(
                "input `{}` is a {}; give it with --input {}=FILE",
                spec.name, spec.dtype, spec.name
            ))
        })?;
        let user = opts
            .ranges
            .iter()
            .rev()
            .find(|r| r.name.as_deref() == Some(&spec.name))
            .or_else(|| opts.ranges.iter().rev().find(|r| r.name.is_none()));
        let float = dtype.is_plain_float();
        let (lo, hi, why) = match user {
            Some(r) => (r.lo, r.hi, "given"),
            None if float => (-1.0, 1.0, "default"),
            None if dtype == DType::Bool => (0.0, 1.0, "default"),
            None => match index_range(info, &spec.name) {
                Some((lo, hi)) => (lo, hi, "index range of the Gather it feeds"),
                None => (0.0, 3.0, "default for integers"),
            },
        };
        let t = tensor::synthetic(dtype, shape, lo, hi, &mut rng)
            .map_err(|e| InputError::model(format!("input `{}`: {e}", spec.name)))?;
        if dtype != DType::Bool && dtype != DType::String {
            notes.push(format!(
                "input `{}` {}: uniform in [{lo}, {hi}] ({why}, seed {})",
                spec.name,
                t.describe(),
                opts.seed
            ));
        }
        out.push((spec.name.clone(), t));
    }
    if !defaulted.is_empty() {
        let list: Vec<String> = defaulted.keys().map(|k| format!("{k}=1")).collect();
        notes.push(format!(
            "symbolic dimensions defaulted (set with --dim): {}",
            list.join(", ")
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod torchscript_tests {
    use super::*;

    #[test]
    fn forward_params_skip_self_and_keep_types() {
        let p = forward_params("forward(self: __torch__.Net, x: Tensor, mask: Optional[Tensor]=None, n: int=3) -> Tuple[Tensor, Tensor]").unwrap();
        let names: Vec<(&str, &str)> = p.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        assert_eq!(
            names,
            [("x", "Tensor"), ("mask", "Optional[Tensor]"), ("n", "int")]
        );
        assert_eq!(forward_params("forward(self) -> Tensor").unwrap(), vec![]);
    }

    #[test]
    fn shape_args_parse_and_refuse() {
        let s: ShapeArg = "x=1x3x224x224".parse().unwrap();
        assert_eq!(
            (s.name.as_str(), s.shape.as_slice(), s.dtype.as_deref()),
            ("x", &[1, 3, 224, 224][..], None)
        );
        let s: ShapeArg = "ids=2x7:int64".parse().unwrap();
        assert_eq!(
            (s.shape.as_slice(), s.dtype.as_deref()),
            (&[2, 7][..], Some("int64"))
        );
        assert!("x=1xq".parse::<ShapeArg>().is_err());
        assert!("x=1x2:float99".parse::<ShapeArg>().is_err());
        assert!("x".parse::<ShapeArg>().is_err());
    }
}
