//! GGUF reader (versions 2 and 3): metadata key/values and tensor infos; the tensor data is
//! only measured. Every length in the file is checked against what is left of it before use, so a
//! corrupt count can neither allocate nor loop beyond the file's size.

use std::path::Path;

use super::{dtype, Format, ModelInfo, TensorSummary};
use crate::error::ModelError;

/// Arrays longer than this are summarised (token lists, merges) instead of printed.
const ARRAY_SHOWN: u64 = 16;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

type R<T> = Result<T, String>;

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> R<&'a [u8]> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(format!(
                "truncated: needs {n} bytes at offset {} but {left} remain",
                self.pos
            ));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn string(&mut self) -> R<String> {
        let n = self.u64()?;
        let b = self.take(n)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }
}

/// A metadata value, stringified for the contract; numbers are kept for the summary.
fn value(c: &mut Cursor, ty: u32, depth: u32) -> R<(String, Option<u64>)> {
    Ok(match ty {
        0 => {
            let v = c.take(1)?[0];
            (v.to_string(), Some(v as u64))
        }
        1 => ((c.take(1)?[0] as i8).to_string(), None),
        2 => {
            let v = u16::from_le_bytes(c.take(2)?.try_into().unwrap());
            (v.to_string(), Some(v as u64))
        }
        3 => (
            i16::from_le_bytes(c.take(2)?.try_into().unwrap()).to_string(),
            None,
        ),
        4 => {
            let v = c.u32()?;
            (v.to_string(), Some(v as u64))
        }
        5 => {
            let v = i32::from_le_bytes(c.take(4)?.try_into().unwrap());
            (v.to_string(), u64::try_from(v).ok())
        }
        6 => (
            f32::from_le_bytes(c.take(4)?.try_into().unwrap()).to_string(),
            None,
        ),
        7 => ((c.take(1)?[0] != 0).to_string(), None),
        8 => (c.string()?, None),
        9 => {
            if depth > 4 {
                return Err("arrays nested too deeply".into());
            }
            let item = c.u32()?;
            let n = c.u64()?;
            // Every item takes at least one byte: a longer count is a lie.
            if n > c.remaining() {
                return Err(format!(
                    "array claims {n} items but {} bytes remain",
                    c.remaining()
                ));
            }
            let mut shown = Vec::new();
            for i in 0..n {
                let (v, _) = value(c, item, depth + 1)?;
                if i < ARRAY_SHOWN {
                    shown.push(v);
                }
            }
            if n > ARRAY_SHOWN {
                (format!("[{} items of {}]", n, type_name(item)), Some(n))
            } else {
                (format!("[{}]", shown.join(", ")), Some(n))
            }
        }
        10 => {
            let v = c.u64()?;
            (v.to_string(), Some(v))
        }
        11 => (
            i64::from_le_bytes(c.take(8)?.try_into().unwrap()).to_string(),
            None,
        ),
        12 => (
            f64::from_le_bytes(c.take(8)?.try_into().unwrap()).to_string(),
            None,
        ),
        t => return Err(format!("unknown metadata value type {t}")),
    })
}

fn type_name(ty: u32) -> &'static str {
    match ty {
        0 => "uint8",
        1 => "int8",
        2 => "uint16",
        3 => "int16",
        4 => "uint32",
        5 => "int32",
        6 => "float32",
        7 => "bool",
        8 => "string",
        9 => "array",
        10 => "uint64",
        11 => "int64",
        12 => "float64",
        _ => "unknown",
    }
}

/// Reads a GGUF file into a [`ModelInfo`]: metadata key/values (as strings), key sizes, tensor
/// infos (shapes outermost first); errors are prefixed `GGUF:`.
pub fn inspect(path: &Path) -> Result<ModelInfo, ModelError> {
    let map = super::map_file(path)?;
    read(path, &map).map_err(|e| ModelError::new(path, format!("GGUF: {e}")))
}

fn read(path: &Path, buf: &[u8]) -> R<ModelInfo> {
    let mut c = Cursor { buf, pos: 0 };
    c.take(4)?;
    let version = c.u32()?;
    if !(2..=3).contains(&version) {
        return Err(format!(
            "version {version} is not supported (GGUF 2 and 3 are)"
        ));
    }
    let n_tensors = c.u64()?;
    let n_kv = c.u64()?;
    // A key/value takes at least 12 bytes and a tensor info at least 24.
    if n_kv > c.remaining() / 12 || n_tensors > c.remaining() / 24 {
        return Err(format!(
            "header claims {n_kv} metadata keys and {n_tensors} tensors, more than the file holds"
        ));
    }
    let mut info = ModelInfo::new(path, Format::Gguf);
    info.details.gguf_version = Some(version);
    let mut alignment = 32u64;
    for _ in 0..n_kv {
        let key = c.string()?;
        let ty = c.u32()?;
        let (v, num) = value(&mut c, ty, 0)?;
        if key == "general.alignment" {
            alignment = num
                .filter(|a| *a > 0 && a.is_power_of_two())
                .ok_or("general.alignment is not a power of two")?;
        }
        if let Some(n) = num {
            if let Some(size) = size_key(&key) {
                info.details.sizes.insert(size.to_string(), n);
            }
        }
        info.metadata.insert(key, v);
    }
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    let mut data_end = 0u64;
    for _ in 0..n_tensors {
        let name = c.string()?;
        let n_dims = c.u32()?;
        if n_dims > 8 {
            return Err(format!(
                "tensor `{name}` has {n_dims} dimensions (at most 8 are allowed)"
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64()?);
        }
        let ty = c.u32()?;
        let offset = c.u64()?;
        let (dt, block, block_bytes) =
            dtype::ggml(ty).ok_or_else(|| format!("tensor `{name}` has unknown ggml type {ty}"))?;
        let numel = super::checked_numel(path, &name, &dims).map_err(|e| e.message)?;
        if numel % block != 0 {
            return Err(format!(
                "tensor `{name}` has {numel} elements, not a multiple of the {dt} block of {block}"
            ));
        }
        let bytes = numel / block * block_bytes;
        data_end = data_end.max(offset.checked_add(bytes).ok_or("tensor offset overflows")?);
        // GGUF stores dimensions innermost first; report them outermost first, as the other formats do.
        dims.reverse();
        tensors.push(TensorSummary {
            name,
            dtype: dt.to_string(),
            shape: dims,
            bytes,
        });
    }
    let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
    let file_len = buf.len() as u64;
    if n_tensors > 0 && data_start.saturating_add(data_end) > file_len {
        return Err(format!(
            "tensor data ends at byte {} but the file has {file_len} bytes (truncated)",
            data_start.saturating_add(data_end)
        ));
    }
    info.set_tensors(tensors);
    Ok(info)
}

/// GGUF keys (`llama.context_length`) that carry a model's key sizes, under a neutral name.
fn size_key(key: &str) -> Option<&'static str> {
    if key == "tokenizer.ggml.tokens" {
        return Some("vocab_size");
    }
    let (_, suffix) = key.split_once('.')?;
    Some(match suffix {
        "context_length" => "context_length",
        "embedding_length" => "hidden_size",
        "block_count" => "layers",
        "feed_forward_length" => "intermediate_size",
        "attention.head_count" => "attention_heads",
        "attention.head_count_kv" => "kv_heads",
        "vocab_size" => "vocab_size",
        _ => return None,
    })
}
