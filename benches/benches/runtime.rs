//! Runtime speed, one core: scoring at batch 1 and batch 256 with f32, f16, int8 and int4 tables
//! and F32 or int8 MLPs (format v2) on the paper's Criteo config (d = 16 and d = 4) and on a
//! microcontroller-sized model; model parse time; and the time it takes to stream the Criteo
//! MLP's weight bytes once from cache, F32 and int8 (the bounds a batch-1 score cannot beat).
//!
//! `cargo bench -p mlet-benches --bench runtime`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mlet_benches::{
    criteo_inputs, criteo_model, criteo_model_mlp, mcu_model, mcu_model_mlp, mlp_bytes,
};
use mlet_formats::{EmbeddingDtype, MlpDtype};
use mlet_runtime::{Model, MAX_TILE};
use std::hint::black_box;

/// Rows per Criteo table: large enough that table reads miss the caches, as in production.
const ROWS: u32 = 1 << 16;

const DTYPES: [(&str, EmbeddingDtype); 3] = [
    ("f32", EmbeddingDtype::F32),
    ("f16", EmbeddingDtype::F16),
    ("int8", EmbeddingDtype::Int8),
];

fn models() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, dtype) in DTYPES {
        out.push((format!("criteo_d16/{name}"), criteo_model(16, ROWS, dtype)));
        out.push((format!("criteo_d4/{name}"), criteo_model(4, ROWS, dtype)));
        out.push((format!("mcu_d4/{name}"), mcu_model(dtype)));
    }
    // int8 layers (format v2), with f32, int8 and int4 tables.
    let int8 = MlpDtype::Int8;
    for (name, dtype) in [
        ("f32", EmbeddingDtype::F32),
        ("int8", EmbeddingDtype::Int8),
        ("int4", EmbeddingDtype::Int4),
    ] {
        let name = format!("{name}+int8mlp");
        out.push((
            format!("criteo_d16/{name}"),
            criteo_model_mlp(16, ROWS, dtype, int8),
        ));
        out.push((
            format!("criteo_d4/{name}"),
            criteo_model_mlp(4, ROWS, dtype, int8),
        ));
        out.push((format!("mcu_d4/{name}"), mcu_model_mlp(dtype, int8)));
    }
    out
}

fn score(c: &mut Criterion) {
    let (dense, ids) = criteo_inputs(1024, 3);
    for (name, bytes) in models() {
        let model = Model::parse(&bytes).unwrap();
        let mut group = c.benchmark_group(format!("score/{name}"));
        let mut scratch = vec![0.0f32; model.scratch_len() * MAX_TILE];
        let mut i = 0;
        group.throughput(Throughput::Elements(1));
        group.bench_function("batch1", |b| {
            b.iter(|| {
                i = (i + 1) % 1024;
                let (d, t) = (&dense[i * 13..(i + 1) * 13], &ids[i * 26..(i + 1) * 26]);
                black_box(model.score(d, t, &mut scratch).unwrap())
            })
        });
        let mut out = vec![0.0f32; 256];
        group.throughput(Throughput::Elements(256));
        group.bench_function("batch256", |b| {
            b.iter(|| {
                let (d, t) = (&dense[..256 * 13], &ids[..256 * 26]);
                model.score_batch(d, t, &mut out, &mut scratch).unwrap();
                black_box(out[255])
            })
        });
        group.finish();
    }
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, bytes) in [
        (
            "criteo_d4/int8",
            criteo_model(4, 1024, EmbeddingDtype::Int8),
        ),
        ("mcu_d4/int8", mcu_model(EmbeddingDtype::Int8)),
        (
            "criteo_d4/int4+int8mlp",
            criteo_model_mlp(4, 1024, EmbeddingDtype::Int4, MlpDtype::Int8),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(Model::parse(black_box(&bytes)).is_ok()))
        });
    }
    group.finish();
}

/// Reads as many bytes as the Criteo MLP's weights once, summing them into 32 independent
/// partial sums so that memory, not the adder, is the limit. 32 sums fit in the registers of
/// every x86-64 build (8 of SSE2's 16); 64 had spilled in the default build and measured the
/// spills (43.5 us, against 20-21 us for 32 in both builds).
fn stream_mlp_weights(c: &mut Criterion) {
    let bytes = criteo_model(16, 1, EmbeddingDtype::F32);
    let model = Model::parse(&bytes).unwrap();
    let n = mlp_bytes(model.config()) / 4;
    let weights: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let mut group = c.benchmark_group("stream_mlp_weights");
    group.throughput(Throughput::Bytes(n as u64 * 4));
    group.bench_function("criteo_d16", |b| {
        b.iter(|| {
            let mut acc = [0.0f32; 32];
            for chunk in black_box(&weights).chunks_exact(32) {
                for k in 0..32 {
                    acc[k] += chunk[k];
                }
            }
            black_box(acc)
        })
    });
    // As many bytes as the int8 MLP's weights (a quarter), read as 8-byte words into 32
    // wrapping sums.
    let words: Vec<u64> = (0..n / 8).map(|i| i as u64).collect();
    group.throughput(Throughput::Bytes(n as u64));
    group.bench_function("criteo_d16_int8", |b| {
        b.iter(|| {
            let mut acc = [0u64; 32];
            for chunk in black_box(&words).chunks_exact(32) {
                for k in 0..32 {
                    acc[k] = acc[k].wrapping_add(chunk[k]);
                }
            }
            black_box(acc)
        })
    });
    group.finish();
}

criterion_group!(benches, score, parse, stream_mlp_weights);
criterion_main!(benches);
