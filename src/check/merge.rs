//! `check --merge 'GLOB.json'`: the reports of a run's partitions (`--report-json`) made into the
//! report of the whole run, in the order one run would have given, with its summary and exit code.

use std::path::PathBuf;

use super::{PartitionFacts, Report};
use crate::error::{ExpectedError, FileError};

/// Reads every report `pattern` names and merges them. Errors (exit 2): a pattern that names no
/// file, a file that is not a report, partitions of different runs, or a partition missing.
pub fn merge(pattern: &str) -> Result<Report, ExpectedError> {
    let files: Vec<PathBuf> = match glob::glob(pattern) {
        Ok(paths) => {
            let mut v: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
            v.sort();
            v
        }
        Err(e) => {
            return Err(ExpectedError::Usage(format!(
                "--merge `{pattern}`: bad pattern: {e}"
            )))
        }
    };
    if files.is_empty() {
        return Err(ExpectedError::Usage(format!(
            "--merge `{pattern}`: matches no file"
        )));
    }
    let mut parts = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| FileError::io(f, "cannot read", &e))?;
        let r: Report = serde_json::from_slice(&bytes).map_err(|e| {
            FileError::new(f, format!("not a report of `check --report-json` ({e})"))
        })?;
        parts.push((f, r));
    }
    check_partitions(&parts)?;
    let peak = parts
        .iter()
        .map(|(_, r)| r.summary.peak_rss_mb)
        .fold(0.0, f64::max);
    let mut models: Vec<_> = parts.into_iter().flat_map(|(_, r)| r.models).collect();
    // One run's order: by place in the whole run (a stable sort keeps files' order otherwise).
    models.sort_by_key(|m| m.order.unwrap_or(usize::MAX));
    let mut merged = super::summarise(models);
    merged.summary.peak_rss_mb = peak;
    Ok(merged)
}

/// Partitioned reports must be the parts of one run: one kind and count, each part once, and
/// every part there.
fn check_partitions(parts: &[(&PathBuf, Report)]) -> Result<(), ExpectedError> {
    let facts: Vec<(&PathBuf, &PartitionFacts)> = parts
        .iter()
        .filter_map(|(f, r)| r.partition.as_ref().map(|p| (*f, p)))
        .collect();
    let Some((_, first)) = facts.first() else {
        return Ok(());
    };
    let first: super::plan::Partition = first
        .partition
        .parse()
        .map_err(|e| FileError::new(facts[0].0, format!("partition {e}")))?;
    let mut seen = vec![None; first.n as usize];
    for (f, p) in &facts {
        let this: super::plan::Partition = p
            .partition
            .parse()
            .map_err(|e| FileError::new(f, format!("partition {e}")))?;
        if this.by_hash != first.by_hash || this.n != first.n || p.total != facts[0].1.total {
            return Err(FileError::new(
                f,
                format!(
                    "partition {} of {} models is not of the same run as {} ({} of {} models)",
                    p.partition,
                    p.total,
                    facts[0].0.display(),
                    facts[0].1.partition,
                    facts[0].1.total
                ),
            )
            .into());
        }
        let slot = &mut seen[this.k as usize - 1];
        if let Some(other) = slot.replace(*f) {
            return Err(ExpectedError::Usage(format!(
                "{} and {}: both are partition {}",
                other.display(),
                f.display(),
                p.partition
            )));
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(k, _)| format!("{}/{}", k + 1, first.n))
        .collect();
    if !missing.is_empty() {
        return Err(ExpectedError::Usage(format!(
            "partition {} of the run is missing (a runner that did not finish?): merged only {} of {} reports",
            missing.join(", "),
            facts.len(),
            first.n
        )));
    }
    let total: usize = parts.iter().map(|(_, r)| r.models.len()).sum();
    if total != facts[0].1.total {
        return Err(ExpectedError::Usage(format!(
            "the partitions hold {total} models, the run had {}",
            facts[0].1.total
        )));
    }
    Ok(())
}
