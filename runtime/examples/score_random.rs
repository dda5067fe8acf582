//! Writes a random model of the paper's Criteo shape (26 tables of 1,000 rows, bottom
//! 13-512-256-64-16, top 512-256-1) to a file, parses it back and scores a few examples.
//!
//! `cargo run --release -p mlet-runtime --example score_random [-- OUT.safetensors]`

use mlet_formats::writer::RandomModel;
use mlet_formats::{Config, DenseTransform, EmbeddingDtype};
use mlet_runtime::Model;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "random-criteo.safetensors".into());
    let config = Config::new(
        &[1000; 26],
        16,
        &[13, 512, 256, 64, 16],
        &[512, 256, 1],
        DenseTransform::Log1p,
        EmbeddingDtype::Int8,
    )?;
    let bytes = RandomModel::new(config).writer().write(out.as_ref())?;
    let model = Model::parse(&bytes)?;
    let mut scratch = vec![0.0f32; model.scratch_len()];
    println!(
        "wrote {out}: {} bytes, scratch {} bytes",
        bytes.len(),
        model.scratch_len() * 4
    );
    for example in 0..4u32 {
        let dense: Vec<f32> = (0..13).map(|i| (example * 13 + i) as f32).collect();
        let ids: Vec<u32> = (0..26)
            .map(|t| example.wrapping_mul(2_654_435_761) ^ t)
            .collect();
        println!(
            "example {example}: p = {:.6}",
            model.score(&dense, &ids, &mut scratch)?
        );
    }
    Ok(())
}
