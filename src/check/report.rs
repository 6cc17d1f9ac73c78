//! Rendering a check report: a table per model for people (failures first), the JSON contract,
//! JUnit XML (one test case per model × back end), GitHub Actions annotations.

use std::fmt::Write;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::{BackendReport, BackendStatus, ModelReport, ModelStatus, Report};
use crate::output::Style;

/// The report for people: a table per model, errors and failures first, then the summary line;
/// `verbose` adds back ends' whole error accounts, every comparison and passed models' notes.
pub fn human(report: &Report, style: Style, verbose: u8) -> String {
    let mut out = String::new();
    let mut order: Vec<&ModelReport> = report.models.iter().collect();
    order.sort_by_key(|m| match m.status {
        ModelStatus::Error => 0,
        ModelStatus::Fail => 1,
        ModelStatus::Pass => 2,
    });
    for m in order {
        model_head(&mut out, m, style);
        if m.status == ModelStatus::Error {
            continue;
        }
        // Names in one column, however long (`ort:pair`).
        let width = m
            .backends
            .iter()
            .map(|b| b.name.len())
            .max()
            .unwrap_or(0)
            .max(6);
        for b in &m.backends {
            backend_lines(&mut out, b, width, style, verbose);
        }
        comparison_lines(&mut out, m, style, verbose);
        if let Some(e) = &m.embedding {
            embedding_lines(&mut out, e, style);
        }
        if verbose > 0 || m.status != ModelStatus::Pass {
            for n in &m.notes {
                let _ = writeln!(out, "      {}", style.dim(&format!("note: {n}")));
            }
        }
    }
    summary_line(&mut out, report, style);
    out
}

/// A model's first line (its status, path, twin, whether cached) and the line saying why it did
/// not pass.
fn model_head(out: &mut String, m: &ModelReport, style: Style) {
    let tag = match m.status {
        ModelStatus::Pass => style.good("PASS "),
        ModelStatus::Fail => style.bad("FAIL "),
        ModelStatus::Error => style.bad("ERROR"),
    };
    let cached = if m.cached {
        style.dim(" (cached: an earlier run's result, same key)")
    } else {
        String::new()
    };
    match &m.pair {
        Some(p) => {
            let _ = writeln!(out, "{tag} {} paired with {p}{cached}", style.bold(&m.path));
        }
        None => {
            let _ = writeln!(out, "{tag} {}{cached}", style.bold(&m.path));
        }
    }
    // A model that failed because a back end did says so once, on that back end's line.
    let restates_a_backend = m.backends.iter().any(|b| {
        !b.message.is_empty()
            && m.message == format!("{} {}: {}", b.name, super::status_word(b.status), b.message)
    });
    if !m.message.is_empty() && (!restates_a_backend || m.status == ModelStatus::Error) {
        let _ = writeln!(out, "      {}", m.message);
    }
}

/// A back end's line (status, timing or why), its notes, and with `-v` its error's detail.
fn backend_lines(out: &mut String, b: &BackendReport, width: usize, style: Style, verbose: u8) {
    let word = match b.status {
        BackendStatus::Pass => "pass",
        BackendStatus::Fail => "FAIL",
        BackendStatus::Error => "ERROR",
        BackendStatus::Unavailable => "unavailable",
        BackendStatus::Unsupported => "unsupported",
    };
    let status = match b.status {
        BackendStatus::Pass => style.good(word),
        BackendStatus::Fail | BackendStatus::Error => style.bad(word),
        BackendStatus::Unavailable | BackendStatus::Unsupported => style.warn(word),
    };
    let pad = 11 - word.len();
    let detail = match b.status {
        BackendStatus::Pass | BackendStatus::Fail if b.message.is_empty() => timing(b),
        // A disagreement's numbers are on the model's line and the comparison's: the back end's
        // line says only with whom and on what.
        BackendStatus::Fail if b.message.starts_with("output `") => format!(
            "{}; {}",
            timing(b),
            b.message.split(": ").next().unwrap_or(&b.message)
        ),
        BackendStatus::Pass | BackendStatus::Fail => {
            format!("{}; {}", timing(b), b.message)
        }
        _ => b.message.clone(),
    };
    let _ = writeln!(out, "      {:width$} {status}{:pad$} {detail}", b.name, "");
    // Notes start under the status column.
    let indent = 7 + width;
    for n in &b.notes {
        let _ = writeln!(out, "{:indent$}{}", "", style.dim(&format!("note: {n}")));
    }
    if let Some(d) = b.detail.as_ref().filter(|_| verbose > 0) {
        let _ = writeln!(out, "{:indent$}{}", "", style.dim(&format!("detail: {d}")));
    }
}

/// A model's comparisons: every failed one, and the passed ones when few or with `-v` (else how
/// many passed).
fn comparison_lines(out: &mut String, m: &ModelReport, style: Style, verbose: u8) {
    let shown: Vec<&super::compare::Comparison> = m
        .comparisons
        .iter()
        .filter(|c| verbose > 0 || !c.pass || m.comparisons.len() <= 6)
        .collect();
    for c in &shown {
        let mark = if c.pass {
            style.good("ok  ")
        } else {
            style.bad("FAIL")
        };
        let set = if m.data_sets.len() > 1 {
            format!(" [{}]", c.data_set)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "      {mark} {} vs {} `{}`{set}: {}",
            c.left,
            c.right,
            c.output,
            c.summary()
        );
        if let Some(d) = &c.divergence {
            for line in d.human() {
                let _ = writeln!(out, "           {line}");
            }
        }
    }
    if shown.len() < m.comparisons.len() {
        let _ = writeln!(
            out,
            "      {}",
            style.dim(&format!(
                "{} more comparisons passed (-v shows them)",
                m.comparisons.len() - shown.len()
            ))
        );
    }
}

