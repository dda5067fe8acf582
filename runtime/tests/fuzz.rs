//! Fuzzing with proptest: any bytes given to `Model::parse`, and any input given to `score`,
//! return `Ok` or `Err`, never panic. `PROPTEST_CASES` bounds the run (CI sets it).
//!
//! `tests/corpus/` holds interesting files found by mutation, each named after the rule its
//! parse breaks (or `valid`); `corpus_files_keep_their_verdicts` replays them as regression tests,
//! and `cargo test -p mlet-runtime --test fuzz -- --ignored` rebuilds the corpus.

use std::path::PathBuf;

use mlet_formats::writer::RandomModel;
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype, MlpDtype};
use mlet_runtime::{Error, Model};
use proptest::prelude::*;

/// Small valid models of every table dtype, and format v2 ones (int4 tables, int8 layers), to
/// mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, (emb, mlp)) in [
        (EmbeddingDtype::F32, MlpDtype::F32),
        (EmbeddingDtype::F16, MlpDtype::F32),
        (EmbeddingDtype::Int8, MlpDtype::F32),
        (EmbeddingDtype::Int4, MlpDtype::F32),
        (EmbeddingDtype::Int8, MlpDtype::Int8),
        (EmbeddingDtype::Int4, MlpDtype::Int8),
    ]
    .into_iter()
    .enumerate()
    {
        let config = Config::new(
            &[3, 1, 4],
            3,
            &[2, 3, 3],
            &[3, 1],
            DenseTransform::Log1p,
            emb,
        )
        .and_then(|c| c.with_mlp_dtype(mlp))
        .unwrap();
        let model = RandomModel {
            config,
            mlp_dtype: Dtype::F32,
            int8_per_row: i % 2 == 0,
            int8_scale_dtype: Dtype::F16,
            seed: i as u64,
        };
        out.push(model.writer().to_bytes().unwrap());
    }
    out
}

/// Number of seed models.
const SEEDS: usize = 6;

/// One way of damaging a file.
#[derive(Clone, Debug)]
enum Mutation {
    SetByte(usize, u8),
    FlipBit(usize, u8),
    Truncate(usize),
    Remove(usize, usize),
    Duplicate(usize, usize),
    SetHeaderLen(u64),
    /// Replaces a digit of the header with another digit.
    Digit(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        prop_oneof![0u64..2048, any::<u64>()].prop_map(Mutation::SetHeaderLen),
        (any::<usize>(), 0u8..10).prop_map(|(i, d)| Mutation::Digit(i, d)),
    ]
}

fn apply(file: &mut Vec<u8>, m: &Mutation) {
    if file.is_empty() {
        return;
    }
    let at = |i: usize| i % file.len();
    match *m {
        Mutation::SetByte(i, b) => {
            let i = at(i);
            file[i] = b;
        }
        Mutation::FlipBit(i, b) => {
            let i = at(i);
            file[i] ^= 1 << b;
        }
        Mutation::Truncate(i) => file.truncate(at(i)),
        Mutation::Remove(i, n) => {
            let i = at(i);
            file.drain(i..(i + n).min(file.len()));
        }
        Mutation::Duplicate(i, n) => {
            let i = at(i);
            let part = file[i..(i + n).min(file.len())].to_vec();
            file.splice(i..i, part);
        }
        Mutation::SetHeaderLen(n) if file.len() >= 8 => file[..8].copy_from_slice(&n.to_le_bytes()),
        Mutation::SetHeaderLen(_) => {}
        Mutation::Digit(i, d) => {
            let digits: Vec<usize> = (0..file.len())
                .filter(|&j| file[j].is_ascii_digit())
                .collect();
            if !digits.is_empty() {
                file[digits[i % digits.len()]] = b'0' + d;
            }
        }
    }
}

