//! The side-by-side table for people (`--against`): one line per figure with both columns and the
//! ratio ours / theirs, and what each column ran with.

use std::fmt::Write as _;

use crate::report::Report;
use crate::versus::Row;

/// What the ratio and the marks mean.
const LEGEND: [&str; 4] = [
    "ratio < 1: ours takes less time, memory or CPU; for \"per second\", > 1: ours does more.",
    "!: a figure where ours is behind. FAILED: the run failed for that binary (its error and",
    "  log tail above); n/a: not run for it; -: not measured. Start-ups are the dedicated starts",
    "  and each burst run's (Jira latency 0); decisions p50: card moved -> request APPROVED.",
];

/// The table, after both binaries' own reports.
pub fn render(ours: &Report, theirs: &Report, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Side by side (ratio = ours / against):");
    let _ = writeln!(
        out,
        "  ours    {} (tuning flags applied)",
        ours.binary.display()
    );
    let _ = writeln!(
        out,
        "  against {} (the Go plugin's config keys only, one process)",
        theirs.binary.display()
    );
    let width = rows
        .iter()
        .map(|r| r.figure.len() + r.unit.len() + 3)
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "  {:<width$} {:>10} {:>10} {:>12}",
        "figure", "ours", "against", "ours/against"
    );
    for row in rows {
        let label = format!("{} ({})", row.figure, row.unit);
        let ratio = row.ratio().map_or_else(
            || "-".to_owned(),
            |r| {
                let better = if row.higher_is_better {
                    r >= 1.0
                } else {
                    r <= 1.0
                };
                format!("{r:.2}x{}", if better { " " } else { "!" })
            },
        );
        let _ = writeln!(
            out,
            "  {label:<width$} {:>10} {:>10} {ratio:>12}",
            row.ours.show(decimals(row.unit)),
            row.theirs.show(decimals(row.unit)),
        );
    }
    for line in LEGEND {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out);
    out
}

/// Seconds with three decimals, everything else with one.
fn decimals(unit: &str) -> usize {
    if unit == "s" { 3 } else { 1 }
}
