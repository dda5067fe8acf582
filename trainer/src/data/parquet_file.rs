//! Parquet files, read by column names through the `parquet` crate's Arrow reader: only the
//! schema's columns, one row group at a time (a file larger than memory streams), every
//! compression the crate is built with (snappy, zstd, gzip, brotli, lz4).
//!
//! Integer, float, boolean and string (or binary) columns are read, nulls and dictionary-encoded
//! columns included. The values follow DESIGN.md's rule (see `schema`), so that a CSV and a
//! Parquet copy of the same log give the same rows: a categorical integer's raw id is the hash
//! of its decimal text, a boolean's of `true`/`false`, a string's of its bytes, and a null's of
//! the empty text. A float column cannot be categorical (its text form is ambiguous: `1` or
//! `1.0`). A dictionary-encoded string column is read as Arrow dictionary arrays so that each
//! dictionary entry is hashed once per column chunk rather than once per row.
//!
//! A `parquet:` path may be a folder of part files (Spark, Dask, Polars): its `*.parquet` files
//! in name order, hidden and `_`-prefixed files ignored, read as one table.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, ensure, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema as ArrowSchema};
use mlet_formats::ids::fnv1a32;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;

use super::schema::{decimal, dense_value, finite, label_value, Layout};
use super::{BadLine, Batch, ColumnFile, ColumnSchema, Place, ReadOptions, Source};

/// Rows per Arrow record batch.
const BATCH_ROWS: usize = 8192;

/// The files of a `parquet:` path: the file itself, or a folder's `*.parquet` files in name
/// order (names starting with `.` or `_`, such as `_SUCCESS` and `.crc` files, ignored).
fn parts(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut parts = Vec::new();
    for entry in
        std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?
    {
        let entry = entry.with_context(|| format!("cannot read {}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".parquet") && !name.starts_with(['.', '_']) {
            parts.push(entry.path());
        }
    }
    parts.sort();
    ensure!(
        !parts.is_empty(),
        "{}: the folder has no *.parquet files",
        path.display()
    );
    Ok(parts)
}

/// A part's footer: its row groups and Arrow schema (types from the Parquet schema alone, so
/// that what a writer's Arrow metadata says does not change how values are read).
fn footer(path: &Path) -> Result<ArrowReaderMetadata> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    ArrowReaderMetadata::load(&file, options)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))
}

/// The top-level column names of the first part.
pub(crate) fn header(path: &Path) -> Result<Vec<String>> {
    let first = parts(path)?.swap_remove(0);
    Ok(names(&footer(&first)?))
}

fn names(meta: &ArrowReaderMetadata) -> Vec<String> {
    meta.schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// Number of rows of every part, from the footers.
pub(crate) fn count_rows(path: &Path) -> Result<u64> {
    let mut rows = 0;
    for part in parts(path)? {
        rows += footer(&part)?.metadata().file_metadata().num_rows().max(0) as u64;
    }
    Ok(rows)
}

/// What a column's values are, by Arrow type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Bool,
    Text,
}

fn kind(data_type: &DataType) -> Option<Kind> {
    use DataType::*;
    match data_type {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => Some(Kind::Int),
        Float32 | Float64 => Some(Kind::Float),
        Boolean => Some(Kind::Bool),
        Utf8 | Binary => Some(Kind::Text),
        Dictionary(key, value) if **key == Int32 && matches!(**value, Utf8 | Binary) => {
            Some(Kind::Text)
        }
        _ => None,
    }
}

/// One part: its footer, where the schema's columns are, and the projection that reads them.
struct Part {
    path: PathBuf,
    meta: ArrowReaderMetadata,
    layout: Layout,
    names: Vec<String>,
    projection: ProjectionMask,
    /// Per top-level column, its leaf column in the Parquet schema (flat columns only).
    leaf: Vec<Option<usize>>,
}

