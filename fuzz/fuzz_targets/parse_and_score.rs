//! Coverage-guided fuzzing of `Model::parse` and `score`: any bytes must give `Ok` or `Err`.
//! The first 64 bytes of the input (if present) become dense values and ids to score with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlet_runtime::Model;

fuzz_target!(|data: &[u8]| {
    let (inputs, file) = data.split_at(data.len().min(64));
    let Ok(model) = Model::parse(file) else { return };
    let words: Vec<u32> = inputs.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let config = model.config();
    let dense: Vec<f32> = (0..config.num_dense()).map(|i| f32::from_bits(words.get(i).copied().unwrap_or(0))).collect();
    let ids: Vec<u32> = (0..config.num_tables()).map(|t| words.get(t + 3).copied().unwrap_or(t as u32)).collect();
    let mut scratch = vec![0.0f32; model.scratch_len()];
    if let Ok(p) = model.score(&dense, &ids, &mut scratch) {
        assert!((0.0..=1.0).contains(&p));
    }
});
