//! Writes a chain as Rust: `static` weights in the order the loops read them, one stack buffer
//! per dense layer, dense loops with eight independent accumulators (so that the compiler
//! vectorises them without reassociating anything itself), activations fused into the dense
//! store, and the few transcendental functions implemented here in f64 (core has none).

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
    if x != x {
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
    let r = (x - k as f64 * 6.931_471_803_691_238_2e-1) - k as f64 * 1.908_214_929_270_587_7e-10;
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
    if x != x || x < 0.0 {
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
    while m > 1.414_213_562_373_095 {
        m *= 0.5;
        e += 1;
    }
    while m < 0.707_106_781_186_547_6 {
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
    let acc = match opts.precision {
        Precision::F32 => "f32",
        Precision::F64 => "f64",
    };
    let mut out = String::new();
    let ops: Vec<String> = chain.ops.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    let _ = writeln!(
        out,
        "// Generated by cargo-infer {} from `{}`; do not edit, regenerate instead.",
        env!("CARGO_PKG_VERSION"),
        h.source
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
    let _ = writeln!(
        out,
        "/// Name of the model's input.\npub const INPUT_NAME: &str = {:?};",
        chain.input_name
    );
    let _ = writeln!(
        out,
        "/// Features per sample.\npub const INPUT_SIZE: usize = {};",
        chain.n_in
    );
    let _ = writeln!(
        out,
        "/// Name of the model's output.\npub const OUTPUT_NAME: &str = {:?};",
        chain.output_name
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
            Layer::Dense { n_out, w, b, .. } => {
                let fused = match chain.layers.get(i + 1) {
                    Some(Layer::Act(a)) => {
                        i += 1;
                        Some(*a)
                    }
                    _ => None,
                };
                let f = fused.map(|a| act_expr(&a)).unwrap_or_else(|| "v".into());
                let (wname, bname) = (format!("W{k}"), format!("B{k}"));
                if file_mode {
                    let off = blob.len();
                    blob.extend(w.iter().flat_map(|v| v.to_le_bytes()));
                    let _ = writeln!(
                        out,
                        "const {wname}: core::ops::Range<usize> = {off}..{};",
                        blob.len()
                    );
                    used.insert("dense_le");
                    let _ = writeln!(body, "    let mut x{} = [0.0f32; {n_out}];", k + 1);
                    let _ = writeln!(
                        body,
                        "    dense_le(&WEIGHTS[{wname}], &{bname}, {}, &mut x{}, |v: Acc| {f});",
                        arg(&cur),
                        k + 1
                    );
                } else {
                    array(&mut out, &wname, w);
                    used.insert("dense");
                    let _ = writeln!(body, "    let mut x{} = [0.0f32; {n_out}];", k + 1);
                    let _ = writeln!(
                        body,
                        "    dense(&{wname}, &{bname}, {}, &mut x{}, |v: Acc| {f});",
                        arg(&cur),
                        k + 1
                    );
                }
                array(&mut out, &bname, b);
                cur = format!("x{}", k + 1);
                k += 1;
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
            "static WEIGHTS: [u8; {}] = *include_bytes!({weights_file:?});",
            blob.len()
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
    if input.len() % INPUT_SIZE != 0 || out.len() != n * OUTPUT_SIZE {
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
    if used.contains("dense") || used.contains("dense_le") {
        out.push_str(
            r#"
/// The sixteen partial sums, added pairwise.
#[inline(always)]
fn sum16(acc: &[Acc; 16]) -> Acc {
    let mut h = [0.0 as Acc; 8];
    for k in 0..8 {
        h[k] = acc[k] + acc[k + 8];
    }
    ((h[0] + h[4]) + (h[1] + h[5])) + ((h[2] + h[6]) + (h[3] + h[7]))
}
"#,
        );
    }
    if used.contains("dense") {
        out.push_str(
            r#"
/// Σ w·x with sixteen independent sums: the compiler turns them into four vector registers, enough
/// independent additions to keep the floating-point units busy (eight sums left them waiting on
/// each other's latency: half the speed).
#[inline(always)]
fn dot(w: &[f32], x: &[f32]) -> Acc {
    let mut acc = [0.0 as Acc; 16];
    let mut wc = w.chunks_exact(16);
    let mut xc = x.chunks_exact(16);
    for (a, b) in (&mut wc).zip(&mut xc) {
        for k in 0..16 {
            acc[k] += a[k] as Acc * b[k] as Acc;
        }
    }
    let mut s = sum16(&acc);
    for (a, b) in wc.remainder().iter().zip(xc.remainder()) {
        s += *a as Acc * *b as Acc;
    }
    s
}
"#,
        );
    }
    if used.contains("dense") {
        out.push_str(
            r#"
/// y = f(b + W·x), W stored output-major.
#[inline(always)]
fn dense(w: &[f32], b: &[f32], x: &[f32], y: &mut [f32], f: impl Fn(Acc) -> Acc) {
    for ((row, bias), out) in w.chunks_exact(x.len()).zip(b).zip(y.iter_mut()) {
        *out = f(*bias as Acc + dot(row, x)) as f32;
    }
}
"#,
        );
    }
    if used.contains("dense_le") {
        out.push_str(
            r#"
/// y = f(b + W·x), W as little-endian bytes, output-major. Each weight is decoded where it is
/// multiplied (a plain load on little-endian machines), in the same sixteen sums as `dot`.
#[inline(always)]
fn dense_le(w: &[u8], b: &[f32], x: &[f32], y: &mut [f32], f: impl Fn(Acc) -> Acc) {
    for ((row, bias), out) in w.chunks_exact(x.len() * 4).zip(b).zip(y.iter_mut()) {
        let mut acc = [0.0 as Acc; 16];
        let mut wc = row.chunks_exact(64);
        let mut xc = x.chunks_exact(16);
        for (a, v) in (&mut wc).zip(&mut xc) {
            for k in 0..16 {
                let w = f32::from_le_bytes([a[4 * k], a[4 * k + 1], a[4 * k + 2], a[4 * k + 3]]);
                acc[k] += w as Acc * v[k] as Acc;
            }
        }
        let mut s = sum16(&acc);
        for (a, v) in wc.remainder().chunks_exact(4).zip(xc.remainder()) {
            s += f32::from_le_bytes([a[0], a[1], a[2], a[3]]) as Acc * *v as Acc;
        }
        *out = f(*bias as Acc + s) as f32;
    }
}
"#,
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
