//! Avazu CSV with a header: `click` is the label (absent in the unlabeled test file), the hour of
//! day from `hour` (YYMMDDHH) is the one dense value, and [`CATEGORICAL`] are the categorical
//! columns, raw id = FNV-1a 32-bit of the field's bytes. `id` and unknown columns are ignored.

use std::path::Path;

use anyhow::{bail, Result};
use mlet_formats::ids::fnv1a32;

use super::lines::{LineFormat, LineSource, Lines};
use super::{parse_label, shown, BadLine, Batch, FieldError, Place, ReadOptions};

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

/// An Avazu CSV layout, as its header line gives it.
pub(crate) struct Avazu {
    header: Vec<String>,
    click: Option<usize>,
    hour: usize,
    /// Field index of each categorical column, in table order.
    categorical: [usize; 21],
}

/// Opens `path` and reads its header; rows follow.
pub(crate) fn open(path: &Path, options: ReadOptions) -> Result<LineSource<Avazu>> {
    let mut lines = Lines::open(path)?;
    let bad = |problem: String| BadLine {
        file: path.to_path_buf(),
        place: Place::Line(1),
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
    let format = Avazu {
        header,
        click,
        hour,
        categorical,
    };
    Ok(LineSource::new(lines, format, options.skip_bad_lines))
}

impl LineFormat for Avazu {
    fn parse(&mut self, line: &[u8], batch: &mut Batch) -> std::result::Result<(), FieldError> {
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

    fn column_name(&self, i: usize) -> String {
        self.header.get(i).cloned().unwrap_or_default()
    }
}
