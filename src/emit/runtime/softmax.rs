
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
