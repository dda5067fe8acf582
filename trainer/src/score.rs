//! Scoring data through an exported model file with `mlet-runtime` (what a server or device
//! would compute).

use std::ops::Range;

use anyhow::{anyhow, Context, Result};
use mlet_formats::ModelFile;
use mlet_runtime::Model;

use crate::data::{Batch, BatchStream, ColumnSchema, DataSpec, ReadOptions};
use crate::export::metadata_text;
use crate::train::SCHEMA_KEY;

/// Probabilities and labels (NaN when unlabeled) of `rows` of `spec`, in input order, scored by
/// `mlet_runtime::Model::score_batch` on the file `bytes`.
pub fn score_file(
    bytes: &[u8],
    spec: &DataSpec,
    rows: Range<u64>,
    options: ReadOptions,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut probabilities, mut labels) = (Vec::new(), Vec::new());
    score_batches(bytes, spec, rows, options, |batch, p| {
        probabilities.extend_from_slice(p);
        labels.extend_from_slice(&batch.labels);
        Ok(())
    })?;
    Ok((probabilities, labels))
}

/// `spec`, read by the schema stored in the model `file` when it is a `csv:`, `tsv:` or
/// `parquet:` spec without one (`require_labels`: whether the label column must be there).
pub fn with_model_schema(
    spec: &DataSpec,
    file: &ModelFile<'_>,
    require_labels: bool,
) -> Result<DataSpec> {
    if !spec.needs_schema() {
        return Ok(spec.clone());
    }
    let stored = file.metadata(SCHEMA_KEY).with_context(|| {
        format!("{spec} needs a schema, and the model file holds none (it was not trained on csv:, tsv: or parquet: data)")
    })?;
    let schema =
        ColumnSchema::from_json(&metadata_text(stored)).context("the model file's schema")?;
    spec.clone().with_schema(&schema, require_labels)
}

/// Scores `rows` of `spec` with the model file `bytes` batch by batch, in input order, handing
/// each batch and its probabilities to `each`. A `csv:`, `tsv:` or `parquet:` spec without a
/// schema is read by the schema stored in the model file.
pub fn score_batches(
    bytes: &[u8],
    spec: &DataSpec,
    rows: Range<u64>,
    options: ReadOptions,
    mut each: impl FnMut(&Batch, &[f32]) -> Result<()>,
) -> Result<()> {
    let model = Model::parse(bytes).map_err(|e| anyhow!("invalid model file: {e}"))?;
    let spec = with_model_schema(spec, model.file(), options.require_labels)?;
    let config = model.config();
    let schema = spec.schema()?;
    if schema.num_dense != config.num_dense() || schema.num_tables != config.num_tables() {
        return Err(anyhow!(
            "the model takes {} dense values and {} ids, {spec} has {} and {}",
            config.num_dense(),
            config.num_tables(),
            schema.num_dense,
            schema.num_tables
        ));
    }
    // Scratch for MAX_TILE examples: each pass over the weights serves that many.
    let mut scratch = vec![0f32; model.scratch_len() * mlet_runtime::MAX_TILE];
    let mut stream = BatchStream::spawn(&spec, options, rows, 4096)?;
    let mut probabilities = Vec::new();
    while let Some(batch) = stream.next_batch()? {
        probabilities.clear();
        probabilities.resize(batch.len(), 0.0);
        model
            .score_batch(&batch.dense, &batch.ids, &mut probabilities, &mut scratch)
            .map_err(|e| {
                anyhow!(
                    "scoring {spec}, rows from {}: {e}",
                    batch.next_row - batch.len() as u64
                )
            })?;
        each(&batch, &probabilities)?;
    }
    Ok(())
}
