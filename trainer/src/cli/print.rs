//! What several commands print: a metrics line, a file's bytes by part, and a re-export's
//! report.

use mlet_trainer::export::FileSizes;
use mlet_trainer::metrics::Metrics;
use mlet_trainer::quantize::Report;
use serde_json::{json, Value};

/// `N rows: AUC .., logloss .., NE .., accuracy ..`.
pub fn metrics_line(m: &Metrics) -> String {
    format!(
        "{} rows: AUC {:.5}, logloss {:.5}, NE {:.5}, accuracy {:.4}",
        m.rows, m.auc, m.logloss, m.normalized_entropy, m.accuracy
    )
}

/// A file's bytes by part, as JSON.
pub fn sizes_json(s: &FileSizes) -> Value {
    json!({ "total": s.total, "tables": s.tables, "mlp": s.mlp, "header": s.header })
}

/// A re-export's report: both AUCs on the same rows and both files' bytes by part.
pub fn report_lines(r: &Report, before: &str, after: &str) -> String {
    format!(
        "AUC on {}: {before} {:.5}, {after} {:.5} ({:+.5})\n\
         bytes: {before} {}\n       {after} {}",
        r.rows,
        r.before.auc,
        r.after.auc,
        r.after.auc - r.before.auc,
        r.before_bytes,
        r.after_bytes
    )
}

/// A re-export's report as JSON.
pub fn report_json(r: &Report) -> Value {
    json!({
        "rows": r.rows,
        "auc_before": r.before.auc,
        "auc_after": r.after.auc,
        "logloss_before": r.before.logloss,
        "logloss_after": r.after.logloss,
        "bytes_before": sizes_json(&r.before_bytes),
        "bytes_after": sizes_json(&r.after_bytes),
    })
}
