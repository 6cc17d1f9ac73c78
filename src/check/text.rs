//! Text in: `check --text`, and the fastembed path of a sentence-embedding model that has a
//! tokenizer beside it. Texts are tokenised the way fastembed tokenises (its padding, truncation
//! and special tokens from the model's own `tokenizer_config.json`, `config.json` and
//! `special_tokens_map.json`), fed as the inputs a tokenizer gives (`input_ids`, `attention_mask`,
//! `token_type_ids`, and `position_ids` when a graph asks), and each back end's output is chosen
//! as fastembed chooses it, pooled as the model's own sentence-transformers config says
//! (`1_Pooling/config.json`; mean pooling when there is none, as the fastembed projects `init`
//! writes) and L2-normalised as fastembed does.
//!
//! The steps are fastembed's own, written against the same `tokenizers` crate; fastembed itself
//! is not linked in: it pins ONNX Runtime's API 24 (ONNX Runtime ≥ 1.24), where `check`'s ort
//! back end takes any ONNX Runtime from 1.17, and its steps run here on every back end (tract and
//! candle too). The fastembed project `init` writes records these embeddings and its test asserts
//! that fastembed computes the same.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokenizers::{
    AddedToken, PaddingParams, PaddingStrategy, PostProcessor, Tokenizer, TruncationParams,
};

use super::inputs::InputError;
use crate::backends::Named;
use crate::error::FileError;
use crate::model::dtype::DType;
use crate::model::{Format, ModelInfo};
use crate::tensor::HostTensor;

/// The texts checked when none are given: a sentence, a paraphrase of it and an unrelated one
/// (the paraphrase sanity check compares their cosines).
pub const DEFAULT_TEXTS: [&str; 3] = [
    "A man is playing a guitar.",
    "A man plays the guitar.",
    "The stock market fell sharply today.",
];

/// The longest sequence fastembed feeds (its default `max_length`), unless the tokenizer's
/// `model_max_length` is shorter.
const FASTEMBED_MAX_LENGTH: usize = 512;

/// The inputs a tokenizer gives, by the names exporters use.
const TOKEN_INPUTS: [&str; 4] = [
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "position_ids",
];

/// The outputs fastembed takes, in its order of precedence (after "the only output").
const FASTEMBED_OUTPUTS: [&str; 3] = ["text_embeds", "last_hidden_state", "sentence_embedding"];

/// One way of pooling token vectors into one (sentence-transformers' modes; several are
/// concatenated in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    /// The first token's vector (`[CLS]`).
    Cls,
    /// The element-wise maximum over the tokens the mask keeps.
    Max,
    /// The mean over the tokens the mask keeps.
    Mean,
    /// Their sum divided by the square root of their count.
    MeanSqrtLen,
    /// The mean weighted by position (1, 2, …).
    WeightedMean,
    /// The last token the mask keeps.
    LastToken,
}

impl Pool {
    /// Every mode with the key of `1_Pooling/config.json` that turns it on, in concatenation order.
    const KEYS: [(Pool, &'static str); 6] = [
        (Pool::Cls, "pooling_mode_cls_token"),
        (Pool::Max, "pooling_mode_max_tokens"),
        (Pool::Mean, "pooling_mode_mean_tokens"),
        (Pool::MeanSqrtLen, "pooling_mode_mean_sqrt_len_tokens"),
        (Pool::WeightedMean, "pooling_mode_weightedmean_tokens"),
        (Pool::LastToken, "pooling_mode_lasttoken"),
    ];

    /// Its name in reports (`mean`, `cls`).
    pub fn name(self) -> &'static str {
        match self {
            Pool::Cls => "cls",
            Pool::Max => "max",
            Pool::Mean => "mean",
            Pool::MeanSqrtLen => "mean_sqrt_len",
            Pool::WeightedMean => "weighted_mean",
            Pool::LastToken => "last_token",
        }
    }
}

