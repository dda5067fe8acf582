//! Trainer speed, one step: plain and MLET (k = 64) DLRM on the paper's Criteo config (26 tables,
//! bottom 13-512-256-64-d, top 512-256-1, batch 128, SGD lr 0.2), on the CPU.
//!
//! Two steps, both what the training loop calls per batch: `cpu` is
//! `mlet_trainer::step::CpuStep::step` (the hand-written step the loop uses on the CPU) and
//! `autograd` is `mlet_trainer::step::AutogradStep` (candle autograd, the loop's step on other
//! devices and the CPU step's oracle). Each does forward from the touched rows, backward and the
//! sparse optimizer update. One thread: run with `RAYON_NUM_THREADS=1`. Tables have 2^14 rows
//! each (the step touches at most 128 rows a table, so table size only changes cache misses);
//! batches are real synthetic Criteo-shaped rows, cycled.
//!
//! `cargo bench -p mlet-benches --bench trainer`

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mlet_trainer::data::{Batch, DataSpec, ReadOptions};
use mlet_trainer::model::{Dlrm, ModelSpec};
use mlet_trainer::optim::{Optimizer, OptimizerKind};
use mlet_trainer::step::AutogradStep;
use mlet_trainer::step::CpuStep;

/// Rows per table.
const ROWS: usize = 1 << 14;
/// Examples per step (the paper's batch).
const BATCH: usize = 128;
/// Distinct batches cycled through.
const BATCHES: usize = 16;

fn batches() -> Vec<Batch> {
    let spec = DataSpec::Synthetic {
        rows: (BATCH * BATCHES) as u64,
        seed: 7,
        rank: 8,
        vocab: mlet_trainer::data::Vocab::Default,
    };
    let options = ReadOptions {
        skip_bad_lines: false,
        require_labels: true,
    };
    let mut source = spec.open(options).expect("synthetic data opens");
    (0..BATCHES)
        .map(|_| {
            let mut batch = Batch::default();
            for _ in 0..BATCH {
                assert!(source.next_row(&mut batch).expect("synthetic rows read"));
            }
            batch
        })
        .collect()
}

fn step(c: &mut Criterion) {
    let batches = batches();
    let mut group = c.benchmark_group("train_step/criteo_b128");
    group.sample_size(20);
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, dim, k) in [
        ("plain_d16", 16, 0),
        ("mlet_d16_k64", 16, 64),
        ("mlet_d4_k64", 4, 64),
    ] {
        let spec = ModelSpec {
            num_dense: 13,
            table_rows: vec![ROWS; 26],
            dim,
            mlet_k: k,
            bottom_hidden: vec![512, 256, 64],
            top_hidden: vec![512, 256],
            mlet_init_scale: 1.0,
        };
        let model = Dlrm::new(spec, 0, &Device::Cpu).expect("model builds");
        let mut optimizer = Optimizer::new(OptimizerKind::Sgd, 0.2, &model).expect("optimizer");
        let mut cpu = CpuStep::new(&model).expect("CPU step");
        let mut autograd = AutogradStep::default();
        let mut next = 0;
        group.bench_function(format!("cpu/{name}"), |b| {
            b.iter(|| {
                next += 1;
                cpu.step(&model, &mut optimizer, &batches[next % BATCHES])
                    .unwrap()
            })
        });
        group.bench_function(format!("autograd/{name}"), |b| {
            b.iter(|| {
                next += 1;
                let loss = autograd
                    .step(&model, &mut optimizer, &batches[next % BATCHES])
                    .unwrap();
                loss.to_scalar::<f32>().unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
