//! Writes a chain as Rust: `static` weights in the order the loops read them, one stack buffer
//! per dense layer, dense loops over panels of rows whose sums the compiler keeps in vector
//! registers (independent sums, so that it vectorises them without reassociating anything
//! itself), activations fused into the dense store, and the few transcendental functions
//! implemented here in f64 (core has none).

use std::fmt::Write;

use super::{Act, Chain, EmitOptions, Layer, Precision, WeightsMode};

pub struct Header<'a> {
    pub source: &'a str,
    pub sha256: &'a str,
}

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

fn array(out: &mut String, name: &str, values: &[f32]) {
    let _ = write!(out, "static {name}: [f32; {}] = [", values.len());
    for (i, v) in values.iter().enumerate() {
        out.push_str(if i % 8 == 0 { "\n    " } else { " " });
        out.push_str(&lit(*v));
        out.push(',');
    }
    out.push_str("\n];\n");
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
        Act::Elu(alpha) => format!("if v > 0.0 {{ v }} else {{ ({} * (exp(v as f64) - 1.0)) as Acc }}", *alpha as f64),
        Act::Softplus => "softplus(v as f64) as Acc".into(),
    }
}

const MATH: &str = r#"
/// e^x, accurate to f64 rounding: x = k·ln2 + r, |r| ≤ ln2/2, e^r by its Taylor series.
#[allow(dead_code)]
fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    if x < -745.0 {
        return 0.0;
    }
    let kf = x * core::f64::consts::LOG2_E;
    let k = if kf < 0.0 { (kf - 0.5) as i64 } else { (kf + 0.5) as i64 };
    let r = (x - k as f64 * 6.931_471_803_691_238e-1) - k as f64 * 1.908_214_929_270_587_7e-10;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut n = 1.0;
    while n < 18.0 {
        term *= r / n;
        sum += term;
        n += 1.0;
    }
    // 2^k as two factors, so that subnormal results are reached.
    let half = k / 2;
    let p1 = f64::from_bits(((half + 1023) as u64) << 52);
    let p2 = f64::from_bits(((k - half + 1023) as u64) << 52);
    sum * p1 * p2
}

/// ln x for x > 0: x = m·2^e with m near 1, ln m = 2·atanh((m-1)/(m+1)).
#[allow(dead_code)]
fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x == f64::INFINITY {
        return x;
    }
    let mut m = x;
    let mut e = 0i32;
    while m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    while m < core::f64::consts::FRAC_1_SQRT_2 {
        m *= 2.0;
        e -= 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut n = 1.0;
    while n < 40.0 {
        sum += term / n;
        term *= s2;
        n += 2.0;
    }
    2.0 * sum + e as f64 * core::f64::consts::LN_2
}

#[allow(dead_code)]
fn tanh(x: f64) -> f64 {
    let a = if x < 0.0 { -x } else { x };
    let t = if a < 1e-4 {
        a - a * a * a / 3.0
    } else if a > 20.0 {
        1.0
    } else {
        let e = exp(2.0 * a);
        (e - 1.0) / (e + 1.0)
    };
    if x < 0.0 { -t } else { t }
}

/// erf x by its Taylor series (|x| < 2), 1 - erfc x by a continued fraction beyond.
#[allow(dead_code)]
fn erf(x: f64) -> f64 {
    let a = if x < 0.0 { -x } else { x };
    let r = if a < 2.0 {
        let x2 = a * a;
        let mut term = a;
        let mut sum = a;
        let mut n = 0.0;
        while n < 60.0 {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * core::f64::consts::FRAC_2_SQRT_PI
    } else {
        1.0 - erfc_large(a)
    };
    if x < 0.0 { -r } else { r }
}

/// erfc z for z ≥ 2: e^{-z²}/√π · 1/(z + ½/(z + 1/(z + 3/2/(z + …)))).
#[allow(dead_code)]
fn erfc_large(z: f64) -> f64 {
    let mut t = z;
    let mut n = 80.0;
    while n > 0.0 {
        t = z + (n * 0.5) / t;
        n -= 1.0;
    }
    exp(-z * z) * core::f64::consts::FRAC_2_SQRT_PI * 0.5 / t
}

/// x·Φ(x), with the left tail through erfc so that it keeps its relative accuracy.
#[allow(dead_code)]
fn gelu(x: f64) -> f64 {
    let z = x * core::f64::consts::FRAC_1_SQRT_2;
    if z < -2.0 {
        0.5 * x * erfc_large(-z)
    } else {
        0.5 * x * (1.0 + erf(z))
    }
}

#[allow(dead_code)]
fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + tanh(0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x)))
}

