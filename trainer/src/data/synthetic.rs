//! Synthetic Criteo-shaped data from a hidden ground-truth model (the [`World`]).
//!
//! Each row has 13 dense values, `floor(exp(mu_i + sigma_i z))` with z standard normal (lognormal
//! counts, like Criteo's), and 26 categorical ids: by default table t has a vocabulary of
//! `10 * 10^(5t/25)` values (10 to 10^6), drawn Zipf-distributed (exponent [`ZIPF_EXPONENT`]); with
//! [`Vocab::Criteo`] the vocabularies are Criteo Kaggle's cardinalities ([`CRITEO_CARDINALITIES`],
//! 33.8M values in all, optionally scaled) with the heavier tail [`CRITEO_ZIPF_EXPONENT`], so that
//! large tables see many distinct rows. Each value's raw id is a fixed 32-bit hash of (t, value).
//! The label is Bernoulli(sigmoid(logit)) with
//!
//! ```text
//! logit = offset + dense_term + sum over pairs i < j of <u_i, u_j> + sum_t bias_t(value_t)
//! ```
//!
//! where u_0 is a linear map of the standardised log dense values to `rank` dimensions and the
//! other u are the latent vectors (`rank` values) of the values of every third table (0, 3, ..,
//! 24: vocabularies of every size); the other tables add only a per-value bias. Fewer, stronger
//! pairs and a steep Zipf exponent keep the signal learnable from a few hundred thousand rows
//! (the hidden logit itself ranks labels with AUC about 0.91). The latent vectors and biases
//! are hashed from (t, value), so the world needs no memory for its 4.6M values. `offset` is set
//! so that about 25% of rows are positive. A model whose embeddings have fewer than `rank`
//! dimensions cannot represent the pairwise term exactly, so a wider (or better trained)
//! embedding scores a higher AUC.
//!
//! The hidden model is the same for every seed and vocabulary (only its rank is a parameter): the
//! seed picks the rows, and row i depends only on (seed, i), so that any range of rows can be read
//! directly.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use anyhow::{ensure, Result};
use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{Batch, Source};
use crate::output::{write_file, write_streamed};
use crate::rng::{hash, mix64, Rng};

/// Dense values per row.
const DENSE: usize = 13;
/// Tables per row.
const TABLES: usize = 26;
/// Exponent of the Zipf distribution of categorical values (default vocabularies).
pub const ZIPF_EXPONENT: f64 = 1.5;
/// Exponent of the Zipf distribution with Criteo's vocabularies: a heavier tail, so that 10M rows
/// touch about 1.6M distinct values of the 10M-value table (Criteo's own tables are mostly rare
/// values too).
pub const CRITEO_ZIPF_EXPONENT: f64 = 1.05;
/// Criteo Kaggle's 26 cardinalities, as the DLRM reference lists them (33,762,577 in all).
pub const CRITEO_CARDINALITIES: [u64; TABLES] = [
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194, 27, 14992,
    5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
];

/// The vocabularies of the categorical columns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Vocab {
    /// `10 * 10^(5t/25)` values for table t (10 to 10^6), Zipf exponent [`ZIPF_EXPONENT`].
    Default,
    /// [`CRITEO_CARDINALITIES`] times `scale` (at least 1 value each), Zipf exponent
    /// [`CRITEO_ZIPF_EXPONENT`].
    Criteo {
        /// Factor on every cardinality.
        scale: f64,
    },
}

impl Vocab {
    /// Values of each table.
    pub fn sizes(&self) -> [u64; TABLES] {
        match self {
            Vocab::Default => core::array::from_fn(|t| {
                (10.0 * 10f64.powf(5.0 * t as f64 / (TABLES - 1) as f64)).round() as u64
            }),
            Vocab::Criteo { scale } => {
                CRITEO_CARDINALITIES.map(|n| ((n as f64 * scale).round() as u64).max(1))
            }
        }
    }

