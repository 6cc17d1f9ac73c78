//! PyTorch files: `torch.save` zip archives, the legacy (pre-1.6) pickle stream, and TorchScript
//! archives. The pickles are read by [`super::pickle`], which executes nothing; tensors are found
//! by their rebuild calls and measured against the storages the archive holds.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use super::dtype::{self, DType};
use super::pickle::{self, Object, Value};
use super::{Format, ModelInfo, Risk, Safety, TensorSummary, Verdict};
use crate::error::ModelError;
use crate::tensor::HostTensor;

/// The largest pickle we read into memory from a zip entry; real ones are a few MB at most.
const MAX_PICKLE: u64 = 256 * 1024 * 1024;

/// The most an archive's pickles may inflate to, all together (TorchScript archives hold many).
const MAX_PICKLES_TOTAL: u64 = 1024 * 1024 * 1024;

/// Deflate's largest expansion: a 258-byte copy coded in two bits (one-bit dynamic Huffman codes
/// for its length and distance). An entry that declares more than this many bytes per compressed
/// byte (plus a little for tiny streams) lies about its size: it is refused before anything is
/// inflated.
const MAX_INFLATE_RATIO: u64 = 1032;
const INFLATE_SLACK: u64 = 64 * 1024;

/// A tensor found in a pickle, before it is checked against its storage.
#[derive(Debug, Clone)]
pub struct FoundTensor {
    /// Dotted dict keys and list indices on the way to the tensor (`state_dict.fc1.weight`).
    pub name: String,
    /// Element type named as [`dtype::torch`] names it (`float32`), or `unknown` for a storage
    /// type it does not know.
    pub dtype: String,
    /// Bytes of one element (1 when the dtype is `unknown`).
    pub elem_bytes: u64,
    /// Dimensions, as the rebuild call's `size` argument gives them.
    pub shape: Vec<u64>,
    /// The storage's key in its persistent id: the archive's entry `data/<key>`, or the legacy
    /// stream's storage of that key.
    pub storage_key: String,
    /// First element of the storage the tensor uses, in elements, as the pickle declares it.
    pub storage_offset: u64,
    /// Elements the storage has, as the pickle declares them (`None` when the id omits it).
    pub storage_numel: Option<u64>,
    /// Stride of each dimension, in elements; empty when the rebuild call gives none.
    pub stride: Vec<u64>,
}

/// Tensors and plain values found by walking a pickle's value tree.
#[derive(Default, Debug)]
pub struct Walked {
    /// Tensors in the order the walk met them, not yet measured against their storages.
    pub tensors: Vec<FoundTensor>,
    /// Scalars and strings next to the tensors (`epoch`, `arch`), by dotted key.
    pub scalars: BTreeMap<String, String>,
}

/// Walks a value tree; names are the dotted dict keys (and list indices) on the way to a tensor.
pub fn walk(value: &Value) -> Walked {
    let mut w = Walker {
        out: Walked::default(),
        seen: HashSet::new(),
        budget: 1_000_000,
    };
    w.value(value, "", 0);
    w.out
}

struct Walker {
    out: Walked,
    seen: HashSet<usize>,
    budget: u64,
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

impl Walker {
    fn first_visit<T>(&mut self, rc: &Rc<T>) -> bool {
        self.seen.insert(Rc::as_ptr(rc) as *const () as usize)
    }

    fn value(&mut self, v: &Value, name: &str, depth: u32) {
        if depth > 64 || self.budget == 0 {
            return;
        }
        self.budget -= 1;
        match v {
            Value::Dict(d) => {
                if !self.first_visit(d) {
                    return;
                }
                for (k, v) in d.borrow().iter() {
                    self.entry(k, v, name, depth);
                }
            }
            Value::List(l) => {
                if !self.first_visit(l) {
                    return;
                }
                for (i, v) in l.borrow().iter().enumerate() {
                    self.value(v, &join(name, &i.to_string()), depth + 1);
                }
            }
            Value::Tuple(t) => {
                for (i, v) in t.iter().enumerate() {
                    self.value(v, &join(name, &i.to_string()), depth + 1);
                }
            }
            Value::Object(o) => {
                if !self.first_visit(o) {
                    return;
                }
                let o = o.borrow();
                if let Some(t) = self.tensor(&o, name) {
                    self.out.tensors.push(t);
                    return;
                }
                for (k, v) in &o.items {
                    self.entry(k, v, name, depth);
                }
                for (i, v) in o.appended.iter().enumerate() {
                    self.value(v, &join(name, &i.to_string()), depth + 1);
                }
                // A module or plain object: its attributes are in the BUILD state.
                if let Some(state) = &o.state {
                    self.value(state, name, depth + 1);
                }
            }
            // `_metadata` is torch's own bookkeeping (state_dict format versions), not the author's.
            Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_)
                if !name.is_empty()
                    && !name.starts_with("_metadata")
                    && !name.contains("._metadata") =>
            {
                if let Some(t) = v.key_text() {
                    if self.out.scalars.len() < 256 {
                        self.out
                            .scalars
                            .insert(name.to_string(), t.chars().take(200).collect());
                    }
                }
            }
            _ => {}
        }
    }

