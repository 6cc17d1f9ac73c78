//! Writes a chain as Rust: `static` weights in the order the loops read them, one stack buffer
//! per dense layer, dense loops over panels of rows whose sums the compiler keeps in vector
//! registers (independent sums, so that it vectorises them without reassociating anything
//! itself), activations fused into the dense store, and the few transcendental functions
//! implemented here in f64 (core has none).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::quant::{Stored, WeightsDtype};
use super::{Act, Chain, EmitOptions, Layer, Precision, WeightsMode};

/// Above this many parameters `--weights auto` writes a weights file instead of array literals,
/// which rustc compiles slowly.
pub const INLINE_LIMIT: usize = 65_536;

fn lit(v: f32) -> String {
    if v.is_nan() {
        "f32::NAN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "f32::INFINITY".into()
        } else {
            "f32::NEG_INFINITY".into()
        }
    } else {
        format!("{v:?}")
    }
}

/// Expression applying an activation to `v` (an `Acc`), giving an `Acc`.
fn act_expr(a: &Act) -> String {
    match a {
        Act::Relu => "if v > 0.0 { v } else { 0.0 }".into(),
        Act::LeakyRelu(alpha) => format!("if v >= 0.0 {{ v }} else {{ v * {} as Acc }}", lit(*alpha)),
        Act::Sigmoid => "(1.0 / (1.0 + exp(-(v as f64)))) as Acc".into(),
        Act::Tanh => "tanh(v as f64) as Acc".into(),
        Act::HardSigmoid(a, b) => {
            format!("{{ let h = v * {} as Acc + {} as Acc; if h < 0.0 {{ 0.0 }} else if h > 1.0 {{ 1.0 }} else {{ h }} }}", lit(*a), lit(*b))
        }
        Act::Gelu => "gelu(v as f64) as Acc".into(),
        Act::GeluTanh => "gelu_tanh(v as f64) as Acc".into(),
        Act::Clip(lo, hi) => format!("{{ let lo = {} as Acc; let hi = {} as Acc; if v < lo {{ lo }} else if v > hi {{ hi }} else {{ v }} }}", lit(*lo), lit(*hi)),
        Act::Elu(alpha) => format!("if v > 0.0 {{ v }} else {{ ({:?} * (exp(v as f64) - 1.0)) as Acc }}", *alpha as f64),
        Act::Softplus => "softplus(v as f64) as Acc".into(),
    }
}

/// A dense layer's outputs in panels: as many full panels of `r` rows as fit, then one narrower
/// panel for the rest. Returns each part's rows and its panel width.
fn panels(n_out: usize, r: usize) -> Vec<(std::ops::Range<usize>, usize)> {
    let full = n_out / r * r;
    let mut parts = Vec::new();
    if full > 0 {
        parts.push((0..full, r));
    }
    if full < n_out {
        parts.push((full..n_out, n_out - full));
    }
    parts
}

/// How many sets of sums a panel of `width` rows keeps (over interleaved inputs), so that its
/// additions do not wait on each other: sixteen for a single row, four for a panel under three
/// eighths of the full width, else one (measured: 512 inputs to 1 row, 350 → 52 ns; to 4–10
/// rows, 350 → 185 ns).
fn interleave(width: usize, full: usize) -> usize {
    if width == 1 {
        16
    } else if width * 8 < full * 3 {
        4
    } else {
        1
    }
}

/// The sets of sums the AVX2 kernel keeps for a panel of `width` rows (eight to a register):
/// eight registers of sums in flight, enough to cover the latency of fused multiply-adds.
fn simd_interleave(width: usize) -> usize {
    (64 / width).clamp(2, 8)
}

/// Indices into output-major weights (`w[o·n_in + i]`) of `rows`, in panels of `width` rows,
/// each panel column by column: the order in which the kernels read them. A last panel wider
/// than the rows left is filled up with rows of zeros (`None`).
fn pack(n_in: usize, rows: std::ops::Range<usize>, width: usize) -> Vec<Option<usize>> {
    let mut out = Vec::with_capacity(rows.len().div_ceil(width) * width * n_in);
    let end = rows.end;
    for first in rows.step_by(width) {
        for i in 0..n_in {
            out.extend((first..first + width).map(|o| (o < end).then_some(o * n_in + i)));
        }
    }
    out
}

/// The runtime texts included into generated modules (`src/emit/runtime/`).
mod runtime {
    pub const MATH: &str = include_str!("runtime/math.rs");
    pub const SOFTMAX: &str = include_str!("runtime/softmax.rs");
    pub const LOG_SOFTMAX: &str = include_str!("runtime/log_softmax.rs");
    pub const PREDICT_BATCH: &str = include_str!("runtime/predict_batch.rs");
    pub const DENSE: &str = include_str!("runtime/dense.rs");
    pub const SIMD: &str = include_str!("runtime/simd.rs");
}

/// One panel group of a dense layer: its rows, panel width, the sets of sums the safe kernel
/// keeps for it, and the expression of its weights.
struct Part {
    rows: std::ops::Range<usize>,
    width: usize,
    sets: usize,
    weights: String,
}