    fn zipf_exponent(&self) -> f64 {
        match self {
            Vocab::Default => ZIPF_EXPONENT,
            Vocab::Criteo { .. } => CRITEO_ZIPF_EXPONENT,
        }
    }
}
/// Fixed seed of the hidden model's parameters.
const WORLD_SEED: u64 = 0x4d4c_4554_2d77_726c;
/// Wanted fraction of positive labels.
const POSITIVE_RATE: f64 = 0.25;
/// Standard deviation of the pairwise term at any rank.
const PAIRWISE_STD: f64 = 2.5;
/// Standard deviation of one categorical value's bias.
const BIAS_STD: f64 = 0.15;

/// The hidden ground-truth model.
#[derive(Clone, Debug)]
pub struct World {
    rank: usize,
    vocab: [u64; TABLES],
    zipf_exponent: f64,
    mu: [f64; DENSE],
    sigma: [f64; DENSE],
    dense_weight: [f64; DENSE],
    /// DENSE x rank map of standardised dense values to u_0.
    dense_latent: Vec<f64>,
    /// Standard deviation of one latent component.
    latent_std: f64,
    offset: f64,
}

impl World {
    /// The world with latent vectors of `rank` dimensions over the vocabularies `vocab`.
    pub fn new(rank: usize, vocab: Vocab) -> World {
        let mut rng = Rng::new(WORLD_SEED);
        let mut mu = [0.0; DENSE];
        let mut sigma = [0.0; DENSE];
        let mut dense_weight = [0.0; DENSE];
        for i in 0..DENSE {
            mu[i] = rng.uniform(0.0, 4.0);
            sigma[i] = rng.uniform(0.7, 1.5);
            dense_weight[i] = rng.normal() * 0.7 / (DENSE as f64).sqrt();
        }
        let vectors = (0..TABLES).filter(|&t| has_latent(t)).count() + 1;
        let pairs = (vectors * (vectors - 1) / 2) as f64;
        let latent_std = (PAIRWISE_STD * PAIRWISE_STD / (pairs * rank as f64)).powf(0.25);
        let dense_latent = (0..DENSE * rank)
            .map(|_| rng.normal() * latent_std / (DENSE as f64).sqrt())
            .collect();
        let mut world = World {
            rank,
            vocab: vocab.sizes(),
            zipf_exponent: vocab.zipf_exponent(),
            mu,
            sigma,
            dense_weight,
            dense_latent,
            latent_std,
            offset: 0.0,
        };
        world.offset = world.calibrate();
        world
    }

    /// The offset that makes the mean probability [`POSITIVE_RATE`] on 4096 calibration rows.
    fn calibrate(&self) -> f64 {
        let mut dense = [0f32; DENSE];
        let mut ids = [0u32; TABLES];
        let logits: Vec<f64> = (0..4096)
            .map(|i| self.sample(&mut Rng::new(hash(&[WORLD_SEED, i])), &mut dense, &mut ids))
            .collect();
        let mean_p = |offset: f64| {
            logits.iter().map(|l| sigmoid(l + offset)).sum::<f64>() / logits.len() as f64
        };
        let (mut low, mut high) = (-20.0, 20.0);
        for _ in 0..60 {
            let mid = 0.5 * (low + high);
            if mean_p(mid) < POSITIVE_RATE {
                low = mid;
            } else {
                high = mid;
            }
        }
        0.5 * (low + high)
    }

    /// Raw id of value `j` of table `t`.
    fn raw_id(t: usize, j: u64) -> u32 {
        (hash(&[WORLD_SEED, 1, t as u64, j]) >> 32) as u32
    }

    /// Adds the latent vector of value `j` of table `t` to `sum` and returns its squared norm
    /// and its bias. Components are Irwin-Hall(4) approximations of normals, from one hash each.
    fn latent(&self, t: usize, j: u64, sum: &mut [f64], with_vector: bool) -> (f64, f64) {
        let base = hash(&[WORLD_SEED, 2, t as u64, j]);
        let approx_normal = |bits: u64| {
            let u = (0..4)
                .map(|q| ((bits >> (16 * q)) & 0xffff) as f64 / 65536.0)
                .sum::<f64>();
            (u - 2.0) * 3f64.sqrt()
        };
        let mut norm = 0.0;
        let components = if with_vector { sum.len() } else { 0 };
        for (c, s) in sum[..components].iter_mut().enumerate() {
            let v = approx_normal(mix64(base.wrapping_add(c as u64 + 1))) * self.latent_std;
            *s += v;
            norm += v * v;
        }
        (norm, approx_normal(mix64(base)) * BIAS_STD)
    }

