//! The footprint plot: each model family (plain, MLET by k) in its own colour, each export in
//! its own marker, through [`crate::plot`].

use anyhow::Result;

use super::{Point, EXPORTS};
use crate::plot::{pareto_svg, PlotPoint};

/// The SVG plot of `points`: validation AUC against file bytes, the Pareto front marked.
pub fn plot_svg(points: &[Point], title: &str) -> Result<String> {
    let mut families: Vec<usize> = points.iter().map(|p| p.model.k).collect();
    families.sort_unstable();
    families.dedup();
    let series: Vec<String> = families
        .iter()
        .map(|&k| {
            if k == 0 {
                "plain".to_string()
            } else {
                format!("MLET k={k}")
            }
        })
        .collect();
    let variants: Vec<String> = EXPORTS.iter().map(|(e, _, _)| e.to_string()).collect();
    let plotted: Vec<PlotPoint> = points
        .iter()
        .map(|p| PlotPoint {
            bytes: p.bytes,
            auc: p.auc,
            series: families.iter().position(|&k| k == p.model.k).unwrap_or(0),
            variant: EXPORTS
                .iter()
                .position(|(e, _, _)| *e == p.export)
                .unwrap_or(0),
            label: p.label(),
            on_front: p.pareto,
            marked: false,
        })
        .collect();
    pareto_svg(
        &plotted,
        &series,
        &variants,
        title,
        "validation AUC (scored by mlet-runtime)",
    )
}