/// A dense step: layer `k`'s kernel calls, one per part, with the activation fused in.
struct Dense {
    k: usize,
    n_in: usize,
    n_out: usize,
    parts: Vec<Part>,
    scaled: bool,
    act: String,
}

/// A step of the forward pass, with the names of the statics it reads.
enum Step {
    Dense(Dense),
    Concat {
        i: usize,
        before: usize,
        after: usize,
        width: usize,
    },
    Affine {
        scale: String,
        shift: String,
    },
    Act(String),
    Softmax {
        log: bool,
    },
}

/// How a forward pass is written: one sample or a block, safe kernels or the AVX2 ones.
#[derive(Clone, Copy)]
struct Variant {
    block: bool,
    simd: bool,
}

/// `[part]` of an array of a layer's rows, or nothing when the part is the whole layer.
fn part_of(rows: &std::ops::Range<usize>, n_out: usize) -> String {
    if rows.start == 0 && rows.end == n_out {
        String::new()
    } else {
        format!("[{}..{}]", rows.start, rows.end)
    }
}

/// The statements of a forward pass (indented by `pad`), ending with its result expression.
fn body(steps: &[Step], v: Variant, pad: &str, n_in: usize) -> String {
    pass(steps, v, pad, n_in).result()
}

/// A forward pass written, on inputs of `n_in` features.
fn pass<'a>(steps: &[Step], v: Variant, pad: &'a str, n_in: usize) -> Pass<'a> {
    let mut pass = Pass {
        out: String::new(),
        cur: "input".to_string(),
        v,
        pad,
        width: n_in,
        floats: 0,
    };
    for step in steps {
        match step {
            Step::Dense(d) => pass.dense(d),
            Step::Concat {
                i,
                before,
                after,
                width,
            } => pass.concat(*i, *before, *after, *width),
            Step::Affine { scale, shift } => pass.in_place(|target| {
                format!("((v, s), t) in {target}.iter_mut().zip(&{scale}).zip(&{shift}) {{ *v = *v * s + t; }}")
            }),
            Step::Act(expr) => pass.in_place(|target| {
                format!("y in {target}.iter_mut() {{ let v = *y as Acc; *y = ({expr}) as f32; }}")
            }),
            Step::Softmax { log } => pass.softmax(*log),
        }
    }
    pass
}

/// Whether the AVX2 block kernel lays a layer's inputs six samples side by side: when they lie a
/// multiple of 4 KiB apart (`n_in` a multiple of 1024) their six streams share L1 sets, and one
/// stream read by every panel but the first is faster; otherwise the copy costs more than it
/// saves (measured).
fn side_by_side(n_in: usize) -> bool {
    n_in % 1024 == 0
}

/// The stack a block's activations may take at most: half of the 2 MiB a spawned thread gets.
const BLOCK_STACK: usize = 1 << 20;

/// The block sizes `block_size` picks from, largest first; multiples of six, so that a block is
/// whole groups of the AVX2 kernel (the generated kernel asserts it).
const BLOCKS: [usize; 4] = [72, 48, 24, 12];

/// Samples per block of `predict_batch` with the AVX2 kernels, and the bytes of stack their
/// activations take: the largest of [`BLOCKS`] within [`BLOCK_STACK`] (the smallest when none
/// is). More samples per block read each weight panel from memory fewer times (measured at 1536
/// features: blocks of 48 ≈ 13 % faster per sample than blocks of 12; a batch of 64 in one
/// block of 72 ≈ 7 % faster than in blocks of 48 and 16, alternating rounds against tract).
fn block_size(steps: &[Step], n_in: usize) -> (usize, usize) {
    let v = Variant {
        block: true,
        simd: true,
    };
    let floats = pass(steps, v, "", n_in).floats;
    let smallest = BLOCKS[BLOCKS.len() - 1];
    let block = BLOCKS
        .into_iter()
        .find(|b| b * floats * 4 <= BLOCK_STACK)
        .unwrap_or(smallest);
    (block, block * floats * 4)
}

/// A forward pass being written: its text so far and the name of the running activation.
struct Pass<'a> {
    out: String,
    cur: String,
    v: Variant,
    pad: &'a str,
    /// Width of the running activation.
    width: usize,
    /// Floats per sample of the arrays a block pass keeps on the stack (its buffers, the copy of
    /// the input, the side-by-side inputs of the AVX2 block kernel).
    floats: usize,
}

