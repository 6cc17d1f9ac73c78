//! The integration tests: one binary (tract and ONNX Runtime link once), a module per command or
//! concern. The feature-gated back ends have binaries of their own (tests/tch.rs, tests/candle.rs).

mod common;

mod burn;
mod check;
mod ci_scale;
mod convert;
mod decide;
mod emit;
mod hostile_models;
mod inspect;
mod never_panic;
mod prepare;
mod scaffold;
mod snapshots;
mod text;
