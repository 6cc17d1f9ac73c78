//! Numeric comparison of two outputs, as Polygraphy users expect it: pass when
//! `|a - b| <= atol + rtol * |b|` element-wise, NaN only against NaN, and the smallest atol that
//! would have passed in every report.

use serde::{Deserialize, Serialize};

use crate::tensor::HostTensor;

/// Tolerances for one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// Absolute tolerance: the error allowed whatever the values' size.
    pub atol: f64,
    /// Relative tolerance, a fraction of the right-hand value's magnitude.
    pub rtol: f64,
}

/// User overrides (apply to floating-point outputs; integers, booleans and strings stay exact).
#[derive(Debug, Clone, Copy, Default)]
pub struct ToleranceArgs {
    /// `--atol`, in place of the dtype's default.
    pub atol: Option<f64>,
    /// `--rtol`, in place of the dtype's default.
    pub rtol: Option<f64>,
}

impl ToleranceArgs {
    /// Defaults by dtype: 1e-5 for float32/float64, looser for the narrow floats, exact otherwise.
    pub fn for_dtype(&self, t: &HostTensor) -> Tolerance {
        use crate::model::dtype::DType as D;
        let (atol, rtol) = match t.dtype {
            D::F32 | D::F64 | D::C64 | D::C128 => (1e-5, 1e-5),
            D::F16 => (1e-3, 1e-3),
            D::BF16 => (1e-2, 1e-2),
            D::F8E4M3FN | D::F8E4M3FNUZ | D::F8E5M2 | D::F8E5M2FNUZ | D::F8E8M0 => (0.0, 0.125),
            D::F4E2M1 => (0.0, 0.25),
            _ => {
                return Tolerance {
                    atol: 0.0,
                    rtol: 0.0,
                }
            }
        };
        Tolerance {
            atol: self.atol.unwrap_or(atol),
            rtol: self.rtol.unwrap_or(rtol),
        }
    }
}

/// The outcome of comparing `left` (a back end) with `right` (another back end, or the expected
/// output, which is the reference for relative error).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// The run on the left: a back end's name (`tract`), a twin's run (`ort:pair`), or a note's
    /// label such as `ort on tract's prepared graph`.
    pub left: String,
    /// The run it is compared with, labelled the same way, or `expected` (the reference).
    pub right: String,
    /// The output's name.
    pub output: String,
    /// Which data set (`test_data_set_0`, `synthetic`, `given`).
    pub data_set: String,
    /// Largest `|left - right|` over finite elements; infinite when the comparison failed on a
    /// `problem`.
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub max_abs: f64,
    /// Largest `|left - right| / |right|`; infinite when `right` is 0 and they differ, or on a
    /// `problem`.
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub max_rel: f64,
    /// The smallest `--atol` that would have passed with this `rtol` (infinite on a `problem`).
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub min_atol_to_pass: f64,
    /// Every element within tolerance and no `problem`.
    pub pass: bool,
    /// The absolute tolerance applied (the dtype's default or `--atol`).
    pub atol: f64,
    /// The relative tolerance applied (the dtype's default or `--rtol`).
    pub rtol: f64,
    /// Elements outside tolerance, NaN or infinite on one side only, or differing strings.
    pub mismatches: u64,
    /// Elements compared (those of the right-hand tensor).
    pub elements: u64,
    /// Why it failed when it is not a matter of numbers (shape, dtype, NaN placement).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// How the errors of a failed numeric comparison spread (for `--report`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Box<ErrorDetail>>,
    /// Where the two runs part ways (`--bisect`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divergence: Option<Box<super::bisect::Divergence>>,
}

impl Comparison {
    /// One line for reports: `max_abs 3.1e-7, max_rel 2.0e-6 (atol 1e-5, rtol 1e-5)`.
    pub fn summary(&self) -> String {
        if let Some(p) = &self.problem {
            return p.clone();
        }
        let mut s = format!(
            "max_abs {:.2e}, max_rel {:.2e}, {} of {} elements outside atol {:.0e} + rtol {:.0e}",
            self.max_abs, self.max_rel, self.mismatches, self.elements, self.atol, self.rtol
        );
        if !self.pass {
            s += &format!("; would pass with --atol {:.2e}", self.min_atol_to_pass);
        }
        s
    }
}