impl Pass<'_> {
    /// Makes a copy of the input to work on in place, unless the activation is already one.
    fn owned(&mut self) {
        if self.cur == "input" {
            let copy = if self.v.block {
                "input.map(|r| *r)"
            } else {
                "*input"
            };
            let _ = writeln!(self.out, "{}let mut x0 = {copy};", self.pad);
            self.cur = "x0".into();
            self.floats += self.width;
        }
    }

    /// A dense step: an output buffer, the fused activation, one kernel call per part.
    fn dense(&mut self, d: &Dense) {
        let (pad, k, n_out) = (self.pad, d.k, d.n_out);
        let y = format!("x{}", k + 1);
        if self.v.block {
            let _ = writeln!(self.out, "{pad}let mut {y} = [[0.0f32; {n_out}]; BLOCK];");
        } else {
            let _ = writeln!(self.out, "{pad}let mut {y} = [0.0f32; {n_out}];");
        }
        let _ = writeln!(self.out, "{pad}let f{k} = |v: Acc| {};", d.act);
        let x = match (self.v.block, self.cur == "input") {
            (true, true) => "input".to_string(),
            (true, false) => format!("{}.each_ref()", self.cur),
            (false, true) => "input".to_string(),
            (false, false) => format!("&{}", self.cur),
        };
        for p in &d.parts {
            let _ = writeln!(self.out, "{pad}{};", self.kernel_call(d, p, &x, &y));
            if self.v.block && side_by_side(d.n_in) {
                self.floats += d.n_in;
            }
        }
        self.floats += n_out;
        self.width = n_out;
        self.cur = y;
    }

    /// The call of the kernel for one part of a dense step, from `x` into `y`: the AVX2 one
    /// where the panel width suits it, else the safe one.
    fn kernel_call(&self, d: &Dense, p: &Part, x: &str, y: &str) -> String {
        let (k, n_in, n_out, v) = (d.k, d.n_in, d.n_out, self.v);
        let part = part_of(&p.rows, n_out);
        let q = if d.scaled {
            format!("&Q{k}{part}, ")
        } else {
            String::new()
        };
        let w = &p.weights;
        let r = p.width;
        let sup = if v.simd { "super::" } else { "" };
        if v.block {
            // Only the AVX2 kernels run blocks; with `--simd` every panel is 8 or 16 rows.
            let first = p.rows.start;
            let packed = if side_by_side(n_in) { n_in } else { 0 };
            format!("unsafe {{ dense_block::<{r}, {n_in}, {n_out}, {packed}>({w}, {q}&B{k}{part}, {x}, &mut {y}, {first}, m, f{k}) }}")
        } else if v.simd && r % 8 == 0 {
            format!(
                "unsafe {{ dense::<{r}, {}>({w}, {q}&B{k}{part}, {x}, &mut {y}{part}, f{k}) }}",
                simd_interleave(r)
            )
        } else {
            format!(
                "{sup}dense::<{r}, {}>({w}, {q}&B{k}{part}, {x}, &mut {y}{part}, f{k})",
                p.sets
            )
        }
    }

    /// A concatenation `c{i}`: the constants before, the activation, the constants after.
    fn concat(&mut self, i: usize, a: usize, z: usize, w: usize) {
        let (pad, cur) = (self.pad, &self.cur);
        let y = format!("c{i}");
        let mut copy = String::new();
        if a > 0 {
            let _ = write!(copy, "c[..{a}].copy_from_slice(&C{i}_BEFORE); ");
        }
        let _ = write!(copy, "c[{a}..{}].copy_from_slice(x); ", w - z);
        if z > 0 {
            let _ = write!(copy, "c[{}..].copy_from_slice(&C{i}_AFTER); ", w - z);
        }
        if self.v.block {
            let src = if cur == "input" {
                "input".to_string()
            } else {
                format!("{cur}.iter()")
            };
            let _ = writeln!(self.out, "{pad}let mut {y} = [[0.0f32; {w}]; BLOCK];");
            let _ = writeln!(
                self.out,
                "{pad}for (c, x) in {y}.iter_mut().zip({src}) {{ {}}}",
                copy
            );
            self.floats += w;
        } else {
            let src = if cur == "input" {
                "input".to_string()
            } else {
                format!("&{cur}")
            };
            let _ = writeln!(self.out, "{pad}let mut {y} = [0.0f32; {w}];");
            let _ = writeln!(
                self.out,
                "{pad}{{ let c = &mut {y}; let x = {src}; {}}}",
                copy
            );
        }
        self.width = w;
        self.cur = y;
    }

    /// A loop changing the activation in place (each sample's, in a block): `pattern_in(target)`
    /// is the loop's pattern, iterator and body over the vector `target`.
    fn in_place(&mut self, pattern_in: impl Fn(&str) -> String) {
        self.owned();
        let (pad, cur) = (self.pad, &self.cur);
        // Each sample's vector of the running activation, as `x`.
        let (each, target, close) = if self.v.block {
            (format!("for x in {cur}.iter_mut() {{ for "), "x", " }")
        } else {
            ("for ".to_string(), cur.as_str(), "")
        };
        let _ = writeln!(self.out, "{pad}{each}{}{close}", pattern_in(target));
    }

    /// A softmax or log-softmax over the features, in place.
    fn softmax(&mut self, log: bool) {
        self.owned();
        let (pad, cur) = (self.pad, &self.cur);
        let f = if log { "log_softmax" } else { "softmax" };
        if self.v.block {
            let _ = writeln!(self.out, "{pad}for x in {cur}.iter_mut() {{ {f}(x); }}");
        } else {
            let _ = writeln!(self.out, "{pad}{f}(&mut {cur});");
        }
    }

    /// The text of the pass, ending with its result.
    fn result(mut self) -> String {
        let result = match (self.cur == "input", self.v.block) {
            (true, true) => "input.map(|r| *r)".to_string(),
            (true, false) => "*input".to_string(),
            (false, _) => self.cur,
        };
        let _ = writeln!(self.out, "{}{result}", self.pad);
        self.out
    }
}

