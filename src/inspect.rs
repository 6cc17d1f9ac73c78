//! `cargo infer inspect`: the model summary, for people and (with `--format json`) for tools.

use std::fmt::Write;

use crate::cli::{GlobalArgs, InspectArgs};
use crate::error::{exit, ExpectedError};
use crate::model::{self, Dim, Format, ModelInfo, Risk, ValueSpec, Verdict};
use crate::output::{self, human_bytes, human_count, OutputFormat, Style};

/// `inspect`: reads the model, draws its graph to `--graph FILE` when asked (ONNX only), and
/// prints the summary as text or JSON ([`ModelInfo`] serialized); exit code 0.
pub fn run(global: &GlobalArgs, args: &InspectArgs) -> Result<i32, ExpectedError> {
    let info = model::inspect(&args.model)?;
    if let Some(out) = &args.graph {
        if info.format != model::Format::Onnx {
            return Err(ExpectedError::Usage(format!(
                "--graph draws ONNX graphs; {} is a {} file",
                args.model.display(),
                info.format.as_str()
            )));
        }
        let picture = crate::graph::render(&args.model, out)?;
        crate::util::write_all_or_nothing(&[(out.clone(), picture)])
            .map_err(|e| e.for_flag("--graph"))?;
    }
    let text = match global.format {
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(&info).expect("ModelInfo serialises");
            s.push('\n');
            s
        }
        OutputFormat::Human | OutputFormat::Junit => render(
            &info,
            Style {
                color: output::use_color(global.color),
            },
            global.verbose,
        ),
    };
    output::print(&text);
    Ok(exit::OK)
}

