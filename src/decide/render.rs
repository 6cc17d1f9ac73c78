//! `decide` output: the choice and ranking for people (`--explain`: every rule), or JSON.

use std::fmt::Write;

use super::{Decision, Verdict};
use crate::output::Style;

/// The decision for people: choice, constraints and their sources, viable frameworks by score with
/// reasons, excluded ones with why, tract's load; `explain` adds every rule and what it did.
pub fn human(d: &Decision, style: Style, explain: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} → {}",
        style.bold(&d.model),
        style.good(d.choice.as_str())
    );
    let c = &d.constraints;
    let mut cs = vec![c.describe()];
    if !c.sources.is_empty() {
        let from: Vec<String> = c
            .sources
            .iter()
            .map(|(k, v)| format!("{k} from {v}"))
            .collect();
        cs.push(format!("({})", from.join(", ")));
    }
    let _ = writeln!(out, "  constraints: {}", cs.join(", "));
    for (i, r) in d
        .ranking
        .iter()
        .filter(|r| r.verdict != Verdict::Excluded)
        .enumerate()
    {
        let verdict = match r.verdict {
            Verdict::Recommended => style.good("recommended"),
            _ => "viable     ".to_string(),
        };
        let _ = writeln!(
            out,
            "  {}. {:10} {verdict}  score {:>5.1}",
            i + 1,
            r.framework.as_str(),
            r.score
        );
        for why in &r.reasons {
            let _ = writeln!(out, "       {}", style.dim(why));
        }
    }
    let excluded: Vec<&super::Ranked> = d
        .ranking
        .iter()
        .filter(|r| r.verdict == Verdict::Excluded)
        .collect();
    if !excluded.is_empty() {
        let _ = writeln!(out, "  {}", style.bold("excluded"));
        for r in excluded {
            let _ = writeln!(
                out,
                "     {:10} {}",
                r.framework.as_str(),
                r.reasons.join("; ")
            );
        }
    }
    if let Some(load) = &d.evidence.tract_load {
        let said = match load {
            super::TractLoad::Loaded { ms, note } if note.is_empty() => {
                format!("loaded, typed and ran in {}", crate::output::human_ms(*ms))
            }
            super::TractLoad::Loaded { ms, note } => format!(
                "loaded, typed and ran in {}; {note}",
                crate::output::human_ms(*ms)
            ),
            super::TractLoad::Failed { ms, reason } => style.bad(&format!(
                "failed in {}: {reason}",
                crate::output::human_ms(*ms)
            )),
            super::TractLoad::Skipped { why } => style.dim(&format!("not tried: {why}")),
        };
        let _ = writeln!(out, "  tract load: {said}");
    }
    if explain {
        let _ = writeln!(out, "  {}", style.bold("rules, in order"));
        for f in &d.rules {
            let mark = if f.fired {
                style.good("fired")
            } else {
                style.dim("  -  ")
            };
            let effect = if f.fired {
                format!(" → {}", f.effect)
            } else {
                String::new()
            };
            let _ = writeln!(out, "     {mark} {:17} {}{effect}", f.id, f.says);
        }
    }
    out
}

/// The contract of DESIGN.md (`choice`, `ranking`, `constraints`) plus `evidence` and `rules`.
pub fn json(d: &Decision) -> String {
    let mut s = serde_json::to_string_pretty(d).expect("decision serialises");
    s.push('\n');
    s
}