/// Text in: the embeddings' width and pooling, the paraphrase check, and whether fastembed takes
/// the model.
fn embedding_lines(out: &mut String, e: &super::text::EmbeddingFacts, style: Style) {
    let modes: Vec<&str> = e.pooling.iter().map(|p| p.name()).collect();
    let _ = writeln!(
        out,
        "      embeddings: {} wide from `{}`, {} pooling, L2-normalised{}",
        e.dim,
        e.output,
        modes.join("+"),
        if e.normalized { "" } else { " (NOT finite)" }
    );
    if let Some(p) = &e.paraphrase {
        let verdict = if p.holds {
            style.good("holds")
        } else {
            style.warn("does not hold")
        };
        let _ = writeln!(
            out,
            "      paraphrase check: cosine {:.4} (paraphrase) vs {:.4} (unrelated): {verdict} {}",
            p.paraphrase_cosine,
            p.unrelated_cosine,
            style.dim("(reported, not required)")
        );
    }
    match e.fastembed_accepts {
        Some(true) => {
            let _ = writeln!(
                out,
                "      fastembed: takes the model and its tokenizer files"
            );
        }
        Some(false) => {
            let _ = writeln!(
                out,
                "      fastembed: {} {}",
                style.warn("would refuse it:"),
                e.fastembed_refusals.join("; ")
            );
        }
        None => {}
    }
}

/// The run's last line: how many models passed, failed and erred, and the peak memory.
fn summary_line(out: &mut String, report: &Report, style: Style) {
    let s = &report.summary;
    let from_cache = report.models.iter().filter(|m| m.cached).count();
    let _ = writeln!(
        out,
        "{} {} passed{}, {} failed, {} errors (peak RSS {:.0} MB)",
        style.bold("summary:"),
        s.passed,
        if from_cache > 0 {
            format!(" ({from_cache} from the cache)")
        } else {
            String::new()
        },
        s.failed,
        s.errors,
        s.peak_rss_mb
    );
}

fn timing(b: &super::BackendReport) -> String {
    use crate::output::human_ms;
    let mut s = format!(
        "load {}, first run {}",
        human_ms(b.load_ms),
        human_ms(b.run_ms)
    );
    if let (Some(med), Some(p95)) = (b.steady_median_ms, b.steady_p95_ms) {
        s += &format!(", steady {} median / {} p95", human_ms(med), human_ms(p95));
    }
    s
}

/// The JSON report (`--format json`, `--report-json`): [`Report`] as serde writes it, pretty, with
/// a final newline.
pub fn json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("report serialises");
    s.push('\n');
    s
}

/// One test case per model × back end; a model that could not be read is one errored case. A
/// model that did not pass always has a failed or errored case, as the exit code says: when none
/// of its back ends' cases failed (back ends that disagree, or none that could run), a
/// `[verdict]` case carries the model's reason.
pub fn junit(report: &Report) -> String {
    let mut junit = quick_junit::Report::new("cargo-infer check");
    let mut suite = TestSuite::new("check");
    for m in &report.models {
        if m.backends.is_empty() {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(m.message.clone());
            suite.add_test_case(TestCase::new(m.path.clone(), status));
            continue;
        }
        let mut backend_failed = false;
        for b in &m.backends {
            let status = match b.status {
                BackendStatus::Pass => TestCaseStatus::success(),
                BackendStatus::Unavailable | BackendStatus::Unsupported if !b.required => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(b.message.clone());
                    s
                }
                BackendStatus::Error => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(b.message.clone());
                    s
                }
                _ => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(b.message.clone());
                    s
                }
            };
            backend_failed |= matches!(status, TestCaseStatus::NonSuccess { .. });
            let mut case = TestCase::new(format!("{} [{}]", m.path, b.name), status);
            case.set_classname(m.path.clone());
            case.set_time(std::time::Duration::from_secs_f64(
                (b.load_ms + b.run_ms) / 1e3,
            ));
            suite.add_test_case(case);
        }
        if m.status != ModelStatus::Pass && !backend_failed {
            let kind = match m.status {
                ModelStatus::Error => NonSuccessKind::Error,
                _ => NonSuccessKind::Failure,
            };
            let mut status = TestCaseStatus::non_success(kind);
            status.set_message(m.message.clone());
            let mut case = TestCase::new(format!("{} [verdict]", m.path), status);
            case.set_classname(m.path.clone());
            suite.add_test_case(case);
        }
    }
    junit.add_test_suite(suite);
    let mut s = junit.to_string().expect("JUnit serialises");
    s.push('\n');
    s
}

/// `::error file=…::message` lines for GitHub Actions, one per model that did not pass.
pub fn github_annotations(report: &Report) -> String {
    let mut out = String::new();
    for m in report
        .models
        .iter()
        .filter(|m| m.status != ModelStatus::Pass)
    {
        let msg = m
            .message
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        // A property value (the path) also ends at `:` or `,`.
        let file = m
            .path
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
            .replace(':', "%3A")
            .replace(',', "%2C");
        let _ = writeln!(out, "::error file={file},title=cargo infer check::{msg}");
    }
    out
}