/// How a model's token vectors become one embedding, and where that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pooling {
    /// The modes, concatenated in this order.
    pub modes: Vec<Pool>,
    /// `1_Pooling/config.json`, or that none was found.
    pub source: String,
    /// The width the config declares (`word_embedding_dimension`), checked against the output.
    pub width: Option<usize>,
}

/// The directory a model's tokenizer and configuration files are in: a model directory itself,
/// else the file's own directory (never above it).
pub fn files_dir(model: &Path) -> PathBuf {
    if model.is_dir() {
        return model.to_path_buf();
    }
    match model.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether a tokenizer lies beside the model.
pub fn has_tokenizer(model: &Path) -> bool {
    files_dir(model).join("tokenizer.json").is_file()
}

/// Whether `check` feeds this model text without `--text`: it has a tokenizer beside it and is an
/// ONNX sentence encoder (the fastembed path) — its inputs all ones a tokenizer gives, token ids
/// among them, taking any batch and length; the output fastembed would pick a float tensor of
/// rank 2 or 3 that is no classifier's or language model's `logits`/`scores` — or weights in a
/// sentence-transformers directory (`1_Pooling/config.json`).
pub fn is_text_encoder(model: &Path, info: &ModelInfo) -> bool {
    let fits = match info.format {
        Format::Onnx => {
            let any_length = |i: &crate::model::ValueSpec| {
                i.shape.len() == 2
                    && i.shape
                        .iter()
                        .all(|d| matches!(d, crate::model::Dim::Symbolic(_)))
            };
            let embeds = declared_output(info).is_some_and(|o| {
                let name = o.name.to_ascii_lowercase();
                (o.shape.len() == 2 || o.shape.len() == 3)
                    && DType::from_name(&o.dtype).is_some_and(DType::is_float)
                    && !name.contains("logit")
                    && !name.contains("score")
            });
            info.inputs.iter().any(|i| i.name == "input_ids")
                && info
                    .inputs
                    .iter()
                    .all(|i| TOKEN_INPUTS.contains(&i.name.as_str()) && any_length(i))
                && embeds
        }
        Format::Safetensors => files_dir(model).join("1_Pooling/config.json").is_file(),
        _ => false,
    };
    fits && has_tokenizer(model)
}

/// Reads a JSON file beside the model: `None` when it is not there.
fn read_json(path: &Path) -> Result<Option<serde_json::Value>, FileError> {
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(|e| FileError::io(path, "cannot read", &e))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| FileError::new(path, format!("not valid JSON: {e}")))
}

/// The model's pooling: `1_Pooling/config.json` when the model has one, else mean pooling.
pub fn pooling(model: &Path) -> Result<Pooling, FileError> {
    let path = files_dir(model).join("1_Pooling").join("config.json");
    let Some(config) = read_json(&path)? else {
        return Ok(Pooling {
            modes: vec![Pool::Mean],
            source: "no 1_Pooling/config.json: mean, as fastembed projects from `init` pool".into(),
            width: None,
        });
    };
    let modes: Vec<Pool> = Pool::KEYS
        .iter()
        .filter(|(_, key)| config[*key].as_bool() == Some(true))
        .map(|(p, _)| *p)
        .collect();
    if modes.is_empty() {
        return Err(FileError::new(
            &path,
            "turns on no pooling mode (pooling_mode_mean_tokens, pooling_mode_cls_token, …)",
        ));
    }
    Ok(Pooling {
        source: "1_Pooling/config.json".into(),
        width: config["word_embedding_dimension"]
            .as_u64()
            .map(|w| w as usize),
        modes,
    })
}

/// A tokenizer set up as fastembed sets it up, with what it was set up from.
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    /// Longest sequence fed (fastembed's 512, or the tokenizer's `model_max_length`).
    pub max_length: usize,
    /// One line on the settings, for the report's notes.
    pub settings: String,
    /// Why fastembed would refuse these files (empty: it takes them).
    pub fastembed_refusals: Vec<String>,
}

