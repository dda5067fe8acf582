//! Writes the paper's Criteo model (random weights) and a set of inputs for the PyTorch
//! reference, times our scoring at batch 1 and batch 256 on one thread, and prints the figures
//! as JSON for `benches/reference/run.sh`.
//!
//! usage: score_vs_reference OUT_DIR [MODEL criteo16|criteo4|small] [TABLES f32|f16|int8|int4]
//! [MLP f32|int8]
//!
//! - `MODEL` (default `criteo16`): the paper's Criteo config at d = 16 or d = 4, or the small
//!   DLRM; 26 tables of 65,536 rows.
//! - `TABLES` (default `f32`): the tables' dtype; int8 and int4 have per-row F16 scales.
//! - `MLP` (default `f32`): `int8` writes a format v2 file whose every layer is an int8 layer
//!   (random I8 codes, per-tensor input scales in even layers and per-column ones in odd
//!   layers, random zero points; `mlet_formats::writer::RandomModel`). The JSON then has
//!   `"mlp":"int8"`; it always has the `mlp` key.
//!
//! Files written to `OUT_DIR`: `model.safetensors`, `dense.f32` and `ids.u32` (1,024 examples),
//! `probs.f32` (our probabilities, bits as u32 LE). The last three arguments are positional, so
//! older calls (two or three arguments) work as before.

use std::time::Instant;

use mlet_benches::{criteo_inputs, criteo_model_mlp, small_model_mlp};
use mlet_formats::{EmbeddingDtype, MlpDtype};
use mlet_runtime::{Model, MAX_TILE};

const EXAMPLES: usize = 1024;
const ROWS: u32 = 1 << 16;

/// Median seconds per call of `f` over `reps` timed runs (after a warm-up).
fn median_seconds(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..reps.min(50) {
        f();
    }
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage =
        "usage: score_vs_reference OUT_DIR [criteo16|criteo4|small] [f32|f16|int8|int4] [f32|int8]";
    let out = std::path::PathBuf::from(args.next().ok_or(usage)?);
    let name = args.next().unwrap_or_else(|| "criteo16".into());
    let dtype = match args.next().as_deref() {
        None | Some("f32") => EmbeddingDtype::F32,
        Some("f16") => EmbeddingDtype::F16,
        Some("int8") => EmbeddingDtype::Int8,
        Some("int4") => EmbeddingDtype::Int4,
        Some(other) => return Err(format!("unknown table dtype {other}").into()),
    };
    let mlp = match args.next().as_deref() {
        None | Some("f32") => MlpDtype::F32,
        Some("int8") => MlpDtype::Int8,
        Some(other) => return Err(format!("unknown MLP dtype {other}").into()),
    };
    std::fs::create_dir_all(&out)?;
    let bytes = match name.as_str() {
        "criteo16" => criteo_model_mlp(16, ROWS, dtype, mlp),
        "criteo4" => criteo_model_mlp(4, ROWS, dtype, mlp),
        "small" => small_model_mlp(ROWS, dtype, mlp),
        _ => return Err(usage.into()),
    };
    let model = Model::parse(&bytes)?;
    let (dense, ids) = criteo_inputs(EXAMPLES, 11);
    // Scored in tiles of MAX_TILE examples (what batch 256 runs), and one at a time: same bits.
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let mut tile_scratch = vec![0.0f32; model.scratch_len() * MAX_TILE];
    let mut probs = vec![0.0f32; EXAMPLES];
    model.score_batch(&dense, &ids, &mut probs, &mut tile_scratch)?;
    let mut one_at_a_time = vec![0.0f32; EXAMPLES];
    model.score_batch(&dense, &ids, &mut one_at_a_time, &mut scratch)?;
    if let Some(i) = (0..EXAMPLES).find(|&i| probs[i].to_bits() != one_at_a_time[i].to_bits()) {
        return Err(format!(
            "example {i}: tiled {} vs one at a time {}",
            probs[i], one_at_a_time[i]
        )
        .into());
    }

    mlet_formats::writer::write_atomic(&out.join("model.safetensors"), &bytes)?;
    let to_bytes = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    std::fs::write(
        out.join("dense.f32"),
        to_bytes(&dense.iter().map(|v| v.to_bits()).collect::<Vec<_>>()),
    )?;
    std::fs::write(out.join("ids.u32"), to_bytes(&ids))?;
    std::fs::write(
        out.join("probs.f32"),
        to_bytes(&probs.iter().map(|v| v.to_bits()).collect::<Vec<_>>()),
    )?;

    let mut i = 0;
    let batch1 = median_seconds(20_000, || {
        i = (i + 1) % EXAMPLES;
        let p = model.score(
            &dense[i * 13..(i + 1) * 13],
            &ids[i * 26..(i + 1) * 26],
            &mut scratch,
        );
        std::hint::black_box(p.ok());
    });
    // Batch 256 with scratch for a tile of MAX_TILE examples per pass over the weights.
    let mut out256 = vec![0.0f32; 256];
    let batch256 = median_seconds(100, || {
        let r = model.score_batch(
            &dense[..256 * 13],
            &ids[..256 * 26],
            &mut out256,
            &mut tile_scratch,
        );
        std::hint::black_box(r.ok());
    });
    println!(
        "{{\"model\":\"{name}\",\"tables\":\"{}\",\"mlp\":\"{}\",\"model_bytes\":{},\"scratch_bytes\":{},\"batch1_s\":{batch1:e},\"batch256_s\":{batch256:e},\"threads\":1}}",
        dtype.as_str(),
        mlp.as_str(),
        bytes.len(),
        model.scratch_len() * 4
    );
    Ok(())
}