/// Compares two outputs with the tolerances for their dtype; a failure carries its errors' spread.
pub fn compare(
    left: (&str, &HostTensor),
    right: (&str, &HostTensor),
    output: &str,
    data_set: &str,
    tol: &ToleranceArgs,
) -> Comparison {
    compare_with(left, right, output, data_set, tol, true)
}

/// [`compare`] without the errors' spread (for the many tensors of a bisect, which need only the
/// verdict and the largest error).
pub fn compare_verdict(
    left: (&str, &HostTensor),
    right: (&str, &HostTensor),
    output: &str,
    data_set: &str,
    tol: &ToleranceArgs,
) -> Comparison {
    compare_with(left, right, output, data_set, tol, false)
}

fn compare_with(
    left: (&str, &HostTensor),
    right: (&str, &HostTensor),
    output: &str,
    data_set: &str,
    tol: &ToleranceArgs,
    detail: bool,
) -> Comparison {
    let (a, b) = (left.1, right.1);
    let t = tolerance_of(a, b, tol);
    let mut c = Comparison {
        left: left.0.to_string(),
        right: right.0.to_string(),
        output: output.to_string(),
        data_set: data_set.to_string(),
        max_abs: 0.0,
        max_rel: 0.0,
        min_atol_to_pass: 0.0,
        pass: true,
        atol: t.atol,
        rtol: t.rtol,
        mismatches: 0,
        elements: b.numel() as u64,
        problem: None,
        errors: None,
        divergence: None,
    };
    // Between two runs a changed dtype is a difference (a re-export that changed an output's
    // type); against expected outputs, a file's dtype is how it was saved.
    let against_expected = left.0 == "expected" || right.0 == "expected";
    if let Some(why) = incomparable(a, b, against_expected) {
        c.fail(why);
        return c;
    }
    if b.dtype == crate::model::dtype::DType::String {
        c.mismatches = a
            .strings
            .iter()
            .zip(&b.strings)
            .filter(|(x, y)| x != y)
            .count() as u64;
        if c.mismatches > 0 {
            let why = format!("{} of {} strings differ", c.mismatches, c.elements);
            c.fail(why);
        }
        return c;
    }
    let (Some(av), Some(bv)) = (a.to_f64(), b.to_f64()) else {
        c.fail(format!("cannot compare {} values", b.dtype_name()));
        return c;
    };
    let nan_mismatch = c.measure(&av, &bv, t);
    let exact = a.dtype == b.dtype && !b.is_float();
    if exact && a.data != b.data && nan_mismatch == 0 && c.mismatches == 0 {
        // Integers beyond 2^53 can differ while their f64 images agree.
        c.mismatches = 1;
    }
    if nan_mismatch > 0 {
        c.mismatches += nan_mismatch;
        c.fail(format!(
            "{nan_mismatch} elements are NaN or infinite on one side only"
        ));
        return c;
    }
    c.min_atol_to_pass = c.min_atol_to_pass.max(0.0);
    c.pass = c.mismatches == 0;
    if !c.pass && detail {
        c.errors = Some(Box::new(ErrorDetail::of(&av, &bv, &b.shape)));
    }
    c
}

/// The tolerance two tensors are compared with. Numbers of two dtypes (float32 outputs against
/// float64 expected ones, as numpy saves them; integers recorded as float64) are compared as
/// numbers: floats with the looser of the two dtypes' tolerances, anything with an integer or
/// boolean side exactly.
fn tolerance_of(a: &HostTensor, b: &HostTensor, tol: &ToleranceArgs) -> Tolerance {
    match (a.is_float(), b.is_float()) {
        (true, true) => {
            let (ta, tb) = (tol.for_dtype(a), tol.for_dtype(b));
            Tolerance {
                atol: ta.atol.max(tb.atol),
                rtol: ta.rtol.max(tb.rtol),
            }
        }
        (false, _) => tol.for_dtype(a),
        (true, false) => tol.for_dtype(b),
    }
}

