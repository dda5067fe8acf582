//! Files written by the Python `safetensors` package parse and score exactly as ours do, and a
//! numpy float64 DLRM agrees with the runtime.
//!
//! Needs a Python with numpy and safetensors: `MLET_PYTHON`, else `.venv/bin/python` at the
//! repository root (the README's test command creates it). Without one the test fails under CI
//! and is skipped with a message elsewhere.

use std::path::PathBuf;
use std::process::Command;

use mlet_formats::writer::RandomModel;
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype};
use mlet_runtime::Model;

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MLET_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python"));
    venv.exists().then_some(venv)
}

#[test]
fn python_written_files_score_the_same() {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs MLET_PYTHON or .venv (see scripts/test.sh)"
        );
        eprintln!("skipped: no Python with safetensors (set MLET_PYTHON or run scripts/test.sh)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("mlet-python-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/resave_and_score.py"
    );
    let cases = [
        (EmbeddingDtype::F32, Dtype::F32, true, Dtype::F16),
        (EmbeddingDtype::F16, Dtype::F16, true, Dtype::F16),
        (EmbeddingDtype::Int8, Dtype::F32, true, Dtype::F16),
        (EmbeddingDtype::Int8, Dtype::F16, false, Dtype::F32),
    ];
    for (i, (emb, mlp_dtype, int8_per_row, int8_scale_dtype)) in cases.into_iter().enumerate() {
        let config = Config::new(
            &[50, 7, 1000, 3, 20],
            8,
            &[13, 32, 8],
            &[16, 1],
            DenseTransform::Log1p,
            emb,
        )
        .unwrap();
        let model = RandomModel {
            config,
            mlp_dtype,
            int8_per_row,
            int8_scale_dtype,
            seed: i as u64,
        };
        let ours = dir.join(format!("ours{i}.safetensors"));
        let theirs = dir.join(format!("theirs{i}.safetensors"));
        let inputs = dir.join(format!("inputs{i}.txt"));
        let ours_bytes = model.writer().write(&ours).unwrap();
        let examples: Vec<(Vec<f32>, Vec<u32>)> = (0..20u32)
            .map(|r| {
                let dense = (0..13)
                    .map(|j| ((r * 31 + j * 17) % 97) as f32 - 5.0)
                    .collect();
                let ids = (0..5)
                    .map(|t| r.wrapping_mul(2_654_435_761).wrapping_add(t * 99_991))
                    .collect();
                (dense, ids)
            })
            .collect();
        let text: String = examples
            .iter()
            .map(|(d, ids)| {
                let d: Vec<String> = d.iter().map(|v| format!("{v:?}")).collect();
                let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
                format!("{} | {}\n", d.join(" "), ids.join(" "))
            })
            .collect();
        std::fs::write(&inputs, text).unwrap();
        let out = Command::new(&python)
            .arg(script)
            .arg(&ours)
            .arg(&theirs)
            .arg(&inputs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let numpy: Vec<f64> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();

        let theirs_bytes = std::fs::read(&theirs).unwrap();
        let (a, b) = (
            Model::parse(&ours_bytes).unwrap(),
            Model::parse(&theirs_bytes).unwrap(),
        );
        assert_eq!(a.config(), b.config());
        let mut scratch = vec![0.0f32; a.scratch_len()];
        for ((dense, ids), want) in examples.iter().zip(&numpy) {
            let pa = a.score(dense, ids, &mut scratch).unwrap();
            let pb = b.score(dense, ids, &mut scratch).unwrap();
            assert_eq!(pa.to_bits(), pb.to_bits(), "case {i}");
            assert!(
                (pa as f64 - want).abs() <= 1e-5,
                "case {i}: runtime {pa}, numpy {want}"
            );
        }
        assert_eq!(numpy.len(), examples.len());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
