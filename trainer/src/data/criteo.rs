//! Criteo Kaggle (DAC) TSV: `label, I1..I13, C1..C26`, tab-separated, no header. Integers may
//! be empty (read as 0) or negative; categorical tokens are empty (raw id 0) or 8 hex digits
//! (`mlet_formats::ids::criteo_id`). The unlabeled test layout has the same columns without the
//! label; a file's layout is fixed by its first row.

use std::path::Path;

use anyhow::Result;
use mlet_formats::ids::criteo_id;

use super::lines::Lines;
use super::{parse_label, shown, BadLine, Batch, FieldError, ReadOptions, Source};

/// Dense columns.
const DENSE: usize = 13;
/// Categorical columns.
const TABLES: usize = 26;

/// Reads a Criteo TSV file row by row.
pub struct CriteoSource {
    lines: Lines,
    options: ReadOptions,
    /// Whether rows carry a label; fixed by the first row read.
    labeled: Option<bool>,
    /// The line being parsed (reused).
    line: Vec<u8>,
    position: u64,
    bad_lines: u64,
}

impl CriteoSource {
    /// Opens `path`.
    pub fn open(path: &Path, options: ReadOptions) -> Result<CriteoSource> {
        Ok(CriteoSource {
            lines: Lines::open(path)?,
            options,
            labeled: None,
            line: Vec::new(),
            position: 0,
            bad_lines: 0,
        })
    }

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

impl Source for CriteoSource {
    fn next_row(&mut self, batch: &mut Batch) -> Result<bool> {
        loop {
            let mut line = std::mem::take(&mut self.line);
            if !self.lines.next_line(&mut line)? {
                return Ok(false);
            }
            self.position += 1;
            let parsed = self.parse(&line, batch);
            self.line = line;
            match parsed {
                Ok(()) => return Ok(true),
                Err(e) => {
                    if self.options.skip_bad_lines {
                        self.bad_lines += 1;
                        continue;
                    }
                    return Err(BadLine {
                        file: self.lines.path().to_path_buf(),
                        line: self.lines.line_no(),
                        column: e.field.map(|i| (i + 1, self.column_name(i))),
                        problem: e.problem,
                    }
                    .into());
                }
            }
        }
    }

    fn skip_rows(&mut self, n: u64) -> Result<()> {
        for _ in 0..n {
            if !self.lines.next_line(&mut self.line)? {
                break;
            }
            self.position += 1;
        }
        Ok(())
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn bad_lines(&self) -> u64 {
        self.bad_lines
    }
}