/// Why two tensors cannot be compared element by element: another shape, or another dtype (two
/// numeric dtypes are comparable against expected outputs).
fn incomparable(a: &HostTensor, b: &HostTensor, against_expected: bool) -> Option<String> {
    let numeric = |x: &HostTensor| x.dtype != crate::model::dtype::DType::String;
    if a.shape != b.shape {
        return Some(format!("shape {:?} differs from {:?}", a.shape, b.shape));
    }
    if a.dtype != b.dtype && !(against_expected && numeric(a) && numeric(b)) {
        return Some(format!(
            "dtype {} differs from {}",
            a.dtype_name(),
            b.dtype_name()
        ));
    }
    None
}

impl Comparison {
    /// Marks a comparison failed for a reason that leaves no error to measure.
    fn fail(&mut self, why: String) {
        self.pass = false;
        self.problem = Some(why);
        self.max_abs = f64::INFINITY;
        self.max_rel = f64::INFINITY;
        self.min_atol_to_pass = f64::INFINITY;
    }

    /// Measures the errors of `left` against `right` element by element (largest absolute and
    /// relative error, the least atol that would pass, mismatches under `t`); returns how many
    /// elements are NaN or infinite on one side only (or infinite of two signs).
    fn measure(&mut self, left: &[f64], right: &[f64], t: Tolerance) -> u64 {
        let mut nan_mismatch = 0u64;
        for (x, y) in left.iter().zip(right) {
            if x.is_nan() || y.is_nan() {
                if x.is_nan() != y.is_nan() {
                    nan_mismatch += 1;
                }
                continue;
            }
            if x.is_infinite() || y.is_infinite() {
                if x != y {
                    nan_mismatch += 1;
                }
                continue;
            }
            let d = (x - y).abs();
            self.max_abs = self.max_abs.max(d);
            if *y != 0.0 {
                self.max_rel = self.max_rel.max(d / y.abs());
            } else if d > 0.0 {
                self.max_rel = f64::INFINITY;
            }
            self.min_atol_to_pass = self.min_atol_to_pass.max(d - t.rtol * y.abs());
            if d > t.atol + t.rtol * y.abs() {
                self.mismatches += 1;
            }
        }
        nan_mismatch
    }
}

/// The spread of a failed comparison's errors: a histogram of absolute errors over decades, an
/// even sample of (left, right) pairs, and the worst elements with their indices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Counts of |a - b| by decade: `[lo, hi)` with `lo = 10^k`; exact matches in the first bin
    /// (`lo = 0`).
    pub histogram: Vec<(f64, f64, u64)>,
    /// Up to [`SAMPLE`] (left, right) pairs, evenly spaced over the elements (finite ones).
    pub sample: Vec<(f64, f64)>,
    /// The [`WORST`] largest errors: index per dimension, left, right.
    pub worst: Vec<Worst>,
}

/// One of a failed comparison's largest errors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Worst {
    /// Its index, one number per dimension.
    pub index: Vec<usize>,
    /// The left-hand value.
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub left: f64,
    /// The right-hand value.
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub right: f64,
    /// `|left - right|`.
    #[serde(deserialize_with = "crate::check::null_is_inf")]
    pub abs: f64,
}

/// How many (left, right) pairs [`ErrorDetail::sample`] keeps at most.
pub const SAMPLE: usize = 400;
/// How many of the largest errors [`ErrorDetail::worst`] keeps.
pub const WORST: usize = 10;