/// Parses, and where that succeeds scores a few inputs, some of them bad.
fn exercise(bytes: &[u8], dense: &[f32], ids: &[u32], scratch_len: usize) -> Result<f32, Error> {
    let model = Model::parse(bytes)?;
    let mut scratch = vec![0.0f32; scratch_len.min(model.scratch_len() + 1)];
    let _ = model.score(dense, ids, &mut scratch);
    let mut scratch = vec![0.0f32; model.scratch_len()];
    let d: Vec<f32> = (0..model.config().num_dense())
        .map(|i| dense.get(i).copied().unwrap_or(1.0))
        .collect();
    let i: Vec<u32> = (0..model.config().num_tables())
        .map(|t| ids.get(t).copied().unwrap_or(7))
        .collect();
    model.score(&d, &i, &mut scratch)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = exercise(&bytes, &[1.0; 2], &[1; 3], 64);
    }

    #[test]
    fn arbitrary_header_text_never_panics(prefix in 0u64..600, text in "[{}\\[\\]\",:0-9a-z_. ]{0,300}") {
        let mut bytes = prefix.to_le_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        let _ = exercise(&bytes, &[1.0; 2], &[1; 3], 64);
    }

    #[test]
    fn mutated_files_never_panic_and_both_parses_agree(
        seed in 0usize..SEEDS,
        mutations in proptest::collection::vec(mutation(), 1..4),
        dense in proptest::collection::vec(prop_oneof![any::<f32>(), -10.0f32..1000.0], 0..4),
        ids in proptest::collection::vec(any::<u32>(), 0..5),
        scratch_len in 0usize..64,
    ) {
        let mut file = seeds()[seed].clone();
        for m in &mutations {
            apply(&mut file, m);
        }
        verdict(&file); // parse and parse_rule agree
        let _ = exercise(&file, &dense, &ids, scratch_len);
    }

    #[test]
    fn any_input_to_a_valid_model_is_ok_or_err(
        seed in 0usize..SEEDS,
        dense in proptest::collection::vec(any::<f32>(), 0..4),
        ids in proptest::collection::vec(any::<u32>(), 0..5),
        scratch_len in 0usize..64,
    ) {
        let file = &seeds()[seed];
        let model = Model::parse(file).unwrap();
        let mut scratch = vec![0.0f32; scratch_len];
        match model.score(&dense, &ids, &mut scratch) {
            Ok(p) => prop_assert!((0.0..=1.0).contains(&p)),
            Err(Error::Format(_)) => prop_assert!(false, "score never reports a format error"),
            Err(_) => {}
        }
    }
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"))
}

/// The verdict a file gets: `valid`, or the rule its parse breaks (the same from `parse` and
/// from `parse_rule`).
fn verdict(bytes: &[u8]) -> String {
    let rule_only = Model::parse_rule(bytes).err();
    match Model::parse(bytes) {
        Ok(_) => {
            assert_eq!(rule_only, None);
            "valid".into()
        }
        Err(Error::Format(e)) => {
            assert_eq!(rule_only, Some(e.rule));
            format!("{:?}", e.rule)
        }
        Err(e) => panic!("parse returned a non-format error: {e:?}"),
    }
}

#[test]
fn corpus_files_keep_their_verdicts() {
    let mut count = 0;
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let expected = stem.split('-').next().unwrap();
        assert_eq!(verdict(&bytes), expected, "{}", path.display());
        let _ = exercise(&bytes, &[f32::NAN, 1.0], &[u32::MAX, 0, 1], 3);
        count += 1;
    }
    assert!(count >= 20, "the corpus has only {count} files");
}

/// Rebuilds the corpus: seeded mutations, keeping up to two files per verdict.
#[test]
#[ignore]
fn regenerate_corpus() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
    let dir = corpus_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(RunnerConfig::default(), rng);
    let strategy = (0usize..SEEDS, proptest::collection::vec(mutation(), 1..3));
    let mut kept = std::collections::HashMap::<String, usize>::new();
    for _ in 0..20_000 {
        let (seed, mutations) = strategy.new_tree(&mut runner).unwrap().current();
        let mut file = seeds()[seed].clone();
        for m in &mutations {
            apply(&mut file, m);
        }
        let v = verdict(&file);
        let n = kept.entry(v.clone()).or_default();
        if *n < 2 {
            std::fs::write(dir.join(format!("{v}-{n}.bin")), &file).unwrap();
            *n += 1;
        }
    }
    eprintln!("{kept:?}");
}
