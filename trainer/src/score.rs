//! Scoring data through an exported model file with `mlet-runtime` (what a server or device
//! would compute).

use std::ops::Range;

use anyhow::{anyhow, Result};
use mlet_runtime::Model;

use crate::data::{BatchStream, DataSpec, ReadOptions};

/// Probabilities and labels (NaN when unlabeled) of `rows` of `spec`, in input order, scored by
/// `mlet_runtime::Model::score_batch` on the file `bytes`.
pub fn score_file(
    bytes: &[u8],
    spec: &DataSpec,
    rows: Range<u64>,
    options: ReadOptions,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let model = Model::parse(bytes).map_err(|e| anyhow!("invalid model file: {e}"))?;
    let config = model.config();
    let schema = spec.schema();
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
    let mut stream = BatchStream::spawn(spec, options, rows, 4096)?;
    let (mut probabilities, mut labels) = (Vec::new(), Vec::new());
    while let Some(batch) = stream.next_batch()? {
        let start = probabilities.len();
        probabilities.resize(start + batch.len(), 0.0);
        model
            .score_batch(
                &batch.dense,
                &batch.ids,
                &mut probabilities[start..],
                &mut scratch,
            )
            .map_err(|e| {
                anyhow!(
                    "scoring {spec}, rows from {}: {e}",
                    batch.next_row - batch.len() as u64
                )
            })?;
        labels.extend_from_slice(&batch.labels);
    }
    Ok((probabilities, labels))
}