/// What `generate` writes besides the chain.
pub struct Header<'a> {
    /// The model's file name (no directory), named in the header comment.
    pub source: &'a str,
    /// Hex sha256 of the model file, written in the header so a stale module can be spotted.
    pub sha256: &'a str,
    /// What the stored weights do to the outputs (`--weights-dtype f16|int8`), for the header.
    pub weights_note: Option<String>,
}

/// Writes a static array of literals, eight to a line.
fn array(out: &mut String, name: &str, ty: &str, values: impl Iterator<Item = String>) {
    let mut body = String::new();
    let mut n = 0;
    for (i, v) in values.enumerate() {
        body.push_str(if i % 8 == 0 { "\n    " } else { " " });
        body.push_str(&v);
        body.push(',');
        n += 1;
    }
    let _ = writeln!(out, "static {name}: [{ty}; {n}] = [{body}\n];");
}

fn f32_array(out: &mut String, name: &str, values: &[f32]) {
    array(out, name, "f32", values.iter().map(|v| lit(*v)));
}

/// The weight accessor of a module: stored type, bytes per weight in a weights file, and the
/// function that decodes weight `i` where it is multiplied.
fn weight_fn(dtype: WeightsDtype, file_mode: bool) -> (&'static str, String) {
    let ty = if file_mode {
        "u8"
    } else {
        match dtype {
            WeightsDtype::F32 => "f32",
            WeightsDtype::F16 => "u16",
            WeightsDtype::Int8 => "i8",
        }
    };
    let read = match (dtype, file_mode) {
        (WeightsDtype::F32, false) => "w[i] as Acc",
        (WeightsDtype::F32, true) => "match <[u8; 4]>::try_from(&w[4 * i..4 * i + 4]) {\n        Ok(b) => f32::from_le_bytes(b) as Acc,\n        Err(_) => 0.0,\n    }",
        (WeightsDtype::F16, false) => "from_half(w[i]) as Acc",
        (WeightsDtype::F16, true) => "from_half(u16::from_le_bytes([w[2 * i], w[2 * i + 1]])) as Acc",
        (WeightsDtype::Int8, false) => "w[i] as Acc",
        (WeightsDtype::Int8, true) => "w[i] as i8 as Acc",
    };
    let doc = match (dtype, file_mode) {
        (WeightsDtype::F32, true) => "/// Weight `i` of `w`, little-endian bytes decoded where they are multiplied (a plain load on\n/// little-endian machines).\n",
        (WeightsDtype::F16, _) => "/// Weight `i` of `w`, an IEEE half, decoded where it is multiplied.\n",
        (WeightsDtype::Int8, _) => "/// Weight `i` of `w` before its row's scale, which is applied to the sum.\n",
        _ => "",
    };
    let mut f = format!(
        "\n{doc}#[inline(always)]\nfn weight(w: &[{ty}], i: usize) -> Acc {{\n    {read}\n}}\n"
    );
    if dtype == WeightsDtype::F16 {
        f.push_str(
            r#"
/// An IEEE half's bits as f32: exponent and mantissa moved into place and rescaled by 2^112 (exact
/// for normal and subnormal halves; the generator stores no infinity or NaN).
#[inline(always)]
fn from_half(h: u16) -> f32 {
    let h = h as u32;
    let v = f32::from_bits((h & 0x7fff) << 13) * f32::from_bits(0x7780_0000);
    f32::from_bits(v.to_bits() | ((h & 0x8000) << 16))
}
"#,
        );
    }
    (ty, f)
}

/// A runtime text with the weight type, the bytes per weight and the row scales filled in.
fn kernel_text(text: &str, ty: &str, step: &str, scaled: bool) -> String {
    // `scale` is the row scales of the rows being written, `r` the row among them.
    let (arg, header, scale_rows, scale_row) = if scaled {
        (
            "\n    q: &[f32],",
            "for (((panel, bias), out), scale) in panels.zip(b.chunks(R)).zip(y.chunks_mut(R)).zip(q.chunks(R)) {",
            "\n            let scale = &q[rows.clone()];",
            "scale[r] as Acc * ",
        )
    } else {
        (
            "",
            "for ((panel, bias), out) in panels.zip(b.chunks(R)).zip(y.chunks_mut(R)) {",
            "",
            "",
        )
    };
    text.replace("__W__", ty)
        .replace("__SCALE_ROWS__", scale_rows)
        .replace("__SCALE_ROW__", scale_row)
        .replace("__STEP__", step)
        .replace("__SCALE_ARG__", arg)
        .replace("__PANELS__", header)
}

