//! What a search concludes: each (cell, export) as the mean and spread of its test AUC over its
//! seeds, the best, the smallest match within the loss allowed, the commands that make it, the
//! table, the CSV and the plot.

use std::io::Write;

use anyhow::{Context, Result};
use mlet_formats::writer::write_atomic;

use super::run::{group, Score};
use super::{Cell, ShrinkSettings, CALIBRATION_ROWS, EXPORTS, METHODS};
use crate::memory::bytes as human;
use crate::plot::{pareto_front, pareto_svg, PlotPoint};
use crate::quantize::Layers;
use mlet_formats::EmbeddingDtype;

/// One (cell, rate, export) over its seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    /// The cell.
    pub cell: Cell,
    /// Its learning rate.
    pub lr: f64,
    /// The export's name.
    pub export: String,
    /// Mean test AUC.
    pub mean: f64,
    /// Sample standard deviation of the test AUC (0 with one seed).
    pub std: f64,
    /// Seeds.
    pub seeds: usize,
    /// File bytes (of seed 0's file).
    pub bytes: u64,
    /// Table bytes.
    pub table_bytes: u64,
    /// MLP bytes.
    pub mlp_bytes: u64,
}

impl Aggregate {
    /// Standard error of the mean (0 with one seed: unknown, and said so).
    pub fn standard_error(&self) -> f64 {
        if self.seeds < 2 {
            0.0
        } else {
            self.std / (self.seeds as f64).sqrt()
        }
    }

    /// `MLET d=4 k=64, 1/4 rows, int8-table`.
    pub fn label(&self) -> String {
        format!("{}, {}", self.cell.label(), self.export)
    }
}

/// The search's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// The highest mean test AUC.
    pub best: Aggregate,
    /// The smallest file whose mean is within its tolerance of the best.
    pub chosen: Aggregate,
    /// The AUC the chosen one was allowed to lose: `max(max_auc_loss, 2 x combined SE)`.
    pub tolerance: f64,
    /// The plain f32 model with every row at its best d, to say how much smaller the answer is.
    pub baseline: Option<Aggregate>,
}

/// Every (cell, rate, export) with its seeds' scores, sorted by bytes.
pub fn aggregate(scores: &[Score]) -> Vec<Aggregate> {
    let mut out: Vec<Aggregate> = group(scores)
        .into_values()
        .map(|group| {
            let n = group.len();
            let mean = group.iter().map(|s| s.auc).sum::<f64>() / n as f64;
            let var = if n > 1 {
                group.iter().map(|s| (s.auc - mean).powi(2)).sum::<f64>() / (n - 1) as f64
            } else {
                0.0
            };
            let first = group
                .iter()
                .min_by_key(|s| s.seed)
                .copied()
                .unwrap_or(group[0]);
            Aggregate {
                cell: first.cell,
                lr: first.lr,
                export: first.export.clone(),
                mean,
                std: var.sqrt(),
                seeds: n,
                bytes: first.bytes,
                table_bytes: first.table_bytes,
                mlp_bytes: first.mlp_bytes,
            }
        })
        .collect();
    out.sort_by(|a, b| a.bytes.cmp(&b.bytes).then(b.mean.total_cmp(&a.mean)));
    out
}

/// The AUC `a` may lose against `reference` and still match it:
/// `max(max_auc_loss, 2 x the two means' combined standard error)`.
fn tolerance(reference: &Aggregate, a: &Aggregate, max_auc_loss: f64) -> f64 {
    let se = (reference.standard_error().powi(2) + a.standard_error().powi(2)).sqrt();
    max_auc_loss.max(2.0 * se)
}

/// The smallest file that matches `reference` (ties: the higher mean).
pub fn smallest_match<'a>(
    aggregates: &'a [Aggregate],
    reference: &Aggregate,
    max_auc_loss: f64,
) -> Option<&'a Aggregate> {
    aggregates
        .iter()
        .filter(|a| a.mean >= reference.mean - tolerance(reference, a, max_auc_loss))
        .min_by(|a, b| a.bytes.cmp(&b.bytes).then(b.mean.total_cmp(&a.mean)))
}

