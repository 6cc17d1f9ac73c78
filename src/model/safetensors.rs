//! safetensors reader: the 8-byte header length and the JSON header, nothing else. A sharded
//! model (an `*.safetensors.index.json`, or several files) is read as one model.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{dtype, Format, ModelInfo, TensorSummary};
use crate::error::ModelError;

/// The safetensors format caps its header at 100 MB; a larger claim is corruption.
const MAX_HEADER: u64 = 100 * 1024 * 1024;

/// One file's header.
pub struct Header {
    /// The tensors the header lists, with sizes checked against their `data_offsets`.
    pub tensors: Vec<TensorSummary>,
    /// `__metadata__`, values that are not strings written as JSON text.
    pub metadata: BTreeMap<String, String>,
}

/// Reads and checks one safetensors file's header (the data section is measured, not read): an
/// unknown dtype, a size that disagrees with the offsets, overlap or truncation is an error.
pub fn read_header(path: &Path) -> Result<Header, ModelError> {
    let mut f = File::open(path).map_err(|e| ModelError::io(path, &e))?;
    let file_len = f.metadata().map_err(|e| ModelError::io(path, &e))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| ModelError::io(path, &e))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER || n > file_len - 8 {
        return Err(ModelError::new(
            path,
            format!("safetensors header claims {n} bytes but the file has {file_len} (truncated or corrupt)"),
        ));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header)
        .map_err(|e| ModelError::io(path, &e))?;
    let data_len = file_len - 8 - n;
    parse_header(path, &header, data_len)
}

fn parse_header(path: &Path, header: &[u8], data_len: u64) -> Result<Header, ModelError> {
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|e| ModelError::new(path, format!("safetensors header is not valid JSON: {e}")))?;
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::with_capacity(json.len());
    let mut spans = Vec::with_capacity(json.len());
    for (name, v) in json {
        if name == "__metadata__" {
            let obj = v
                .as_object()
                .ok_or_else(|| ModelError::new(path, "`__metadata__` is not an object"))?;
            for (k, v) in obj {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                metadata.insert(k.clone(), v);
            }
            continue;
        }
        let bad = |what: &str| ModelError::new(path, format!("tensor `{name}`: {what}"));
        let code = v
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad("no dtype"))?;
        let (dt, bits) =
            dtype::safetensors(code).ok_or_else(|| bad(&format!("unknown dtype `{code}`")))?;
        let shape: Vec<u64> = v
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("no shape"))?
            .iter()
            .map(|d| {
                d.as_u64()
                    .ok_or_else(|| bad("shape holds a value that is not a size"))
            })
            .collect::<Result<_, _>>()?;
        let offsets = v
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .filter(|o| o.len() == 2)
            .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
            .ok_or_else(|| bad("no valid data_offsets"))?;
        let numel = super::checked_numel(path, &name, &shape)?;
        let expected = dtype::packed_bytes(numel, bits);
        let (begin, end) = offsets;
        if end < begin || end - begin != expected {
            return Err(bad(&format!(
                "shape {shape:?} of {dt} needs {expected} bytes but data_offsets span {}",
                end.saturating_sub(begin)
            )));
        }
        if end > data_len {
            return Err(bad(&format!(
                "data ends at byte {end} of the data section, which has {data_len} bytes (file truncated)"
            )));
        }
        spans.push((begin, end));
        tensors.push(TensorSummary {
            name,
            dtype: dt.to_string(),
            shape,
            bytes: expected,
        });
    }
    spans.sort_unstable();
    if spans.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err(ModelError::new(
            path,
            "safetensors tensors overlap (corrupt header)",
        ));
    }
    Ok(Header { tensors, metadata })
}

/// Reads one safetensors file into a [`ModelInfo`]: tensors and metadata, no graph.
pub fn inspect(path: &Path) -> Result<ModelInfo, ModelError> {
    let h = read_header(path)?;
    let mut info = ModelInfo::new(path, Format::Safetensors);
    info.metadata = h.metadata;
    info.set_tensors(h.tensors);
    Ok(info)
}

/// `model.safetensors.index.json`: `{"metadata": {...}, "weight_map": {tensor: shard}}`.
pub fn inspect_index(path: &Path) -> Result<ModelInfo, ModelError> {
    let text = std::fs::read(path).map_err(|e| ModelError::io(path, &e))?;
    let json: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| ModelError::new(path, format!("not valid JSON: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| {
            ModelError::new(
                path,
                "a JSON file that is not a safetensors index (no `weight_map`)",
            )
        })?;
    let mut shards: Vec<String> = Vec::new();
    for v in map.values() {
        let s = v.as_str().ok_or_else(|| {
            ModelError::new(path, "`weight_map` holds a value that is not a file name")
        })?;
        if !shards.iter().any(|x| x == s) {
            shards.push(s.to_string());
        }
    }
    let files: Vec<PathBuf> = shards
        .iter()
        .map(|s| super::contained(path, s).map_err(|o| ModelError::new(path, format!("shard {o}"))))
        .collect::<Result<_, _>>()?;
    let mut info = inspect_shards(path, &files)?;
    for (name, shard) in map {
        if !info.tensors.iter().any(|t| &t.name == name) {
            return Err(ModelError::new(
                path,
                format!(
                    "index maps tensor `{name}` to `{}`, which does not hold it",
                    shard.as_str().unwrap_or("?")
                ),
            ));
        }
    }
    if let Some(meta) = json.get("metadata").and_then(|m| m.as_object()) {
        for (k, v) in meta {
            info.metadata.insert(
                k.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
    }
    Ok(info)
}

/// Several safetensors files read as one model named `path`.
pub fn inspect_shards(path: &Path, files: &[PathBuf]) -> Result<ModelInfo, ModelError> {
    let mut info = ModelInfo::new(path, Format::Safetensors);
    let mut tensors = Vec::new();
    for f in files {
        if !f.is_file() {
            return Err(ModelError::new(
                path,
                format!("shard `{}` is missing", f.display()),
            ));
        }
        let h = read_header(f)?;
        info.metadata.extend(h.metadata);
        tensors.extend(h.tensors);
        info.details.files.push(f.display().to_string());
    }
    info.set_tensors(tensors);
    Ok(info)
}
