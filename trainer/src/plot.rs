//! Accuracy against bytes as an SVG: the plot of the footprint benchmark and of `mlet shrink`.
//! AUC against file bytes (log x axis), one colour per series, one marker per variant, the
//! Pareto front as a black step line with its points ringed and named, and chosen points in a
//! large red ring.

use anyhow::{anyhow, Result};
use plotters::prelude::*;

/// One point of the plot.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotPoint {
    /// File bytes (x, log scale).
    pub bytes: u64,
    /// AUC (y).
    pub auc: f64,
    /// Its series (colour): an index into the series names.
    pub series: usize,
    /// Its variant (marker): an index into the variant names.
    pub variant: usize,
    /// Its name, written beside it when it is on the front or marked.
    pub label: String,
    /// Whether it is on the Pareto front ([`pareto_front`]).
    pub on_front: bool,
    /// Whether it is ringed in red (the chosen model).
    pub marked: bool,
}

/// For each of `(bytes, auc)`, whether it is on the Pareto front: no other point has at most its
/// bytes and at least its AUC, one of the two strictly.
pub fn pareto_front(points: &[(u64, f64)]) -> Vec<bool> {
    points
        .iter()
        .map(|&(b, a)| {
            !points
                .iter()
                .any(|&(qb, qa)| qb <= b && qa >= a && (qb < b || qa > a))
        })
        .collect()
}

/// The SVG of `points`; `series` and `variants` name the colours and markers in the legend.
pub fn pareto_svg(
    points: &[PlotPoint],
    series: &[String],
    variants: &[String],
    title: &str,
    y_desc: &str,
) -> Result<String> {
    let mut svg = String::new();
    draw(points, series, variants, title, y_desc, &mut svg)
        .map_err(|e| anyhow!("cannot draw the plot: {e}"))?;
    Ok(svg)
}

/// Bytes as `12 kB`, `3.4 MB`.
fn human_bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(200, 30, 30),
    RGBColor(30, 90, 200),
    RGBColor(20, 150, 60),
    RGBColor(150, 60, 180),
    RGBColor(230, 130, 0),
    RGBColor(90, 90, 90),
];

