
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
