
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
        // A last panel filled up with rows of zeros (`--simd`) writes only its real rows.
        for r in 0..out.len() {
            let mut s = acc[0][r];
            for a in &acc[1..] {
                s += a[r];
            }
            out[r] = f(bias[r] as Acc + __SCALE_ROW__s) as f32;
        }
    }
}
