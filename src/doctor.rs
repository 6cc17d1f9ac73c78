//! `cargo infer doctor`: which back ends and toolchains are usable here, and how to get the rest.

use std::fmt::Write;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::error::{exit, ExpectedError};
use crate::output::{self, OutputFormat, Style};

/// One row of the report: a back end, a toolchain target or a GPU driver.
#[derive(Debug, Serialize)]
pub struct Item {
    /// What the row is about: a back end's registry name (`ort`), `wasm32`, `bare-metal`,
    /// `rustup` or `cuda-driver`.
    pub name: String,
    /// `available`, `unavailable` or `not-built`.
    pub status: &'static str,
    /// The version when available, else why not and how to get it.
    pub detail: String,
}

/// What `doctor` prints, and its JSON object (`--format json`).
#[derive(Debug, Serialize)]
pub struct Report {
    /// One row per back end of the registry, in its order.
    pub backends: Vec<Item>,
    /// The targets `rustup target list --installed` lists (empty without rustup).
    pub targets: Vec<String>,
    /// WASM and bare-metal targets (or rustup's absence); shown as `targets` in the human text.
    pub toolchain: Vec<Item>,
    /// The NVIDIA driver, which `--device cuda`/`tensorrt` need.
    pub gpu: Vec<Item>,
}

fn item(name: &str, status: &'static str, detail: impl Into<String>) -> Item {
    Item {
        name: name.to_string(),
        status,
        detail: detail.into(),
    }
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

/// Looks at this build and machine: each back end's availability, rustup's installed targets,
/// the NVIDIA driver. Runs `rustup`; never fails.
pub fn report() -> Report {
    let backends = crate::backends::REGISTRY
        .iter()
        .map(|row| match row.constructor {
            Some(make) => match make(None).availability() {
                Ok(v) => item(row.name, "available", v),
                Err(why) => item(row.name, "unavailable", why.0),
            },
            None => item(row.name, "not-built", (row.missing)()),
        })
        .collect::<Vec<_>>();

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

/// `doctor`: prints [`report`] as text or JSON; exit 0 whatever is missing.
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
