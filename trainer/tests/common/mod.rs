//! Helpers shared by the trainer's tests: temporary paths, the `mlet` binary, the real data
//! samples, and a model's weights as plain values.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

use mlet_trainer::model::Dlrm;

/// A path in the temporary folder, unique to this test process: `mlet-{name}` with the pid.
/// Tests in one file run in parallel threads, so each test needs names of its own.
pub fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mlet-test-{}-{name}", std::process::id()))
}

/// Writes `content` to [`temp`]`(name)` and returns the path.
pub fn temp_file(name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = temp(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Runs the built `mlet` with `args`: (success, stdout, stderr).
pub fn mlet<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mlet"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A file of the real data samples that sit beside this repository (`../shared/data`, present
/// in CI); a clear failure naming the file when it is missing.
pub fn shared_data(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(file);
    assert!(
        path.is_file(),
        "missing data sample {}: these tests read the samples in ../shared/data (beside the \
         repository's folder), which CI provides",
        path.display()
    );
    path
}

/// Every parameter of `model` by name, as plain values.
pub fn weights(model: &Dlrm) -> Vec<(String, Vec<f32>)> {
    model
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1().unwrap()))
        .collect()
}

/// Writes `batch` as a Parquet file with `compression`, at most `group_rows` rows per row group.
pub fn write_parquet(
    path: &Path,
    batch: &arrow_array::RecordBatch,
    compression: parquet::basic::Compression,
    group_rows: usize,
) {
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(properties)).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// A CSV (or TSV) file's columns as one record batch: the columns named in `ints` as Int64,
/// the others as strings; an empty field is null.
pub fn csv_as_batch(path: &Path, delimiter: u8, ints: &[&str]) -> arrow_array::RecordBatch {
    use std::sync::Arc;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_path(path)
        .unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut fields = Vec::new();
    let mut columns: Vec<arrow_array::ArrayRef> = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let texts = records
            .iter()
            .map(|r| Some(&r[i]).filter(|t| !t.is_empty()));
        if ints.contains(&name.as_str()) {
            let values: Vec<Option<i64>> = texts.map(|t| t.map(|t| t.parse().unwrap())).collect();
            fields.push(arrow_schema::Field::new(
                name,
                arrow_schema::DataType::Int64,
                true,
            ));
            columns.push(Arc::new(arrow_array::Int64Array::from(values)));
        } else {
            let values: Vec<Option<&str>> = texts.collect();
            fields.push(arrow_schema::Field::new(
                name,
                arrow_schema::DataType::Utf8,
                true,
            ));
            columns.push(Arc::new(arrow_array::StringArray::from(values)));
        }
    }
    arrow_array::RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns).unwrap()
}