/// Returns the module, and the weights file in `--weights file` mode.
pub fn generate(
    chain: &Chain,
    h: &Header,
    opts: &EmitOptions,
    weights_file: &str,
) -> Result<(String, Option<Vec<u8>>), crate::emit::Unemittable> {
    let file_mode = match opts.weights {
        WeightsMode::File => true,
        WeightsMode::Inline => false,
        WeightsMode::Auto => chain.parameters() > INLINE_LIMIT,
    };
    if opts.simd && opts.precision == Precision::F64 {
        return Err(super::SIMD_F64.into());
    }
    // Panels of 128 bytes of sums: eight SSE registers, enough independent additions to hide
    // their latency, few enough to leave registers for the weights.
    // With `--simd`, panels of 16 rows: the AVX2 block kernel reads one contiguous panel per
    // sixteen rows (two 16-row registers of sums times six samples), and its batch-1 kernel takes
    // two panels at a time from two streams, as fast as one 32-row panel (measured).
    let (acc, rows_per_panel) = match (opts.precision, opts.simd) {
        (Precision::F32, false) => ("f32", 32),
        (Precision::F32, true) => ("f32", 16),
        (Precision::F64, _) => ("f64", 16),
    };
    let mut statics = Statics {
        out: String::new(),
        blob: Vec::new(),
        used: BTreeSet::new(),
        file_mode,
        dtype: opts.weights_dtype,
        rows_per_panel,
        simd: opts.simd,
    };
    header_comment(&mut statics.out, chain, h, opts, acc);
    module_constants(&mut statics.out, chain, acc);
    let steps = statics.steps(chain)?;
    let Statics {
        mut out,
        blob,
        used,
        ..
    } = statics;
    if file_mode {
        // Aligned to a cache line (bytes from `include_bytes!` may start anywhere): f32 panels,
        // 64 · N bytes each, then all start on a line, and no 32-byte load of the AVX2 kernels
        // straddles two lines (measured 6–22 % faster at batch 1 on a 1536-wide MLP).
        let _ = writeln!(
            out,
            "/// The weights file, aligned to a cache line.\n#[repr(C, align(64))]\nstruct Aligned<T>(T);\nstatic WEIGHTS: Aligned<[u8; {}]> = Aligned(*include_bytes!({}));",
            blob.len(),
            crate::escape::rust_str(weights_file)
        );
    }
    entry_points(&mut out, &steps, opts.simd, chain.n_in);
    kernels(&mut out, &steps, opts, file_mode, &used, chain.n_in);
    Ok((out, file_mode.then_some(blob)))
}

/// The comment at the top of a module: source, hash, operators, stored weights, what it needs.
fn header_comment(out: &mut String, chain: &Chain, h: &Header, opts: &EmitOptions, acc: &str) {
    let ops: Vec<String> = chain
        .ops
        .iter()
        .map(|(k, n)| format!("{} ×{n}", crate::escape::rust_comment(k)))
        .collect();
    let _ = writeln!(
        out,
        "// Generated by cargo-infer {} from `{}`; do not edit, regenerate instead.",
        env!("CARGO_PKG_VERSION"),
        crate::escape::rust_comment(h.source)
    );
    let _ = writeln!(out, "// Model sha256: {}", h.sha256);
    let _ = writeln!(
        out,
        "// Operators: {}. Parameters: {}. Accumulation: {acc}.",
        ops.join(", "),
        chain.parameters()
    );
    let stored_as = match opts.weights_dtype {
        WeightsDtype::F32 => None,
        WeightsDtype::F16 => Some("f16, decoded in the dot product"),
        WeightsDtype::Int8 => Some("int8 with one scale per output row, applied to each row's sum"),
    };
    if let Some(how) = stored_as {
        let note = h
            .weights_note
            .as_deref()
            .map(|n| format!(" ({})", crate::escape::rust_comment(n)))
            .unwrap_or_default();
        let _ = writeln!(out, "// Weights: {how}{note}.");
    }
    if opts.simd {
        let _ = writeln!(
            out,
            "// No std, no alloc, no dependencies: usable in a `#![no_std]` crate. `unsafe` only in `mod simd`\n// and the two calls into it (written by `--simd`): x86_64 kernels with AVX2, FMA and F16C, chosen\n// at run time by CPUID; other processors run the safe kernels. Without `--simd` the module has\n// no unsafe code.\n"
        );
    } else {
        let _ = writeln!(
            out,
            "// No std, no alloc, no unsafe, no dependencies: usable in a `#![no_std]` crate.\n"
        );
    }
}

/// The module's lint allowances, its public constants (names and sizes) and the `Acc` type.
fn module_constants(out: &mut String, chain: &Chain, acc: &str) {
    // `Acc` may be f32, and then its casts to f32 are no-ops that clippy would point at; the
    // activations clamp by comparisons, which (unlike `clamp`) cannot panic on bounds the
    // model gives in the wrong order.
    let _ = writeln!(
        out,
        "#![allow(clippy::unnecessary_cast, clippy::manual_clamp)]\n"
    );
    let _ = writeln!(
        out,
        "/// Name of the model's input.\npub const INPUT_NAME: &str = {};",
        crate::escape::rust_str(&chain.input_name)
    );
    let _ = writeln!(
        out,
        "/// Features per sample.\npub const INPUT_SIZE: usize = {};",
        chain.n_in
    );
    let _ = writeln!(
        out,
        "/// Name of the model's output.\npub const OUTPUT_NAME: &str = {};",
        crate::escape::rust_str(&chain.output_name)
    );
    let _ = writeln!(
        out,
        "/// Values per sample.\npub const OUTPUT_SIZE: usize = {};\n",
        chain.n_out
    );
    let _ = writeln!(out, "type Acc = {acc};\n");
}

