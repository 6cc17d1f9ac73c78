//! `cargo infer doctor`: which back ends and toolchains are usable here, and how to get the rest.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::error::{exit, ExpectedError};
use crate::output::{self, OutputFormat, Style};

#[derive(Debug, Serialize)]
pub struct Item {
    pub name: String,
    /// `available`, `unavailable` or `not-built`.
    pub status: &'static str,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub backends: Vec<Item>,
    pub targets: Vec<String>,
    pub toolchain: Vec<Item>,
    pub gpu: Vec<Item>,
}

fn item(name: &str, status: &'static str, detail: impl Into<String>) -> Item {
    Item {
        name: name.to_string(),
        status,
        detail: detail.into(),
    }
}

/// `torch/lib/libtorch_cpu.so` of `LIBTORCH`, or of python3's torch package (found without importing it).
#[cfg_attr(feature = "tch", allow(dead_code))]
fn libtorch() -> Option<PathBuf> {
    let lib = |dir: &Path| Some(dir.join("lib/libtorch_cpu.so")).filter(|p| p.is_file());
    if let Some(d) = std::env::var_os("LIBTORCH") {
        return lib(Path::new(&d));
    }
    let out = Command::new("python3")
        .args(["-c", "import importlib.util as u; s = u.find_spec('torch'); print(s.submodule_search_locations[0] if s else '')"])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| lib(Path::new(dir))).flatten()
}

fn installed_targets() -> Option<Vec<String>> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
}

pub fn report() -> Report {
    let mut backends = Vec::new();
    backends.push(item(
        "tract",
        "available",
        format!("built in (tract-onnx {})", crate::backends::tract::VERSION),
    ));
    let ort = crate::backends::ort::Ort::new(None);
    use crate::backends::Backend;
    backends.push(match ort.availability() {
        Ok(v) => item("ort", "available", v),
        Err(why) => item("ort", "unavailable", why),
    });
    #[cfg(feature = "tch")]
    backends.push(match crate::backends::tch::Tch.availability() {
        Ok(v) => item("tch", "available", v),
        Err(why) => item("tch", "unavailable", why),
    });
    #[cfg(not(feature = "tch"))]
    backends.push(item(
        "tch",
        "not-built",
        match libtorch() {
            Some(p) => format!("libtorch found at {}, but this build lacks the back end: rebuild with `--features tch`", p.display()),
            None => format!("not available in this build: rebuild with `--features tch` (and LIBTORCH pointing at libtorch {})", crate::backends::LIBTORCH_VERSION),
        },
    ));
    #[cfg(feature = "candle")]
    backends.push(match crate::backends::candle::Candle.availability() {
        Ok(v) => item("candle", "available", v),
        Err(why) => item("candle", "unavailable", why),
    });
    #[cfg(not(feature = "candle"))]
    backends.push(item(
        "candle",
        "not-built",
        "not available in this build: rebuild with `--features candle`",
    ));

    let targets = installed_targets();
    let mut toolchain = Vec::new();
    match &targets {
        Some(t) => {
            let has = |p: &str| t.iter().any(|x| x.starts_with(p));
            toolchain.push(if has("wasm32") {
                item("wasm32", "available", "a wasm32 target is installed")
            } else {
                item(
                    "wasm32",
                    "unavailable",
                    "`rustup target add wasm32-unknown-unknown` to build WASM scaffolds",
                )
            });
            toolchain.push(if has("thumbv") || has("riscv32") {
                item("bare-metal", "available", "a thumbv*/riscv32 target is installed")
            } else {
                item("bare-metal", "unavailable", "`rustup target add thumbv7em-none-eabihf` (or your MCU's) to build no_std code for it")
            });
        }
        None => toolchain.push(item(
            "rustup",
            "unavailable",
            "rustup not found: installed targets unknown",
        )),
    }
    let mut gpu = Vec::new();
    let driver = Path::new("/proc/driver/nvidia/version");
    gpu.push(if driver.is_file() {
        let v = std::fs::read_to_string(driver).unwrap_or_default();
        item(
            "cuda-driver",
            "available",
            v.lines()
                .next()
                .unwrap_or("NVIDIA driver")
                .trim()
                .to_string(),
        )
    } else {
        item(
            "cuda-driver",
            "unavailable",
            "no NVIDIA driver (/proc/driver/nvidia/version): --device cuda/tensorrt will fail",
        )
    });
    Report {
        backends,
        targets: targets.unwrap_or_default(),
        toolchain,
        gpu,
    }
}

pub fn run(global: &GlobalArgs) -> Result<i32, ExpectedError> {
    let r = report();
    let text = match global.format {
        OutputFormat::Json => serde_json::to_string_pretty(&r).expect("serialises") + "\n",
        _ => {
            let style = Style {
                color: output::use_color(global.color),
            };
            let mut out = String::new();
            for (title, items) in [
                ("back ends", &r.backends),
                ("targets", &r.toolchain),
                ("GPU", &r.gpu),
            ] {
                let _ = writeln!(out, "{}", style.bold(title));
                for i in items {
                    let mark = match i.status {
                        "available" => style.good("ok  "),
                        "unavailable" => style.warn("no  "),
                        _ => style.dim("off "),
                    };
                    let _ = writeln!(out, "  {mark} {:11} {}", i.name, i.detail);
                }
            }
            if !r.targets.is_empty() {
                let _ = writeln!(
                    out,
                    "{} {}",
                    style.bold("installed targets:"),
                    r.targets.join(", ")
                );
            }
            out
        }
    };
    output::print(&text);
    Ok(exit::OK)
}
