
/// `dense` for a block of samples, for the panels the AVX2 block kernel does not take (widths
/// that are not a multiple of 16): the panel's rows go `H` at a time (`H` sums per sample in
/// registers), so that the block's sums fit.
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