/// The best, and the smallest match within `max_auc_loss` (see the module doc of `shrink`).
pub fn choose(aggregates: &[Aggregate], max_auc_loss: f64) -> Option<Choice> {
    let best = aggregates
        .iter()
        .max_by(|a, b| a.mean.total_cmp(&b.mean))?
        .clone();
    let chosen = smallest_match(aggregates, &best, max_auc_loss)?.clone();
    let baseline = aggregates
        .iter()
        .filter(|a| a.cell.k == 0 && a.cell.rows == 1.0 && a.export == "f32")
        .max_by(|a, b| a.mean.total_cmp(&b.mean))
        .cloned();
    Some(Choice {
        tolerance: tolerance(&best, &chosen, max_auc_loss),
        best,
        chosen,
        baseline,
    })
}

/// The `mlet train` command that makes `a` (seed 0), with `table_rows` the tables' sizes when a
/// cell uses all its rows.
pub fn command(settings: &ShrinkSettings, a: &Aggregate, table_rows: &[usize]) -> String {
    let join = |w: &[usize]| w.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
    let mut c = format!("mlet train --data {}", settings.train.spec);
    if settings.train.spec.column_schema().is_some() {
        c += &format!(
            " --schema {}",
            settings.out_dir.join("schema.json").display()
        );
    }
    if settings.train.spec == settings.val.spec {
        c += " --val-fraction 0.2";
    } else {
        c += &format!(" --val {}", settings.val.spec);
    }
    c += &format!(" --dim {}", a.cell.dim);
    if a.cell.k > 0 {
        c += &format!(" --mlet-k {}", a.cell.k);
    }
    if a.cell.rows < 1.0 {
        let rows: Vec<String> = table_rows
            .iter()
            .map(|&n| {
                ((n as f64 * a.cell.rows).ceil() as usize)
                    .max(1)
                    .to_string()
            })
            .collect();
        c += &format!(" --table-rows {}", rows.join(","));
    }
    c += &format!(
        " --bottom {} --top {} --batch {} --epochs {} --optimizer {} --lr {} --seed 0",
        join(&settings.bottom_hidden),
        join(&settings.top_hidden),
        settings.batch,
        settings.epochs,
        settings.optimizer,
        a.lr
    );
    let export = EXPORTS.iter().find(|e| e.name == a.export);
    if let Some(e) = export {
        c += &format!(" --dtype {}", e.dtype.as_str());
        if matches!(e.dtype, EmbeddingDtype::Int8 | EmbeddingDtype::Int4) {
            c += &format!(" --int8-scale {}", e.scale);
        }
        if e.mlp == Layers::Int8 {
            c += " --mlp-dtype int8";
            // The search calibrated on the first rows of its validation split; `train` takes
            // them from the start of its validation rows too, as many as it is told.
            let rows = &settings.val.rows;
            let calibration = (rows.end - rows.start).min(CALIBRATION_ROWS);
            if calibration < CALIBRATION_ROWS {
                c += &format!(" --calibration-rows {calibration}");
            }
        }
    }
    c + " --out model.mlet"
}

