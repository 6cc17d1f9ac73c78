//! Model readers: one per format, each producing the format-neutral [`ModelInfo`].
//!
//! A reader looks at the bytes, never at the extension, and never executes anything from the file.
//! Readers map files instead of reading them, and never touch weight bytes: the framing of every
//! format tells how long the weights are, which is all `inspect` needs. This is what keeps
//! `inspect` of a multi-gigabyte file in the milliseconds and in a few megabytes of memory.

pub mod classify;
pub mod dtype;
pub mod gguf;
pub mod hf;
pub mod onnx;
pub mod pickle;
pub mod pytorch;
pub mod safetensors;
pub mod trivial;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ModelError;

/// File formats, as named in the JSON contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An ONNX `ModelProto` (`onnx`).
    Onnx,
    /// A safetensors file, or several shards read as one model (`safetensors`).
    Safetensors,
    /// A `torch.save` checkpoint, zip or legacy pickle: weights only (`pytorch`).
    Pytorch,
    /// A `torch.jit.save` archive, code and weights (`torchscript`).
    Torchscript,
    /// A GGUF file, llama.cpp's format (`gguf`).
    Gguf,
}

impl Format {
    /// The contract's name of the format (`"onnx"`, `"torchscript"`, …), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Onnx => "onnx",
            Format::Safetensors => "safetensors",
            Format::Pytorch => "pytorch",
            Format::Torchscript => "torchscript",
            Format::Gguf => "gguf",
        }
    }
}

/// One dimension of a shape: known size or symbolic name (`"?"` when neither is given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed size, written as a JSON integer.
    Known(i64),
    /// A named size (`batch`, `seq_len`), or `"?"`, written as a JSON string.
    Symbolic(String),
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Symbolic(s) => f.write_str(s),
        }
    }
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueSpec {
    /// Name as the graph spells it (what a back end's inputs and outputs are keyed by).
    pub name: String,
    /// Element type by its contract name (`float32`, `int64`), or a composite such as
    /// `sequence<float32>` for values that are not tensors.
    pub dtype: String,
    /// Dimensions, outermost first.
    pub shape: Vec<Dim>,
    /// False when the file does not give a rank at all (then `shape` is empty).
    #[serde(skip_serializing_if = "is_true")]
    pub shape_known: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One stored tensor (initializer, state_dict entry, safetensors/GGUF tensor).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSummary {
    /// Name as stored (initializer name, state_dict key, safetensors/GGUF tensor name).
    pub name: String,
    /// Element type by its contract name (`float32`, `bfloat16`, a GGUF quant name as `q4_0`).
    pub dtype: String,
    /// Dimensions, outermost first; empty for a scalar.
    pub shape: Vec<u64>,
    /// Bytes the tensor occupies in the file (0 when it lives in external data that is absent).
    pub bytes: u64,
}

impl TensorSummary {
    /// Number of values: the product of `shape` (1 for a scalar).
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// Architecture class, `architecture.class` in the JSON (`mlp`, `transformer-decoder`, …); see
/// [`classify`] for when each applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchClass {
    /// Dense layers and activations only (or only 2-D weights with 1-D biases).
    Mlp,
    /// Convolutions (operators, or 4-D kernels).
    Cnn,
    /// Recurrent layers (`LSTM`, `GRU`, `RNN`, or their weights).
    Rnn,
    /// Attention with no sign of decoding (no causal mask, key/value cache or logits).
    TransformerEncoder,
    /// Attention with a causal mask, a key/value cache or a logits output (LLMs).
    TransformerDecoder,
    /// None of the above recognised; the reasons say why.
    Unknown,
}

impl ArchClass {
    /// The contract's name of the class (`"transformer-encoder"`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchClass::Mlp => "mlp",
            ArchClass::Cnn => "cnn",
            ArchClass::Rnn => "rnn",
            ArchClass::TransformerEncoder => "transformer-encoder",
            ArchClass::TransformerDecoder => "transformer-decoder",
            ArchClass::Unknown => "unknown",
        }
    }
}

/// What kind of network the model is (`architecture` in the JSON), from [`classify`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Architecture {
    /// The class decided.
    pub class: ArchClass,
    /// The evidence behind it, in words (`"convolutions: Conv"`, `"logits output"`).
    pub reasons: Vec<String>,
}