impl Part {
    /// Reads `path`'s footer and checks that it has the schema's columns with types mlet reads.
    fn open(
        path: PathBuf,
        schema: &ColumnSchema,
        carry: &[String],
        with_label: bool,
    ) -> Result<Part> {
        let meta = footer(&path)?;
        let names = names(&meta);
        let layout = Layout::find(schema, with_label, carry, &names)
            .with_context(|| format!("{}", path.display()))?;
        let fields = meta.schema().fields();
        let check = |i: usize, role: &str| -> Result<()> {
            let field = &fields[i];
            let shown = format!("{}: column {} ({})", path.display(), i + 1, field.name());
            match kind(field.data_type()) {
                None => bail!(
                    "{shown} has type {}; mlet reads integer, float, boolean and string columns",
                    field.data_type()
                ),
                Some(Kind::Float) if role == "categorical" => bail!(
                    "{shown} is a float column and cannot be categorical: a float's text is \
                     ambiguous (1 or 1.0), so its raw id would not match a CSV copy's; store it \
                     as an integer or a string"
                ),
                Some(Kind::Float) if role == "label" && !schema.positive.is_empty() => bail!(
                    "{shown} is a float label column; positive values name texts, and a float's \
                     text is ambiguous: use 0/1 labels or a string column"
                ),
                _ => Ok(()),
            }
        };
        if let Some(i) = layout.label {
            check(i, "label")?;
        }
        for &i in &layout.dense {
            check(i, "dense")?;
        }
        for &i in &layout.categorical {
            check(i, "categorical")?;
        }
        for &i in &layout.carry {
            check(i, "carried")?;
        }
        let mut roots: Vec<usize> = layout
            .label
            .iter()
            .chain(&layout.dense)
            .chain(&layout.categorical)
            .chain(&layout.carry)
            .copied()
            .collect();
        roots.sort_unstable();
        roots.dedup();
        let parquet_schema = meta.parquet_schema();
        let projection = ProjectionMask::roots(parquet_schema, roots);
        let mut leaf = vec![None; names.len()];
        for (l, column) in parquet_schema.columns().iter().enumerate() {
            if column.path().parts().len() == 1 {
                if let Some(slot) = leaf.get_mut(parquet_schema.get_column_root_idx(l)) {
                    *slot = Some(l);
                }
            }
        }
        Ok(Part {
            path,
            meta,
            layout,
            names,
            projection,
            leaf,
        })
    }

    fn groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    fn group_rows(&self, group: usize) -> u64 {
        self.meta.metadata().row_group(group).num_rows().max(0) as u64
    }

    /// A reader of row group `group` from its row `skip` on. Categorical string columns whose
    /// chunk in this group is dictionary-encoded are read as dictionary arrays.
    fn reader(&self, group: usize, skip: u64) -> Result<ParquetRecordBatchReader> {
        let row_group = self.meta.metadata().row_group(group);
        let fields: Vec<Field> = self
            .meta
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let dictionary = self.layout.categorical.contains(&i)
                    && matches!(f.data_type(), DataType::Utf8 | DataType::Binary)
                    && self.leaf[i]
                        .is_some_and(|l| row_group.column(l).dictionary_page_offset().is_some());
                let field = f.as_ref().clone();
                if dictionary {
                    let value = f.data_type().clone();
                    field.with_data_type(DataType::Dictionary(
                        Box::new(DataType::Int32),
                        Box::new(value),
                    ))
                } else {
                    field
                }
            })
            .collect();
        let options = ArrowReaderOptions::new().with_schema(Arc::new(ArrowSchema::new(fields)));
        let meta = ArrowReaderMetadata::try_new(self.meta.metadata().clone(), options)
            .with_context(|| format!("{}: row group {group}", self.path.display()))?;
        let file = File::open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        let rows = self.group_rows(group);
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta)
            .with_projection(self.projection.clone())
            .with_row_groups(vec![group])
            .with_batch_size(BATCH_ROWS);
        if skip > 0 {
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(skip as usize),
                RowSelector::select(rows.saturating_sub(skip) as usize),
            ]));
        }
        builder
            .build()
            .with_context(|| format!("{}: row group {group}", self.path.display()))
    }
}