#[allow(dead_code)]
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        return x;
    }
    let y = exp(x);
    if y < 1e-5 { y - y * y / 2.0 + y * y * y / 3.0 } else { ln(1.0 + y) }
}
"#;

/// The running activation as a slice argument (`input` is already a reference).
fn arg(cur: &str) -> String {
    if cur == "input" {
        "input".into()
    } else {
        format!("&{cur}")
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

/// Output-major weights (`w[o·n_in + i]`) of `rows`, reordered into panels of `width` rows, each
/// panel column by column: the order in which `dense` reads them.
fn pack(w: &[f32], n_in: usize, rows: std::ops::Range<usize>, width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * n_in);
    for first in rows.step_by(width) {
        for i in 0..n_in {
            out.extend((first..first + width).map(|o| w[o * n_in + i]));
        }
    }
    out
}

/// Returns the module, and the weights file in `--weights file` mode.
pub fn generate(
    chain: &Chain,
    h: &Header,
    opts: &EmitOptions,
    weights_file: &str,
) -> (String, Option<Vec<u8>>) {
    let file_mode = match opts.weights {
        WeightsMode::File => true,
        WeightsMode::Inline => false,
        WeightsMode::Auto => chain.parameters() > INLINE_LIMIT,
    };
    // Panels of 128 bytes of sums: eight SSE registers, enough independent additions to hide
    // their latency, few enough to leave registers for the weights.
    let (acc, rows_per_panel) = match opts.precision {
        Precision::F32 => ("f32", 32),
        Precision::F64 => ("f64", 16),
    };
    let mut out = String::new();
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
    let _ = writeln!(
        out,
        "// No std, no alloc, no unsafe, no dependencies: usable in a `#![no_std]` crate.\n"
    );
    // `Acc` may be f32, and then its casts to f32 are no-ops that clippy would point at.
    let _ = writeln!(out, "#![allow(clippy::unnecessary_cast)]\n");
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

    let mut blob: Vec<u8> = Vec::new();
    let mut body = String::new();
    let mut cur = "input".to_string();
    let mut k = 0;
    let mut used = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < chain.layers.len() {
        match &chain.layers[i] {
            Layer::Dense { n_in, n_out, w, b } => {
                let fused = match chain.layers.get(i + 1) {
                    Some(Layer::Act(a)) => {
                        i += 1;
                        Some(*a)
                    }
                    _ => None,
                };
                let f = fused.map(|a| act_expr(&a)).unwrap_or_else(|| "v".into());
                let (y, bname) = (format!("x{}", k + 1), format!("B{k}"));
                used.insert("dense");
                array(&mut out, &bname, b);
                let _ = writeln!(body, "    let mut {y} = [0.0f32; {n_out}];");
                let _ = writeln!(body, "    let f{k} = |v: Acc| {f};");
                for (p, (rows, width)) in panels(*n_out, rows_per_panel).into_iter().enumerate() {
                    let packed = pack(w, *n_in, rows.clone(), width);
                    let wname = format!("W{k}{}", ["", "_TAIL"][p]);
                    let weights = if file_mode {
                        let off = blob.len();
                        blob.extend(packed.iter().flat_map(|v| v.to_le_bytes()));
                        let _ = writeln!(
                            out,
                            "const {wname}: core::ops::Range<usize> = {off}..{};",
                            blob.len()
                        );
                        format!("&WEIGHTS[{wname}]")
                    } else {
                        array(&mut out, &wname, &packed);
                        format!("&{wname}")
                    };
                    let whole = rows.start == 0 && rows.end == *n_out;
                    let part = if whole {
                        String::new()
                    } else {
                        format!("[{}..{}]", rows.start, rows.end)
                    };
                    let _ = writeln!(
                        body,
                        "    dense::<{width}, {}>({weights}, &{bname}{part}, {}, &mut {y}{part}, f{k});",
                        interleave(width, rows_per_panel),
                        arg(&cur)
                    );
                }
                cur = y;
                k += 1;
            }
            Layer::Concat { before, after } => {
                // Not folded into a dense layer after it: the parts are copied side by side.
                let (a, z) = (before.len(), after.len());
                let width = chain.width_before(i) + a + z;
                let y = format!("c{i}");
                let _ = writeln!(body, "    let mut {y} = [0.0f32; {width}];");
                if a > 0 {
                    array(&mut out, &format!("C{i}_BEFORE"), before);
                    let _ = writeln!(body, "    {y}[..{a}].copy_from_slice(&C{i}_BEFORE);");
                }
                let _ = writeln!(
                    body,
                    "    {y}[{a}..{}].copy_from_slice({});",
                    width - z,
                    arg(&cur)
                );
                if z > 0 {
                    array(&mut out, &format!("C{i}_AFTER"), after);
                    let _ = writeln!(
                        body,
                        "    {y}[{}..].copy_from_slice(&C{i}_AFTER);",
                        width - z
                    );
                }
                cur = y;
            }
            Layer::Affine { scale, shift } => {
                array(&mut out, &format!("S{k}_{i}"), scale);
                array(&mut out, &format!("T{k}_{i}"), shift);
                let (s, t) = (format!("S{k}_{i}"), format!("T{k}_{i}"));
                if cur == "input" {
                    let _ = writeln!(body, "    let mut x0 = *input;");
                    cur = "x0".into();
                }
                let _ = writeln!(body, "    for ((v, s), t) in {cur}.iter_mut().zip(&{s}).zip(&{t}) {{\n        *v = *v * s + t;\n    }}");
            }
            Layer::Act(a) => {
                if cur == "input" {
                    let _ = writeln!(body, "    let mut x0 = *input;");
                    cur = "x0".into();
                }
                let _ = writeln!(body, "    for x in {cur}.iter_mut() {{\n        let v = *x as Acc;\n        *x = ({}) as f32;\n    }}", act_expr(a));
            }
            Layer::Softmax | Layer::LogSoftmax => {
                let log = matches!(chain.layers[i], Layer::LogSoftmax);
                used.insert(if log { "log_softmax" } else { "softmax" });
                if cur == "input" {
                    let _ = writeln!(body, "    let mut x0 = *input;");
                    cur = "x0".into();
                }
                let _ = writeln!(
                    body,
                    "    {}(&mut {cur});",
                    if log { "log_softmax" } else { "softmax" }
                );
            }
        }
        i += 1;
    }
    if file_mode {
        let _ = writeln!(
            out,
            "static WEIGHTS: [u8; {}] = *include_bytes!({});",
            blob.len(),
            crate::escape::rust_str(weights_file)
        );
    }
    let result = if cur == "input" {
        "*input".to_string()
    } else {
        cur.clone()
    };

    let _ = writeln!(out, "\n/// Runs the model on one sample.");
    let _ = writeln!(
        out,
        "pub fn predict(input: &[f32; INPUT_SIZE]) -> [f32; OUTPUT_SIZE] {{"
    );
    out.push_str(&body);
    let _ = writeln!(out, "    {result}\n}}\n");
    out.push_str(
        r#"/// `predict_batch` was given slices whose lengths do not fit INPUT_SIZE and OUTPUT_SIZE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthError {
    pub input: usize,
    pub output: usize,
}

/// Runs every sample of `input` (`n · INPUT_SIZE` values) into `out` (`n · OUTPUT_SIZE`);
/// returns `n`.
pub fn predict_batch(input: &[f32], out: &mut [f32]) -> Result<usize, LengthError> {
    let n = input.len() / INPUT_SIZE;
    if input.len() != n * INPUT_SIZE || out.len() != n * OUTPUT_SIZE {
        return Err(LengthError { input: input.len(), output: out.len() });
    }
    for (x, y) in input.chunks_exact(INPUT_SIZE).zip(out.chunks_exact_mut(OUTPUT_SIZE)) {
        if let Ok(x) = <&[f32; INPUT_SIZE]>::try_from(x) {
            y.copy_from_slice(&predict(x));
        }
    }
    Ok(n)
}
"#,
    );
    if used.contains("dense") {
        out.push_str(if file_mode {
            r#"
/// Weight `i` of `w`, little-endian bytes decoded where they are multiplied (a plain load on
/// little-endian machines).
#[inline(always)]
fn weight(w: &[u8], i: usize) -> Acc {
    match <[u8; 4]>::try_from(&w[4 * i..4 * i + 4]) {
        Ok(b) => f32::from_le_bytes(b) as Acc,
        Err(_) => 0.0,
    }
}
"#
        } else {
            r#"
#[inline(always)]
fn weight(w: &[f32], i: usize) -> Acc {
    w[i] as Acc
}
"#
        });
        let (ty, step) = if file_mode {
            ("u8", " * 4")
        } else {
            ("f32", "")
        };
        let _ = write!(
            out,
            r#"
/// y = f(b + W·x) for `R` outputs at a time. W is stored in panels of `R` rows, column by column
/// (the `R` weights of one input side by side), so that the loop reads one contiguous stream and
/// keeps the `R` sums in vector registers: each input is loaded once per panel, not once per row.
/// Narrow panels keep `U` sets of sums over interleaved inputs, so that their additions do not
/// wait on each other.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn dense<const R: usize, const U: usize>(
    w: &[{ty}],
    b: &[f32],
    x: &[f32],
    y: &mut [f32],
    f: impl Fn(Acc) -> Acc,
) {{
    let panels = w.chunks_exact(R * x.len(){step});
    for ((panel, bias), out) in panels.zip(b.chunks_exact(R)).zip(y.chunks_exact_mut(R)) {{
        let mut acc = [[0.0 as Acc; R]; U];
        let mut cols = panel.chunks_exact(R * U{step});
        let mut xs = x.chunks_exact(U);
        for (col, v) in (&mut cols).zip(&mut xs) {{
            for u in 0..U {{
                for j in 0..R {{
                    acc[u][j] += weight(col, u * R + j) * v[u] as Acc;
                }}
            }}
        }}
        for (col, v) in cols.remainder().chunks_exact(R{step}).zip(xs.remainder()) {{
            for j in 0..R {{
                acc[0][j] += weight(col, j) * *v as Acc;
            }}
        }}
        for j in 0..R {{
            let mut s = acc[0][j];
            for a in &acc[1..] {{
                s += a[j];
            }}
            out[j] = f(bias[j] as Acc + s) as f32;
        }}
    }}
}}
"#
        );
    }
    if used.contains("softmax") {
        out.push_str(
            r#"
fn softmax(x: &mut [f32]) {
    let mut max = f32::NEG_INFINITY;
    for v in x.iter() {
        max = max.max(*v);
    }
    let mut sum = 0.0f64;
    for v in x.iter_mut() {
        let e = exp((*v - max) as f64);
        sum += e;
        *v = e as f32;
    }
    for v in x.iter_mut() {
        *v = (*v as f64 / sum) as f32;
    }
}
"#,
        );
    }
    if used.contains("log_softmax") {
        out.push_str(
            r#"
fn log_softmax(x: &mut [f32]) {
    let mut max = f32::NEG_INFINITY;
    for v in x.iter() {
        max = max.max(*v);
    }
    let mut sum = 0.0f64;
    for v in x.iter() {
        sum += exp((*v - max) as f64);
    }
    let l = ln(sum);
    for v in x.iter_mut() {
        *v = ((*v - max) as f64 - l) as f32;
    }
}
"#,
        );
    }
    out.push_str(MATH);
    (out, file_mode.then_some(blob))
}
