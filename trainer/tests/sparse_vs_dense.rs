//! The sparse update path (gather unique rows, scatter-add the update) gives the same weights
//! as candle's dense autograd over whole tables, for SGD and Adagrad, plain and MLET.

use candle_core::{DType, Device, Tensor, Var};
use mlet_trainer::data::Batch;
use mlet_trainer::model::{Dlrm, ModelSpec};
use mlet_trainer::optim::{Optimizer, OptimizerKind, ADAGRAD_EPS};
use mlet_trainer::rng::Rng;
use mlet_trainer::step::autograd::bce_with_logits;
use mlet_trainer::step::AutogradStep;

fn spec(mlet_k: usize) -> ModelSpec {
    ModelSpec {
        num_dense: 3,
        table_rows: vec![7, 5, 11],
        dim: 4,
        mlet_k,
        bottom_hidden: vec![8],
        top_hidden: vec![6],
        mlet_init_scale: 1.0,
    }
}

/// A batch with many repeated ids (small vocabularies), so duplicate rows are exercised.
fn batch(seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let rows = 16;
    Batch {
        dense: (0..rows * 3)
            .map(|_| (rng.unit() * 20.0).floor() as f32)
            .collect(),
        ids: (0..rows * 3).map(|_| (rng.next_u64() % 9) as u32).collect(),
        labels: (0..rows).map(|_| (rng.next_u64() % 2) as f32).collect(),
        next_row: 0,
        carried: Vec::new(),
    }
}

/// The reference: tables as `Var`s, dense gradients, updates written out in full.
fn dense_reference(model: &Dlrm, kind: OptimizerKind, lr: f64, batches: &[Batch]) -> Vec<Tensor> {
    let tables: Vec<Var> = model
        .tables
        .iter()
        .map(|t| Var::from_tensor(&t.rows).unwrap())
        .collect();
    let params = model.dense_params();
    let mut dense_acc: Vec<Tensor> = params
        .iter()
        .map(|p| p.as_tensor().zeros_like().unwrap())
        .collect();
    let mut row_acc: Vec<Tensor> = tables
        .iter()
        .map(|t| Tensor::zeros((t.dim(0).unwrap(), 1), DType::F32, &Device::Cpu).unwrap())
        .collect();
    let adagrad = |g: &Tensor, acc: &Tensor| -> Tensor {
        (g * lr)
            .unwrap()
            .broadcast_div(&acc.sqrt().unwrap().affine(1.0, ADAGRAD_EPS).unwrap())
            .unwrap()
    };
    for b in batches {
        let dense = model.dense_input(&b.dense, b.len()).unwrap();
        let labels = Tensor::from_slice(&b.labels, b.len(), &Device::Cpu).unwrap();
        // Each table on its own: row `raw mod n_t`, times P_t for MLET.
        let embeddings: Vec<Tensor> = tables
            .iter()
            .enumerate()
            .map(|(t, table)| {
                let n = table.dim(0).unwrap() as u32;
                let ids: Vec<u32> = b.ids[t..].iter().step_by(3).map(|&raw| raw % n).collect();
                let ids = Tensor::from_vec(ids, b.len(), &Device::Cpu).unwrap();
                let rows = table.as_tensor().index_select(&ids, 0).unwrap();
                match &model.tables[t].projection {
                    Some(p) => rows.matmul(p).unwrap(),
                    None => rows,
                }
            })
            .collect();
        let embeddings = Tensor::stack(&embeddings, 1).unwrap();
        let loss = bce_with_logits(&model.forward(&dense, &embeddings).unwrap(), &labels).unwrap();
        let grads = loss.backward().unwrap();
        for (i, p) in params.iter().enumerate() {
            let g = grads.get(p).unwrap();
            let update = match kind {
                OptimizerKind::Sgd => (g * lr).unwrap(),
                OptimizerKind::Adagrad => {
                    dense_acc[i] = (&dense_acc[i] + g.sqr().unwrap()).unwrap();
                    adagrad(g, &dense_acc[i])
                }
            };
            p.set(&(p.as_tensor() - update).unwrap()).unwrap();
        }
        for (t, table) in tables.iter().enumerate() {
            let g = grads.get(table).unwrap();
            let update = match kind {
                OptimizerKind::Sgd => (g * lr).unwrap(),
                OptimizerKind::Adagrad => {
                    row_acc[t] = (&row_acc[t] + g.sqr().unwrap().mean_keepdim(1).unwrap()).unwrap();
                    adagrad(g, &row_acc[t])
                }
            };
            table.set(&(table.as_tensor() - update).unwrap()).unwrap();
        }
    }
    let mut out: Vec<Tensor> = params
        .iter()
        .map(|p| p.as_tensor().copy().unwrap())
        .collect();
    out.extend(tables.iter().map(|t| t.as_tensor().copy().unwrap()));
    out
}

fn check(mlet_k: usize, kind: OptimizerKind, lr: f64) {
    let batches: Vec<Batch> = (0..4).map(batch).collect();
    let reference_model = Dlrm::new(spec(mlet_k), 42, &Device::Cpu).unwrap();
    let expected = dense_reference(&reference_model, kind, lr, &batches);

    let model = Dlrm::new(spec(mlet_k), 42, &Device::Cpu).unwrap();
    let before: Vec<Vec<f32>> = model
        .tables
        .iter()
        .map(|t| t.rows.flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    let mut optimizer = Optimizer::new(kind, lr, &model).unwrap();
    let mut step = AutogradStep::default();
    for b in &batches {
        step.step(&model, &mut optimizer, b).unwrap();
    }
    let mut got: Vec<Tensor> = model
        .dense_params()
        .iter()
        .map(|p| p.as_tensor().clone())
        .collect();
    got.extend(model.tables.iter().map(|t| t.rows.clone()));

    assert_eq!(got.len(), expected.len());
    let mut moved = 0;
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        let g: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        let e: Vec<f32> = e.flatten_all().unwrap().to_vec1().unwrap();
        for (a, b) in g.iter().zip(&e) {
            assert!(
                (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                "tensor {i}: sparse {a} vs dense {b} ({kind}, k={mlet_k})"
            );
        }
    }
    // The update really moved the touched table rows (the test would be empty otherwise).
    for (t, table) in model.tables.iter().enumerate() {
        let after: Vec<f32> = table.rows.flatten_all().unwrap().to_vec1().unwrap();
        moved += after.iter().zip(&before[t]).filter(|(a, b)| a != b).count();
    }
    assert!(moved > 0);
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

/// Rows no example touches stay bit-identical.
#[test]
fn untouched_rows_do_not_move() {
    let model = Dlrm::new(spec(0), 1, &Device::Cpu).unwrap();
    let before: Vec<f32> = model.tables[2]
        .rows
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let mut optimizer = Optimizer::new(OptimizerKind::Adagrad, 0.1, &model).unwrap();
    let mut b = batch(9);
    for (i, id) in b.ids.iter_mut().enumerate() {
        if i % 3 == 2 {
            *id = 4; // table 2 sees only row 4
        }
    }
    AutogradStep::default()
        .step(&model, &mut optimizer, &b)
        .unwrap();
    let after: Vec<f32> = model.tables[2]
        .rows
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    for row in 0..11 {
        let same = before[row * 4..row * 4 + 4] == after[row * 4..row * 4 + 4];
        assert_eq!(same, row != 4, "row {row}");
    }
}