    fn entry(&mut self, k: &Value, v: &Value, name: &str, depth: u32) {
        let key = k.key_text().unwrap_or_else(|| "?".to_string());
        self.value(v, &join(name, &key), depth + 1);
    }

    /// Recognises the rebuild calls that make a tensor.
    fn tensor(&mut self, o: &Object, name: &str) -> Option<FoundTensor> {
        let g = o.callable.as_global()?;
        let args = o.args.items().unwrap_or_default();
        match (g.module.as_str(), g.name.as_str()) {
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor" | "_rebuild_tensor_v3") => {
                rebuild_tensor(&args, name)
            }
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state")
            | ("torch._tensor", "_rebuild_from_type_v2")
            // torch 0.4 pickled a Parameter as a call of the class on (tensor, requires_grad).
            | ("torch.nn.parameter", "Parameter") => {
                // The tensor is the first argument (parameter) or inside the args tuple.
                let inner = match g.name.as_str() {
                    "_rebuild_from_type_v2" => args.get(2)?.items()?.first()?.clone(),
                    _ => args.first()?.clone(),
                };
                match &inner {
                    Value::Object(o) => self.tensor(&o.borrow(), name),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, …)` with the storage a persistent
/// id `('storage', StorageType, key, location, numel)`.
fn rebuild_tensor(args: &[Value], name: &str) -> Option<FoundTensor> {
    let Value::Persistent(pid) = args.first()? else {
        return None;
    };
    let pid = pid.items()?;
    if pid.first()?.as_str()? != "storage" {
        return None;
    }
    let storage_type = pid.get(1)?;
    let type_name = match storage_type {
        Value::Global(g) => g.name.clone(),
        Value::Str(s) => s.to_string(),
        _ => return None,
    };
    // torch ≥ 2: ('storage', UntypedStorage-free dtype) — handled by the same table.
    let (dt, elem) = dtype::torch(&type_name).unwrap_or(("unknown", 1));
    let storage_key = pid.get(2)?.key_text()?;
    let storage_numel = pid
        .get(4)
        .and_then(Value::as_int)
        .and_then(|n| u64::try_from(n).ok());
    let storage_offset = u64::try_from(args.get(1)?.as_int()?).ok()?;
    let shape = args
        .get(2)?
        .items()?
        .iter()
        .map(|d| d.as_int().and_then(|d| u64::try_from(d).ok()))
        .collect::<Option<Vec<u64>>>()?;
    let stride = args
        .get(3)
        .and_then(Value::items)
        .map(|s| {
            s.iter()
                .filter_map(|d| d.as_int().and_then(|d| u64::try_from(d).ok()))
                .collect()
        })
        .unwrap_or_default();
    Some(FoundTensor {
        stride,
        name: name.to_string(),
        dtype: dt.to_string(),
        elem_bytes: elem,
        shape,
        storage_key,
        storage_offset,
        storage_numel,
    })
}

/// Checks found tensors against the storages' real sizes, and makes the summaries.
/// `storage_bytes` maps a storage key to the bytes the file holds for it.
fn measure(
    path: &Path,
    found: &[FoundTensor],
    storage_bytes: &HashMap<String, u64>,
) -> Result<(Vec<TensorSummary>, u64), ModelError> {
    let mut tensors = Vec::with_capacity(found.len());
    let mut used: HashMap<&str, u64> = HashMap::new();
    for t in found {
        let numel = super::checked_numel(path, &t.name, &t.shape)?;
        let have = *storage_bytes.get(&t.storage_key).ok_or_else(|| {
            ModelError::new(
                path,
                format!(
                    "tensor `{}` refers to storage `{}`, which the file lacks",
                    t.name, t.storage_key
                ),
            )
        })?;
        let need = t
            .storage_offset
            .saturating_add(numel)
            .saturating_mul(t.elem_bytes);
        if numel > 0 && need > have {
            return Err(ModelError::new(
                path,
                format!(
                    "tensor `{}` of shape {:?} needs {need} bytes of storage `{}`, which has {have} (truncated or corrupt)",
                    t.name, t.shape, t.storage_key
                ),
            ));
        }
        used.insert(&t.storage_key, have);
        tensors.push(TensorSummary {
            name: t.name.clone(),
            dtype: t.dtype.clone(),
            shape: t.shape.clone(),
            bytes: numel.saturating_mul(t.elem_bytes),
        });
    }
    Ok((tensors, used.values().sum()))
}

fn safety_of(risk: Risk, findings: Vec<String>) -> Safety {
    let verdict = if risk == Risk::Dangerous {
        Verdict::Unsafe
    } else {
        Verdict::Safe
    };
    Safety {
        verdict,
        risk,
        findings,
    }
}

/// A zip archive written by `torch.save` (a state_dict or any pickled object) or
/// `torch.jit.save` (TorchScript), opened: its pickles read (never run) and judged.
struct ZipCheckpoint {
    zip: zip::ZipArchive<File>,
    names: Vec<String>,
    root: String,
    torchscript: bool,
    storage_bytes: HashMap<String, u64>,
    walked: Walked,
    risk: Risk,
    findings: Vec<String>,
}

fn open_zip(path: &Path) -> Result<ZipCheckpoint, ModelError> {
    let (mut zip, file_len) = open_archive(path)?;
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| ModelError::new(path, format!("zip entry names unreadable: {e}")))?;
    let data_pkl = names
        .iter()
        .filter(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .min_by_key(|n| n.len())
        .cloned()
        .ok_or_else(|| {
            ModelError::new(
                path,
                "zip archive without a data.pkl: not a PyTorch checkpoint",
            )
        })?;
    let root = data_pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    let torchscript = names.iter().any(|n| n.starts_with(&format!("{root}code/")))
        || names.iter().any(|n| *n == format!("{root}constants.pkl"));
    let storage_bytes = storage_sizes(path, &mut zip, &root, file_len)?;
    let mut c = ZipCheckpoint {
        zip,
        names,
        root,
        torchscript,
        storage_bytes,
        walked: Walked::default(),
        risk: Risk::None,
        findings: Vec::new(),
    };
    let mut inflated = 0u64;
    c.read_pickles(path, &data_pkl, &mut inflated)?;
    c.scan_other_entries(path, &mut inflated)?;
    Ok(c)
}

/// Opens a zip archive, and returns it with the file's length.
fn open_archive(path: &Path) -> Result<(zip::ZipArchive<File>, u64), ModelError> {
    let file = File::open(path).map_err(|e| ModelError::io(path, &e))?;
    let file_len = file.metadata().map_err(|e| ModelError::io(path, &e))?.len();
    // The archive starts at the file's first byte, as torch (miniz) reads it. The zip crate's
    // default guesses a start offset instead, from where the central directory would begin if it
    // ended at the end-of-central-directory record; torch writes a ZIP64 record and locator (76
    // bytes) in between, so whenever a central header happens to begin 76 bytes into the
    // directory (an archive whose first name is 30 bytes long, such as a 21-character root's
    // `data.pkl`) that guess is wrong and every header after it misread.
    let config = zip::read::Config {
        archive_offset: zip::read::ArchiveOffset::Known(0),
    };
    let zip = zip::ZipArchive::with_config(config, file).map_err(|e| {
        ModelError::new(
            path,
            format!("not a readable zip archive (truncated or corrupt): {e}"),
        )
    })?;
    Ok((zip, file_len))
}

/// The declared size of each storage (`{root}data/{key}`) by key, after checking every entry's
/// sizes against the file.
fn storage_sizes(
    path: &Path,
    zip: &mut zip::ZipArchive<File>,
    root: &str,
    file_len: u64,
) -> Result<HashMap<String, u64>, ModelError> {
    let mut storage_bytes = HashMap::new();
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| ModelError::new(path, format!("zip entry {i} unreadable: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| ModelError::new(path, format!("zip entry {i}: {e}")))?;
        check_entry_size(path, &entry, &name, file_len)?;
        if let Some(key) = name.strip_prefix(&format!("{root}data/")) {
            storage_bytes.insert(key.to_string(), entry.size());
        }
    }
    Ok(storage_bytes)
}

impl ZipCheckpoint {
    /// Reads and judges every `.pkl` entry, `data_pkl` first; the tensors of `data_pkl` and of
    /// `constants.pkl` are walked. Only `data_pkl` must be a readable pickle.
    fn read_pickles(
        &mut self,
        path: &Path,
        data_pkl: &str,
        inflated: &mut u64,
    ) -> Result<(), ModelError> {
        let mut pickles: Vec<String> = self
            .names
            .iter()
            .filter(|n| n.ends_with(".pkl"))
            .cloned()
            .collect();
        pickles.sort_by_key(|n| (n != data_pkl, n.clone()));
        for name in &pickles {
            let bytes = read_entry(path, &mut self.zip, name, MAX_PICKLE)?;
            count_inflated(path, inflated, &bytes)?;
            let parsed = match pickle::parse(&bytes) {
                Ok(p) => p,
                Err(e) if name == data_pkl => {
                    return Err(ModelError::new(path, format!("{name}: {e}")))
                }
                Err(e) => {
                    self.risk = self.risk.max(Risk::Suspicious);
                    self.findings
                        .push(format!("{name}: not a readable pickle ({e})"));
                    continue;
                }
            };
            self.judge(&parsed, name);
            if name == data_pkl || name.ends_with("constants.pkl") {
                let w = walk(&parsed.value);
                let prefix = if name == data_pkl { "" } else { "constants" };
                for mut t in w.tensors {
                    if !prefix.is_empty() {
                        t.name = join(prefix, &t.name);
                    }
                    self.walked.tensors.push(t);
                }
                if name == data_pkl {
                    self.walked.scalars = w.scalars;
                }
            }
        }
        Ok(())
    }

    /// Scans the other entries that hold a pickle (a nested checkpoint, a payload) too; only the
    /// first two bytes of each are inflated to tell.
    fn scan_other_entries(&mut self, path: &Path, inflated: &mut u64) -> Result<(), ModelError> {
        let data = format!("{}data/", self.root);
        let others: Vec<String> = self
            .names
            .iter()
            .filter(|n| !n.ends_with(".pkl") && !n.starts_with(&data))
            .cloned()
            .collect();
        for name in &others {
            let mut head = Vec::with_capacity(2);
            self.zip
                .by_name(name)
                .map_err(|e| ModelError::new(path, format!("{name}: {e}")))?
                .take(2)
                .read_to_end(&mut head)
                .map_err(|e| {
                    ModelError::new(
                        path,
                        format!("{name} unreadable (truncated or corrupt archive): {e}"),
                    )
                })?;
            if head.len() == 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
                let bytes = read_entry(path, &mut self.zip, name, MAX_PICKLE)?;
                count_inflated(path, inflated, &bytes)?;
                if let Ok(parsed) = pickle::parse(&bytes) {
                    self.judge(&parsed, name);
                }
            }
        }
        Ok(())
    }

    /// Adds what the globals of pickle `name` risk to the archive's findings.
    fn judge(&mut self, parsed: &pickle::Parsed, name: &str) {
        let (r, f) = pickle::findings(parsed, self.torchscript, name);
        self.risk = self.risk.max(r);
        self.findings.extend(f);
    }
}

/// Inspects a `torch.save` or TorchScript zip archive: its tensors measured against the storages
/// it holds, its scalars, the `forward` signature of a TorchScript module, and the pickles' risk.
pub fn inspect_zip(path: &Path) -> Result<ModelInfo, ModelError> {
    let mut c = open_zip(path)?;
    let format = if c.torchscript {
        Format::Torchscript
    } else {
        Format::Pytorch
    };
    let mut info = ModelInfo::new(path, format);
    if c.torchscript {
        info.details.signature = forward_signature(path, &mut c.zip, &c.names, &c.root);
    }
    let (tensors, weight_bytes) = measure(path, &c.walked.tensors, &c.storage_bytes)?;
    finish(&mut info, tensors, weight_bytes, c.walked.scalars);
    info.safety = safety_of(c.risk, c.findings);
    Ok(info)
}

/// Adds a pickle's bytes to what the archive's pickles inflated to so far, within
/// [`MAX_PICKLES_TOTAL`].
fn count_inflated(path: &Path, inflated: &mut u64, bytes: &[u8]) -> Result<(), ModelError> {
    *inflated += bytes.len() as u64;
    if *inflated > MAX_PICKLES_TOTAL {
        return Err(ModelError::new(
            path,
            format!("the archive's pickles inflate to more than {MAX_PICKLES_TOTAL} bytes together (a zip bomb?)"),
        ));
    }
    Ok(())
}

/// Refuses an entry whose sizes cannot be true: compressed bytes past the end of the file, a
/// stored entry whose two sizes differ, or a compressed one declaring more than deflate can expand
/// to (nothing is inflated to find out).
fn check_entry_size<R: Read>(
    path: &Path,
    entry: &zip::read::ZipFile<'_, R>,
    name: &str,
    file_len: u64,
) -> Result<(), ModelError> {
    let (packed, size) = (entry.compressed_size(), entry.size());
    if entry.header_start().saturating_add(packed) > file_len {
        return Err(ModelError::new(
            path,
            format!("{name} claims {packed} bytes past the end of the file (truncated or corrupt archive)"),
        ));
    }
    let stored = entry.compression() == zip::CompressionMethod::Stored;
    if stored && packed != size {
        return Err(ModelError::new(
            path,
            format!("{name} is stored uncompressed in {packed} bytes but claims {size} (corrupt archive)"),
        ));
    }
    if !stored
        && size
            > packed
                .saturating_mul(MAX_INFLATE_RATIO)
                .saturating_add(INFLATE_SLACK)
    {
        return Err(ModelError::new(
            path,
            format!("{name} claims to inflate {packed} bytes to {size}, more than deflate can (a zip bomb or a corrupt archive)"),
        ));
    }
    Ok(())
}

/// An archive entry, refusing one that claims more than `limit` bytes (a pickle). At most
/// `min(declared size, limit)` bytes are inflated: an entry that would inflate past the size it
/// declares is refused there.
fn read_entry(
    path: &Path,
    zip: &mut zip::ZipArchive<File>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, ModelError> {
    read_entry_prefix(path, zip, name, limit, None)
}

/// The first `want` bytes of an entry (all of it when `None`), bounded as [`read_entry`].
fn read_entry_prefix(
    path: &Path,
    zip: &mut zip::ZipArchive<File>,
    name: &str,
    limit: u64,
    want: Option<u64>,
) -> Result<Vec<u8>, ModelError> {
    let entry = zip
        .by_name(name)
        .map_err(|e| ModelError::new(path, format!("{name}: {e}")))?;
    let size = entry.size();
    if size > limit {
        return Err(ModelError::new(
            path,
            format!("{name} claims {size} bytes, more than the {limit} expected"),
        ));
    }
    let unreadable = |e: std::io::Error| {
        ModelError::new(
            path,
            format!("{name} unreadable (truncated or corrupt archive): {e}"),
        )
    };
    let mut bytes = Vec::new();
    match want {
        Some(n) if n < size => {
            bytes
                .try_reserve_exact(n as usize)
                .map_err(|_| ModelError::new(path, format!("{name}: cannot allocate {n} bytes")))?;
            entry.take(n).read_to_end(&mut bytes).map_err(unreadable)?;
        }
        _ => {
            bytes.try_reserve_exact(size as usize).map_err(|_| {
                ModelError::new(path, format!("{name}: cannot allocate {size} bytes"))
            })?;
            // One byte more than declared tells an entry that lies about its size.
            entry
                .take(size.saturating_add(1))
                .read_to_end(&mut bytes)
                .map_err(unreadable)?;
            if bytes.len() as u64 > size {
                return Err(ModelError::new(
                    path,
                    format!("{name} inflates past its declared size of {size} bytes (a zip bomb or a corrupt archive)"),
                ));
            }
        }
    }
    Ok(bytes)
}

/// The key all tensors sit under (`state_dict`, `model`, …), when there is one.
fn nested_key<'a>(names: impl Iterator<Item = &'a str> + Clone) -> Option<String> {
    const NESTED: &[&str] = &[
        "state_dict",
        "model",
        "model_state_dict",
        "module",
        "net",
        "params",
        "weights",
    ];
    let first = names.clone().next()?.split_once('.')?.0.to_string();
    let prefix = format!("{first}.");
    (NESTED.contains(&first.as_str()) && names.clone().all(|n| n.starts_with(&prefix)))
        .then_some(first)
}

fn finish(
    info: &mut ModelInfo,
    mut tensors: Vec<TensorSummary>,
    weight_bytes: u64,
    scalars: BTreeMap<String, String>,
) {
    if let Some(key) = nested_key(tensors.iter().map(|t| t.name.as_str())) {
        for t in &mut tensors {
            t.name = t.name[key.len() + 1..].to_string();
        }
        info.details.state_dict_key = Some(key);
    }
    info.metadata = scalars;
    info.set_tensors(tensors);
    info.weight_bytes = weight_bytes;
}

/// The `forward` signature from the TorchScript archive's code, e.g. `forward(self, x: Tensor) -> Tensor`.
fn forward_signature(
    _path: &Path,
    zip: &mut zip::ZipArchive<File>,
    names: &[String],
    root: &str,
) -> Option<String> {
    let code = names
        .iter()
        .filter(|n| n.starts_with(&format!("{root}code/")) && n.ends_with(".py"))
        .min_by_key(|n| n.len())?;
    let mut text = String::new();
    zip.by_name(code)
        .ok()?
        .take(4 * 1024 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    let start = text.find("def forward(")?;
    let rest = &text[start + 4..];
    let end = rest.find(":\n")?;
    Some(
        rest[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("( ", "(")
            .replace(" )", ")"),
    )
}

/// The legacy `torch.save` stream: magic pickle, protocol pickle, sys-info pickle, the object
/// pickle, the storage-key list pickle, then each storage as an 8-byte element count and its bytes.
/// A legacy stream, opened: its pickles read (never run), and where each storage's bytes are.
enum Legacy {
    /// A plain pickle, not `torch.save` output.
    Plain(pickle::Parsed),
    Torch {
        walked: Walked,
        storages: HashMap<String, (usize, u64)>,
        risk: Risk,
        findings: Vec<String>,
    },
}

fn open_legacy(path: &Path, data: &[u8]) -> Result<Legacy, ModelError> {
    let err = |m: String| ModelError::new(path, m);
    let mut pos = 0usize;
    let mut next = |what: &str| -> Result<pickle::Parsed, ModelError> {
        let p = pickle::parse(&data[pos..]).map_err(|e| err(format!("{what}: {e}")))?;
        pos += p.len;
        Ok(p)
    };
    // A plain pickle is read the same way: its only pickle is where torch.save's magic number is.
    let magic = next("pickle")?;
    let is_torch = matches!(&magic.value, Value::BigInt(b) if b.as_ref() == [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
    if !is_torch {
        return Ok(Legacy::Plain(magic));
    }
    next("protocol version")?;
    next("system info")?;
    let object = next("checkpoint object")?;
    let keys = next("storage keys")?;
    let (risk, findings) = pickle::findings(&object, false, "pickle");
    let walked = walk(&object.value);
    // Storages follow in the order of the key list (not the order tensors name them), each an
    // 8-byte little-endian count of elements and the data. An element's size comes from the
    // storage's type in its persistent id, as torch reads it, whether or not a tensor we recognise
    // wraps the storage.
    let elem_of = storage_elem_sizes(&object.persistent);
    let Some(keys) = keys.value.items() else {
        return Err(err("the storage key list is not a list".into()));
    };
    let mut storages = HashMap::new();
    for key in keys {
        let key = key
            .key_text()
            .ok_or_else(|| err("storage key list holds a non-string".into()))?;
        let elem = *elem_of.get(&key).ok_or_else(|| {
            err(format!(
                "storage `{key}` is in the key list but the pickle never names it (corrupt)"
            ))
        })?;
        let n = data
            .get(pos..pos + 8)
            .ok_or_else(|| err(format!("storage `{key}` is missing (file truncated)")))?;
        let numel = u64::from_le_bytes(n.try_into().unwrap());
        let bytes = numel.checked_mul(elem).filter(|b| *b <= (data.len() - pos - 8) as u64).ok_or_else(|| {
            err(format!("storage `{key}` claims {numel} elements, more than the file holds (truncated or corrupt)"))
        })?;
        if storages.insert(key.clone(), (pos + 8, bytes)).is_some() {
            return Err(err(format!(
                "storage `{key}` appears twice in the key list (corrupt)"
            )));
        }
        pos += 8 + bytes as usize;
    }
    Ok(Legacy::Torch {
        walked,
        storages,
        risk,
        findings,
    })
}

/// Bytes per element of every storage a pickle names by persistent id
/// `('storage', StorageType, key, location, numel, …)`; the first naming of a key counts, as in
/// torch.
fn storage_elem_sizes(pids: &[Value]) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for pid in pids {
        let Some(items) = pid.items() else { continue };
        if items.first().and_then(Value::as_str) != Some("storage") {
            continue;
        }
        let type_name = match items.get(1) {
            Some(Value::Global(g)) => g.name.clone(),
            Some(Value::Str(s)) => s.to_string(),
            _ => continue,
        };
        let Some(key) = items.get(2).and_then(Value::key_text) else {
            continue;
        };
        let elem = dtype::torch(&type_name).map_or(1, |(_, e)| e);
        out.entry(key).or_insert(elem);
    }
    out
}

/// The legacy `torch.save` stream: magic pickle, protocol pickle, sys-info pickle, the object
/// pickle, the storage-key list pickle, then each storage as an 8-byte element count and its bytes.
pub fn inspect_legacy(path: &Path) -> Result<ModelInfo, ModelError> {
    let map = super::map_file(path)?;
    let mut info = ModelInfo::new(path, Format::Pytorch);
    match open_legacy(path, &map)? {
        Legacy::Plain(parsed) => {
            // Not torch.save output: still scanned, so that a malicious pickle is named.
            let (risk, findings) = pickle::findings(&parsed, false, "pickle");
            info.metadata = walk(&parsed.value).scalars;
            info.safety = safety_of(risk, findings);
        }
        Legacy::Torch {
            walked,
            storages,
            risk,
            findings,
        } => {
            let sizes: HashMap<String, u64> =
                storages.iter().map(|(k, (_, b))| (k.clone(), *b)).collect();
            let (tensors, weight_bytes) = measure(path, &walked.tensors, &sizes)?;
            finish(&mut info, tensors, weight_bytes, walked.scalars);
            info.safety = safety_of(risk, findings);
        }
    }
    Ok(info)
}

/// A tensor's values, as f32.
pub struct Weights {
    /// Dotted state_dict name without the nested key (`fc1.weight`).
    pub name: String,
    /// Dimensions; `values` holds their product of elements.
    pub shape: Vec<usize>,
    /// Elements in row-major (contiguous) order, converted from the tensor's float dtype.
    pub values: Vec<f32>,
}

/// Weights are never taken from a pickle that would run code if Python loaded it.
fn refuse_unsafe(path: &Path, risk: Risk, findings: &[String]) -> Result<(), ModelError> {
    if risk == Risk::Dangerous {
        return Err(ModelError::new(
            path,
            format!("refusing an unsafe pickle: {}", findings.join("; ")),
        ));
    }
    Ok(())
}

/// The tensors of a PyTorch state_dict or checkpoint, read without running its pickle.
pub struct Checkpoint {
    /// By full dotted name (`state_dict.fc1.weight`), contiguous, in the pickle's order.
    pub tensors: Vec<(String, HostTensor)>,
    /// The key every tensor is nested under, when there is one (`state_dict`, `model`).
    pub nested_key: Option<String>,
    /// Plain values next to the tensors (`epoch`, `arch`).
    pub scalars: BTreeMap<String, String>,
    /// The parameters of a TorchScript module rather than a state_dict.
    pub torchscript: bool,
}

/// Copies a tensor's elements out of its storage into row-major order, following its strides
/// (transposed and sliced tensors are saved as views of a larger storage).
fn gather(path: &Path, t: &FoundTensor, storage: &[u8]) -> Result<Vec<u8>, ModelError> {
    let esize = t.elem_bytes as usize;
    let numel: u64 = t.shape.iter().product();
    if numel == 0 {
        return Ok(Vec::new());
    }
    if t.stride.len() != t.shape.len() {
        return Err(ModelError::new(
            path,
            format!(
                "tensor `{}` has {} strides for {} dimensions",
                t.name,
                t.stride.len(),
                t.shape.len()
            ),
        ));
    }
    // The furthest element the view touches must lie inside the storage.
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.storage_offset, |acc, (d, s)| {
            acc.checked_add((d - 1).checked_mul(*s)?)
        })
        .and_then(|l| l.checked_add(1)?.checked_mul(t.elem_bytes));
    if last.is_none_or(|end| end > storage.len() as u64) {
        return Err(ModelError::new(
            path,
            format!("tensor `{}` runs past its storage", t.name),
        ));
    }
    let contiguous: Vec<u64> = (0..t.shape.len())
        .map(|i| t.shape[i + 1..].iter().product())
        .collect();
    let dense = t
        .stride
        .iter()
        .zip(&t.shape)
        .zip(&contiguous)
        .all(|((s, d), c)| *d <= 1 || s == c);
    let start = t.storage_offset as usize * esize;
    if dense {
        return Ok(storage[start..start + numel as usize * esize].to_vec());
    }
    let mut out = Vec::with_capacity(numel as usize * esize);
    let mut index = vec![0u64; t.shape.len()];
    for _ in 0..numel {
        let at = t.storage_offset + index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<u64>();
        let at = at as usize * esize;
        out.extend_from_slice(&storage[at..at + esize]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
}

/// Bytes of its storage a tensor reaches, up to and including its furthest element (0 when it is
/// empty); `None` when that overflows.
fn extent(t: &FoundTensor) -> Option<u64> {
    if t.shape.contains(&0) {
        return Some(0);
    }
    let contiguous: Vec<u64>;
    let stride = if t.stride.len() == t.shape.len() {
        &t.stride
    } else {
        contiguous = (0..t.shape.len())
            .map(|i| t.shape[i + 1..].iter().product())
            .collect();
        &contiguous
    };
    t.shape
        .iter()
        .zip(stride)
        .try_fold(t.storage_offset, |acc, (d, s)| {
            acc.checked_add((d - 1).checked_mul(*s)?)
        })?
        .checked_add(1)?
        .checked_mul(t.elem_bytes)
}

/// Memory the system can still give us (Linux's `MemAvailable`), when it says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Reads the first `n` bytes of a storage (all of it when it is shorter) by its key.
type Storage<'a> = Box<dyn FnMut(&str, u64) -> Result<Vec<u8>, ModelError> + 'a>;

/// The tensors a checkpoint's pickle names and a reader of its storages, refusing unsafe
/// pickles; and whether it is a TorchScript archive.
fn open_storages<'a>(
    path: &'a Path,
    head: &[u8],
) -> Result<(Walked, Storage<'a>, bool), ModelError> {
    match super::sniff(head) {
        super::Sniffed::Zip => {
            let c = open_zip(path)?;
            refuse_unsafe(path, c.risk, &c.findings)?;
            let (mut zip, root) = (c.zip, c.root);
            Ok((
                c.walked,
                Box::new(move |key: &str, n: u64| {
                    read_entry_prefix(
                        path,
                        &mut zip,
                        &format!("{root}data/{key}"),
                        u64::MAX,
                        Some(n),
                    )
                }),
                c.torchscript,
            ))
        }
        super::Sniffed::LegacyPickle => {
            let map = super::map_file(path)?;
            match open_legacy(path, &map)? {
                Legacy::Plain(_) => Err(ModelError::new(
                    path,
                    "a plain pickle, not a torch.save state_dict",
                )),
                Legacy::Torch {
                    walked,
                    storages,
                    risk,
                    findings,
                } => {
                    refuse_unsafe(path, risk, &findings)?;
                    Ok((
                        walked,
                        Box::new(move |key: &str, n: u64| {
                            let (off, len) = storages.get(key).copied().ok_or_else(|| {
                                ModelError::new(path, format!("storage `{key}` is missing"))
                            })?;
                            Ok(map[off..off + len.min(n) as usize].to_vec())
                        }),
                        false,
                    ))
                }
            }
        }
        _ => Err(ModelError::new(path, "not a PyTorch checkpoint")),
    }
}

/// What is read of each storage, by key.
struct Needs<'w> {
    /// The bytes its tensors reach.
    bytes: HashMap<&'w str, u64>,
    /// How many tensors view it.
    uses: HashMap<&'w str, usize>,
}

/// What is read of each storage; refuses tensors that cannot all fit in the memory available.
fn storage_needs<'w>(path: &Path, tensors: &'w [FoundTensor]) -> Result<Needs<'w>, ModelError> {
    // Of each storage only the bytes its tensors reach are read, and all of it must fit in memory
    // before anything is inflated: a storage's declared size alone is no reason to allocate.
    let mut need: HashMap<&str, u64> = HashMap::new();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    let mut total = 0u64;
    for t in tensors {
        let numel = super::checked_numel(path, &t.name, &t.shape)?;
        let end = extent(t).ok_or_else(|| {
            ModelError::new(
                path,
                format!(
                    "tensor `{}` reaches past any storage (absurd strides)",
                    t.name
                ),
            )
        })?;
        let n = need.entry(&t.storage_key).or_insert(0);
        total = total.saturating_add(end.saturating_sub(*n));
        *n = (*n).max(end);
        *uses.entry(&t.storage_key).or_insert(0) += 1;
        total = total.saturating_add(numel.saturating_mul(t.elem_bytes));
    }
    if let Some(free) = available_memory().filter(|free| total > *free) {
        return Err(ModelError::new(
            path,
            format!("its tensors need {total} bytes in memory, more than the {free} available"),
        ));
    }
    Ok(Needs { bytes: need, uses })
}

/// Every tensor of a PyTorch state_dict or checkpoint (zip or legacy), read without running the
/// pickle (a TorchScript module's parameters too). Refuses unsafe pickles.
pub fn read_tensors(path: &Path) -> Result<Checkpoint, ModelError> {
    let head = super::read_head(path)?;
    let (walked, mut storage, torchscript) = open_storages(path, &head)?;
    let nested_key = nested_key(walked.tensors.iter().map(|t| t.name.as_str()));
    let Needs {
        bytes: need,
        mut uses,
    } = storage_needs(path, &walked.tensors)?;
    let mut cache: HashMap<String, Vec<u8>> = HashMap::new();
    let mut tensors = Vec::with_capacity(walked.tensors.len());
    for t in &walked.tensors {
        let dtype = DType::from_name(&t.dtype).ok_or_else(|| {
            ModelError::new(
                path,
                format!(
                    "tensor `{}` is {}, which has no portable dtype",
                    t.name, t.dtype
                ),
            )
        })?;
        if !cache.contains_key(&t.storage_key) {
            let bytes = storage(&t.storage_key, need[t.storage_key.as_str()])?;
            cache.insert(t.storage_key.clone(), bytes);
        }
        let data = gather(path, t, &cache[&t.storage_key])?;
        // A storage is dropped after the last tensor that views it.
        let left = uses.get_mut(t.storage_key.as_str()).unwrap();
        *left -= 1;
        if *left == 0 {
            cache.remove(&t.storage_key);
        }
        let shape = t.shape.iter().map(|d| *d as usize).collect();
        let host = HostTensor::from_bytes(dtype, shape, data)
            .map_err(|e| ModelError::new(path, format!("tensor `{}`: {e}", t.name)))?;
        tensors.push((t.name.clone(), host));
    }
    Ok(Checkpoint {
        tensors,
        nested_key,
        scalars: walked.scalars,
        torchscript,
    })
}

/// Every float tensor of a PyTorch state_dict as f32, named without the nested key.
pub fn read_weights(path: &Path) -> Result<Vec<Weights>, ModelError> {
    let c = read_tensors(path)?;
    if c.torchscript {
        return Err(ModelError::new(
            path,
            "a TorchScript module, not a state_dict: run it with tch",
        ));
    }
    c.tensors
        .into_iter()
        .map(|(name, t)| {
            let name = match &c.nested_key {
                Some(k) => name[k.len() + 1..].to_string(),
                None => name,
            };
            if !t.dtype.is_plain_float() {
                return Err(ModelError::new(
                    path,
                    format!("tensor `{name}` is {}, not a float", t.dtype_name()),
                ));
            }
            let values = t
                .to_f64()
                .unwrap_or_default()
                .into_iter()
                .map(|v| v as f32)
                .collect();
            Ok(Weights {
                name,
                shape: t.shape,
                values,
            })
        })
        .collect()
}
