//! What a footprint run concludes: the table of every file, the headline (the smallest file
//! that matches each plain f32 model) and the verdict on the paper's claim.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

use super::{ModelKind, Point, AUC_MATCH};

/// The smallest point among `candidates` whose AUC is within [`AUC_MATCH`] of `target`'s (or
/// above it).
fn smallest_match<'a>(
    target: &Point,
    candidates: impl Iterator<Item = &'a Point>,
) -> Option<&'a Point> {
    candidates
        .filter(|q| q.auc >= target.auc - AUC_MATCH)
        .min_by_key(|q| q.bytes)
}

/// The headline, one line per plain f32 model: the smallest MLET file of the same dtype (f32)
/// whose AUC matches it within [`AUC_MATCH`], the smallest matching file of any kind, and, for
/// fairness, the smallest matching plain file; each with how many times smaller it is.
pub fn headline(points: &[Point]) -> Vec<String> {
    let mut plain: Vec<&Point> = points
        .iter()
        .filter(|p| p.model.k == 0 && p.export == "f32")
        .collect();
    plain.sort_by_key(|p| p.model.dim);
    let describe = |target: &Point, m: Option<&Point>| match m {
        Some(m) => format!(
            "{} (AUC {:.4}), {:.1}x smaller",
            m.label(),
            m.auc,
            target.bytes as f64 / m.bytes as f64
        ),
        None => "none".to_string(),
    };
    plain
        .into_iter()
        .map(|target| {
            let mlet = points.iter().filter(|q| q.model.k > 0);
            let mlet_f32 = smallest_match(target, mlet.clone().filter(|q| q.export == "f32"));
            let any_mlet = smallest_match(target, mlet);
            let any_plain = smallest_match(target, points.iter().filter(|q| q.model.k == 0));
            format!(
                "{} f32 (AUC {:.4}, {} bytes): MLET f32 match: {}; smallest MLET match: {}; smallest plain match: {}",
                target.model.label(),
                target.auc,
                target.bytes,
                describe(target, mlet_f32),
                describe(target, any_mlet),
                describe(target, any_plain)
            )
        })
        .collect()
}

/// The paper's claim on this data: does the best MLET d=4 f32 file reach plain d=16 f32's AUC
/// (within [`AUC_MATCH`])? `None` when the grid lacks either.
pub fn paper_claim(points: &[Point]) -> Option<String> {
    let plain16 = points
        .iter()
        .find(|p| p.model == ModelKind { dim: 16, k: 0 } && p.export == "f32")?;
    let best4 = points
        .iter()
        .filter(|p| p.model.dim == 4 && p.model.k > 0 && p.export == "f32")
        .max_by(|a, b| a.auc.total_cmp(&b.auc))?;
    let gap = plain16.auc - best4.auc;
    let verdict = if gap <= AUC_MATCH {
        format!(
            "reached: tables {:.1}x smaller in f32",
            plain16.table_bytes as f64 / best4.table_bytes as f64
        )
    } else {
        format!("NOT reached: {gap:.4} AUC short")
    };
    Some(format!(
        "paper's claim (MLET d=4 reaches plain d=16): best {} AUC {:.4} vs plain d=16 f32 AUC {:.4}: {verdict}",
        best4.label(),
        best4.auc,
        plain16.auc
    ))
}

/// `points` grouped by model, plain first, then MLET by k, each by d.
fn table(points: &[Point]) -> BTreeMap<(usize, usize), Vec<&Point>> {
    let mut out: BTreeMap<(usize, usize), Vec<&Point>> = BTreeMap::new();
    for p in points {
        out.entry((p.model.k, p.model.dim)).or_default().push(p);
    }
    out
}

/// Prints the points as a table, then the headline and the paper's claim, to `out`.
pub fn report(points: &[Point], out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "{:<16} {:<11} {:>11} {:>11} {:>8} {:>8} {:>7}",
        "model", "export", "file bytes", "table bytes", "AUC", "logloss", "pareto"
    )?;
    for group in table(points).values() {
        for p in group {
            writeln!(
                out,
                "{:<16} {:<11} {:>11} {:>11} {:>8.4} {:>8.4} {:>7}",
                p.model.label(),
                p.export,
                p.bytes,
                p.table_bytes,
                p.auc,
                p.logloss,
                if p.pareto { "*" } else { "" }
            )?;
        }
    }
    writeln!(out, "\nheadline (AUC match within {AUC_MATCH}):")?;
    for line in headline(points) {
        writeln!(out, "  {line}")?;
    }
    if let Some(line) = paper_claim(points) {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::footprint::{mark_pareto, plot_svg, read_csv, write_csv};

    fn point(dim: usize, k: usize, export: &str, bytes: u64, auc: f64) -> Point {
        Point {
            model: ModelKind { dim, k },
            export: export.into(),
            bytes,
            table_bytes: bytes - 100,
            auc,
            logloss: 0.4,
            trained_auc: auc,
            samples_per_s: 1000.0,
            pareto: false,
        }
    }

    #[test]
    fn pareto_csv_and_headline() {
        let mut points = vec![
            point(16, 0, "f32", 16_000, 0.800),
            point(4, 0, "f32", 4_000, 0.790),
            point(4, 64, "f32", 4_000, 0.7995),
            point(4, 64, "int8-row", 1_500, 0.7992),
            point(4, 64, "f16", 2_100, 0.7990),
        ];
        mark_pareto(&mut points);
        let front: Vec<bool> = points.iter().map(|p| p.pareto).collect();
        assert_eq!(front, [true, false, true, true, false]);
        assert_eq!(read_csv(&write_csv(&points)).unwrap(), points);
        let lines = headline(&points);
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].contains("MLET f32 match: MLET d=4 k=64 f32 (AUC 0.7995), 4.0x smaller"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].contains(
                "smallest MLET match: MLET d=4 k=64 int8-row (AUC 0.7992), 10.7x smaller"
            ),
            "{}",
            lines[1]
        );
        // MLET d=4 (0.7995) is within AUC_MATCH of plain d=16 (0.800): reached.
        let claim = paper_claim(&points).unwrap();
        assert!(
            claim.ends_with(": reached: tables 4.1x smaller in f32"),
            "{claim}"
        );
        // 0.002 short: not reached, and the gap is given.
        let mut short = points.clone();
        short[2].auc = 0.798;
        let claim = paper_claim(&short).unwrap();
        assert!(
            claim.ends_with(": NOT reached: 0.0020 AUC short"),
            "{claim}"
        );
        // Without a plain d=16 f32 model there is no verdict.
        assert_eq!(paper_claim(&points[1..]), None);
        let svg = plot_svg(&points, "test").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Pareto front"));
    }
}