/// `safety.verdict` in the JSON: whether loading the file with its usual loader is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A pickle that reaches nothing dangerous (its [`Risk`] is `none` or `suspicious`).
    Safe,
    /// A pickle that reaches a dangerous function, or a model whose external data lies outside
    /// its directory.
    Unsafe,
    /// A format that holds no code (ONNX, safetensors, GGUF) and refers to nothing outside.
    NotApplicable,
}

/// How much a serialization could do when loaded by its usual loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Data only, or only known tensor-rebuild functions.
    None,
    /// Imports something that is not a known tensor-rebuild function (Python would import and
    /// call it): not known to run code, but `torch.load(weights_only=True)` refuses it.
    Suspicious,
    /// Reaches a function that can run code or touch the system.
    Dangerous,
}

/// The `safety` object of the JSON: what loading the file could do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Safety {
    /// Safe, unsafe, or not applicable.
    pub verdict: Verdict,
    /// How much the serialization could do (finer than the verdict for pickles).
    pub risk: Risk,
    /// One sentence per thing found (a dangerous global, external data outside the directory).
    pub findings: Vec<String>,
}

impl Safety {
    /// The verdict of formats that hold no code: not applicable, no risk, no findings.
    pub fn not_applicable() -> Safety {
        Safety {
            verdict: Verdict::NotApplicable,
            risk: Risk::None,
            findings: Vec::new(),
        }
    }
}

/// A file the model refers to (external data, shards).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileRef {
    /// Location as the model writes it (relative to the model's directory).
    pub file: String,
    /// Whether that file is there (false, too, when it lies outside and was not looked at).
    pub exists: bool,
    /// Set when the file lies outside the model's directory (why): it was not opened, and every
    /// command but `inspect` refuses the model ([`refuse_outside`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside: Option<String>,
}

/// Facts that only some formats have; absent ones are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Details {
    /// ONNX `ir_version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ir_version: Option<i64>,
    /// ONNX `producer_name` and `producer_version`, joined by a space (`pytorch 2.3.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// ONNX main graph's name, when not empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_name: Option<String>,
    /// ONNX nodes in all: main graph, subgraphs and local functions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_count: Option<u64>,
    /// Operator domains outside the standard ONNX ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_domains: Vec<String>,
    /// ONNX external data files, one per distinct location.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_data: Vec<FileRef>,
    /// Files this model is made of, when more than the one given (shards, config).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// GGUF format version from the header (2 or 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gguf_version: Option<u32>,
    /// For PyTorch checkpoints whose tensors sit under a key (`state_dict`, `model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dict_key: Option<String>,
    /// The TorchScript `forward` signature, from the archive's code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Key sizes from `config.json` or GGUF metadata (hidden size, layers, vocabulary, context).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sizes: BTreeMap<String, u64>,
    /// Tensor counts by dtype.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dtypes: BTreeMap<String, u64>,
}

/// Everything `inspect` knows about a model; the JSON contract of DESIGN.md plus extra fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The path as given on the command line (a file or a model directory).
    pub path: String,
    /// What the bytes turned out to be.
    pub format: Format,
    /// Graph inputs the caller feeds (ONNX inputs that are initializers left out); empty for
    /// weights-only files.
    pub inputs: Vec<ValueSpec>,
    /// Graph outputs; empty for weights-only files.
    pub outputs: Vec<ValueSpec>,
    /// Operator counts keyed `OpType` or `domain::OpType` ([`onnx::op_key`]), subgraphs included.
    pub operators: BTreeMap<String, u64>,
    /// ONNX opset version by domain (`ai.onnx` for the default one).
    pub opsets: BTreeMap<String, i64>,
    /// Stored tensors: ONNX initializers (Constant nodes' tensors included) or the file's tensors.
    pub tensor_count: u64,
    /// Elements of all stored tensors, summed.
    pub parameters: u64,
    /// Bytes of all stored tensors, summed (as stored: quantized GGUF tensors count their blocks).
    pub weight_bytes: u64,
    /// ONNX `metadata_props`, safetensors `__metadata__`, GGUF key/values (as strings).
    pub metadata: BTreeMap<String, String>,
    /// Architecture class and why.
    pub architecture: Architecture,
    /// What loading the file could do.
    pub safety: Safety,
    /// Format-specific facts, flattened into the JSON object.
    #[serde(flatten)]
    pub details: Details,
    /// Every stored tensor, in file order.
    pub tensors: Vec<TensorSummary>,
    /// The ONNX graph's nodes (main graph and subgraphs), for classification and later stages.
    #[serde(skip)]
    pub nodes: Vec<NodeSummary>,
}

