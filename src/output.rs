//! Output conventions shared by every command: format selection, colour, and writing to stdout
//! where a closed pipe is a normal end (as in ripgrep), not an error.

use std::io::{self, IsTerminal, Write};

/// `--format` (alias `--message-format`): `human` text for a terminal (the default), `json` (one
/// object, the contract of DESIGN.md), or `junit` XML (`check` only; other commands refuse it).
// The variants are documented here: a doc comment on a variant becomes clap's help for that value
// and would change `--help`.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    /// JUnit XML (`check` only)
    Junit,
}

/// `--color`: `auto` (colour when stdout is a terminal and `NO_COLOR` is unset), `always`, `never`.
/// See [`use_color`].
// The variants are documented here: a doc comment on a variant becomes clap's help for that value
// and would change `--help`.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Whether to colour stdout: `--color` wins, then `NO_COLOR`, then `CARGO_TERM_COLOR`, then
/// whether stdout is a terminal.
pub fn use_color(choice: Option<ColorChoice>) -> bool {
    let choice = choice.or_else(|| match std::env::var("CARGO_TERM_COLOR").ok().as_deref() {
        Some("always") => Some(ColorChoice::Always),
        Some("never") => Some(ColorChoice::Never),
        _ => None,
    });
    match choice {
        Some(ColorChoice::Always) => true,
        Some(ColorChoice::Never) => false,
        _ => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && io::stdout().is_terminal()
        }
    }
}

/// A tiny stylesheet: bold headings and dim notes, or nothing when colour is off.
#[derive(Clone, Copy)]
pub struct Style {
    /// Whether to emit ANSI colour codes ([`use_color`] decides).
    pub color: bool,
}

impl Style {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    /// Headings and names: bold.
    pub fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    /// Notes and secondary detail: dim.
    pub fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    /// Warnings: yellow.
    pub fn warn(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    /// Failures and errors: bold red.
    pub fn bad(&self, s: &str) -> String {
        self.wrap("31;1", s)
    }
    /// Passes and good news: green.
    pub fn good(&self, s: &str) -> String {
        self.wrap("32", s)
    }
}

/// Writes to stdout; a broken pipe ends the program quietly with success.
pub fn print(text: &str) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(crate::error::exit::USAGE);
    }
}

/// `1.5 MB`, `312 B`: sizes in decimal units, as cargo and du -h --si print them.
pub fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A duration given in milliseconds, in the unit that fits it, with three significant digits:
/// `2.70 µs`, `612 µs`, `4.38 ms`, `1.25 s` (never `0.00 ms`).
pub fn human_ms(ms: f64) -> String {
    let (v, unit) = match ms.abs() {
        x if x < 1e-3 => (ms * 1e6, "ns"),
        x if x < 1.0 => (ms * 1e3, "µs"),
        x if x < 1e3 => (ms, "ms"),
        _ => (ms / 1e3, "s"),
    };
    let digits = match v.abs() {
        x if x < 10.0 => 2,
        x if x < 100.0 => 1,
        _ => 0,
    };
    format!("{v:.digits$} {unit}")
}

/// `1.2M`, `35.4k`, `812`: parameter counts.
pub fn human_count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.2}B", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::human_ms;

    #[test]
    fn durations_in_units_that_fit() {
        assert_eq!(human_ms(0.0027), "2.70 µs");
        assert_eq!(human_ms(0.000_05), "50.0 ns");
        assert_eq!(human_ms(0.612), "612 µs");
        assert_eq!(human_ms(4.381), "4.38 ms");
        assert_eq!(human_ms(86.0), "86.0 ms");
        assert_eq!(human_ms(1250.0), "1.25 s");
    }
}