/// Loads `tokenizer.json` beside the model and sets its padding (the longest text of the batch,
/// with the model's pad token), truncation and special tokens as fastembed does.
pub fn tokenizer(model: &Path) -> Result<TextTokenizer, InputError> {
    let dir = files_dir(model);
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(InputError::Model(format!(
            "text input needs a tokenizer: there is no tokenizer.json in {}",
            dir.display()
        )));
    }
    let mut refusals = Vec::new();
    let mut companion = |name: &str| -> Result<serde_json::Value, InputError> {
        match read_json(&dir.join(name))? {
            Some(v) => Ok(v),
            None => {
                refusals.push(format!("no {name}"));
                Ok(serde_json::Value::Null)
            }
        }
    };
    let config = companion("config.json")?;
    let tokenizer_config = companion("tokenizer_config.json")?;
    let special = companion("special_tokens_map.json")?;
    let bytes = std::fs::read(&path).map_err(|e| FileError::io(&path, "cannot read", &e))?;
    let not_a_tokenizer = |e: String| FileError::new(&path, format!("not a tokenizer: {e}"));
    // A hostile file may find a panic in the library: it is the file's error, not ours.
    let mut tok = std::panic::catch_unwind(|| Tokenizer::from_bytes(&bytes))
        .map_err(|_| not_a_tokenizer("the tokenizers library panicked reading it".into()))?
        .map_err(|e| not_a_tokenizer(e.to_string()))?;

    let model_max = tokenizer_config["model_max_length"].as_f64();
    if model_max.is_none() {
        refusals.push("tokenizer_config.json has no numeric model_max_length".into());
    }
    let max_length = model_max
        .filter(|m| *m >= 1.0)
        .map_or(FASTEMBED_MAX_LENGTH, |m| {
            FASTEMBED_MAX_LENGTH.min(m.min(usize::MAX as f64) as usize)
        });
    let pad_value = &tokenizer_config["pad_token"];
    let pad_token = pad_value
        .as_str()
        .or_else(|| pad_value["content"].as_str())
        .map(str::to_string);
    if pad_token.is_none() {
        refusals.push("tokenizer_config.json has no pad_token".into());
    }
    let pad_token = pad_token.unwrap_or_else(|| "[PAD]".into());
    let pad_id = config["pad_token_id"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .or_else(|| tok.token_to_id(&pad_token))
        .unwrap_or(0);
    tok.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        pad_token: pad_token.clone(),
        pad_id,
        ..Default::default()
    }));
    let added = tok
        .get_post_processor()
        .map_or(0, |p| p.added_tokens(false));
    if max_length <= added {
        return Err(FileError::new(
            &dir.join("tokenizer_config.json"),
            format!(
                "model_max_length {max_length} leaves no room for text beside the {added} special tokens the tokenizer adds"
            ),
        )
        .into());
    }
    tok.with_truncation(Some(TruncationParams {
        max_length,
        ..Default::default()
    }))
    .map_err(|e| not_a_tokenizer(e.to_string()))?;
    if let Some(map) = special.as_object() {
        let added: Vec<AddedToken> = map.values().filter_map(special_token).collect();
        tok.add_special_tokens(added)
            .map_err(|e| not_a_tokenizer(e.to_string()))?;
    }
    Ok(TextTokenizer {
        tokenizer: tok,
        max_length,
        settings: format!(
            "tokenised as fastembed does: padded to the longest text with `{pad_token}` (id {pad_id}), truncated at {max_length} tokens"
        ),
        fastembed_refusals: refusals,
    })
}

/// A `special_tokens_map.json` entry as fastembed adds it: a string, or an object with every
/// flag given.
fn special_token(v: &serde_json::Value) -> Option<AddedToken> {
    if let Some(content) = v.as_str() {
        // fastembed's: special, and normalized as `AddedToken::default()` is.
        return Some(AddedToken {
            content: content.to_string(),
            special: true,
            ..Default::default()
        });
    }
    let flag = |k: &str| v[k].as_bool();
    Some(
        AddedToken::from(v["content"].as_str()?.to_string(), true)
            .single_word(flag("single_word")?)
            .lstrip(flag("lstrip")?)
            .rstrip(flag("rstrip")?)
            .normalized(flag("normalized")?),
    )
}