/// One ONNX node, without its attributes' payloads.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSummary {
    /// Node name; often empty (see [`NodeSummary::display_name`]).
    pub name: String,
    /// Operator as the file spells it (`Gemm`).
    pub op_type: String,
    /// Operator domain as written: empty (or `ai.onnx`) for the standard operators.
    pub domain: String,
    /// Names of the values it reads, in order (empty for an omitted optional input).
    pub inputs: Vec<String>,
    /// Names of the values it writes, in order.
    pub outputs: Vec<String>,
    /// Depth of the graph it sits in: 0 for the main graph, 1 for a subgraph of it, …
    pub depth: u32,
}

impl NodeSummary {
    /// How messages name the node: see [`node_display_name`].
    pub fn display_name(&self) -> String {
        node_display_name(&self.name, &self.outputs)
    }
}

/// How messages name an ONNX node: its name, or its first output when it has none (exporters
/// often leave names empty; outputs are unique in a graph).
pub fn node_display_name(name: &str, outputs: &[String]) -> String {
    if name.is_empty() {
        outputs.first().cloned().unwrap_or_default()
    } else {
        name.to_string()
    }
}

impl ModelInfo {
    pub(crate) fn new(path: &Path, format: Format) -> ModelInfo {
        ModelInfo {
            path: path.display().to_string(),
            format,
            inputs: Vec::new(),
            outputs: Vec::new(),
            operators: BTreeMap::new(),
            opsets: BTreeMap::new(),
            tensor_count: 0,
            parameters: 0,
            weight_bytes: 0,
            metadata: BTreeMap::new(),
            architecture: Architecture {
                class: ArchClass::Unknown,
                reasons: Vec::new(),
            },
            safety: Safety::not_applicable(),
            details: Details::default(),
            tensors: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// Adds stored tensors and recomputes the totals.
    pub(crate) fn set_tensors(&mut self, tensors: Vec<TensorSummary>) {
        self.tensor_count = tensors.len() as u64;
        self.parameters = tensors
            .iter()
            .map(|t| t.elements())
            .fold(0u64, u64::saturating_add);
        self.weight_bytes = tensors
            .iter()
            .map(|t| t.bytes)
            .fold(0u64, u64::saturating_add);
        self.details.dtypes.clear();
        for t in &tensors {
            *self.details.dtypes.entry(t.dtype.clone()).or_default() += 1;
        }
        self.tensors = tensors;
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A protobuf that starts with a `ModelProto` field (the ONNX reader confirms it).
    Onnx,
    /// An 8-byte header length followed by `{`.
    Safetensors,
    /// A zip archive (`torch.save` since PyTorch 1.6, TorchScript).
    Zip,
    /// A pickle: legacy `torch.save` (with its magic number) or any pickle of protocol 2 to 5.
    LegacyPickle,
    /// `GGUF` magic.
    Gguf,
    /// JSON text: a sharded safetensors index (`*.safetensors.index.json`).
    SafetensorsIndex,
    /// A Git LFS pointer in place of the model (`git lfs pull` was not run).
    LfsPointer,
    /// No bytes at all.
    Empty,
    /// None of the above.
    Unknown,
}

/// Recognises a format from the first bytes of a file (at least 16 are needed when the file has
/// them). ONNX has no magic number: a protobuf whose first field is `ir_version` (tag 0x08) or
/// another ModelProto field is taken as ONNX, and the reader confirms it.
pub fn sniff(head: &[u8]) -> Sniffed {
    if head.is_empty() {
        return Sniffed::Empty;
    }
    if head.starts_with(b"version https://git-lfs") {
        return Sniffed::LfsPointer;
    }
    if head.starts_with(b"GGUF") {
        return Sniffed::Gguf;
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Sniffed::Zip;
    }
    // Legacy torch.save: a protocol-2 pickle of the magic number 0x1950a86a20f9469cfc6c (LONG1).
    if head.starts_with(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19") {
        return Sniffed::LegacyPickle;
    }
    if head.len() >= 9 && head[8] == b'{' {
        let n = u64::from_le_bytes(head[..8].try_into().unwrap());
        if n >= 2 {
            return Sniffed::Safetensors;
        }
    }
    let text = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| head[i]);
    if text == Some(b'{') {
        return Sniffed::SafetensorsIndex;
    }
    if head[0] == 0x80 && head.len() > 1 && (2..=5).contains(&head[1]) {
        return Sniffed::LegacyPickle;
    }
    // ModelProto fields that exporters write first: ir_version (1, varint), producer_name (2),
    // graph (7), opset_import (8).
    if matches!(head[0], 0x08 | 0x12 | 0x3a | 0x42) {
        return Sniffed::Onnx;
    }
    Sniffed::Unknown
}

/// Reads a model file, a sharded safetensors index, or a model directory.
pub fn inspect(path: &Path) -> Result<ModelInfo, ModelError> {
    let meta = std::fs::metadata(path).map_err(|e| ModelError::io(path, &e))?;
    if meta.is_dir() {
        return hf::inspect_dir(path);
    }
    let head = read_head(path)?;
    let mut info = match sniff(&head) {
        Sniffed::Onnx => onnx::inspect(path)?,
        Sniffed::Safetensors => safetensors::inspect(path)?,
        Sniffed::SafetensorsIndex => safetensors::inspect_index(path)?,
        Sniffed::Zip => pytorch::inspect_zip(path)?,
        Sniffed::LegacyPickle => pytorch::inspect_legacy(path)?,
        Sniffed::Gguf => gguf::inspect(path)?,
        Sniffed::Empty => return Err(ModelError::new(path, "file is empty")),
        Sniffed::LfsPointer => {
            return Err(ModelError::new(
                path,
                "this is a Git LFS pointer, not the model: run `git lfs pull`",
            ))
        }
        Sniffed::Unknown => {
            return Err(ModelError::new(
                path,
                format!(
                    "not a model format cargo-infer knows (ONNX, safetensors, PyTorch, GGUF); first bytes: {}",
                    hex_preview(&head)
                ),
            ))
        }
    };
    classify::classify(&mut info, None);
    Ok(info)
}

pub(crate) fn read_head(path: &Path) -> Result<Vec<u8>, ModelError> {
    let mut f = File::open(path).map_err(|e| ModelError::io(path, &e))?;
    let mut head = Vec::with_capacity(64);
    f.by_ref()
        .take(64)
        .read_to_end(&mut head)
        .map_err(|e| ModelError::io(path, &e))?;
    Ok(head)
}

fn hex_preview(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A model file's bytes: read into memory when small, mapped when large.
pub(crate) enum FileBytes {
    Read(Vec<u8>),
    Mapped(memmap2::Mmap),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Read(v) => v,
            FileBytes::Mapped(m) => m,
        }
    }
}

/// Files below this size are read: mapping and unmapping costs more than copying them (and an
/// unmap interrupts every core the process runs threads on, e.g. a runtime's thread pool).
const MAP_THRESHOLD: u64 = 4 << 20;

/// A model file's bytes: read when below [`MAP_THRESHOLD`], else mapped read-only. Mapping lets
/// the kernel bring in only the pages a reader touches: skipped weights never become resident.
pub(crate) fn map_file(path: &Path) -> Result<FileBytes, ModelError> {
    let mut f = File::open(path).map_err(|e| ModelError::io(path, &e))?;
    let len = f.metadata().map_err(|e| ModelError::io(path, &e))?.len();
    if len < MAP_THRESHOLD {
        let mut v = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(&mut f, &mut v).map_err(|e| ModelError::io(path, &e))?;
        return Ok(FileBytes::Read(v));
    }
    // SAFETY: the map is read-only and private to this process; if another process truncates
    // the file while we read it, we may see a SIGBUS, as with any mapped read (ripgrep accepts
    // the same trade-off).
    unsafe { memmap2::Mmap::map(&f) }
        .map(FileBytes::Mapped)
        .map_err(|e| ModelError::io(path, &e))
}

/// Product of dimensions, or an error when it cannot be a real tensor.
pub(crate) fn checked_numel(path: &Path, name: &str, dims: &[u64]) -> Result<u64, ModelError> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            ModelError::new(
                path,
                format!(
                    "tensor `{name}` declares an absurd shape {dims:?} (more than 2^53 elements)"
                ),
            )
        })
}

