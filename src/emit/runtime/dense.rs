
/// y = f(b + W·x) for `R` outputs at a time. W is stored in panels of `R` rows, column by column
/// (the `R` weights of one input side by side), so that the loop reads one contiguous stream and
/// keeps the `R` sums in vector registers: each input is loaded once per panel, not once per row.
/// Narrow panels keep `U` sets of sums over interleaved inputs, so that their additions do not
/// wait on each other.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn dense<const R: usize, const U: usize>(
    w: &[__W__],__SCALE_ARG__
    b: &[f32],
    x: &[f32],
    y: &mut [f32],
    f: impl Fn(Acc) -> Acc,
) {
    let panels = w.chunks_exact(R * x.len()__STEP__);
    __PANELS__
        let mut acc = [[0.0 as Acc; R]; U];
        let mut cols = panel.chunks_exact(R * U__STEP__);
        let mut xs = x.chunks_exact(U);
        for (col, v) in (&mut cols).zip(&mut xs) {
            for u in 0..U {
                for j in 0..R {
                    acc[u][j] += weight(col, u * R + j) * v[u] as Acc;
                }
            }
        }
        for (col, v) in cols.remainder().chunks_exact(R__STEP__).zip(xs.remainder()) {
            for j in 0..R {
                acc[0][j] += weight(col, j) * *v as Acc;
            }
        }
        for j in 0..R {
            let mut s = acc[0][j];
            for a in &acc[1..] {
                s += a[j];
            }
            out[j] = f(bias[j] as Acc + __SCALE__s) as f32;
        }
    }
}

/// `dense` for a block of samples: each weight is read once for all of them. The panel's rows
/// go `H` at a time (`H` sums per sample in registers), so that the block's sums fit.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn dense_block<const R: usize, const H: usize, const N: usize, const M: usize>(
    w: &[__W__],__SCALE_ARG__
    b: &[f32],
    x: [&[f32; N]; BLOCK],
    y: &mut [[f32; M]; BLOCK],
    first: usize,
    f: impl Fn(Acc) -> Acc,
) {
    for (p, (panel, bias)) in w.chunks_exact(R * N__STEP__).zip(b.chunks_exact(R)).enumerate() {
        for h in 0..R / H {
            let mut acc = [[0.0 as Acc; H]; BLOCK];
            for (i, col) in panel.chunks_exact(R__STEP__).enumerate() {
                for s in 0..BLOCK {
                    let v = x[s][i] as Acc;
                    for j in 0..H {
                        acc[s][j] += weight(col, h * H + j) * v;
                    }
                }
            }
            for s in 0..BLOCK {
                for j in 0..H {
                    let r = h * H + j;
                    y[s][first + p * R + r] = f(bias[r] as Acc + __SCALE_BLOCK__acc[s][j]) as f32;
                }
            }
        }
    }
}
