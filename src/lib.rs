//! cargo-infer: inspect a trained model, choose the Rust inference stack that should run it,
//! prove it runs, and scaffold the project.
//!
//! The flow goes one way: bytes → [`model`] readers → [`model::ModelInfo`] → commands. The binary
//! (`src/main.rs`) is thin glue over [`cli`].

#![warn(missing_docs)]

pub mod backends;
pub mod check;
pub mod cli;
pub mod convert;
pub mod decide;
pub mod doctor;
pub mod emit;
pub mod error;
pub mod escape;
pub mod graph;
pub mod inspect;
pub mod model;
pub mod output;
pub mod prepare;
pub mod scaffold;
pub mod tensor;
pub mod util;