fn shape(dims: &[Dim], known: bool) -> String {
    if !known {
        return "[unknown rank]".into();
    }
    format!(
        "[{}]",
        dims.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn values(out: &mut String, style: Style, title: &str, vs: &[ValueSpec]) {
    if vs.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {}", style.bold(title));
    let w = vs.iter().map(|v| v.name.len()).max().unwrap_or(0).min(40);
    for v in vs {
        let _ = writeln!(
            out,
            "    {:w$}  {:9} {}",
            v.name,
            v.dtype,
            shape(&v.shape, v.shape_known)
        );
    }
}

/// The human summary. `verbose` lists every tensor instead of the largest few.
pub fn render(info: &ModelInfo, style: Style, verbose: u8) -> String {
    let mut out = String::new();
    head(&mut out, info, style);
    values(&mut out, style, "inputs", &info.inputs);
    values(&mut out, style, "outputs", &info.outputs);
    signature(&mut out, info, style);
    operators(&mut out, info, style);
    weights(&mut out, info, style, verbose);
    architecture(&mut out, info, style);
    safety(&mut out, info, style);
    metadata(&mut out, info, style, verbose);
    let d = &info.details;
    if !d.files.is_empty() {
        let _ = writeln!(out, "  {}  {}", style.bold("files"), d.files.join(", "));
    }
    out
}

/// The first line: the path, what kind of file, and its version facts.
fn head(out: &mut String, info: &ModelInfo, style: Style) {
    let d = &info.details;
    let kind = match info.format {
        Format::Onnx => "ONNX model",
        Format::Safetensors => "safetensors weights",
        Format::Pytorch => "PyTorch checkpoint",
        Format::Torchscript => "TorchScript module",
        Format::Gguf => "GGUF model",
    };
    let mut facts = Vec::new();
    if let Some(ir) = d.ir_version {
        facts.push(format!("IR {ir}"));
    }
    if !info.opsets.is_empty() {
        let ops: Vec<String> = info
            .opsets
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        facts.push(format!("opset {}", ops.join(", ")));
    }
    if let Some(p) = &d.producer {
        facts.push(format!("by {p}"));
    }
    if let Some(v) = d.gguf_version {
        facts.push(format!("version {v}"));
    }
    let facts = if facts.is_empty() {
        String::new()
    } else {
        format!(" ({})", facts.join(", "))
    };
    let _ = writeln!(out, "{}: {}{}", style.bold(&info.path), kind, facts);
}

/// A TorchScript module's signature, which has no shapes.
fn signature(out: &mut String, info: &ModelInfo, style: Style) {
    if let Some(sig) = &info.details.signature {
        let _ = writeln!(out, "  {}  {sig}", style.bold("signature"));
        let _ = writeln!(
            out,
            "    {}",
            style.dim("TorchScript keeps no input shapes: give them to `check` with --input-shape")
        );
    }
}

/// The operators of a graph, the most used first, and its custom domains.
fn operators(out: &mut String, info: &ModelInfo, style: Style) {
    if info.operators.is_empty() {
        return;
    }
    let nodes: u64 = info.operators.values().sum();
    let mut ops: Vec<(&String, &u64)> = info.operators.iter().collect();
    ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let list: Vec<String> = ops.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(
        out,
        "  {}  {nodes} nodes, {} kinds",
        style.bold("operators"),
        ops.len()
    );
    let _ = writeln!(out, "    {}", list.join(", "));
    let d = &info.details;
    if !d.custom_domains.is_empty() {
        let _ = writeln!(
            out,
            "    {}",
            style.warn(&format!(
                "custom operator domains: {} (most runtimes lack them)",
                d.custom_domains.join(", ")
            ))
        );
    }
}

/// The weights: counts and size, dtypes, where they are (state_dict key, external data), and the
/// tensors.
fn weights(out: &mut String, info: &ModelInfo, style: Style, verbose: u8) {
    let d = &info.details;
    let _ = writeln!(
        out,
        "  {}  {} tensors, {} parameters, {}",
        style.bold("weights"),
        info.tensor_count,
        human_count(info.parameters),
        human_bytes(info.weight_bytes)
    );
    if !d.dtypes.is_empty() {
        let list: Vec<String> = d.dtypes.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        let _ = writeln!(out, "    dtypes: {}", list.join(", "));
    }
    if let Some(k) = &d.state_dict_key {
        let _ = writeln!(out, "    state_dict under key `{k}`");
    }
    for f in &d.external_data {
        let state = if let Some(why) = &f.outside {
            style.bad(&format!("OUTSIDE the model's directory: {why}; not opened"))
        } else if f.exists {
            style.good("present")
        } else {
            style.bad("MISSING")
        };
        let _ = writeln!(out, "    external data: {} ({state})", f.file);
    }
    if !info.tensors.is_empty() && info.format != Format::Onnx || verbose > 0 {
        tensors(out, info, style, verbose);
    }
}

/// The tensors: the largest few, or with `-v` every one in the file's order.
fn tensors(out: &mut String, info: &ModelInfo, style: Style, verbose: u8) {
    let mut ts: Vec<&model::TensorSummary> = info.tensors.iter().collect();
    let shown = if verbose > 0 { ts.len() } else { 8 };
    if verbose == 0 {
        ts.sort_by_key(|t| std::cmp::Reverse(t.bytes));
    }
    let w = ts
        .iter()
        .take(shown)
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0)
        .min(48);
    for t in ts.iter().take(shown) {
        let _ = writeln!(out, "    {:w$}  {:9} {:?}", t.name, t.dtype, t.shape);
    }
    if ts.len() > shown {
        let _ = writeln!(
            out,
            "    {}",
            style.dim(&format!("… {} more (-v lists all)", ts.len() - shown))
        );
    }
}

/// The architecture's sizes and its class, with why.
fn architecture(out: &mut String, info: &ModelInfo, style: Style) {
    let d = &info.details;
    if !d.sizes.is_empty() {
        let list: Vec<String> = d.sizes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  {}  {}", style.bold("sizes"), list.join(", "));
    }
    let _ = writeln!(
        out,
        "  {}  {} — {}",
        style.bold("class"),
        info.architecture.class.as_str(),
        info.architecture.reasons.join("; ")
    );
}

/// Whether loading the file would run code or read outside its directory, and the findings.
fn safety(out: &mut String, info: &ModelInfo, style: Style) {
    let safety = match (info.safety.verdict, info.safety.risk) {
        (Verdict::NotApplicable, _) => style.dim("not applicable (this format holds no code)"),
        (Verdict::Unsafe, _) if info.format == Format::Onnx => {
            style.bad("UNSAFE: loading it would read files outside its directory")
        }
        (Verdict::Unsafe, _) => style.bad("UNSAFE: loading it in Python would run code"),
        (Verdict::Safe, Risk::Suspicious) => {
            style.warn("no known-dangerous code, but unknown globals (see below)")
        }
        (Verdict::Safe, _) => style.good("safe (only tensor-rebuild functions)"),
    };
    let _ = writeln!(out, "  {}  {safety}", style.bold("safety"));
    for f in &info.safety.findings {
        let _ = writeln!(out, "    {f}");
    }
}

/// The file's metadata: the first few entries (every one with `-v`), long values cut.
fn metadata(out: &mut String, info: &ModelInfo, style: Style, verbose: u8) {
    if info.metadata.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {}", style.bold("metadata"));
    let shown = if verbose > 0 { usize::MAX } else { 12 };
    for (k, v) in info.metadata.iter().take(shown) {
        let v: String = if v.chars().count() > 80 {
            v.chars().take(77).collect::<String>() + "…"
        } else {
            v.clone()
        };
        let _ = writeln!(out, "    {k} = {v}");
    }
    if info.metadata.len() > shown {
        let _ = writeln!(
            out,
            "    {}",
            style.dim(&format!(
                "… {} more (-v lists all)",
                info.metadata.len() - shown
            ))
        );
    }
}
