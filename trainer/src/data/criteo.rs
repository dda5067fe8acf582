//! Criteo Kaggle (DAC) TSV: `label, I1..I13, C1..C26`, tab-separated, no header. Integers may
//! be empty (read as 0) or negative; categorical tokens are empty (raw id 0) or 8 hex digits
//! (`mlet_formats::ids::criteo_id`). The unlabeled test layout has the same columns without the
//! label; a file's layout is fixed by its first row.

use std::path::Path;

use anyhow::Result;
use mlet_formats::ids::criteo_id;

use super::lines::{LineFormat, LineSource, Lines};
use super::{parse_label, shown, Batch, FieldError, ReadOptions};

/// Dense columns.
const DENSE: usize = 13;
/// Categorical columns.
const TABLES: usize = 26;

/// The Criteo TSV layout.
pub(crate) struct Criteo {
    options: ReadOptions,
    /// Whether rows carry a label; fixed by the first row read.
    labeled: Option<bool>,
}

/// Opens a Criteo TSV file.
pub(crate) fn open(path: &Path, options: ReadOptions) -> Result<LineSource<Criteo>> {
    let format = Criteo {
        options,
        labeled: None,
    };
    Ok(LineSource::new(
        Lines::open(path)?,
        format,
        options.skip_bad_lines,
    ))
}

impl LineFormat for Criteo {
    /// Parses one line onto `batch`; on error nothing is added.
    fn parse(&mut self, line: &[u8], batch: &mut Batch) -> std::result::Result<(), FieldError> {
        let fields = line.split(|&b| b == b'\t').count();
        let labeled = match (self.labeled, fields) {
            (Some(l), _) => l,
            (None, 40) => true,
            (None, 39) => false,
            (None, n) => {
                return Err(FieldError {
                    field: None,
                    problem: format!(
                        "expected 40 tab-separated fields (39 without a label), found {n}"
                    ),
                })
            }
        };
        let expected = if labeled { 40 } else { 39 };
        if fields != expected {
            let layout = if labeled { "labeled" } else { "unlabeled" };
            return Err(FieldError {
                field: None,
                problem: format!("expected {expected} tab-separated fields like the file's first row ({layout}), found {fields}"),
            });
        }
        if !labeled && self.options.require_labels {
            return Err(FieldError {
                field: None,
                problem: "this row has no label (39-column test layout); training and evaluation need the 40-column layout".into(),
            });
        }
        self.labeled = Some(labeled);
        let first = usize::from(labeled);
        let mut label = f32::NAN;
        let mut dense = [0f32; DENSE];
        let mut ids = [0u32; TABLES];
        for (i, token) in line.split(|&b| b == b'\t').enumerate() {
            let err = |problem: String| FieldError {
                field: Some(i),
                problem,
            };
            if labeled && i == 0 {
                label = parse_label(token).map_err(err)?;
            } else if i < first + DENSE {
                dense[i - first] = parse_int(token).map_err(err)?;
            } else {
                ids[i - first - DENSE] = criteo_id(token).map_err(|_| {
                    err(format!(
                        "{} is neither empty nor 8 hex digits",
                        shown(token)
                    ))
                })?;
            }
        }
        batch.dense.extend_from_slice(&dense);
        batch.ids.extend_from_slice(&ids);
        batch.labels.push(label);
        Ok(())
    }

    /// The name of field `i` (0-based) in this file's layout.
    fn column_name(&self, i: usize) -> String {
        let first = usize::from(self.labeled.unwrap_or(true));
        match i {
            0 if first == 1 => "label".into(),
            i if i < first + DENSE => format!("I{}", i - first + 1),
            i => format!("C{}", i - first - DENSE + 1),
        }
    }
}

/// An integer field: empty is 0.
fn parse_int(token: &[u8]) -> std::result::Result<f32, String> {
    if token.is_empty() {
        return Ok(0.0);
    }
    std::str::from_utf8(token)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map(|v| v as f32)
        .ok_or_else(|| format!("{} is not an integer", shown(token)))
}
