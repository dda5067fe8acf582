//! What several commands print: a metrics line and a file's bytes by part.

use mlet_trainer::export::FileSizes;
use mlet_trainer::metrics::Metrics;
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