/// The texts tokenised: one row per text, padded to the longest.
pub struct Encoded {
    /// Token ids, `[texts, sequence]` row-major.
    pub ids: Vec<u32>,
    /// 1 for a token, 0 for padding.
    pub mask: Vec<u32>,
    /// Segment ids.
    pub type_ids: Vec<u32>,
    /// Texts.
    pub rows: usize,
    /// Tokens per row.
    pub len: usize,
}

impl TextTokenizer {
    /// Tokenises `texts` as one batch (with the special tokens the model's template adds).
    pub fn encode(&self, texts: &[String]) -> Result<Encoded, InputError> {
        let failed =
            |e: String| InputError::Model(format!("the tokenizer failed on the texts: {e}"));
        // A hostile tokenizer.json may lead the library to a panic: the file's failure, not ours.
        let encodings = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.tokenizer.encode_batch(texts.to_vec(), true)
        }))
        .map_err(|_| failed("the tokenizers library panicked".into()))?
        .map_err(|e| failed(e.to_string()))?;
        let len = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut out = Encoded {
            ids: Vec::new(),
            mask: Vec::new(),
            type_ids: Vec::new(),
            rows: encodings.len(),
            len,
        };
        for e in &encodings {
            // Padded to the longest: every row has `len` tokens.
            out.ids.extend(e.get_ids());
            out.mask.extend(e.get_attention_mask());
            out.type_ids.extend(e.get_type_ids());
        }
        if len == 0 || out.ids.len() != out.rows * len {
            return Err(InputError::Model(
                "the tokenizer gave no tokens, or rows of different lengths".into(),
            ));
        }
        Ok(out)
    }
}

/// The model's inputs made from the tokenised texts, each in the dtype the model declares for it.
/// `inputs`: the signature (an ONNX graph's inputs, or `input_ids` for weights on candle, which
/// also takes the mask and segment ids by name).
pub fn text_inputs(
    inputs: &[crate::model::ValueSpec],
    format: Format,
    enc: &Encoded,
) -> Result<Vec<Named>, InputError> {
    let mut names: Vec<(&str, DType)> = Vec::new();
    for spec in inputs {
        if !TOKEN_INPUTS.contains(&spec.name.as_str()) {
            return Err(InputError::Model(format!(
                "text input: the model's input `{}` is not one a tokenizer gives ({})",
                spec.name,
                TOKEN_INPUTS.join(", ")
            )));
        }
        let dtype = DType::from_name(&spec.dtype)
            .filter(|d| !d.is_float() && *d != DType::Bool)
            .ok_or_else(|| {
                InputError::Model(format!(
                    "text input: the model's input `{}` is {}, not integer token data",
                    spec.name, spec.dtype
                ))
            })?;
        names.push((spec.name.as_str(), dtype));
    }
    // Weights-only encoders (candle) take the mask and segment ids too, by name.
    if format != Format::Onnx {
        for extra in ["attention_mask", "token_type_ids"] {
            if !names.iter().any(|(n, _)| *n == extra) {
                names.push((extra, DType::I64));
            }
        }
    }
    let positions: Vec<u32> = (0..enc.rows).flat_map(|_| 0..enc.len as u32).collect();
    names
        .into_iter()
        .map(|(name, dtype)| {
            let values: &[u32] = match name {
                "input_ids" => &enc.ids,
                "attention_mask" => &enc.mask,
                "token_type_ids" => &enc.type_ids,
                _ => &positions,
            };
            let values: Vec<f64> = values.iter().map(|v| f64::from(*v)).collect();
            let data = crate::tensor::number_bytes(dtype, &values).ok_or_else(|| {
                InputError::Model(format!(
                    "text input: `{name}` cannot hold token data as {}",
                    dtype.name()
                ))
            })?;
            let t = HostTensor::from_bytes(dtype, vec![enc.rows, enc.len], data)
                .map_err(|e| InputError::Model(e.0))?;
            Ok((name.to_string(), t))
        })
        .collect()
}