/// The statics of a module being written (array literals, or ranges of the weights file in
/// `blob`), and which runtime parts its steps use.
struct Statics {
    out: String,
    blob: Vec<u8>,
    used: BTreeSet<&'static str>,
    file_mode: bool,
    dtype: WeightsDtype,
    rows_per_panel: usize,
    /// Panels narrower than eight rows, or between eight and sixteen, are filled up with rows
    /// of zeros to 8 or 16 (the AVX2 kernels' widths).
    simd: bool,
}

impl Statics {
    /// Writes the statics of every layer, and returns the steps that read them (an activation
    /// after a dense layer is fused into it).
    fn steps(&mut self, chain: &Chain) -> Result<Vec<Step>, crate::emit::Unemittable> {
        let mut steps = Vec::new();
        let mut k = 0;
        let mut i = 0;
        while i < chain.layers.len() {
            let step = match &chain.layers[i] {
                Layer::Dense { n_in, n_out, w, b } => {
                    let fused = match chain.layers.get(i + 1) {
                        Some(Layer::Act(a)) => {
                            i += 1;
                            Some(*a)
                        }
                        _ => None,
                    };
                    let act = fused.map(|a| act_expr(&a)).unwrap_or_else(|| "v".into());
                    let step = self.dense(k, *n_in, *n_out, w, b, act)?;
                    k += 1;
                    step
                }
                Layer::Concat { before, after } => {
                    self.concat(i, before, after, chain.width_before(i))
                }
                Layer::Affine { scale, shift } => {
                    let (s, t) = (format!("S{k}_{i}"), format!("T{k}_{i}"));
                    f32_array(&mut self.out, &s, scale);
                    f32_array(&mut self.out, &t, shift);
                    Step::Affine { scale: s, shift: t }
                }
                Layer::Act(a) => Step::Act(act_expr(a)),
                Layer::Softmax | Layer::LogSoftmax => {
                    let log = matches!(chain.layers[i], Layer::LogSoftmax);
                    self.used
                        .insert(if log { "log_softmax" } else { "softmax" });
                    Step::Softmax { log }
                }
            };
            steps.push(step);
            i += 1;
        }
        Ok(steps)
    }

    /// Dense layer `k`: its bias, its row scales (int8), its weights in panels.
    fn dense(
        &mut self,
        k: usize,
        n_in: usize,
        n_out: usize,
        w: &[f32],
        b: &[f32],
        act: String,
    ) -> Result<Step, crate::emit::Unemittable> {
        self.used.insert("dense");
        f32_array(&mut self.out, &format!("B{k}"), b);
        let stored = Stored::new(w, n_in, self.dtype)?;
        if let Stored::Int8 { scale, .. } = &stored {
            f32_array(&mut self.out, &format!("Q{k}"), scale);
        }
        let mut parts = Vec::new();
        for (p, (rows, width)) in panels(n_out, self.rows_per_panel).into_iter().enumerate() {
            let width = if self.simd {
                width.div_ceil(8) * 8
            } else {
                width
            };
            let idx = pack(n_in, rows.clone(), width);
            let wname = format!("W{k}{}", ["", "_TAIL"][p]);
            parts.push(Part {
                rows,
                width,
                sets: interleave(width, self.rows_per_panel),
                weights: self.weights(&wname, &stored, &idx),
            });
        }
        Ok(Step::Dense(Dense {
            k,
            n_in,
            n_out,
            parts,
            scaled: self.dtype == WeightsDtype::Int8,
            act,
        }))
    }

    /// Writes the weights `idx` of `stored` as `name` (a range of the weights file, or an array
    /// literal); returns the expression of that slice.
    fn weights(&mut self, name: &str, stored: &Stored, idx: &[Option<usize>]) -> String {
        let out = &mut self.out;
        if self.file_mode {
            let off = self.blob.len();
            self.blob.extend(stored.bytes_of(idx));
            let _ = writeln!(
                out,
                "const {name}: core::ops::Range<usize> = {off}..{};",
                self.blob.len()
            );
            return format!("&WEIGHTS.0[{name}]");
        }
        match stored {
            Stored::F32(w) => array(
                out,
                name,
                "f32",
                idx.iter().map(|j| lit(j.map_or(0.0, |j| w[j]))),
            ),
            Stored::F16(w) => array(
                out,
                name,
                "u16",
                idx.iter()
                    .map(|j| format!("0x{:04x}", j.map_or(0, |j| w[j]))),
            ),
            Stored::Int8 { q, .. } => array(
                out,
                name,
                "i8",
                idx.iter().map(|j| j.map_or(0, |j| q[j]).to_string()),
            ),
        }
        format!("&{name}")
    }

