//! Batch-1 scoring of the paper's Criteo config with f32, f16 and int8 tables, one core, beside
//! the time it takes to stream the MLP weights' bytes once from cache (the lower bound).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mlet_benches::{criteo_inputs, criteo_model, mlp_bytes};
use mlet_formats::EmbeddingDtype;
use mlet_runtime::Model;
use std::hint::black_box;

const ROWS: u32 = 1 << 16;

fn score_batch1(c: &mut Criterion) {
    let mut group = c.benchmark_group("score_batch1_criteo_d16");
    let (dense, ids) = criteo_inputs(1024, 3);
    for (name, dtype) in [
        ("f32", EmbeddingDtype::F32),
        ("f16", EmbeddingDtype::F16),
        ("int8", EmbeddingDtype::Int8),
    ] {
        let bytes = criteo_model(16, ROWS, dtype);
        let model = Model::parse(&bytes).unwrap();
        let mut scratch = vec![0.0f32; model.scratch_len()];
        eprintln!(
            "{name}: model {} bytes, scratch {} bytes",
            bytes.len(),
            model.scratch_len() * 4
        );
        let mut i = 0;
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % 1024;
                let p = model.score(
                    &dense[i * 13..(i + 1) * 13],
                    &ids[i * 26..(i + 1) * 26],
                    &mut scratch,
                );
                black_box(p.unwrap())
            })
        });
    }
    group.finish();
}

/// Reads as many bytes as the MLP's weights once, summing them into 64 independent partial sums
/// so that memory, not the adder, is the limit: the time a batch-1 score cannot beat.
fn stream_mlp_weights(c: &mut Criterion) {
    let bytes = criteo_model(16, 1, EmbeddingDtype::F32);
    let model = Model::parse(&bytes).unwrap();
    let n = mlp_bytes(model.config()) / 4;
    let weights: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let mut group = c.benchmark_group("stream_mlp_weights");
    group.throughput(Throughput::Bytes(n as u64 * 4));
    group.bench_function("criteo_d16", |b| {
        b.iter(|| {
            let mut acc = [0.0f32; 64];
            for chunk in black_box(&weights).chunks_exact(64) {
                for k in 0..64 {
                    acc[k] += chunk[k];
                }
            }
            black_box(acc)
        })
    });
    group.finish();
}

criterion_group!(benches, score_batch1, stream_mlp_weights);
criterion_main!(benches);