impl ErrorDetail {
    fn of(a: &[f64], b: &[f64], shape: &[usize]) -> ErrorDetail {
        let pairs = || {
            a.iter()
                .zip(b)
                .map(|(x, y)| (*x, *y))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
        };
        // Decades from the smallest non-zero error to the largest.
        let errs: Vec<f64> = pairs().map(|(x, y)| (x - y).abs()).collect();
        let nonzero = errs.iter().copied().filter(|e| *e > 0.0);
        let lo = nonzero.clone().fold(f64::INFINITY, f64::min);
        let hi = nonzero.fold(0.0, f64::max);
        let mut histogram = vec![(0.0, 0.0, errs.iter().filter(|e| **e == 0.0).count() as u64)];
        if hi > 0.0 {
            let (k0, k1) = (lo.log10().floor() as i32, hi.log10().floor() as i32);
            for k in k0..=k1 {
                let (l, h) = (10f64.powi(k), 10f64.powi(k + 1));
                let n = errs.iter().filter(|e| **e >= l && **e < h).count() as u64;
                histogram.push((l, h, n));
            }
        }
        let n = a.len().min(b.len());
        let step = n.div_ceil(SAMPLE).max(1);
        let sample = (0..n)
            .step_by(step)
            .map(|i| (a[i], b[i]))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let mut order: Vec<usize> = (0..n)
            .filter(|&i| a[i].is_finite() && b[i].is_finite())
            .collect();
        let err = |i: usize| (a[i] - b[i]).abs();
        // The largest few without sorting them all (bisect compares many large tensors).
        let by_error = |i: &usize, j: &usize| err(*j).total_cmp(&err(*i));
        if order.len() > WORST {
            order.select_nth_unstable_by(WORST, by_error);
            order.truncate(WORST);
        }
        order.sort_by(by_error);
        let worst = order
            .into_iter()
            .take(WORST)
            .map(|i| Worst {
                index: unravel(i, shape),
                left: a[i],
                right: b[i],
                abs: err(i),
            })
            .collect();
        ErrorDetail {
            histogram,
            sample,
            worst,
        }
    }
}