    /// Concatenation layer `i`: its constant parts.
    fn concat(&mut self, i: usize, before: &[f32], after: &[f32], width_before: usize) -> Step {
        // Not folded into a dense layer after it: the parts are copied side by side.
        if !before.is_empty() {
            f32_array(&mut self.out, &format!("C{i}_BEFORE"), before);
        }
        if !after.is_empty() {
            f32_array(&mut self.out, &format!("C{i}_AFTER"), after);
        }
        Step::Concat {
            i,
            before: before.len(),
            after: after.len(),
            width: width_before + before.len() + after.len(),
        }
    }
}

/// The text that makes `predict` or `predict_block` return what the AVX2 kernels compute when
/// the processor has them (nothing without `--simd`).
fn simd_dispatch(simd: bool, call: &str) -> String {
    if simd {
        format!("    #[cfg(all(target_arch = \"x86_64\", not(target_env = \"sgx\")))]\n    if simd::available() {{\n        // SAFETY: the processor has AVX2, FMA and F16C and the OS saves their registers.\n        return unsafe {{ simd::{call} }};\n    }}\n")
    } else {
        String::new()
    }
}

/// The public functions: `predict`, `predict_block`, the batch runtime, `simd_kernels`.
fn entry_points(out: &mut String, steps: &[Step], simd: bool, n_in: usize) {
    let single = Variant {
        block: false,
        simd: false,
    };
    let _ = write!(
        out,
        "\n/// Runs the model on one sample.\npub fn predict(input: &[f32; INPUT_SIZE]) -> [f32; OUTPUT_SIZE] {{\n{}{}}}\n",
        simd_dispatch(simd, "predict(input)"),
        body(steps, single, "    ", n_in)
    );
    // The safe kernels run a block sample by sample: blocked, their sums do not fit SSE
    // registers and the panels are re-read from L2 (measured slower than one by one).
    let fast = if simd {
        "    #[cfg(all(target_arch = \"x86_64\", not(target_env = \"sgx\")))]\n    if simd::available() {\n        // One sample alone takes the kernels of `predict` (they keep more sums in flight than\n        // a block of one); two or more the block kernels, which read each weight once for all.\n        let mut out = [[0.0; OUTPUT_SIZE]; BLOCK];\n        if m == 1 {\n            // SAFETY: the processor has AVX2, FMA and F16C and the OS saves their registers.\n            out[0] = unsafe { simd::predict(input[0]) };\n        } else {\n            // SAFETY: as above.\n            out = unsafe { simd::predict_block(input, m) };\n        }\n        return out;\n    }\n"
    } else {
        ""
    };
    let _ = write!(
        out,
        "\n/// Runs the model on the first `m` of `BLOCK` samples (the others' outputs mean nothing): with\n/// the AVX2 kernels each weight is read once for all of them; the safe kernels take them one\n/// by one.\n#[allow(clippy::needless_range_loop)]\nfn predict_block(input: [&[f32; INPUT_SIZE]; BLOCK], m: usize) -> [[f32; OUTPUT_SIZE]; BLOCK] {{\n{fast}    core::array::from_fn(|k| if k < m {{ predict(input[k]) }} else {{ [0.0; OUTPUT_SIZE] }})\n}}\n\n",
    );
    let block = if simd {
        let (block, bytes) = block_size(steps, n_in);
        let why = if bytes <= BLOCK_STACK {
            let sizes: Vec<String> = BLOCKS.iter().map(usize::to_string).collect();
            let (last, rest) = sizes.split_last().expect("block sizes");
            format!(
                "the largest of {} and {last} whose activations fit in",
                rest.join(", ")
            )
        } else {
            "the fewest it takes, though their activations pass".to_string()
        };
        let mib = BLOCK_STACK >> 20;
        format!("/// Samples run together by `predict_batch`: with the AVX2 kernels each weight is read from\n/// memory once per block, which they take six samples at a time (the sums of 16 rows for six\n/// samples fill twelve of the sixteen registers), the panel staying in cache for the block's\n/// other groups. {block} here, {why} {mib} MiB:\n/// they take {} KiB of stack (the safe kernels, one sample at a time, that of `predict`).\nconst BLOCK: usize = {block};", bytes.div_ceil(1024))
    } else {
        "/// Samples given to `predict_block` at a time (the safe kernels run them one by one).\nconst BLOCK: usize = 12;".to_string()
    };
    out.push_str(&runtime::PREDICT_BATCH.replace("__BLOCK__", &block));
    if simd {
        out.push_str("\n/// Whether `predict` and `predict_batch` run the AVX2 kernels on this processor.\npub fn simd_kernels() -> bool {\n    #[cfg(all(target_arch = \"x86_64\", not(target_env = \"sgx\")))]\n    return simd::available();\n    #[allow(unreachable_code)]\n    false\n}\n");
    }
}