/// The declared output fastembed would pool (see [`chosen_output`]).
fn declared_output(info: &ModelInfo) -> Option<&crate::model::ValueSpec> {
    if let [only] = &info.outputs[..] {
        return Some(only);
    }
    FASTEMBED_OUTPUTS
        .iter()
        .find_map(|want| info.outputs.iter().find(|o| o.name == *want))
}

/// The output fastembed pools: the only one, else the first of [`FASTEMBED_OUTPUTS`] there is.
pub fn chosen_output(outputs: &[Named]) -> Result<&Named, String> {
    if let [only] = outputs {
        return Ok(only);
    }
    FASTEMBED_OUTPUTS
        .iter()
        .find_map(|want| outputs.iter().find(|(n, _)| n == want))
        .ok_or_else(|| {
            let names: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
            format!(
                "no output to pool: fastembed takes the only output, else one named {} (the model has {})",
                FASTEMBED_OUTPUTS.join(", "),
                names.join(", ")
            )
        })
}

/// Pools an output into one L2-normalised embedding per text: a `[texts, sequence, width]` output
/// by `pooling` over the tokens `mask` keeps, a `[texts, width]` one (pooled by the model) as it
/// is. The vectors before normalisation are checked: finite and not zero.
pub fn embeddings(
    output: &Named,
    mask: &[u32],
    rows: usize,
    pooling: &[Pool],
) -> Result<Vec<Vec<f64>>, String> {
    let (name, t) = output;
    let values = t.to_f64().filter(|_| t.is_float()).ok_or_else(|| {
        format!(
            "output `{name}` is {}, not a float tensor to pool",
            t.dtype_name()
        )
    })?;
    if t.shape.last() == Some(&0) || t.numel() == 0 {
        return Err(format!(
            "output `{name}` is {}: nothing to embed",
            t.describe()
        ));
    }
    let pooled: Vec<Vec<f64>> = match t.shape[..] {
        [n, width] if n == rows => values.chunks(width.max(1)).map(<[f64]>::to_vec).collect(),
        [n, seq, width] if n == rows && seq > 0 && mask.len() == rows * seq => (0..rows)
            .map(|r| {
                let tokens = &values[r * seq * width..(r + 1) * seq * width];
                let keep = &mask[r * seq..(r + 1) * seq];
                pooling
                    .iter()
                    .flat_map(|p| pool(*p, tokens, keep, width))
                    .collect()
            })
            .collect(),
        _ => {
            return Err(format!(
                "output `{name}` is {}, not [texts, width] or [texts, sequence, width] for {rows} text(s)",
                t.describe()
            ))
        }
    };
    pooled
        .into_iter()
        .enumerate()
        .map(|(r, v)| {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            if !norm.is_finite() || v.iter().any(|x| !x.is_finite()) {
                Err(format!("the embedding of text {} is not finite", r + 1))
            } else if norm == 0.0 {
                Err(format!(
                    "the embedding of text {} is all zeros: it has no direction",
                    r + 1
                ))
            } else {
                Ok(v.iter().map(|x| x / norm).collect())
            }
        })
        .collect()
}