    /// Draws one row's dense values and ids and returns its logit without the offset.
    fn sample(&self, rng: &mut Rng, dense: &mut [f32; DENSE], ids: &mut [u32; TABLES]) -> f64 {
        let mut sum = vec![0.0; self.rank];
        let mut logit = 0.0;
        for (i, value) in dense.iter_mut().enumerate() {
            let y = (self.mu[i] + self.sigma[i] * rng.normal()).min(16.0);
            *value = y.exp().floor() as f32;
            let standardised = ((*value as f64).ln_1p() - self.mu[i]) / self.sigma[i];
            logit += self.dense_weight[i] * standardised;
            for (c, s) in sum.iter_mut().enumerate() {
                *s += self.dense_latent[i * self.rank + c] * standardised;
            }
        }
        let mut norms: f64 = sum.iter().map(|v| v * v).sum();
        for (t, id) in ids.iter_mut().enumerate() {
            let j = zipf(rng.unit(), self.vocab[t], self.zipf_exponent);
            *id = Self::raw_id(t, j);
            let (norm, bias) = self.latent(t, j, &mut sum, has_latent(t));
            norms += norm;
            logit += bias;
        }
        let total: f64 = sum.iter().map(|v| v * v).sum();
        logit + 0.5 * (total - norms)
    }

    /// Row `index` of the stream `seed`: fills `dense` and `ids`, returns the label.
    pub fn row(
        &self,
        seed: u64,
        index: u64,
        dense: &mut [f32; DENSE],
        ids: &mut [u32; TABLES],
    ) -> f32 {
        let mut rng = Rng::new(hash(&[seed, index]));
        let logit = self.sample(&mut rng, dense, ids) + self.offset;
        if rng.unit() < sigmoid(logit) {
            1.0
        } else {
            0.0
        }
    }
}

