//! The hand-written CPU step (`CpuStep`) gives the same weights, optimizer state and losses as
//! the autograd step (`AutogradStep`, the oracle) over several steps, for SGD and Adagrad, plain
//! and MLET, with repeated ids in a batch and a short last batch; untouched table rows stay
//! bit for bit the same.

mod common;

use candle_core::Device;
use mlet_trainer::data::Batch;
use mlet_trainer::model::{Dlrm, ModelSpec};
use mlet_trainer::optim::{Optimizer, OptimizerKind};
use mlet_trainer::rng::Rng;
use mlet_trainer::step::AutogradStep;
use mlet_trainer::step::CpuStep;

fn spec(mlet_k: usize) -> ModelSpec {
    ModelSpec {
        num_dense: 3,
        table_rows: vec![7, 5, 11, 300],
        dim: 4,
        mlet_k,
        bottom_hidden: vec![16, 8],
        top_hidden: vec![12, 6],
        mlet_init_scale: 1.0,
    }
}

/// `rows` examples; tables 0-2 repeat ids often, table 3 rarely.
fn batch(seed: u64, rows: usize) -> Batch {
    let mut rng = Rng::new(seed);
    Batch {
        dense: (0..rows * 3)
            .map(|_| (rng.unit() * 20.0).floor() as f32 - 2.0)
            .collect(),
        ids: (0..rows * 4)
            .map(|i| {
                let range = if i % 4 == 3 { 1000 } else { 9 };
                (rng.next_u64() % range) as u32
            })
            .collect(),
        labels: (0..rows).map(|_| (rng.next_u64() % 2) as f32).collect(),
        next_row: 0,
        carried: Vec::new(),
    }
}

fn values(model: &Dlrm, optimizer: &Optimizer) -> Vec<(String, Vec<f32>)> {
    let state = optimizer
        .named_state()
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1().unwrap()));
    common::weights(model).into_iter().chain(state).collect()
}

fn check(mlet_k: usize, kind: OptimizerKind, lr: f64) {
    let batches: Vec<Batch> = (0..6)
        .map(|i| batch(i, if i == 5 { 5 } else { 24 }))
        .collect();
    let oracle = Dlrm::new(spec(mlet_k), 3, &Device::Cpu).unwrap();
    let mut oracle_opt = Optimizer::new(kind, lr, &oracle).unwrap();
    let model = Dlrm::new(spec(mlet_k), 3, &Device::Cpu).unwrap();
    let mut optimizer = Optimizer::new(kind, lr, &model).unwrap();
    let initial = values(&model, &optimizer);
    let mut step = CpuStep::new(&model).unwrap();
    let mut oracle_step = AutogradStep::default();
    for b in &batches {
        let expected: f32 = oracle_step
            .step(&oracle, &mut oracle_opt, b)
            .unwrap()
            .to_scalar()
            .unwrap();
        let got = step.step(&model, &mut optimizer, b).unwrap();
        assert!(
            (got - expected).abs() <= 1e-5 * expected.abs(),
            "loss {got} vs {expected}"
        );
    }
    let (expected, got) = (values(&oracle, &oracle_opt), values(&model, &optimizer));
    assert_eq!(got.len(), expected.len());
    let mut changed = 0;
    for (((name, g), (_, e)), (_, start)) in got.iter().zip(&expected).zip(&initial) {
        for (a, b) in g.iter().zip(e) {
            assert!(
                (a - b).abs() <= 1e-7 + 1e-5 * b.abs(),
                "{name}: hand-written {a} vs autograd {b} ({kind}, k={mlet_k})"
            );
        }
        if g != start {
            changed += 1;
        }
    }
    // Every tensor moved (each table's rows included), so the comparison is not vacuous.
    assert_eq!(changed, got.len(), "({kind}, k={mlet_k})");

    // Table 3's rows that no batch touched are bit for bit unchanged; the touched ones moved.
    let touched: Vec<bool> = (0..300u32)
        .map(|r| {
            batches
                .iter()
                .any(|b| b.ids.iter().skip(3).step_by(4).any(|&raw| raw % 300 == r))
        })
        .collect();
    assert!(touched.iter().any(|t| !t), "some rows must stay untouched");
    let name = "emb.3.rows";
    let find = |v: &[(String, Vec<f32>)]| v.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let (after, before) = (find(&got), find(&initial));
    let width = after.len() / 300;
    for (r, &t) in touched.iter().enumerate() {
        let row = r * width..(r + 1) * width;
        assert_eq!(after[row.clone()] != before[row], t, "row {r}");
    }
}

#[test]
fn sgd_plain() {
    check(0, OptimizerKind::Sgd, 0.3);
}

#[test]
fn sgd_mlet() {
    check(6, OptimizerKind::Sgd, 0.3);
}

#[test]
fn adagrad_plain() {
    check(0, OptimizerKind::Adagrad, 0.05);
}

#[test]
fn adagrad_mlet() {
    check(6, OptimizerKind::Adagrad, 0.05);
}
