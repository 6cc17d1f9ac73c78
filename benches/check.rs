//! `check` against the back ends' own APIs, in one process: the cost of what `check` adds
//! (reading the model's facts, data sets, comparisons, reporting) on top of load + run.
//! Run through `cargo xtask bench check`, which prints the table.

use std::path::{Path, PathBuf};

use cargo_infer::backends::{self, Backend, Device};
use cargo_infer::check::{
    self, inputs::InputArg, inputs::InputOptions, BackendChoice, CheckOptions,
};
use cargo_infer::tensor::HostTensor;
use criterion::{criterion_group, criterion_main, Criterion};
use tract_onnx::prelude::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// (name, model, inputs as tensors, the same inputs as `check` arguments).
type Case = (String, PathBuf, Vec<(String, HostTensor)>, Vec<InputArg>);

/// The ONNX fixtures with the generator's inputs, and the model given in CARGO_INFER_BENCH_EXTRA
/// (the suite's largest) with its first test data set.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for stem in ["mlp", "cnn", "lstm", "transformer"] {
        let npz = fixtures().join(format!("check/{stem}.inputs.npz"));
        let inputs = HostTensor::from_npz(&npz).unwrap();
        out.push((
            stem.to_string(),
            fixtures().join(format!("{stem}.onnx")),
            inputs,
            vec![InputArg::All(npz)],
        ));
    }
    if let Some(extra) = std::env::var_os("CARGO_INFER_BENCH_EXTRA") {
        let model = PathBuf::from(extra);
        let info = cargo_infer::model::inspect(&model).unwrap();
        let (sets, _) = check::inputs::data_sets(&model, &info, &InputOptions::default()).unwrap();
        let set = &sets[0];
        let dir = model.parent().unwrap().join(&set.name);
        let args = (0..set.inputs.len())
            .map(|i| InputArg::Named(set.inputs[i].0.clone(), dir.join(format!("input_{i}.pb"))))
            .collect();
        let name = model
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.push((name, model, set.inputs.clone(), args));
    }
    out
}

fn tract_direct(model: &Path, inputs: &[(String, HostTensor)]) {
    let mut m = tract_onnx::onnx().model_for_path(model).unwrap();
    let tensors: Vec<Tensor> = inputs
        .iter()
        .map(|(n, t)| backends::tract::to_tract(n, t).unwrap())
        .collect();
    for (i, t) in tensors.iter().enumerate() {
        m.set_input_fact(i, InferenceFact::dt_shape(t.datum_type(), t.shape()))
            .unwrap();
    }
    let plan = m.into_optimized().unwrap().into_runnable().unwrap();
    plan.run(tensors.into_iter().map(|t| t.into_tvalue()).collect())
        .unwrap();
}

fn ort_direct(model: &Path, inputs: &[(String, HostTensor)]) {
    let env = backends::ort::environment(None).unwrap();
    let mut session = ort::session::Session::builder(env)
        .unwrap()
        .commit_from_file(model)
        .unwrap();
    let values: Vec<(String, ort::value::DynValue)> = inputs
        .iter()
        .map(|(n, t)| (n.clone(), backends::ort::to_ort(n, t).unwrap()))
        .collect();
    let outputs = session.run(values).unwrap();
    assert!(outputs.len() > 0);
}

fn bench(c: &mut Criterion) {
    let all = backends::all(None);
    for (name, model, inputs, args) in cases() {
        for backend in ["tract", "ort"] {
            let b: &dyn Backend = all.iter().find(|b| b.name() == backend).unwrap().as_ref();
            let opts = CheckOptions {
                backend: BackendChoice::Auto,
                device: Device::Cpu,
                inputs: InputOptions {
                    given: args.clone(),
                    ..Default::default()
                },
                ..Default::default()
            };
            let mut g = c.benchmark_group(format!("{name}/{backend}"));
            g.sample_size(20);
            g.bench_function("direct", |bench| {
                bench.iter(|| {
                    let inputs = match &args[0] {
                        InputArg::All(npz) => HostTensor::from_npz(npz).unwrap(),
                        _ => inputs.clone(),
                    };
                    if backend == "tract" {
                        tract_direct(&model, &inputs)
                    } else {
                        ort_direct(&model, &inputs)
                    }
                })
            });
            g.bench_function("check", |bench| {
                bench.iter(|| {
                    let r = check::check_model(&model, &[(b, true)], &opts);
                    assert_eq!(r.status, check::ModelStatus::Pass, "{}", r.message);
                })
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
