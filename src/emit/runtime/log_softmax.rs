
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