/// No real tensor has more elements than an f64 counts exactly.
pub(crate) const MAX_ELEMENTS: u64 = 1 << 53;

/// A file a model names (ONNX external data, a shard of an index) that would leave the model's
/// directory: why, in a few words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    /// The location as the model writes it.
    pub location: String,
    /// Why it leaves, in a few words ("an absolute path", "a symbolic link to /etc/passwd").
    pub why: String,
}

impl std::fmt::Display for Outside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` lies outside the model's directory ({})",
            self.location, self.why
        )
    }
}

/// Symbolic links followed at most while resolving one location (as Linux's `ELOOP`).
const MAX_LINK_HOPS: u32 = 40;

/// THE containment rule for files a model refers to — every reader, `convert`, `emit` and the
/// scaffold open external data only through the path this returns (as the ONNX checker does since
/// CVE-2024-27318). `location` is taken relative to the directory of `model`; it is refused when it
/// is absolute or has a `..` component (decided from the text alone: nothing is touched), or when a
/// symbolic link on the way leads outside that directory (links inside the directory are read with
/// `lstat`/`readlink`; a target outside it is never stat'ed or opened). The path returned is the
/// resolved one, free of symbolic links.
pub fn contained(model: &Path, location: &str) -> Result<PathBuf, Outside> {
    use std::path::Component;
    let outside = |why: String| Outside {
        location: location.to_string(),
        why,
    };
    let rel = Path::new(location);
    for c in rel.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => {
                return Err(outside("an absolute path".into()))
            }
            Component::ParentDir => return Err(outside("it climbs out with `..`".into())),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    let dir = match model.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A directory that cannot be resolved holds nothing to open: the caller's open fails.
    let Ok(root) = std::fs::canonicalize(dir) else {
        return Ok(dir.join(rel));
    };
    let mut inside: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: std::collections::VecDeque<std::ffi::OsString> = rel
        .components()
        .map(|c| c.as_os_str().to_os_string())
        .collect();
    let mut hops = 0u32;
    while let Some(part) = todo.pop_front() {
        match Path::new(&part).components().next() {
            None | Some(Component::CurDir) => continue,
            Some(Component::ParentDir) => {
                if inside.pop().is_none() {
                    return Err(outside("a symbolic link on the way leads out of it".into()));
                }
                continue;
            }
            Some(Component::RootDir | Component::Prefix(_)) => {
                return Err(outside("a symbolic link on the way leads out of it".into()))
            }
            Some(Component::Normal(_)) => {}
        }
        let here: PathBuf = root.join(inside.iter().collect::<PathBuf>()).join(&part);
        let is_link = std::fs::symlink_metadata(&here).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            inside.push(part);
            continue;
        }
        hops += 1;
        if hops > MAX_LINK_HOPS {
            return Err(outside(format!(
                "more than {MAX_LINK_HOPS} symbolic links on the way"
            )));
        }
        let target = std::fs::read_link(&here)
            .map_err(|e| outside(format!("unreadable symbolic link: {e}")))?;
        let target = if target.is_absolute() {
            // An absolute target may still point inside; anything else leaves.
            match target.strip_prefix(&root) {
                Ok(t) => {
                    inside.clear();
                    t.to_path_buf()
                }
                Err(_) => return Err(outside(format!("a symbolic link to {}", target.display()))),
            }
        } else {
            target
        };
        for c in target.components().rev() {
            todo.push_front(c.as_os_str().to_os_string());
        }
    }
    Ok(root.join(inside.iter().collect::<PathBuf>()))
}

/// The gate of every command that reads a model's data (`check`, `convert`, `emit`, `init`, `add`):
/// a model that refers to a file outside its directory is refused, before anything reads it.
/// (`inspect` reports it instead, as `safety.verdict = "unsafe"`.)
pub fn refuse_outside(info: &ModelInfo) -> Result<(), ModelError> {
    match info.details.external_data.iter().find(|f| f.outside.is_some()) {
        None => Ok(()),
        Some(f) => Err(ModelError::new(
            Path::new(&info.path),
            format!(
                "external data `{}` lies outside the model's directory ({}); refused without reading it",
                f.file,
                f.outside.as_deref().unwrap_or("")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_that_leave_are_refused_from_their_text_alone() {
        // The directory does not exist: nothing is looked up for these.
        let m = Path::new("/nonexistent-cargo-infer/models/m.onnx");
        for loc in [
            "../x.bin",
            "/etc/passwd",
            "a/../../x.bin",
            "a/../b.bin",
            "./..",
        ] {
            assert!(contained(m, loc).is_err(), "{loc}");
        }
        for loc in ["w.bin", "./w.bin", "sub/w.bin", "w..bin"] {
            assert!(contained(m, loc).is_ok(), "{loc}");
        }
    }
}