fn draw(
    points: &[PlotPoint],
    series: &[String],
    variants: &[String],
    title: &str,
    y_desc: &str,
    svg: &mut String,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (1100, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let finite: Vec<&PlotPoint> = points.iter().filter(|p| p.auc.is_finite()).collect();
    // x is log10(bytes): a linear axis over it spaces the labels evenly.
    let x = |p: &PlotPoint| (p.bytes.max(1) as f64).log10();
    let (mut xmin, mut xmax) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut ymin, mut ymax) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in &finite {
        xmin = xmin.min(x(p));
        xmax = xmax.max(x(p));
        ymin = ymin.min(p.auc);
        ymax = ymax.max(p.auc);
    }
    if finite.is_empty() {
        (xmin, xmax, ymin, ymax) = (3.0, 6.0, 0.5, 1.0);
    }
    let pad = ((ymax - ymin) * 0.08).max(0.002);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((xmin - 0.1)..(xmax + 0.25), (ymin - pad)..(ymax + pad))?;
    chart
        .configure_mesh()
        .x_desc("model file bytes (log scale)")
        .y_desc(y_desc)
        .x_labels(12)
        .x_label_formatter(&|x| human_bytes(10f64.powf(*x)))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .draw()?;

    let mut front: Vec<&PlotPoint> = finite.iter().copied().filter(|p| p.on_front).collect();
    front.sort_by_key(|p| p.bytes);
    let mut steps = Vec::new();
    for (i, p) in front.iter().enumerate() {
        if i > 0 {
            steps.push((x(p), front[i - 1].auc));
        }
        steps.push((x(p), p.auc));
    }
    chart
        .draw_series(LineSeries::new(steps, BLACK.stroke_width(2)))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));

    for (s, name) in series.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()];
        let drawn = chart.draw_series(
            finite
                .iter()
                .filter(|p| p.series == s)
                .map(|p| marker((x(p), p.auc), p.variant, color)),
        )?;
        drawn
            .label(name.as_str())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
    }
    for (v, name) in variants.iter().enumerate() {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(name.as_str())
            .legend(move |(x, y)| legend_marker((x + 10, y), v, BLACK));
    }
    chart.draw_series(
        front
            .iter()
            .map(|p| Circle::new((x(p), p.auc), 9, BLACK.stroke_width(1))),
    )?;
    let marked: Vec<&PlotPoint> = finite.iter().copied().filter(|p| p.marked).collect();
    chart.draw_series(
        marked
            .iter()
            .map(|p| Circle::new((x(p), p.auc), 14, RED.stroke_width(3))),
    )?;
    // Names alternate above and below their points so that neighbours do not overlap.
    let named = front
        .iter()
        .chain(marked.iter().filter(|p| !p.on_front))
        .enumerate();
    chart.draw_series(named.map(|(i, p)| {
        EmptyElement::at((x(p), p.auc))
            + Text::new(
                p.label.clone(),
                (11, if i % 2 == 0 { -14 } else { 6 }),
                ("sans-serif", 11).into_font().color(&BLACK),
            )
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Marker `v` (a variant) in `color` at data coordinates `c`: filled and open circles, filled
/// and open triangles, a cross, a dot; then the same six half the size.
fn marker<DB: DrawingBackend>(
    c: (f64, f64),
    v: usize,
    color: RGBColor,
) -> DynElement<'static, DB, (f64, f64)> {
    let size = if v % 12 < 6 { 2 } else { 1 };
    match v % 6 {
        0 => Circle::new(c, 3 * size - 1, color.filled()).into_dyn(),
        1 => Circle::new(c, 3 * size - 1, color.stroke_width(2)).into_dyn(),
        2 => TriangleMarker::new(c, 3 * size, color.filled()).into_dyn(),
        3 => TriangleMarker::new(c, 3 * size, color.stroke_width(2)).into_dyn(),
        4 => Cross::new(c, 3 * size - 1, color.stroke_width(2)).into_dyn(),
        _ => Circle::new(c, size + 1, color.filled()).into_dyn(),
    }
}

/// [`marker`] at pixel coordinates `c`, for the legend.
fn legend_marker<DB: DrawingBackend>(
    c: (i32, i32),
    v: usize,
    color: RGBColor,
) -> DynElement<'static, DB, (i32, i32)> {
    let size = if v % 12 < 6 { 2 } else { 1 };
    match v % 6 {
        0 => Circle::new(c, 3 * size - 1, color.filled()).into_dyn(),
        1 => Circle::new(c, 3 * size - 1, color.stroke_width(2)).into_dyn(),
        2 => TriangleMarker::new(c, 3 * size, color.filled()).into_dyn(),
        3 => TriangleMarker::new(c, 3 * size, color.stroke_width(2)).into_dyn(),
        4 => Cross::new(c, 3 * size - 1, color.stroke_width(2)).into_dyn(),
        _ => Circle::new(c, size + 1, color.filled()).into_dyn(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_and_the_plot() {
        let front = pareto_front(&[(100, 0.80), (50, 0.79), (50, 0.80), (200, 0.81), (60, 0.70)]);
        assert_eq!(front, [false, false, true, true, false]);
        let p = |bytes, auc, series, marked| PlotPoint {
            bytes,
            auc,
            series,
            variant: series,
            label: format!("p{bytes}"),
            on_front: true,
            marked,
        };
        let svg = pareto_svg(
            &[p(100, 0.8, 0, false), p(1000, 0.81, 1, true)],
            &["plain".into(), "MLET".into()],
            &["f32".into(), "int8".into()],
            "title",
            "AUC",
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Pareto front") && svg.contains("p1000"));
    }
}
