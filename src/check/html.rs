//! `check --report FILE.html`: one self-contained page (no script, no network, no external font
//! or style sheet) a person opens after a failed check. Per model the verdict and the back ends;
//! per failed comparison a histogram of the absolute errors by decade, a sample of left against
//! right, the worst elements with their indices; for a bisect, the error along the path from the
//! culprit node to the output and the graph around the culprit.
//!
//! Charts are drawn by plotters' SVG back end (text left to the browser, so no font is read);
//! the graph around the culprit is laid out by layout-rs. Every string from a model or a path
//! goes through [`crate::escape::html`] (plotters and layout-rs escape their own SVG text).

use std::fmt::Write;

use plotters::prelude::*;

use super::bisect::{Divergence, Neighbour};
use super::compare::{Comparison, ErrorDetail};
use super::{BackendStatus, ModelReport, ModelStatus, Report};
use crate::escape::html as h;
use crate::output::human_ms;

const CSS: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; } h3 { font-size: 1.05em; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
table { border-collapse: collapse; margin: .75em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f6f6f6; }
.pass { color: #116611; } .fail, .error { color: #b00020; } .other { color: #8a6d00; }
section.model { border-top: 3px solid #ddd; }
section.model.failed { border-top-color: #b00020; }
.message { font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
.charts svg { border: 1px solid #eee; }
.culprit { background: #fdecea; padding: .4em .6em; border-radius: 4px; }
.note { color: #555; }
";

/// The whole page.
pub fn html(report: &Report) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<title>cargo infer check</title>\n<style>");
    out.push_str(CSS);
    out.push_str("</style>\n</head>\n<body>\n<h1>cargo infer check</h1>\n");
    let s = &report.summary;
    let _ = writeln!(
        out,
        "<p>{} passed, {} failed, {} errors · peak RSS {:.0} MB · cargo-infer {}</p>",
        s.passed,
        s.failed,
        s.errors,
        s.peak_rss_mb,
        env!("CARGO_PKG_VERSION")
    );
    out.push_str("<table>\n<tr><th>model</th><th>verdict</th><th>why</th></tr>\n");
    for (k, m) in report.models.iter().enumerate() {
        let (class, word) = verdict(m.status);
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#model-{k}\">{}</a></td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
            h(&m.path),
            h(&m.message)
        );
    }
    out.push_str("</table>\n");
    for (k, m) in report.models.iter().enumerate() {
        model_section(&mut out, k, m);
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn verdict(s: ModelStatus) -> (&'static str, &'static str) {
    match s {
        ModelStatus::Pass => ("pass", "PASS"),
        ModelStatus::Fail => ("fail", "FAIL"),
        ModelStatus::Error => ("error", "ERROR"),
    }
}

fn model_section(out: &mut String, k: usize, m: &ModelReport) {
    let (class, word) = verdict(m.status);
    let failed = if m.status == ModelStatus::Pass {
        ""
    } else {
        " failed"
    };
    let _ = writeln!(
        out,
        "<section id=\"model-{k}\" class=\"model{failed}\">\n<h2><span class=\"{class}\">{word}</span> {}</h2>",
        h(&m.path)
    );
    if let Some(p) = &m.pair {
        let _ = writeln!(out, "<p>paired with <code>{}</code></p>", h(p));
    }
    if !m.message.is_empty() {
        let _ = writeln!(out, "<p class=\"message\">{}</p>", h(&m.message));
    }
    if !m.backends.is_empty() {
        out.push_str("<table>\n<tr><th>back end</th><th>status</th><th>version</th><th>load</th><th>first run</th><th>steady (median)</th><th>message</th></tr>\n");
        for b in &m.backends {
            let class = match b.status {
                BackendStatus::Pass => "pass",
                BackendStatus::Fail | BackendStatus::Error => "fail",
                _ => "other",
            };
            let ran = matches!(b.status, BackendStatus::Pass | BackendStatus::Fail);
            let time = |ms: f64| if ran { human_ms(ms) } else { String::new() };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                h(&b.name),
                super::status_word(b.status),
                h(b.version.as_deref().unwrap_or("")),
                time(b.load_ms),
                time(b.run_ms),
                b.steady_median_ms.map(human_ms).unwrap_or_default(),
                h(&b.message)
            );
        }
        out.push_str("</table>\n");
    }
    if !m.comparisons.is_empty() {
        out.push_str("<table>\n<tr><th></th><th>left</th><th>right</th><th>output</th><th>data set</th><th>max abs</th><th>max rel</th><th>outside tolerance</th></tr>\n");
        for c in &m.comparisons {
            let (class, word) = if c.pass {
                ("pass", "ok")
            } else {
                ("fail", "FAIL")
            };
            let outside = match &c.problem {
                Some(p) => h(p),
                None => format!(
                    "{} of {} (atol {:.0e}, rtol {:.0e})",
                    c.mismatches, c.elements, c.atol, c.rtol
                ),
            };
            let _ = writeln!(
                out,
                "<tr><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{:.3e}</td><td>{:.3e}</td><td>{outside}</td></tr>",
                h(&c.left),
                h(&c.right),
                h(&c.output),
                h(&c.data_set),
                c.max_abs,
                c.max_rel
            );
        }
        out.push_str("</table>\n");
    }
    for n in &m.notes {
        let _ = writeln!(out, "<p class=\"note\">note: {}</p>", h(n));
    }
    for c in m
        .comparisons
        .iter()
        .filter(|c| c.errors.is_some() || c.divergence.is_some())
    {
        comparison_detail(out, c);
    }
    out.push_str("</section>\n");
}

fn comparison_detail(out: &mut String, c: &Comparison) {
    let _ = writeln!(
        out,
        "<div class=\"comparison\">\n<h3>{} vs {} on <code>{}</code> ({})</h3>\n<p>{}</p>",
        h(&c.left),
        h(&c.right),
        h(&c.output),
        h(&c.data_set),
        h(&c.summary())
    );
    if let Some(e) = &c.errors {
        out.push_str("<div class=\"charts\">\n");
        chart(out, "histogram", histogram(e));
        chart(out, "scatter", scatter(c, e));
        out.push_str("</div>\n<table>\n<tr><th>index</th><th>");
        let _ = writeln!(
            out,
            "{}</th><th>{}</th><th>|difference|</th></tr>",
            h(&c.left),
            h(&c.right)
        );
        for w in &e.worst {
            let index: Vec<String> = w.index.iter().map(|i| i.to_string()).collect();
            let _ = writeln!(
                out,
                "<tr><td>[{}]</td><td>{:.6e}</td><td>{:.6e}</td><td>{:.3e}</td></tr>",
                index.join(", "),
                w.left,
                w.right,
                w.abs
            );
        }
        out.push_str("</table>\n");
    }
    if let Some(d) = &c.divergence {
        divergence(out, d);
    }
    out.push_str("</div>\n");
}

fn divergence(out: &mut String, d: &Divergence) {
    let _ = writeln!(
        out,
        "<h3 class=\"culprit\" id=\"culprit\">First divergence: node <code>{}</code> ({})</h3>",
        h(&d.node),
        h(&d.op)
    );
    let _ = writeln!(
        out,
        "<p>Its output <code>{}</code> differs by up to {:.3e} while its inputs agree within {:.3e}. Bisect compared {} intermediate tensors in {} run{} of each side ({}).</p>",
        h(&d.output),
        d.max_abs,
        d.inputs_max_abs,
        d.tensors,
        d.runs,
        if d.runs == 1 { "" } else { "s" },
        human_ms(d.ms)
    );
    if !d.attributes.is_empty() {
        let attrs: Vec<String> = d
            .attributes
            .iter()
            .map(|a| format!("<code>{}</code>", h(a)))
            .collect();
        let _ = writeln!(out, "<p>Attributes: {}</p>", attrs.join(" "));
    }
    out.push_str("<div class=\"charts\">\n");
    chart(out, "path", path_plot(d));
    chart(out, "graph", neighbourhood(d));
    out.push_str(
        "</div>\n<table>\n<tr><th></th><th>tensor</th><th>shape</th><th>max abs</th></tr>\n",
    );
    for (side, list) in [("input", &d.inputs), ("output", &d.outputs)] {
        for t in list {
            let _ = writeln!(
                out,
                "<tr><td>{side}</td><td><code>{}</code></td><td>{:?}</td><td class=\"{}\">{:.3e}</td></tr>",
                h(&t.name),
                t.shape,
                if t.pass { "pass" } else { "fail" },
                t.max_abs
            );
        }
    }
    out.push_str("</table>\n");
}

/// An SVG chart inline, or a note saying why it could not be drawn.
fn chart(out: &mut String, class: &str, svg: Result<String, String>) {
    match svg {
        Ok(svg) => {
            // Inline in HTML: the SVG element alone, without an XML declaration.
            let svg = svg.find("<svg").map_or(svg.as_str(), |at| &svg[at..]);
            let _ = writeln!(out, "<div class=\"{class}\">{svg}</div>");
        }
        Err(e) => {
            let _ = writeln!(out, "<p class=\"note\">({class} not drawn: {})</p>", h(&e));
        }
    }
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

const W: u32 = 520;
const H: u32 = 320;

/// Elements by decade of |left − right|; the first bar holds the exact matches.
fn histogram(e: &ErrorDetail) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = e.histogram.len() as i32;
        let top = e.histogram.iter().map(|b| b.2).max().unwrap_or(1).max(1);
        let labels: Vec<String> = e
            .histogram
            .iter()
            .map(|(lo, _, _)| {
                if *lo == 0.0 {
                    "exact".into()
                } else {
                    format!("{lo:.0e}")
                }
            })
            .collect();
        let mut chart = ChartBuilder::on(&root)
            .caption("|left − right| per element, by decade", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0i32..n, 0u64..top + top / 10 + 1)
            .map_err(err)?;
        let label = |i: &i32| labels.get(*i as usize).cloned().unwrap_or_default();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.max(1) as usize + 1)
            .x_label_formatter(&label)
            .x_desc("error at least")
            .y_desc("elements")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(e.histogram.iter().enumerate().map(|(i, (lo, _, count))| {
                let colour = if *lo == 0.0 { GREEN } else { RED };
                Rectangle::new(
                    [(i as i32, 0u64), (i as i32 + 1, *count)],
                    colour.mix(0.55).filled(),
                )
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Left against right on a sample of elements, with the line where they are equal.
fn scatter(c: &Comparison, e: &ErrorDetail) -> Result<String, String> {
    let (lo, hi) = e
        .sample
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (a, b)| {
            (lo.min(*a).min(*b), hi.max(*a).max(*b))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return Err("no finite values".into());
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    let (lo, hi) = (lo - pad, hi + pad);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "{} against {} ({} elements)",
                    c.left,
                    c.right,
                    e.sample.len()
                ),
                ("sans-serif", 16),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(c.right.as_str())
            .y_desc(c.left.as_str())
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.mix(0.3)))
            .map_err(err)?;
        chart
            .draw_series(
                e.sample
                    .iter()
                    .map(|(a, b)| Circle::new((*b, *a), 2, BLUE.mix(0.6).filled())),
            )
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The largest output error of each node from the culprit to the failing output (log scale):
/// where the line jumps is where the runs part.
fn path_plot(d: &Divergence) -> Result<String, String> {
    const FLOOR: f64 = 1e-12;
    let ys: Vec<f64> = d.path.iter().map(|s| s.max_abs.max(FLOOR)).collect();
    if ys.is_empty() {
        return Err("no path".into());
    }
    let lo = ys.iter().copied().fold(f64::INFINITY, f64::min) / 3.0;
    let hi = ys.iter().copied().fold(0.0, f64::max) * 3.0;
    let n = ys.len() as i32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("max |error| by node, culprit to output", ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(-1i32..n, (lo..hi).log_scale())
            .map_err(err)?;
        let label = |i: &i32| {
            d.path
                .get(usize::try_from(*i).unwrap_or(usize::MAX))
                .map(|s| s.node.chars().take(12).collect())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .x_labels(n as usize + 2)
            .x_label_formatter(&label)
            .y_label_formatter(&|y: &f64| format!("{y:.0e}"))
            .y_desc("max |error|")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                ys.iter().enumerate().map(|(i, y)| (i as i32, *y)),
                BLUE,
            ))
            .map_err(err)?;
        chart
            .draw_series(ys.iter().enumerate().map(|(i, y)| {
                let colour = if i == 0 { RED } else { BLUE };
                Circle::new((i as i32, *y), 4, colour.filled())
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The culprit with what feeds it and what reads it, each edge labelled with its tensor's shape.
fn neighbourhood(d: &Divergence) -> Result<String, String> {
    let described = |n: &Neighbour| {
        if n.op == "input" || n.op == "weight" {
            format!("{}: {}", n.op, short(&n.node))
        } else {
            format!("{} ({})\nmax_abs {:.1e}", short(&n.node), n.op, n.max_abs)
        }
    };
    let edge = |n: &Neighbour| format!("{:?}", n.shape);
    // Box 0 is the culprit; then what feeds it, then what reads it.
    let mut boxes = vec![(
        format!("{} ({})\nmax_abs {:.1e}", short(&d.node), d.op, d.max_abs),
        "pink",
    )];
    let mut edges = Vec::new();
    for p in d.producers.iter().take(8) {
        let fill = if p.max_abs > 0.0 {
            "lightyellow"
        } else {
            "white"
        };
        edges.push((boxes.len(), 0, edge(p)));
        boxes.push((described(p), fill));
    }
    for c in d.consumers.iter().take(8) {
        edges.push((0, boxes.len(), edge(c)));
        boxes.push((described(c), "white"));
    }
    crate::graph::layout_svg(&boxes, &edges, 13).map_err(|e| e.to_string())
}

/// A name cut to a length a box can show.
fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        let head: String = s.chars().take(39).collect();
        format!("{head}…")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::bisect::{Step, TensorError};
    use crate::check::compare::{compare, ToleranceArgs};
    use crate::check::{BackendReport, ModelReport, Summary};
    use crate::tensor::HostTensor;

    const HOSTILE: &str = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";

    /// Model paths, tensor and node names, attributes and messages are text on the page, never
    /// markup: the page holds no script, no element a name opened, and nothing fetched.
    #[test]
    fn model_strings_stay_text() {
        let a = HostTensor::from_f32(vec![4], &[1.0, 2.0, 3.0, 4.0]);
        let b = HostTensor::from_f32(vec![4], &[1.0, 2.5, 3.0, 40.0]);
        let mut c = compare(
            (HOSTILE, &a),
            ("ort", &b),
            HOSTILE,
            HOSTILE,
            &ToleranceArgs::default(),
        );
        let t = |pass| TensorError {
            name: HOSTILE.into(),
            shape: vec![4],
            max_abs: 1.0,
            pass,
        };
        let n = Neighbour {
            node: HOSTILE.into(),
            op: HOSTILE.into(),
            tensor: HOSTILE.into(),
            shape: vec![4],
            max_abs: 0.5,
        };
        c.divergence = Some(Box::new(Divergence {
            node: HOSTILE.into(),
            op: HOSTILE.into(),
            output: HOSTILE.into(),
            max_abs: 36.0,
            inputs_max_abs: 0.0,
            path: vec![
                Step {
                    node: HOSTILE.into(),
                    op: HOSTILE.into(),
                    max_abs: 36.0,
                },
                Step {
                    node: "out".into(),
                    op: "Relu".into(),
                    max_abs: 0.0,
                },
            ],
            attributes: vec![format!("mode={HOSTILE}")],
            inputs: vec![t(true)],
            outputs: vec![t(false)],
            producers: vec![n.clone()],
            consumers: vec![n],
            tensors: 3,
            runs: 1,
            ms: 1.5,
        }));
        let mut backend = BackendReport::new(HOSTILE, true);
        backend.message = HOSTILE.into();
        let report = Report {
            models: vec![ModelReport {
                path: HOSTILE.into(),
                status: ModelStatus::Fail,
                message: HOSTILE.into(),
                backends: vec![backend],
                comparisons: vec![c],
                data_sets: vec![HOSTILE.into()],
                notes: vec![HOSTILE.into()],
                pair: Some(HOSTILE.into()),
                embedding: None,
                cached: false,
                order: None,
            }],
            summary: Summary {
                passed: 0,
                failed: 1,
                errors: 0,
                peak_rss_mb: 1.0,
            },
            partition: None,
        };
        let page = html(&report);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        // Every chart was drawn (none fell back to a note).
        assert!(!page.contains("not drawn"), "{page}");
        assert_eq!(page.matches("<svg").count(), 4, "{page}");
        for external in ["<link", " src=\"", "href=\"http", "@import"] {
            assert!(!page.contains(external), "{external}");
        }
        // `url(` only for the page's own fragments (SVG markers, clip paths).
        assert!(page
            .match_indices("url(")
            .all(|(i, _)| page[i..].starts_with("url(#")));
    }
}