/// The index per dimension of element `flat` in C order.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (k, d) in shape.iter().enumerate().rev() {
        if *d > 0 {
            index[k] = flat % d;
            flat /= d;
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dtype::DType;

    fn f(v: &[f32]) -> HostTensor {
        HostTensor::from_f32(vec![v.len()], v)
    }

    #[test]
    fn within_tolerance_passes_and_reports_the_minimum_atol() {
        let c = compare(
            ("a", &f(&[1.0, 2.0])),
            ("b", &f(&[1.0, 2.00001])),
            "y",
            "s",
            &ToleranceArgs::default(),
        );
        assert!(c.pass, "{c:?}");
        let c = compare(
            ("a", &f(&[1.0, 2.5])),
            ("b", &f(&[1.0, 2.0])),
            "y",
            "s",
            &ToleranceArgs::default(),
        );
        assert!(!c.pass);
        assert_eq!(c.mismatches, 1);
        assert!((c.max_abs - 0.5).abs() < 1e-9);
        // 0.5 - 1e-5 * 2.0
        assert!(
            (c.min_atol_to_pass - 0.49998).abs() < 1e-9,
            "{}",
            c.min_atol_to_pass
        );
        let looser = ToleranceArgs {
            atol: Some(c.min_atol_to_pass),
            rtol: None,
        };
        assert!(
            compare(
                ("a", &f(&[1.0, 2.5])),
                ("b", &f(&[1.0, 2.0])),
                "y",
                "s",
                &looser
            )
            .pass
        );
    }

    #[test]
    fn nan_only_matches_nan_and_shapes_must_agree() {
        let c = compare(
            ("a", &f(&[f32::NAN])),
            ("b", &f(&[f32::NAN])),
            "y",
            "s",
            &ToleranceArgs::default(),
        );
        assert!(c.pass);
        let c = compare(
            ("a", &f(&[f32::NAN])),
            ("b", &f(&[1.0])),
            "y",
            "s",
            &ToleranceArgs::default(),
        );
        assert!(!c.pass);
        let c = compare(
            ("a", &f(&[1.0, 2.0])),
            ("b", &f(&[1.0])),
            "y",
            "s",
            &ToleranceArgs::default(),
        );
        assert!(!c.pass && c.problem.unwrap().contains("shape"));
    }

    #[test]
    fn a_failed_comparison_carries_its_error_spread() {
        let left: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let mut right = left.clone();
        right[23] += 5.0; // index [1, 2, 3] of [2, 3, 4]
        right[5] += 0.5;
        let c = compare(
            ("a", &HostTensor::from_f32(vec![2, 3, 4], &left)),
            ("b", &HostTensor::from_f32(vec![2, 3, 4], &right)),
            "y",
            "s",
            &ToleranceArgs::default(),
        );
        let e = c.errors.expect("a failed comparison has its errors");
        assert_eq!(e.worst[0].index, [1, 2, 3]);
        assert_eq!(e.worst[0].abs, 5.0);
        assert_eq!(e.worst[1].index, [0, 1, 1]);
        // 22 exact, one in [0.1, 1), one in [1, 10).
        assert_eq!(e.histogram, [(0.0, 0.0, 22), (0.1, 1.0, 1), (1.0, 10.0, 1)]);
        assert_eq!(e.sample.len(), 24);
        let ok = compare(
            ("a", &HostTensor::from_f32(vec![2], &[1.0, 2.0])),
            ("b", &HostTensor::from_f32(vec![2], &[1.0, 2.0])),
            "y",
            "s",
            &ToleranceArgs::default(),
        );
        assert!(ok.errors.is_none());
    }

    /// numpy saves float64 by default, and `init` records every output as float64: float32 outputs
    /// compare with them as numbers (float32's tolerance), integer outputs exactly.
    #[test]
    fn numbers_of_two_dtypes_compare_as_numbers() {
        let f64s = |v: &[f64]| {
            HostTensor::from_bytes(
                DType::F64,
                vec![v.len()],
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
            .unwrap()
        };
        let tol = ToleranceArgs::default();
        let c = compare(
            ("a", &f(&[1.0, 0.1])),
            ("expected", &f64s(&[1.0, 0.1])),
            "y",
            "s",
            &tol,
        );
        assert!(c.pass, "{c:?}");
        let c = compare(
            ("a", &f(&[1.0, 0.1])),
            ("expected", &f64s(&[1.0, 0.2])),
            "y",
            "s",
            &tol,
        );
        assert!(!c.pass && c.problem.is_none(), "{c:?}");
        let ints = HostTensor::from_bytes(
            DType::I64,
            vec![2],
            [3i64, -4].iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
        .unwrap();
        assert!(
            compare(
                ("a", &ints),
                ("expected", &f64s(&[3.0, -4.0])),
                "y",
                "s",
                &tol
            )
            .pass
        );
        let c = compare(
            ("a", &ints),
            ("expected", &f64s(&[3.0, -4.000001])),
            "y",
            "s",
            &tol,
        );
        assert!(!c.pass, "integers stay exact: {c:?}");
        // Between two runs, another dtype is a difference.
        let c = compare(
            ("a", &f(&[1.0, 0.1])),
            ("b", &f64s(&[1.0, 0.1])),
            "y",
            "s",
            &tol,
        );
        assert!(!c.pass && c.problem.unwrap().contains("dtype"));
    }

    #[test]
    fn integers_are_exact() {
        let i =
            |v: i64| HostTensor::from_bytes(DType::I64, vec![1], v.to_le_bytes().to_vec()).unwrap();
        let loose = ToleranceArgs {
            atol: Some(10.0),
            rtol: Some(1.0),
        };
        assert!(!compare(("a", &i(3)), ("b", &i(4)), "y", "s", &loose).pass);
        assert!(
            !compare(
                ("a", &i(1 << 60)),
                ("b", &i((1 << 60) + 1)),
                "y",
                "s",
                &loose
            )
            .pass
        );
        assert!(compare(("a", &i(4)), ("b", &i(4)), "y", "s", &loose).pass);
    }
}
