//! How a dense layer's weights are stored in the generated module (`--weights-dtype`): f32 as
//! they are, f16 (round to nearest even), or int8 with one symmetric scale per output row; and
//! what the stored weights do to the model's outputs, measured against the f32 model in f64 on
//! the samples `check` would feed it.

use super::{Act, Chain, Layer};

/// `--weights-dtype`: how dense weights are stored in the generated module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WeightsDtype {
    /// The model's own f32 weights.
    F32,
    /// Half precision, decoded in the dot product (half the bytes to read).
    F16,
    /// Signed 8-bit with one scale per output row (a quarter of the bytes to read).
    Int8,
}

impl WeightsDtype {
    /// The name `--weights-dtype` and reports give it (`int8`).
    pub fn name(self) -> &'static str {
        match self {
            WeightsDtype::F32 => "f32",
            WeightsDtype::F16 => "f16",
            WeightsDtype::Int8 => "int8",
        }
    }

    /// Bytes per stored weight.
    pub fn bytes(self) -> usize {
        match self {
            WeightsDtype::F32 => 4,
            WeightsDtype::F16 => 2,
            WeightsDtype::Int8 => 1,
        }
    }
}

/// One layer's weights as stored, output-major like [`Layer::Dense`]'s.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// The f32 weights as they are.
    F32(Vec<f32>),
    /// IEEE half-precision bit patterns.
    F16(Vec<u16>),
    /// `w[o·n_in + i] ≈ q[o·n_in + i] · scale[o]`, `q` in -127..=127.
    Int8 {
        /// The quantised weights, `n_out × n_in`, output-major.
        q: Vec<i8>,
        /// One scale per output row: its largest magnitude / 127.
        scale: Vec<f32>,
    },
}

impl Stored {
    /// Stores `w` (`n_out` rows of `n_in`) in `dtype`; an f16 weight out of range is an error.
    pub fn new(
        w: &[f32],
        n_in: usize,
        dtype: WeightsDtype,
    ) -> Result<Stored, crate::emit::Unemittable> {
        Ok(match dtype {
            WeightsDtype::F32 => Stored::F32(w.to_vec()),
            WeightsDtype::F16 => {
                if let Some(v) = w.iter().find(|v| !v.is_finite()) {
                    return Err(format!(
                        "a weight is {v}: f16 weights need finite values; use --weights-dtype f32"
                    )
                    .into());
                }
                let mut out = Vec::with_capacity(w.len());
                for v in w {
                    let h = half::f16::from_f32(*v);
                    if !h.is_finite() {
                        return Err(format!(
                            "a weight of {v} is outside the f16 range (±65504); use --weights-dtype int8 or f32"
                        ).into());
                    }
                    out.push(h.to_bits());
                }
                Stored::F16(out)
            }
            WeightsDtype::Int8 => {
                if let Some(v) = w.iter().find(|v| !v.is_finite()) {
                    return Err(format!(
                        "a weight is {v}: int8 weights need finite values; use --weights-dtype f32"
                    )
                    .into());
                }
                let mut q = Vec::with_capacity(w.len());
                let mut scale = Vec::new();
                for row in w.chunks(n_in.max(1)) {
                    let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let s = max / 127.0;
                    scale.push(s);
                    q.extend(row.iter().map(|v| {
                        if s == 0.0 {
                            0
                        } else {
                            (v / s).round().clamp(-127.0, 127.0) as i8
                        }
                    }));
                }
                Stored::Int8 { q, scale }
            }
        })
    }

    /// The weights the generated code multiplies by, as f32, output-major.
    pub fn decoded(&self, n_in: usize) -> Vec<f32> {
        match self {
            Stored::F32(w) => w.clone(),
            Stored::F16(h) => h
                .iter()
                .map(|b| half::f16::from_bits(*b).to_f32())
                .collect(),
            Stored::Int8 { q, scale } => q
                .chunks(n_in.max(1))
                .zip(scale)
                .flat_map(|(row, s)| row.iter().map(move |v| *v as f32 * s))
                .collect(),
        }
    }

    /// Little-endian bytes of weights `idx` in the given order.
    pub fn bytes_of(&self, idx: &[Option<usize>]) -> Vec<u8> {
        match self {
            Stored::F32(w) => idx
                .iter()
                .flat_map(|i| i.map_or(0.0, |i| w[i]).to_le_bytes())
                .collect(),
            Stored::F16(h) => idx
                .iter()
                .flat_map(|i| i.map_or(0, |i| h[i]).to_le_bytes())
                .collect(),
            Stored::Int8 { q, .. } => idx.iter().map(|i| i.map_or(0, |i| q[i]) as u8).collect(),
        }
    }
}

/// The chain with every dense layer's weights replaced by what `dtype` stores.
pub fn as_stored(chain: &Chain, dtype: WeightsDtype) -> Result<Chain, crate::emit::Unemittable> {
    let mut out = chain.clone();
    for l in &mut out.layers {
        if let Layer::Dense { n_in, w, .. } = l {
            *w = Stored::new(w, *n_in, dtype)?.decoded(*n_in);
        }
    }
    Ok(out)
}

/// Clamps by comparisons, as the generated code does: bounds in the wrong order or NaN do not
/// panic (`f64::clamp` would).
fn clip(v: f64, lo: f64, hi: f64) -> f64 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

