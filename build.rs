//! Records the target triple this binary was built for (the "host" of `--target`); lists every
//! scaffold template under `templates/` for `include_str!` (a framework's templates are its
//! directory, nothing else to register); with the `tch` feature, records libtorch's directory as
//! the binaries' run path, so that they start without LD_LIBRARY_PATH.
fn main() {
    templates();
    source_hash();
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

/// `$OUT_DIR/templates.rs`: `&[(name, text)]` for every `templates/<framework>/<file>.j2`, the
/// name being `<framework>/<file>`, sorted.
fn templates() {
    let root =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut entries = Vec::new();
    for dir in std::fs::read_dir(&root).expect("templates/") {
        let dir = dir.unwrap().path();
        println!("cargo:rerun-if-changed={}", dir.display());
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            let Some(stem) = file
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .strip_suffix(".j2")
            else {
                continue;
            };
            let framework = dir.file_name().unwrap().to_str().unwrap();
            entries.push((format!("{framework}/{stem}"), file));
        }
    }
    entries.sort();
    let mut out = String::from("&[\n");
    for (name, file) in entries {
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
    }
    out.push_str("]\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("templates.rs");
    std::fs::write(dest, out).unwrap();
}

/// `CARGO_INFER_SOURCE`: a hash of the sources and templates this binary was built from, part of
/// `check`'s cache key (a rebuilt tool never serves results of another build of the same version).
fn source_hash() {
    use std::hash::Hasher;
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut files = Vec::new();
    let mut stack = vec![root.join("src"), root.join("templates")];
    while let Some(d) = stack.pop() {
        println!("cargo:rerun-if-changed={}", d.display());
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    // SipHash with fixed keys: the same sources give the same value on every machine.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    for f in files {
        h.write(f.strip_prefix(&root).unwrap().to_string_lossy().as_bytes());
        h.write(&std::fs::read(&f).unwrap_or_default());
    }
    println!("cargo:rustc-env=CARGO_INFER_SOURCE={:016x}", h.finish());
}
