//! The footprint CSV: one row per exported file; a rerun reads it back to skip finished models.

use std::fmt::Write as _;

use anyhow::{anyhow, bail, Result};

use super::{ModelKind, Point};

pub(crate) const CSV_HEADER: &str =
    "model,dim,k,export,bytes,table_bytes,auc,logloss,trained_auc,train_samples_per_s,pareto";

/// The CSV text of `points` (header included).
pub fn write_csv(points: &[Point]) -> String {
    let mut s = format!("{CSV_HEADER}\n");
    for p in points {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{:.6},{:.6},{:.6},{:.0},{}",
            p.model.name(),
            p.model.dim,
            p.model.k,
            p.export,
            p.bytes,
            p.table_bytes,
            p.auc,
            p.logloss,
            p.trained_auc,
            p.samples_per_s,
            p.pareto
        );
    }
    s
}

/// Parses CSV text written by [`write_csv`].
pub fn read_csv(text: &str) -> Result<Vec<Point>> {
    let mut lines = text.lines();
    if lines.next() != Some(CSV_HEADER) {
        bail!("not a footprint CSV (unexpected header)");
    }
    lines
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 11 {
                bail!("line {}: expected 11 fields, found {}", i + 2, f.len());
            }
            let num = |j: usize| -> Result<f64> {
                f[j].parse::<f64>().map_err(|_| {
                    anyhow!("line {}: field {} `{}` is not a number", i + 2, j + 1, f[j])
                })
            };
            Ok(Point {
                model: ModelKind {
                    dim: num(1)? as usize,
                    k: num(2)? as usize,
                },
                export: f[3].to_string(),
                bytes: num(4)? as u64,
                table_bytes: num(5)? as u64,
                auc: num(6)?,
                logloss: num(7)?,
                trained_auc: num(8)?,
                samples_per_s: num(9)?,
                pareto: f[10] == "true",
            })
        })
        .collect()
}
