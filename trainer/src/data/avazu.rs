//! Avazu CSV with a header: `click` is the label (absent in the unlabeled test file), the hour of
//! day from `hour` (YYMMDDHH) is the one dense value, and [`CATEGORICAL`] are the categorical
//! columns, raw id = FNV-1a 32-bit of the field's bytes. `id` and unknown columns are ignored.

use std::path::Path;

use anyhow::{bail, Result};
use mlet_formats::ids::fnv1a32;

use super::lines::Lines;
use super::{parse_label, shown, BadLine, Batch, FieldError, ReadOptions, Source};

/// The categorical columns, in table order.
pub const CATEGORICAL: [&str; 21] = [
    "C1",
    "banner_pos",
    "site_id",
    "site_domain",
    "site_category",
    "app_id",
    "app_domain",
    "app_category",
    "device_id",
    "device_ip",
    "device_model",
    "device_type",
    "device_conn_type",
    "C14",
    "C15",
    "C16",
    "C17",
    "C18",
    "C19",
    "C20",
    "C21",
];

/// Reads an Avazu CSV file row by row.
pub struct AvazuSource {
    lines: Lines,
    options: ReadOptions,
    header: Vec<String>,
    click: Option<usize>,
    hour: usize,
    /// Field index of each categorical column, in table order.
    categorical: [usize; 21],
    /// The line being parsed (reused).
    line: Vec<u8>,
    position: u64,
    bad_lines: u64,
}

impl AvazuSource {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path, options: ReadOptions) -> Result<AvazuSource> {
        let mut lines = Lines::open(path)?;
        let bad = |problem: String| BadLine {
            file: path.to_path_buf(),
            line: 1,
            column: None,
            problem,
        };
        let mut first = Vec::new();
        if !lines.next_line(&mut first)? {
            bail!(bad(
                "the file is empty; expected a header line (id,click,hour,C1,...)".into()
            ));
        }
        let header: Vec<String> = String::from_utf8_lossy(&first)
            .split(',')
            .map(str::to_string)
            .collect();
        let find = |name: &str| header.iter().position(|h| h == name);
        let click = find("click");
        if click.is_none() && options.require_labels {
            bail!(bad(
                "the header has no `click` column; training and evaluation need labels".into()
            ));
        }
        let hour = find("hour").ok_or_else(|| bad("the header has no `hour` column".into()))?;
        let mut categorical = [0usize; 21];
        for (slot, name) in categorical.iter_mut().zip(CATEGORICAL) {
            *slot = find(name).ok_or_else(|| bad(format!("the header has no `{name}` column")))?;
        }
        Ok(AvazuSource {
            lines,
            options,
            header,
            click,
            hour,
            categorical,
            line: Vec::new(),
            position: 0,
            bad_lines: 0,
        })
    }

    /// Parses one line onto `batch`; on error nothing is added.
    fn parse(&self, line: &[u8], batch: &mut Batch) -> std::result::Result<(), FieldError> {
        let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        if fields.len() != self.header.len() {
            return Err(FieldError {
                field: None,
                problem: format!(
                    "expected {} comma-separated fields like the header, found {}",
                    self.header.len(),
                    fields.len()
                ),
            });
        }
        let label = match self.click {
            Some(i) => parse_label(fields[i]).map_err(|problem| FieldError {
                field: Some(i),
                problem,
            })?,
            None => f32::NAN,
        };
        let hour = fields[self.hour];
        let hour_of_day = match hour {
            [_, _, _, _, _, _, h1, h0]
                if hour.iter().all(u8::is_ascii_digit) && (h1 - b'0') * 10 + (h0 - b'0') < 24 =>
            {
                f32::from((h1 - b'0') * 10 + (h0 - b'0'))
            }
            _ => {
                return Err(FieldError {
                    field: Some(self.hour),
                    problem: format!(
                        "{} is not an hour YYMMDDHH (8 digits, HH < 24)",
                        shown(hour)
                    ),
                })
            }
        };
        batch.dense.push(hour_of_day);
        batch
            .ids
            .extend(self.categorical.iter().map(|&i| fnv1a32(fields[i])));
        batch.labels.push(label);
        Ok(())
    }
}

impl Source for AvazuSource {
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
                        column: e.field.map(|i| (i + 1, self.header[i].clone())),
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