fn act(a: &Act, v: f64) -> f64 {
    match *a {
        Act::Relu => v.max(0.0),
        Act::LeakyRelu(alpha) => {
            if v >= 0.0 {
                v
            } else {
                v * alpha as f64
            }
        }
        Act::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        Act::Tanh => v.tanh(),
        Act::HardSigmoid(a, b) => clip(v * a as f64 + b as f64, 0.0, 1.0),
        Act::Gelu => 0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2)),
        Act::GeluTanh => {
            0.5 * v * (1.0 + (0.797_884_560_802_865_4 * (v + 0.044_715 * v * v * v)).tanh())
        }
        Act::Clip(lo, hi) => clip(v, lo as f64, hi as f64),
        Act::Elu(alpha) => {
            if v > 0.0 {
                v
            } else {
                alpha as f64 * v.exp_m1()
            }
        }
        Act::Softplus => v.exp().ln_1p(),
    }
}

/// The chain on one sample, in f64.
pub fn eval(chain: &Chain, x: &[f32]) -> Vec<f64> {
    let mut v: Vec<f64> = x.iter().map(|a| *a as f64).collect();
    for l in &chain.layers {
        match l {
            Layer::Dense { n_in, w, b, .. } => {
                v = w
                    .chunks(*n_in)
                    .zip(b)
                    .map(|(row, b)| {
                        *b as f64 + row.iter().zip(&v).map(|(w, x)| *w as f64 * x).sum::<f64>()
                    })
                    .collect();
            }
            Layer::Concat { before, after } => {
                let mut y: Vec<f64> = before.iter().map(|a| *a as f64).collect();
                y.extend(&v);
                y.extend(after.iter().map(|a| *a as f64));
                v = y;
            }
            Layer::Affine { scale, shift } => {
                for ((x, s), t) in v.iter_mut().zip(scale).zip(shift) {
                    *x = *x * *s as f64 + *t as f64;
                }
            }
            Layer::Act(a) => v.iter_mut().for_each(|x| *x = act(a, *x)),
            Layer::Softmax | Layer::LogSoftmax => {
                let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = v.iter().map(|x| (x - max).exp()).sum();
                let log = matches!(l, Layer::LogSoftmax);
                v.iter_mut().for_each(|x| {
                    *x = if log {
                        *x - max - sum.ln()
                    } else {
                        (*x - max).exp() / sum
                    }
                });
            }
        }
    }
    v
}

/// The largest difference between the outputs of `a` and `b` over the samples, and the largest
/// output of `a` (the scale it is measured against).
pub fn largest_error(a: &Chain, b: &Chain, samples: &[Vec<f32>]) -> (f64, f64) {
    let mut err = 0f64;
    let mut scale = 0f64;
    for x in samples {
        for (p, q) in eval(a, x).iter().zip(eval(b, x)) {
            // The same infinity, or NaN from both, is no error of the stored weights.
            let d = if *p == q || (p.is_nan() && q.is_nan()) {
                0.0
            } else {
                (p - q).abs()
            };
            err = if d.is_nan() {
                f64::INFINITY
            } else {
                err.max(d)
            };
            if p.is_finite() {
                scale = scale.max(p.abs());
            }
        }
    }
    (err, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_rows_have_their_own_scale_and_round_to_nearest() {
        let w = [1.0, -0.5, 0.25, 0.0, 0.0, 0.0, 100.0, -127.0, 3.0];
        let s = Stored::new(&w, 3, WeightsDtype::Int8).unwrap();
        let Stored::Int8 { q, scale } = &s else {
            panic!("not int8")
        };
        assert_eq!(scale, &[1.0 / 127.0, 0.0, 1.0]);
        assert_eq!(q, &[127, -64, 32, 0, 0, 0, 100, -127, 3]);
        let d = s.decoded(3);
        assert!((d[1] + 0.5).abs() <= 0.5 / 127.0);
        assert_eq!(d[6..], [100.0, -127.0, 3.0]);
    }

    #[test]
    fn f16_rounds_and_refuses_what_it_cannot_hold() {
        let s = Stored::new(&[1.0, 1.0 / 3.0, -2.5e-6], 3, WeightsDtype::F16).unwrap();
        let d = s.decoded(3);
        assert_eq!(d[0], 1.0);
        assert!((d[1] - 1.0 / 3.0).abs() < 2e-4 && d[1] != 1.0 / 3.0);
        assert!(
            (d[2] + 2.5e-6).abs() < 1e-7,
            "subnormal halves are kept: {}",
            d[2]
        );
        let e = Stored::new(&[7e4], 1, WeightsDtype::F16).unwrap_err();
        assert!(e.0.contains("outside the f16 range"), "{e}");
    }

    #[test]
    fn the_error_of_stored_weights_is_measured_on_the_outputs() {
        let chain = Chain {
            input_name: "x".into(),
            output_name: "y".into(),
            n_in: 2,
            n_out: 2,
            layers: vec![
                Layer::Dense {
                    n_in: 2,
                    n_out: 2,
                    w: vec![0.3, -0.7, 0.011, 0.5],
                    b: vec![0.1, 0.0],
                },
                Layer::Act(Act::Relu),
            ],
            ops: Default::default(),
        };
        let samples = vec![vec![1.0, 1.0], vec![-1.0, 0.5]];
        assert_eq!(largest_error(&chain, &chain, &samples).0, 0.0);
        let q = as_stored(&chain, WeightsDtype::Int8).unwrap();
        let (err, scale) = largest_error(&chain, &q, &samples);
        assert!(err > 0.0 && err < 0.01, "{err}");
        assert!((scale - 0.511).abs() < 1e-6, "{scale}");
    }
}
