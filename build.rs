//! Records the target triple this binary was built for (the "host" of `--target`); with the `tch`
//! feature, records libtorch's directory as the binaries' run path, so that they start without
//! LD_LIBRARY_PATH.
fn main() {
    println!(
        "cargo:rustc-env=CARGO_INFER_HOST={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_TCH").is_some() {
        if let Some(dir) = std::env::var_os("LIBTORCH") {
            let lib = std::path::Path::new(&dir).join("lib");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        }
    }
}