/// Whether table `t` takes part in the pairwise term (every third table, 0, 3, .., 24, so that
/// vocabularies of every size do); the others add only their bias.
fn has_latent(t: usize) -> bool {
    t.is_multiple_of(3)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A Zipf-like draw over `0..n` from a uniform `u` (continuous power-law inverse CDF with
/// exponent `s` > 1).
fn zipf(u: f64, n: u64, s: f64) -> u64 {
    let a = 1.0 - s;
    let x = (((n as f64 + 1.0).powf(a) - 1.0) * u + 1.0).powf(1.0 / a);
    (x.floor() as u64).saturating_sub(1).min(n - 1)
}

/// Rows `0..rows` of the stream `seed`.
pub struct SyntheticSource {
    world: World,
    rows: u64,
    seed: u64,
    position: u64,
}

impl SyntheticSource {
    /// `rows` rows of stream `seed` over the world of rank `rank` and vocabularies `vocab`.
    pub fn new(rows: u64, seed: u64, rank: usize, vocab: Vocab) -> SyntheticSource {
        SyntheticSource {
            world: World::new(rank, vocab),
            rows,
            seed,
            position: 0,
        }
    }
}

impl Source for SyntheticSource {
    fn next_row(&mut self, batch: &mut Batch) -> Result<bool> {
        if self.position >= self.rows {
            return Ok(false);
        }
        let mut dense = [0f32; DENSE];
        let mut ids = [0u32; TABLES];
        let label = self
            .world
            .row(self.seed, self.position, &mut dense, &mut ids);
        batch.dense.extend_from_slice(&dense);
        batch.ids.extend_from_slice(&ids);
        batch.labels.push(label);
        self.position += 1;
        Ok(true)
    }

    fn skip_rows(&mut self, n: u64) -> Result<()> {
        self.position = self.position.saturating_add(n).min(self.rows);
        Ok(())
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn bad_lines(&self) -> u64 {
        0
    }
}

/// Writes rows `0..rows` of stream `seed` as a Criteo TSV file (label, 13 integers, 26 hex ids).
pub fn write_criteo_tsv(
    path: &Path,
    rows: u64,
    seed: u64,
    rank: usize,
    vocab: Vocab,
) -> Result<()> {
    write_synthetic(path, WriteFormat::Criteo, rows, seed, rank, vocab)
}

/// How [`write_synthetic`] writes rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFormat {
    /// Criteo TSV: no header, label, 13 integers, 26 8-hex-digit ids.
    Criteo,
    /// The same values as CSV with a header `label,I1..I13,C1..C26`.
    Csv,
    /// The same as TSV with that header.
    Tsv,
    /// Parquet: `label` INT32, `I1..I13` INT64, `C1..C26` the 8-hex-digit strings,
    /// dictionary-encoded, snappy-compressed (a file only, not standard output).
    Parquet,
}

/// Writes rows `0..rows` of stream `seed` of the world of rank `rank` over `vocab`, in `format`
/// (`-`: standard output, except for Parquet); every format holds the same values.
pub fn write_synthetic(
    path: &Path,
    format: WriteFormat,
    rows: u64,
    seed: u64,
    rank: usize,
    vocab: Vocab,
) -> Result<()> {
    let world = World::new(rank, vocab);
    let separator = match format {
        WriteFormat::Csv => ",",
        WriteFormat::Criteo | WriteFormat::Tsv => "\t",
        WriteFormat::Parquet => {
            ensure!(
                !crate::output::is_stdout(path),
                "Parquet output needs a file, not standard output"
            );
            return write_file(path, |out| write_parquet(out, &world, rows, seed));
        }
    };
    write_streamed(path, |out| {
        if format != WriteFormat::Criteo {
            let names: Vec<String> = column_names().collect();
            writeln!(out, "{}", names.join(separator))?;
        }
        let mut dense = [0f32; DENSE];
        let mut ids = [0u32; TABLES];
        for i in 0..rows {
            let label = world.row(seed, i, &mut dense, &mut ids);
            write!(out, "{}", label as u8)?;
            for v in dense {
                write!(out, "{separator}{}", v as i64)?;
            }
            for id in ids {
                write!(out, "{separator}{id:08x}")?;
            }
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// `label`, `I1..I13`, `C1..C26`.
fn column_names() -> impl Iterator<Item = String> {
    std::iter::once("label".to_string())
        .chain((1..=DENSE).map(|i| format!("I{i}")))
        .chain((1..=TABLES).map(|i| format!("C{i}")))
}

/// Rows per record batch handed to the Parquet writer.
const PARQUET_CHUNK: u64 = 65_536;

fn write_parquet(out: &mut BufWriter<File>, world: &World, rows: u64, seed: u64) -> Result<()> {
    let fields: Vec<Field> = column_names()
        .enumerate()
        .map(|(i, name)| {
            let data_type = match i {
                0 => DataType::Int32,
                i if i <= DENSE => DataType::Int64,
                _ => DataType::Utf8,
            };
            Field::new(name, data_type, false)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(out, Arc::clone(&schema), Some(properties))?;
    let mut dense = [0f32; DENSE];
    let mut ids = [0u32; TABLES];
    let mut start = 0;
    while start < rows {
        let end = (start + PARQUET_CHUNK).min(rows);
        let mut labels = Vec::new();
        let mut dense_columns = vec![Vec::new(); DENSE];
        let mut id_columns = vec![Vec::new(); TABLES];
        for i in start..end {
            labels.push(world.row(seed, i, &mut dense, &mut ids) as i32);
            for (column, v) in dense_columns.iter_mut().zip(dense) {
                column.push(v as i64);
            }
            for (column, id) in id_columns.iter_mut().zip(ids) {
                column.push(format!("{id:08x}"));
            }
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(Int32Array::from(labels))];
        columns.extend(
            dense_columns
                .into_iter()
                .map(|c| Arc::new(Int64Array::from(c)) as ArrayRef),
        );
        columns.extend(
            id_columns
                .into_iter()
                .map(|c| Arc::new(StringArray::from(c)) as ArrayRef),
        );
        writer.write(&RecordBatch::try_new(Arc::clone(&schema), columns)?)?;
        start = end;
    }
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_stays_in_range_and_favours_small_values() {
        let mut rng = Rng::new(3);
        let draws: Vec<u64> = (0..10_000)
            .map(|_| zipf(rng.unit(), 1000, ZIPF_EXPONENT))
            .collect();
        assert!(draws.iter().all(|&j| j < 1000));
        let zeros = draws.iter().filter(|&&j| j == 0).count();
        let tail = draws.iter().filter(|&&j| j >= 500).count();
        assert!(
            zeros > tail,
            "value 0 drawn {zeros} times, upper half {tail}"
        );
        assert_eq!(zipf(0.0, 1, ZIPF_EXPONENT), 0);
        assert_eq!(zipf(0.999_999, 1, ZIPF_EXPONENT), 0);
    }

    #[test]
    fn rows_are_deterministic_and_about_a_quarter_positive() {
        let mut a = SyntheticSource::new(4000, 11, 8, Vocab::Default);
        let mut b = SyntheticSource::new(4000, 11, 8, Vocab::Default);
        let (mut ba, mut bb) = (Batch::default(), Batch::default());
        while a.next_row(&mut ba).unwrap() {}
        while b.next_row(&mut bb).unwrap() {}
        assert_eq!(ba, bb);
        let rate = ba.labels.iter().sum::<f32>() / 4000.0;
        assert!((0.21..0.29).contains(&rate), "positive rate {rate}");
        assert!(ba.dense.iter().all(|v| *v >= 0.0 && v.fract() == 0.0));
        // The hidden logit itself ranks the labels well: the data carries signal to learn.
        let world = World::new(8, Vocab::Default);
        let (mut scores, mut labels) = (Vec::new(), Vec::new());
        for i in 0..4000 {
            let mut rng = Rng::new(hash(&[5, i]));
            let (mut dense, mut ids) = ([0f32; DENSE], [0u32; TABLES]);
            let logit = world.sample(&mut rng, &mut dense, &mut ids) + world.offset;
            scores.push(logit as f32);
            labels.push(if rng.unit() < sigmoid(logit) {
                1.0
            } else {
                0.0
            });
        }
        let oracle = crate::metrics::auc(&scores, &labels);
        assert!(oracle > 0.85, "the hidden model's own AUC is {oracle}");
        let mut other = SyntheticSource::new(10, 12, 8, Vocab::Default);
        let mut bo = Batch::default();
        while other.next_row(&mut bo).unwrap() {}
        assert_ne!(bo.ids[..], ba.ids[..bo.ids.len()]);
    }

    #[test]
    fn criteo_vocabularies_spread_over_many_rows_with_the_same_labels_rule() {
        assert_eq!(CRITEO_CARDINALITIES.iter().sum::<u64>(), 33_762_577);
        let sizes = Vocab::Criteo { scale: 0.01 }.sizes();
        assert_eq!((sizes[2], sizes[8]), (101_312, 1));
        // 20,000 rows over the 10M-value table: most values are seen once.
        let mut source = SyntheticSource::new(20_000, 3, 8, Vocab::Criteo { scale: 1.0 });
        let mut batch = Batch::default();
        while source.next_row(&mut batch).unwrap() {}
        let mut ids: Vec<u32> = batch.ids[2..].iter().step_by(TABLES).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        assert!(ids.len() > 5_000, "{} distinct values", ids.len());
        let rate = batch.labels.iter().sum::<f32>() / 20_000.0;
        assert!((0.15..0.35).contains(&rate), "positive rate {rate}");
    }
}
