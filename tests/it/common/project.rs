//! Generated projects: made by `cargo infer init` from a fixture, built and tested with cargo in
//! one shared target directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{cargo_infer, fixtures};

/// The workspace's target directory, shared by generated projects so that tract and ort compile once.
pub fn shared_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scaffold-tests")
}

/// The shared target dir, and no debug info (the scaffolds link tract or ort into several
/// binaries; with debug info that is gigabytes of disk in CI). Everything that builds there (the
/// projects, and `cargo infer` building burn harnesses) must set both: another profile compiles
/// every dependency again.
pub fn shared_target_env() -> [(&'static str, std::ffi::OsString); 2] {
    [
        ("CARGO_TARGET_DIR", shared_target().into_os_string()),
        ("CARGO_PROFILE_DEV_DEBUG", "false".into()),
    ]
}

/// `[profile.dev.package."*"] opt-level = 1`, as `init` writes it: a crate made by hand in a test
/// carries it too, so that it reuses the dependencies the generated projects compiled.
pub const DEV_PROFILE: &str = "\n[profile.dev.package.\"*\"]\nopt-level = 1\n";

/// Cargo in a generated project, in the shared target dir.
pub fn project_cargo(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(dir).args(args).envs(shared_target_env());
    cmd
}

pub fn cargo(dir: &Path, args: &[&str]) -> std::process::Output {
    cargo_with(dir, args, true)
}

/// `offline`: builds use only what the workspace's own build already fetched. Resolving for
/// another platform (wasm32) may need crates the host build never downloaded, so that runs online.
pub fn cargo_with(dir: &Path, args: &[&str], offline: bool) -> std::process::Output {
    let mut cmd = project_cargo(dir, args);
    if offline {
        cmd.arg("--offline");
    }
    if let Ok((lib, _)) = cargo_infer::backends::ort::find_library(None) {
        cmd.env("ORT_DYLIB_PATH", lib);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?} in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn init(dir: &Path, model: &str, flags: &[&str]) -> PathBuf {
    // A name of its own for each model and flags: projects share one target directory, and two
    // same-named crates built at once there would take each other's fingerprints.
    let slug = std::iter::once(model)
        .chain(flags.iter().copied())
        .collect::<Vec<_>>()
        .join("-")
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let project = dir.join(slug);
    cargo_infer()
        .arg("init")
        .arg(&project)
        .arg("--model")
        .arg(fixtures().join(model))
        .args(flags)
        .assert()
        .success();
    pin_lock(&project);
    project
}

/// Resolve like this workspace does (and crates it lacks, as burn's, the same way in every
/// project of one run), so that every project builds the same units in the shared target
/// directory and each framework compiles once.
pub fn pin_lock(project: &Path) {
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
}