/// Writes `shrink.csv` and `shrink.svg` into the output folder and prints the table and the
/// answer to `out`. Returns the answer (`None` without any score).
pub fn report(
    settings: &ShrinkSettings,
    scores: &[Score],
    table_rows: &[usize],
    trimmed: &[String],
    out: &mut dyn Write,
) -> Result<Option<Choice>> {
    let aggregates = aggregate(scores);
    let choice = choose(&aggregates, settings.max_auc_loss);
    let on_front = pareto_front(
        &aggregates
            .iter()
            .map(|a| (a.bytes, a.mean))
            .collect::<Vec<_>>(),
    );
    let mut csv = String::from(
        "cell,dim,k,rows,lr,export,bytes,table_bytes,mlp_bytes,test_auc_mean,test_auc_std,seeds,pareto\n",
    );
    writeln!(
        out,
        "{:<34} {:>6} {:>11} {:>11} {:>9} {:>9} {:>5} {:>6}",
        "model", "lr", "file bytes", "table bytes", "test AUC", "std", "seeds", "pareto"
    )?;
    for (a, front) in aggregates.iter().zip(&on_front) {
        csv += &format!(
            "{},{},{},{},{},{},{},{},{},{:.6},{:.6},{},{}\n",
            a.cell.name(),
            a.cell.dim,
            a.cell.k,
            a.cell.rows,
            a.lr,
            a.export,
            a.bytes,
            a.table_bytes,
            a.mlp_bytes,
            a.mean,
            a.std,
            a.seeds,
            front
        );
        writeln!(
            out,
            "{:<34} {:>6} {:>11} {:>11} {:>9.5} {:>9.5} {:>5} {:>6}",
            a.label(),
            a.lr,
            a.bytes,
            a.table_bytes,
            a.mean,
            a.std,
            a.seeds,
            if *front { "*" } else { "" }
        )?;
    }
    let path = settings.out_dir.join("shrink.csv");
    write_atomic(&path, csv.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let points: Vec<PlotPoint> = aggregates
        .iter()
        .zip(&on_front)
        .map(|(a, &front)| PlotPoint {
            bytes: a.bytes,
            auc: a.mean,
            series: a.cell.method(),
            variant: EXPORTS.iter().position(|e| e.name == a.export).unwrap_or(0),
            label: a.label(),
            on_front: front,
            marked: choice.as_ref().is_some_and(|c| c.chosen == *a),
        })
        .collect();
    let series: Vec<String> = METHODS.iter().map(|m| m.to_string()).collect();
    let variants: Vec<String> = EXPORTS
        .iter()
        .map(|e| format!("{} tables", e.name))
        .collect();
    let title = format!("Test AUC against model bytes ({})", settings.train);
    let svg = pareto_svg(
        &points,
        &series,
        &variants,
        &title,
        "test AUC, mean over seeds",
    )?;
    let path = settings.out_dir.join("shrink.svg");
    write_atomic(&path, svg.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;

    writeln!(out)?;
    for t in trimmed {
        writeln!(out, "left out by the time budget: {t}")?;
    }
    let Some(c) = &choice else {
        writeln!(out, "no model was scored")?;
        return Ok(None);
    };
    let seeds = |a: &Aggregate| match a.seeds {
        1 => "1 seed: its spread is unknown".to_string(),
        n => format!("{n} seeds"),
    };
    writeln!(
        out,
        "best: {} at lr {}: test AUC {:.5} +- {:.5} ({}), {} bytes",
        c.best.label(),
        c.best.lr,
        c.best.mean,
        c.best.std,
        seeds(&c.best),
        c.best.bytes
    )?;
    writeln!(
        out,
        "smallest within {:.4} AUC of the best (max of --max-auc-loss {} and twice the two means' combined standard error): {} at lr {}: test AUC {:.5} +- {:.5} ({}), {} ({} tables, {} MLPs)",
        c.tolerance,
        settings.max_auc_loss,
        c.chosen.label(),
        c.chosen.lr,
        c.chosen.mean,
        c.chosen.std,
        seeds(&c.chosen),
        human(c.chosen.bytes),
        human(c.chosen.table_bytes),
        human(c.chosen.mlp_bytes)
    )?;
    if let Some(b) = &c.baseline {
        writeln!(
            out,
            "that is {:.1}x smaller than the plain f32 model of the best d ({}: {}, test AUC {:.5})",
            b.bytes as f64 / c.chosen.bytes as f64,
            b.label(),
            human(b.bytes),
            b.mean
        )?;
    }
    // The paper's question at every width: what matches the plain f32 model of that d.
    for reference in aggregates
        .iter()
        .filter(|a| a.cell.k == 0 && a.cell.rows == 1.0 && a.export == "f32")
    {
        if let Some(m) = smallest_match(&aggregates, reference, settings.max_auc_loss) {
            writeln!(
                out,
                "matching {} (test AUC {:.5}, {}): {} at lr {}, test AUC {:.5} ({}), {}: {:.1}x smaller",
                reference.label(),
                reference.mean,
                human(reference.bytes),
                m.label(),
                m.lr,
                m.mean,
                seeds(m),
                human(m.bytes),
                reference.bytes as f64 / m.bytes as f64
            )?;
        }
    }
    let file = settings.out_dir.join("models").join(format!(
        "{}-lr{}-s0-{}.mlet",
        c.chosen.cell.name(),
        c.chosen.lr,
        c.chosen.export
    ));
    writeln!(out, "its file (seed 0): {}", file.display())?;
    writeln!(
        out,
        "make it with:\n  {}",
        command(settings, &c.chosen, table_rows)
    )?;
    writeln!(
        out,
        "wrote {} and {}",
        settings.out_dir.join("shrink.csv").display(),
        settings.out_dir.join("shrink.svg").display()
    )?;
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(dim: usize, k: usize, export: &str, seed: u64, bytes: u64, auc: f64) -> Score {
        Score {
            cell: Cell { dim, k, rows: 1.0 },
            lr: 1.0,
            seed,
            export: export.into(),
            bytes,
            table_bytes: bytes - 100,
            mlp_bytes: 100,
            auc,
            logloss: 0.4,
        }
    }

    #[test]
    fn the_smallest_match_within_the_loss_or_the_spread() {
        let mut scores = Vec::new();
        for (seed, jitter) in [(0, 0.0), (1, 0.002), (2, -0.002)] {
            scores.push(score(16, 0, "f32", seed, 16_000, 0.800 + jitter));
            scores.push(score(4, 64, "int8-table", seed, 1_000, 0.7985 + jitter));
            scores.push(score(4, 64, "f32", seed, 4_000, 0.7995 + jitter));
        }
        scores.push(score(2, 0, "f32", 0, 500, 0.79));
        let aggregates = aggregate(&scores);
        assert_eq!(aggregates[0].bytes, 500);
        assert_eq!(aggregates[1].seeds, 3);
        assert!((aggregates[1].std - 0.002).abs() < 1e-12);
        // 0.0015 below the best: outside 0.001, but inside twice the combined standard error
        // (sqrt(2) x 0.002 / sqrt(3) x 2 = 0.0033).
        let c = choose(&aggregates, 0.001).unwrap();
        assert_eq!(c.best.bytes, 16_000);
        assert_eq!(c.chosen.bytes, 1_000);
        assert!((c.tolerance - 2.0 * (2.0f64 / 3.0).sqrt() * 0.002).abs() < 1e-9);
        assert_eq!(c.baseline.unwrap().bytes, 16_000);
        // Without the spread, only the loss allowed counts.
        let single: Vec<Score> = scores.iter().filter(|s| s.seed == 0).cloned().collect();
        let c = choose(&aggregate(&single), 0.001).unwrap();
        assert_eq!(c.chosen.bytes, 4_000);
        assert_eq!(c.tolerance, 0.001);
        // What matches a weaker reference may be smaller than the answer.
        let plain_d2 = aggregates.iter().find(|a| a.bytes == 500).unwrap();
        assert_eq!(
            smallest_match(&aggregates, plain_d2, 0.001).unwrap().bytes,
            500
        );
    }

    /// An int8-MLP answer's command calibrates on as many rows as the search did: the first
    /// of its validation split, so that it rebuilds the same file.
    #[test]
    fn the_command_calibrates_on_the_searchs_rows() {
        let mut settings = ShrinkSettings::quick("out".into());
        let mut answer = aggregate(&[score(4, 0, "int4-table+int8mlp", 0, 1_000, 0.8)]).remove(0);
        let c = command(&settings, &answer, &[]);
        assert!(c.contains(" --mlp-dtype int8 --out"), "{c}");
        settings.val.rows = 8_000..9_000;
        let c = command(&settings, &answer, &[]);
        assert!(
            c.contains(" --mlp-dtype int8 --calibration-rows 1000 "),
            "{c}"
        );
        answer.export = "int4-table".into();
        assert!(!command(&settings, &answer, &[]).contains("--calibration-rows"));
    }
}