/// One text's token vectors (`[sequence, width]` row-major) pooled by one mode.
fn pool(mode: Pool, tokens: &[f64], keep: &[u32], width: usize) -> Vec<f64> {
    let kept: Vec<usize> = (0..keep.len()).filter(|&i| keep[i] != 0).collect();
    let row = |i: usize| &tokens[i * width..(i + 1) * width];
    let weighted = |weight: &dyn Fn(usize) -> f64, divide: f64| {
        let mut sum = vec![0.0; width];
        for &i in &kept {
            for (s, x) in sum.iter_mut().zip(row(i)) {
                *s += weight(i) * x;
            }
        }
        sum.iter()
            .map(|s| s / divide.max(1e-9))
            .collect::<Vec<f64>>()
    };
    let count = kept.len() as f64;
    match mode {
        Pool::Cls => row(0).to_vec(),
        Pool::LastToken => row(kept.last().copied().unwrap_or(0)).to_vec(),
        Pool::Max => (0..width)
            .map(|c| {
                kept.iter()
                    .map(|&i| row(i)[c])
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect(),
        Pool::Mean => weighted(&|_| 1.0, count),
        Pool::MeanSqrtLen => weighted(&|_| 1.0, count.sqrt()),
        Pool::WeightedMean => {
            let total: f64 = kept.iter().map(|&i| (i + 1) as f64).sum();
            weighted(&|i| (i + 1) as f64, total)
        }
    }
}

/// The cosine of two L2-normalised vectors.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The paraphrase sanity check over three texts (a sentence, its paraphrase, an unrelated one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Paraphrase {
    /// Cosine of the first text with the second.
    pub paraphrase_cosine: f64,
    /// Cosine of the first text with the third.
    pub unrelated_cosine: f64,
    /// Whether the paraphrase scores higher (reported; a random model need not).
    pub holds: bool,
}

impl Paraphrase {
    /// The check over three embeddings, `None` for any other count.
    pub fn of(e: &[Vec<f64>]) -> Option<Paraphrase> {
        let [a, b, c] = e else { return None };
        let (p, u) = (cosine(a, b), cosine(a, c));
        Some(Paraphrase {
            paraphrase_cosine: p,
            unrelated_cosine: u,
            holds: p > u,
        })
    }
}

/// What a model's embeddings were (`embedding` in the JSON report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingFacts {
    /// The embedding's width.
    pub dim: usize,
    /// The output pooled.
    pub output: String,
    /// The pooling modes, concatenated in order.
    pub pooling: Vec<Pool>,
    /// Where the pooling was read (`1_Pooling/config.json`) or that it was not found.
    pub pooling_from: String,
    /// Every embedding is finite and of length 1 (L2-normalised, as fastembed returns them).
    pub normalized: bool,
    /// The paraphrase sanity check, with three texts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paraphrase: Option<Paraphrase>,
    /// ONNX models: whether fastembed takes the model and its files as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastembed_accepts: Option<bool>,
    /// Why fastembed would refuse them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fastembed_refusals: Vec<String>,
}

