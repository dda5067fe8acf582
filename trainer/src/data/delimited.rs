//! CSV and TSV files with a header line, read by column names: RFC 4180 quoting (fields in
//! double quotes may hold the delimiter, line breaks and `""` for a quote), `\n` or `\r\n` line
//! ends, and a UTF-8 byte order mark before the header ignored. Every record must have as many
//! fields as the header.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use csv::{ByteRecord, ReaderBuilder};
use mlet_formats::ids::fnv1a32;

use super::schema::{dense_value, label_value, Layout};
use super::{BadLine, Batch, ColumnFile, ColumnSchema, FieldError, Place, ReadOptions, Source};

/// A CSV reader over `path` with `delimiter`, past a byte order mark if the file has one.
fn reader(path: &Path, delimiter: u8) -> Result<csv::Reader<File>> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut start = [0u8; 3];
    let n = file
        .read(&mut start)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if start[..n] != [0xef, 0xbb, 0xbf] {
        file.seek(SeekFrom::Start(0))
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(file))
}

/// Reads the header line: the column names.
fn read_header(path: &Path, reader: &mut csv::Reader<File>) -> Result<Vec<String>> {
    let mut record = ByteRecord::new();
    if !read(path, reader, &mut record)? {
        bail!(BadLine {
            file: path.to_path_buf(),
            place: Place::Line(1),
            column: None,
            problem: "the file is empty; expected a header line naming the columns".into(),
        });
    }
    Ok(record
        .iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect())
}

/// Reads the next record; `false` at the end of the file.
fn read(path: &Path, reader: &mut csv::Reader<File>, record: &mut ByteRecord) -> Result<bool> {
    reader
        .read_byte_record(record)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// The column names of the file's header line.
pub(crate) fn header(path: &Path, delimiter: u8) -> Result<Vec<String>> {
    read_header(path, &mut reader(path, delimiter)?)
}

/// Number of records after the header.
pub(crate) fn count_rows(path: &Path, delimiter: u8) -> Result<u64> {
    let mut reader = reader(path, delimiter)?;
    read_header(path, &mut reader)?;
    let mut record = ByteRecord::new();
    let mut rows = 0;
    while read(path, &mut reader, &mut record)? {
        rows += 1;
    }
    Ok(rows)
}

/// Rows of a CSV or TSV file, by the columns of a schema.
pub(crate) struct DelimitedSource {
    path: PathBuf,
    reader: csv::Reader<File>,
    header: Vec<String>,
    layout: Layout,
    positive: Vec<String>,
    skip_bad_lines: bool,
    /// The record being parsed (reused).
    record: ByteRecord,
    position: u64,
    bad_lines: u64,
}

/// Opens `file` and reads its header; rows follow.
pub(crate) fn open(
    file: &ColumnFile,
    schema: &ColumnSchema,
    delimiter: u8,
    options: ReadOptions,
) -> Result<DelimitedSource> {
    let mut reader = reader(&file.path, delimiter)?;
    let header = read_header(&file.path, &mut reader)?;
    let layout = Layout::find(schema, options.require_labels, &file.carry, &header)
        .with_context(|| format!("{}: line 1 (the header)", file.path.display()))?;
    Ok(DelimitedSource {
        path: file.path.clone(),
        reader,
        header,
        layout,
        positive: schema.positive.clone(),
        skip_bad_lines: options.skip_bad_lines,
        record: ByteRecord::new(),
        position: 0,
        bad_lines: 0,
    })
}

impl DelimitedSource {
    /// Parses the current record onto `batch`; on error nothing is added.
    fn parse(&self, batch: &mut Batch) -> std::result::Result<(), FieldError> {
        let record = &self.record;
        if record.len() != self.header.len() {
            return Err(FieldError {
                field: None,
                problem: format!(
                    "expected {} fields like the header, found {}",
                    self.header.len(),
                    record.len()
                ),
            });
        }
        let at = |i: usize| -> &[u8] { record.get(i).unwrap_or_default() };
        let label = match self.layout.label {
            Some(i) => label_value(at(i), &self.positive).map_err(|problem| FieldError {
                field: Some(i),
                problem,
            })?,
            None => f32::NAN,
        };
        let start = batch.dense.len();
        for &i in &self.layout.dense {
            match dense_value(at(i)) {
                Ok(v) => batch.dense.push(v),
                Err(problem) => {
                    batch.dense.truncate(start);
                    return Err(FieldError {
                        field: Some(i),
                        problem,
                    });
                }
            }
        }
        batch
            .ids
            .extend(self.layout.categorical.iter().map(|&i| fnv1a32(at(i))));
        batch
            .carried
            .extend(self.layout.carry.iter().map(|&i| at(i).to_vec()));
        batch.labels.push(label);
        Ok(())
    }
}

impl Source for DelimitedSource {
    fn next_row(&mut self, batch: &mut Batch) -> Result<bool> {
        loop {
            if !read(&self.path, &mut self.reader, &mut self.record)? {
                return Ok(false);
            }
            self.position += 1;
            match self.parse(batch) {
                Ok(()) => return Ok(true),
                Err(_) if self.skip_bad_lines => self.bad_lines += 1,
                Err(e) => {
                    let line = self.record.position().map_or(0, |p| p.line());
                    return Err(BadLine {
                        file: self.path.clone(),
                        place: Place::Line(line),
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
            if !read(&self.path, &mut self.reader, &mut self.record)? {
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
