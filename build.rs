//! Records the target triple this binary was built for (the "host" of `--target`).
fn main() {
    println!(
        "cargo:rustc-env=CARGO_INFER_HOST={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!("cargo:rerun-if-changed=build.rs");
}
