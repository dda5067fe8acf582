//! Line-by-line reading of a text file with line numbers (`\n` and `\r\n` endings both work),
//! and [`LineSource`]: the [`Source`] of every format whose rows are one line each.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{BadLine, Batch, FieldError, Place, Source};

/// Reads a file one line at a time, without the line ending, counting lines from 1.
pub struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    line_no: u64,
}

impl Lines {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Lines> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Lines {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            line_no: 0,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of the line last returned (1-based; 0 before the first).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Reads the next line into `line` without its `\n` or `\r\n`; `false` at the end of the
    /// file.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> Result<bool> {
        line.clear();
        let n = self
            .reader
            .read_until(b'\n', line)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(true)
    }
}

/// Counts the lines of a file the way [`Lines`] returns them (a last line without `\n` counts).
pub fn count_lines(path: &Path) -> Result<u64> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    if last != b'\n' {
        lines += 1;
    }
    Ok(lines)
}

/// A text format with one row per line: how to parse a line and how to name its fields.
pub(crate) trait LineFormat: Send {
    /// Parses one line onto `batch`; on error nothing is added.
    fn parse(&mut self, line: &[u8], batch: &mut Batch) -> std::result::Result<(), FieldError>;
    /// The name of field `i` (0-based), for error messages.
    fn column_name(&self, i: usize) -> String;
}

/// Rows of a [`LineFormat`] file: counts rows, and reports a malformed line with its file, line
/// and column, or skips and counts it.
pub(crate) struct LineSource<F> {
    lines: Lines,
    format: F,
    skip_bad_lines: bool,
    /// The line being parsed (reused).
    line: Vec<u8>,
    position: u64,
    bad_lines: u64,
}

impl<F: LineFormat> LineSource<F> {
    /// Rows from the next line of `lines` on (a header, if any, already read).
    pub fn new(lines: Lines, format: F, skip_bad_lines: bool) -> LineSource<F> {
        LineSource {
            lines,
            format,
            skip_bad_lines,
            line: Vec::new(),
            position: 0,
            bad_lines: 0,
        }
    }
}

impl<F: LineFormat> Source for LineSource<F> {
    fn next_row(&mut self, batch: &mut Batch) -> Result<bool> {
        loop {
            if !self.lines.next_line(&mut self.line)? {
                return Ok(false);
            }
            self.position += 1;
            match self.format.parse(&self.line, batch) {
                Ok(()) => return Ok(true),
                Err(_) if self.skip_bad_lines => self.bad_lines += 1,
                Err(e) => {
                    return Err(BadLine {
                        file: self.lines.path().to_path_buf(),
                        place: Place::Line(self.lines.line_no()),
                        column: e.field.map(|i| (i + 1, self.format.column_name(i))),
                        problem: e.problem,
                    }
                    .into())
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