/// Why fastembed would refuse an ONNX model's inputs, outputs or pooling (its tokenizer files are
/// judged by [`tokenizer`]).
pub fn fastembed_refusals(info: &ModelInfo, pooling: &Pooling) -> Vec<String> {
    let mut out = Vec::new();
    if info.format != Format::Onnx {
        return out;
    }
    for need in ["input_ids", "attention_mask"] {
        if !info.inputs.iter().any(|i| i.name == need) {
            out.push(format!(
                "the model has no `{need}` input, which fastembed always feeds"
            ));
        }
    }
    for i in &info.inputs {
        if !["input_ids", "attention_mask", "token_type_ids"].contains(&i.name.as_str()) {
            out.push(format!("fastembed does not feed the input `{}`", i.name));
        } else if i.dtype != "int64" {
            out.push(format!(
                "the input `{}` is {}; fastembed feeds int64",
                i.name, i.dtype
            ));
        }
    }
    match declared_output(info) {
        None => out.push(format!(
            "fastembed takes the only output, else one named {}; the model has {}",
            FASTEMBED_OUTPUTS.join(", "),
            info.outputs.len()
        )),
        Some(o) if o.dtype != "float32" => out.push(format!(
            "the output `{}` is {}; fastembed reads float32",
            o.name, o.dtype
        )),
        Some(_) => {}
    }
    match pooling.modes[..] {
        [Pool::Cls | Pool::Mean] => {}
        [other] => out.push(format!(
            "fastembed pools by cls or mean, not {}",
            other.name()
        )),
        _ => out.push("fastembed pools one way, not a concatenation of several".into()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32s(shape: Vec<usize>, v: &[f32]) -> Named {
        ("last_hidden_state".into(), HostTensor::from_f32(shape, v))
    }

    #[test]
    fn pools_over_the_tokens_the_mask_keeps() {
        // Two texts, three tokens, width 2; the second text's last token is padding.
        let out = f32s(
            vec![2, 3, 2],
            &[1., 0., 3., 0., 5., 0., 0., 2., 0., 4., 9., 9.],
        );
        let mask = [1, 1, 1, 1, 1, 0];
        let mean = embeddings(&out, &mask, 2, &[Pool::Mean]).unwrap();
        assert_eq!(mean, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        let cls = embeddings(&out, &mask, 2, &[Pool::Cls]).unwrap();
        assert_eq!(cls[1], vec![0.0, 1.0]);
        let max = embeddings(&out, &mask, 2, &[Pool::Max]).unwrap();
        assert_eq!(max[1], vec![0.0, 1.0], "padding's 9s are not the maximum");
        let last = embeddings(&out, &mask, 2, &[Pool::LastToken]).unwrap();
        assert_eq!(last[1], vec![0.0, 1.0]);
        let both = embeddings(&out, &mask, 2, &[Pool::Cls, Pool::Mean]).unwrap();
        assert_eq!(both[0].len(), 4, "modes concatenate");
        let norm: f64 = both[0].iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_zero_or_infinite_embedding_is_refused() {
        let zero = f32s(vec![1, 2], &[0.0, 0.0]);
        assert!(embeddings(&zero, &[1], 1, &[Pool::Mean])
            .unwrap_err()
            .contains("all zeros"));
        let inf = f32s(vec![1, 2], &[f32::INFINITY, 0.0]);
        assert!(embeddings(&inf, &[1], 1, &[Pool::Mean])
            .unwrap_err()
            .contains("not finite"));
        let wrong = f32s(vec![2, 2], &[1.0, 0.0, 1.0, 0.0]);
        assert!(embeddings(&wrong, &[1], 1, &[Pool::Mean]).is_err());
        let empty = f32s(vec![1, 0], &[]);
        assert!(embeddings(&empty, &[1], 1, &[Pool::Mean])
            .unwrap_err()
            .contains("nothing to embed"));
    }

    #[test]
    fn special_tokens_are_added_as_fastembed_adds_them() {
        // A string: special, normalized (AddedToken::default()'s), as fastembed builds it.
        let t = special_token(&serde_json::json!("[MASK]")).unwrap();
        assert!(t.special && t.normalized && !t.lstrip && !t.single_word);
        let t = special_token(&serde_json::json!({"content": "<s>", "single_word": false,
            "lstrip": true, "rstrip": false, "normalized": false}))
        .unwrap();
        assert!(t.special && t.lstrip && !t.normalized);
        // An object without every flag is skipped, as fastembed skips it.
        assert!(special_token(&serde_json::json!({"content": "<s>"})).is_none());
    }

    #[test]
    fn fastembed_chooses_the_only_output_then_by_name() {
        let a = f32s(vec![1, 2], &[1.0, 0.0]);
        assert_eq!(
            chosen_output(std::slice::from_ref(&a)).unwrap().0,
            "last_hidden_state"
        );
        let other = ("logits".to_string(), HostTensor::from_f32(vec![1], &[0.0]));
        let two = [other.clone(), a];
        assert_eq!(chosen_output(&two).unwrap().0, "last_hidden_state");
        assert!(chosen_output(&[other.clone(), other]).is_err());
    }

    #[test]
    fn paraphrase_check_compares_cosines() {
        let e = vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0]];
        let p = Paraphrase::of(&e).unwrap();
        assert!(p.holds && (p.paraphrase_cosine - 0.8).abs() < 1e-12);
        assert!(Paraphrase::of(&e[..2]).is_none());
    }
}