/// One column of a record batch, typed for reading.
enum Column<'a> {
    /// Any integer type, widened.
    Int(Vec<i128>),
    /// Float32 or Float64, widened.
    Float(Vec<f64>),
    Bool(&'a arrow_array::BooleanArray),
    Text(&'a arrow_array::StringArray),
    Bytes(&'a arrow_array::BinaryArray),
    Dict(&'a DictionaryArray<Int32Type>),
}

macro_rules! widened {
    ($array:expr, $type:ty) => {
        $array
            .as_primitive::<$type>()
            .values()
            .iter()
            .map(|&v| v as i128)
            .collect()
    };
}

impl<'a> Column<'a> {
    /// The column, or `None` for a type that [`kind`] refuses.
    fn of(array: &'a dyn Array) -> Option<Column<'a>> {
        use DataType::*;
        Some(match array.data_type() {
            Int8 => Column::Int(widened!(array, Int8Type)),
            Int16 => Column::Int(widened!(array, Int16Type)),
            Int32 => Column::Int(widened!(array, Int32Type)),
            Int64 => Column::Int(widened!(array, Int64Type)),
            UInt8 => Column::Int(widened!(array, UInt8Type)),
            UInt16 => Column::Int(widened!(array, UInt16Type)),
            UInt32 => Column::Int(widened!(array, UInt32Type)),
            UInt64 => Column::Int(widened!(array, UInt64Type)),
            Float32 => Column::Float(
                array
                    .as_primitive::<arrow_array::types::Float32Type>()
                    .values()
                    .iter()
                    .map(|&v| f64::from(v))
                    .collect(),
            ),
            Float64 => Column::Float(
                array
                    .as_primitive::<arrow_array::types::Float64Type>()
                    .values()
                    .to_vec(),
            ),
            Boolean => Column::Bool(array.as_boolean()),
            Utf8 => Column::Text(array.as_string::<i32>()),
            Binary => Column::Bytes(array.as_binary::<i32>()),
            Dictionary(_, _) => Column::Dict(array.as_dictionary_opt::<Int32Type>()?),
            _ => return None,
        })
    }

    /// Calls `f` with the text of row `row`'s value (`None` when null): what its raw id
    /// hashes. An integer's decimal text is written on the stack.
    fn with_text<R>(&self, array: &dyn Array, row: usize, f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        if array.is_null(row) {
            return f(None);
        }
        match self {
            Column::Int(v) => {
                let mut buf = [0u8; 21];
                f(Some(decimal(
                    v[row] < 0,
                    v[row].unsigned_abs() as u64,
                    &mut buf,
                )))
            }
            Column::Float(v) => f(Some(v[row].to_string().as_bytes())),
            Column::Bool(b) => f(Some(if b.value(row) { b"true" } else { b"false" })),
            Column::Text(s) => f(Some(s.value(row).as_bytes())),
            Column::Bytes(b) => f(Some(b.value(row))),
            Column::Dict(d) => {
                let values = d.values();
                let key = d.keys().value(row) as usize;
                match Column::of(values.as_ref()) {
                    Some(column) if key < values.len() => column.with_text(values.as_ref(), key, f),
                    _ => f(None),
                }
            }
        }
    }
}

/// The raw ids of a dictionary's values, kept while the reader hands out arrays over the same
/// dictionary (the values array is held, so its address cannot be reused by another).
#[derive(Default)]
struct DictionaryIds {
    values: Option<ArrayRef>,
    ids: Vec<u32>,
}

impl DictionaryIds {
    fn of(&mut self, values: &ArrayRef) -> &[u32] {
        if !self.values.as_ref().is_some_and(|v| Arc::ptr_eq(v, values)) {
            let empty = fnv1a32(b"");
            self.ids = match Column::of(values.as_ref()) {
                Some(column) => (0..values.len())
                    .map(|i| column.with_text(values.as_ref(), i, |t| t.map_or(empty, fnv1a32)))
                    .collect(),
                None => Vec::new(),
            };
            self.values = Some(Arc::clone(values));
        }
        &self.ids
    }
}

/// A record batch's rows, column by column, ready to be copied out row by row.
#[derive(Default)]
struct Decoded {
    rows: usize,
    next: usize,
    /// Row within the row group of row 0.
    first_row: u64,
    labels: Vec<f32>,
    /// Column-major: dense column c's rows at `c * rows..`.
    dense: Vec<f32>,
    /// Column-major, like `dense`.
    ids: Vec<u32>,
    /// Column-major, like `dense`.
    carried: Vec<Vec<u8>>,
    /// Malformed values, (row, column in the file, problem), by row.
    bad: Vec<(usize, usize, String)>,
    next_bad: usize,
}

/// Rows of a `parquet:` file or folder, by the columns of a schema.
pub(crate) struct ParquetSource {
    parts: Vec<Part>,
    positive: Vec<String>,
    skip_bad_lines: bool,
    /// The part and row group read next (or being read).
    part: usize,
    group: usize,
    /// Rows to pass over at the start of the next row group opened.
    skip_in_group: u64,
    /// Rows of the current row group handed to `decoded` so far.
    group_row: u64,
    reader: Option<ParquetRecordBatchReader>,
    decoded: Decoded,
    dictionaries: Vec<DictionaryIds>,
    position: u64,
    bad_lines: u64,
}

/// Opens every part of `file` and checks its columns.
pub(crate) fn open(
    file: &ColumnFile,
    schema: &ColumnSchema,
    options: ReadOptions,
) -> Result<ParquetSource> {
    let parts = parts(&file.path)?
        .into_iter()
        .map(|p| Part::open(p, schema, &file.carry, options.require_labels))
        .collect::<Result<Vec<_>>>()?;
    Ok(ParquetSource {
        parts,
        positive: schema.positive.clone(),
        skip_bad_lines: options.skip_bad_lines,
        part: 0,
        group: 0,
        skip_in_group: 0,
        group_row: 0,
        reader: None,
        decoded: Decoded::default(),
        dictionaries: (0..schema.categorical.len())
            .map(|_| DictionaryIds::default())
            .collect(),
        position: 0,
        bad_lines: 0,
    })
}

impl ParquetSource {
    /// Moves the cursor past finished parts; `false` when no row group is left.
    fn settle(&mut self) -> bool {
        while self.part < self.parts.len() && self.group >= self.parts[self.part].groups() {
            self.part += 1;
            self.group = 0;
        }
        self.part < self.parts.len()
    }

    /// Decodes the next record batch; `false` at the end of the input.
    fn next_batch(&mut self) -> Result<bool> {
        loop {
            if let Some(reader) = &mut self.reader {
                match reader.next() {
                    Some(Ok(batch)) => {
                        self.decode(&batch)?;
                        return Ok(true);
                    }
                    Some(Err(e)) => {
                        let part = &self.parts[self.part];
                        return Err(e).with_context(|| {
                            format!("{}: row group {}", part.path.display(), self.group)
                        });
                    }
                    None => {
                        self.reader = None;
                        self.group += 1;
                    }
                }
            }
            if !self.settle() {
                return Ok(false);
            }
            let skip = std::mem::take(&mut self.skip_in_group);
            self.reader = Some(self.parts[self.part].reader(self.group, skip)?);
            self.group_row = skip;
        }
    }

    /// Turns `batch` into [`Decoded`] columns.
    fn decode(&mut self, batch: &RecordBatch) -> Result<()> {
        let part = &self.parts[self.part];
        let rows = batch.num_rows();
        let mut d = Decoded {
            rows,
            first_row: self.group_row,
            ..Decoded::default()
        };
        self.group_row += rows as u64;
        let column = |i: usize| -> Result<(&ArrayRef, Column<'_>)> {
            let array = batch.column_by_name(&part.names[i]).with_context(|| {
                format!(
                    "{}: column `{}` was not read",
                    part.path.display(),
                    part.names[i]
                )
            })?;
            let typed = Column::of(array.as_ref()).with_context(|| {
                format!(
                    "{}: column `{}` has an unreadable type",
                    part.path.display(),
                    part.names[i]
                )
            })?;
            Ok((array, typed))
        };
        if let Some(i) = part.layout.label {
            let (array, typed) = column(i)?;
            for r in 0..rows {
                let label = typed.with_text(array.as_ref(), r, |text| match (&typed, text) {
                    (_, None) => Err("the label is missing".to_string()),
                    (Column::Float(v), Some(_)) if v[r] == 0.0 || v[r] == 1.0 => Ok(v[r] as f32),
                    (Column::Float(v), Some(_)) => {
                        Err(format!("label {} is neither 0 nor 1", v[r]))
                    }
                    (_, Some(text)) => label_value(text, &self.positive),
                });
                d.labels.push(label.unwrap_or_else(|problem| {
                    d.bad.push((r, i, problem));
                    f32::NAN
                }));
            }
        } else {
            d.labels.resize(rows, f32::NAN);
        }
        for &i in &part.layout.dense {
            let (array, typed) = column(i)?;
            for r in 0..rows {
                let value = if array.is_null(r) {
                    Ok(0.0)
                } else {
                    match &typed {
                        Column::Int(v) => Ok(v[r] as f64 as f32),
                        Column::Float(v) => {
                            finite(v[r]).map_err(|()| format!("dense value {} is not finite", v[r]))
                        }
                        Column::Bool(b) => Ok(if b.value(r) { 1.0 } else { 0.0 }),
                        _ => typed
                            .with_text(array.as_ref(), r, |t| dense_value(t.unwrap_or_default())),
                    }
                };
                d.dense.push(value.unwrap_or_else(|problem| {
                    d.bad.push((r, i, problem));
                    0.0
                }));
            }
        }
        let empty = fnv1a32(b"");
        for (t, &i) in part.layout.categorical.iter().enumerate() {
            let (array, typed) = column(i)?;
            match &typed {
                Column::Dict(dictionary) => {
                    let ids = self.dictionaries[t].of(dictionary.values());
                    let keys = dictionary.keys();
                    d.ids.extend((0..rows).map(|r| {
                        if keys.is_null(r) {
                            empty
                        } else {
                            ids.get(keys.value(r) as usize).copied().unwrap_or(empty)
                        }
                    }));
                }
                Column::Text(s) => d.ids.extend((0..rows).map(|r| {
                    if s.is_null(r) {
                        empty
                    } else {
                        fnv1a32(s.value(r).as_bytes())
                    }
                })),
                _ => d.ids.extend(
                    (0..rows)
                        .map(|r| typed.with_text(array.as_ref(), r, |t| t.map_or(empty, fnv1a32))),
                ),
            }
        }
        for &i in &part.layout.carry {
            let (array, typed) = column(i)?;
            d.carried.extend(
                (0..rows).map(|r| {
                    typed.with_text(array.as_ref(), r, |t| t.unwrap_or_default().to_vec())
                }),
            );
        }
        d.bad.sort_by_key(|&(row, _, _)| row);
        self.decoded = d;
        Ok(())
    }
}

impl Source for ParquetSource {
    fn next_row(&mut self, batch: &mut Batch) -> Result<bool> {
        loop {
            let d = &mut self.decoded;
            if d.next < d.rows {
                let r = d.next;
                d.next += 1;
                self.position += 1;
                let bad = d
                    .bad
                    .get(d.next_bad)
                    .filter(|(row, _, _)| *row == r)
                    .cloned();
                while d.bad.get(d.next_bad).is_some_and(|(row, _, _)| *row == r) {
                    d.next_bad += 1;
                }
                if let Some((_, column, problem)) = bad {
                    if self.skip_bad_lines {
                        self.bad_lines += 1;
                        continue;
                    }
                    let part = &self.parts[self.part];
                    return Err(BadLine {
                        file: part.path.clone(),
                        place: Place::Row {
                            group: self.group,
                            row: d.first_row + r as u64,
                        },
                        column: Some((column + 1, part.names[column].clone())),
                        problem,
                    }
                    .into());
                }
                let layout = &self.parts[self.part].layout;
                batch
                    .dense
                    .extend((0..layout.dense.len()).map(|c| d.dense[c * d.rows + r]));
                batch
                    .ids
                    .extend((0..layout.categorical.len()).map(|c| d.ids[c * d.rows + r]));
                batch
                    .carried
                    .extend((0..layout.carry.len()).map(|c| d.carried[c * d.rows + r].clone()));
                batch.labels.push(d.labels[r]);
                return Ok(true);
            }
            if !self.next_batch()? {
                return Ok(false);
            }
        }
    }

    fn skip_rows(&mut self, mut n: u64) -> Result<()> {
        while n > 0 {
            let d = &mut self.decoded;
            let left = (d.rows - d.next) as u64;
            if left > 0 {
                let k = left.min(n);
                d.next += k as usize;
                while d
                    .bad
                    .get(d.next_bad)
                    .is_some_and(|(row, _, _)| *row < d.next)
                {
                    d.next_bad += 1;
                }
                self.position += k;
                n -= k;
            } else if self.reader.is_some() {
                if !self.next_batch()? {
                    break;
                }
            } else {
                // At a row group's start: pass over whole row groups by their row counts.
                if !self.settle() {
                    break;
                }
                let left = self.parts[self.part].group_rows(self.group) - self.skip_in_group;
                if n >= left {
                    self.group += 1;
                    self.skip_in_group = 0;
                    self.position += left;
                    n -= left;
                } else {
                    self.skip_in_group += n;
                    self.position += n;
                    n = 0;
                }
            }
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