/// The runtime the steps use: the weight accessor and dense kernels, `mod simd`, softmax, and
/// the math functions.
fn kernels(
    out: &mut String,
    steps: &[Step],
    opts: &EmitOptions,
    file_mode: bool,
    used: &BTreeSet<&str>,
    n_in: usize,
) {
    let dtype = opts.weights_dtype;
    let (ty, weight) = weight_fn(dtype, file_mode);
    let step = if file_mode {
        match dtype.bytes() {
            1 => String::new(),
            b => format!(" * {b}"),
        }
    } else {
        String::new()
    };
    let scaled = dtype == WeightsDtype::Int8;
    if used.contains("dense") {
        out.push_str(&weight);
        out.push_str(&kernel_text(runtime::DENSE, ty, &step, scaled));
    }
    if opts.simd {
        out.push_str(
            &kernel_text(runtime::SIMD, ty, &step, scaled)
                .replace("__LOAD__", simd_load(dtype))
                .replace("__BYTES__", &dtype.bytes().to_string())
                .replace("__ENTRIES__", &simd_entries(steps, n_in)),
        );
    }
    if used.contains("softmax") {
        out.push_str(runtime::SOFTMAX);
    }
    if used.contains("log_softmax") {
        out.push_str(runtime::LOG_SOFTMAX);
    }
    out.push_str(runtime::MATH);
}

/// The AVX2 load of eight weights at element `e` of a panel, as f32.
fn simd_load(dtype: WeightsDtype) -> &'static str {
    match dtype {
        WeightsDtype::F32 => "_mm256_loadu_ps(p.add(4 * e) as *const f32)",
        WeightsDtype::F16 => "_mm256_cvtph_ps(_mm_loadu_si128(p.add(2 * e) as *const __m128i))",
        WeightsDtype::Int8 => {
            "_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(e) as *const __m128i)))"
        }
    }
}

/// `mod simd`'s `predict` and `predict_block`, with the AVX2 kernels.
fn simd_entries(steps: &[Step], n_in: usize) -> String {
    let fast = Variant {
        block: false,
        simd: true,
    };
    let fast_block = Variant {
        block: true,
        simd: true,
    };
    format!(
        "\n    /// `super::predict` with the AVX2 kernels.\n    ///\n    /// # Safety\n    /// `available()` returned true.\n    #[target_feature(enable = \"avx2,fma,f16c\")]\n    #[allow(unused_unsafe)]\n    pub unsafe fn predict(input: &[f32; INPUT_SIZE]) -> [f32; OUTPUT_SIZE] {{\n{}    }}\n\n    /// `super::predict_block` with the AVX2 kernels, on the first `m` samples.\n    ///\n    /// # Safety\n    /// `available()` returned true.\n    #[target_feature(enable = \"avx2,fma,f16c\")]\n    #[allow(unused_unsafe, clippy::needless_range_loop)]\n    pub unsafe fn predict_block(input: [&[f32; INPUT_SIZE]; BLOCK], m: usize) -> [[f32; OUTPUT_SIZE]; BLOCK] {{\n{}    }}\n",
        body(steps, fast, "        ", n_in),
        body(steps, fast_block, "        ", n_in)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of 72 samples while their activations fit in 1 MiB of stack, else 48, 24, 12;
    /// the side-by-side copies (inputs a multiple of 1024 wide) count.
    #[test]
    fn blocks_are_as_large_as_the_stack_allows() {
        let dense = |k: usize, n_in: usize, n_out: usize| {
            Step::Dense(Dense {
                k,
                n_in,
                n_out,
                parts: vec![Part {
                    rows: 0..n_out,
                    width: 16,
                    sets: 1,
                    weights: format!("W{k}"),
                }],
                scaled: false,
                act: "v".into(),
            })
        };
        let mlp = |w: usize| [dense(0, w, w), dense(1, w, w), dense(2, w, 10)];
        // 1536 wide: two buffers of 1536 and one of 10 floats a sample, no copies.
        assert_eq!(block_size(&mlp(1536), 1536), (72, 72 * 3082 * 4));
        // 1024 wide: the buffers and three side-by-side copies, 5130 floats a sample.
        assert_eq!(block_size(&mlp(1024), 1024), (48, 48 * 5130 * 4));
        // 2048 wide: the buffers and three side-by-side copies, 10250 floats a sample.
        assert_eq!(block_size(&mlp(2048), 2048), (24, 24 * 10250 * 4));
        // An affine step first copies the input: one more buffer.
        let affine = Step::Affine {
            scale: "S".into(),
            shift: "T".into(),
        };
        let [a, b, c] = mlp(1536);
        assert_eq!(block_size(&[affine, a, b, c], 1536), (48, 48 * 4618 * 4));
        // Narrow layers: the largest block.
        assert_eq!(block_size(&mlp(512), 512), (72, 72 * 1034 * 4));
        // Too wide for even 12 within the budget: 12, and the figure says so.
        let (block, bytes) = block_size(&mlp(16384), 16384);
        assert_eq!(block, 12);
        assert!(bytes > BLOCK_STACK);
    }

    /// Constants reach the generated code as float literals: ONNX's default Elu alpha, 1.0,
    /// written `1`, made an integer times an f64, which does not compile.
    #[test]
    fn activation_constants_are_float_literals() {
        assert!(
            act_expr(&Act::Elu(1.0)).contains("(1.0 * (exp("),
            "{}",
            act_expr(&Act::Elu(1.0))
        );
        assert!(act_expr(&Act::LeakyRelu(1.0)).contains("v * 1.0 as Acc"));
        assert!(act_expr(&Act::Clip(0.0, 6.0)).contains("let hi = 6.0 as Acc"));
    }
}
