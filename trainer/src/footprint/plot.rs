//! The footprint plot: AUC against file bytes as an SVG, the Pareto front marked.

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::{Point, EXPORTS};

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

/// The SVG plot of `points`: AUC against bytes (log x axis: linear in log10 bytes), one colour per model family
/// (plain, MLET by k), one marker per export, the Pareto front as a black step line with its
/// points ringed and named.
pub fn plot_svg(points: &[Point], title: &str) -> Result<String> {
    let mut svg = String::new();
    draw(points, title, &mut svg).map_err(|e| anyhow!("cannot draw the plot: {e}"))?;
    Ok(svg)
}

fn draw(
    points: &[Point],
    title: &str,
    svg: &mut String,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, (1100, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let finite: Vec<&Point> = points.iter().filter(|p| p.auc.is_finite()).collect();
    // x is log10(bytes): a linear axis over it spaces the labels evenly.
    let x = |p: &Point| (p.bytes.max(1) as f64).log10();
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
        .y_desc("validation AUC (scored by mlet-runtime)")
        .x_labels(12)
        .x_label_formatter(&|x| human_bytes(10f64.powf(*x)))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .draw()?;

    let mut front: Vec<&Point> = finite.iter().copied().filter(|p| p.pareto).collect();
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

    let mut families: Vec<usize> = finite.iter().map(|p| p.model.k).collect();
    families.sort_unstable();
    families.dedup();
    let palette = [
        RGBColor(200, 30, 30),
        RGBColor(30, 90, 200),
        RGBColor(20, 150, 60),
        RGBColor(150, 60, 180),
        RGBColor(230, 130, 0),
    ];
    for (n, k) in families.iter().enumerate() {
        let color = palette[n % palette.len()];
        for (e, (export_name, _, _)) in EXPORTS.iter().enumerate() {
            let series: Vec<(f64, f64)> = finite
                .iter()
                .filter(|p| p.model.k == *k && p.export == *export_name)
                .map(|p| (x(p), p.auc))
                .collect();
            let drawn = chart.draw_series(series.into_iter().map(move |c| marker(c, e, color)))?;
            if e == 0 {
                let name = if *k == 0 {
                    "plain".to_string()
                } else {
                    format!("MLET k={k}")
                };
                drawn
                    .label(name)
                    .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
            }
        }
    }
    for (e, (export_name, _, _)) in EXPORTS.iter().enumerate() {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(*export_name)
            .legend(move |(x, y)| legend_marker((x + 10, y), e));
    }
    chart.draw_series(
        front
            .iter()
            .map(|p| Circle::new((x(p), p.auc), 9, BLACK.stroke_width(1))),
    )?;
    // Names alternate above and below their points so that neighbours do not overlap.
    chart.draw_series(front.iter().enumerate().map(|(i, p)| {
        EmptyElement::at((x(p), p.auc))
            + Text::new(
                p.label(),
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

/// Marker `e` (the export's index in [`EXPORTS`]) at data coordinates `c`.
fn marker<DB: DrawingBackend>(
    c: (f64, f64),
    e: usize,
    color: RGBColor,
) -> DynElement<'static, DB, (f64, f64)> {
    match e {
        0 => Circle::new(c, 5, color.filled()).into_dyn(),
        1 => Circle::new(c, 5, color.stroke_width(2)).into_dyn(),
        2 => TriangleMarker::new(c, 6, color.filled()).into_dyn(),
        _ => Cross::new(c, 5, color.stroke_width(2)).into_dyn(),
    }
}

/// Marker `e` in black at pixel coordinates `c`, for the legend.
fn legend_marker<DB: DrawingBackend>(
    c: (i32, i32),
    e: usize,
) -> DynElement<'static, DB, (i32, i32)> {
    match e {
        0 => Circle::new(c, 5, BLACK.filled()).into_dyn(),
        1 => Circle::new(c, 5, BLACK.stroke_width(2)).into_dyn(),
        2 => TriangleMarker::new(c, 6, BLACK.filled()).into_dyn(),
        _ => Cross::new(c, 5, BLACK.stroke_width(2)).into_dyn(),
    }
}
