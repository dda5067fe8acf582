//! The writer (`std`): lays tensors out by the alignment rule through the `safetensors` crate,
//! checks the result with the reader, and writes files atomically. The `format_version` and
//! `mlp_dtype` keys follow from the configuration: version 2 only for a file that uses int4
//! tables or an int8 MLP.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::format;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use crate::config::{Config, Key, MlpDtype};
use crate::error::{Error, Name, Rule};
use crate::model_file::{Dtype, ModelFile};

/// A tensor owned by the writer: dtype, shape and little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl OwnedTensor {
    /// An F32 tensor.
    pub fn f32(shape: &[usize], values: &[f32]) -> OwnedTensor {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        OwnedTensor {
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            bytes,
        }
    }

    /// An F16 tensor from IEEE half-precision bit patterns.
    pub fn f16_bits(shape: &[usize], bits: &[u16]) -> OwnedTensor {
        let bytes = bits.iter().flat_map(|v| v.to_le_bytes()).collect();
        OwnedTensor {
            dtype: Dtype::F16,
            shape: shape.to_vec(),
            bytes,
        }
    }

    /// A U8 tensor (int8 and int4 table codes, an int8 layer's input zero points).
    pub fn u8(shape: &[usize], codes: Vec<u8>) -> OwnedTensor {
        OwnedTensor {
            dtype: Dtype::U8,
            shape: shape.to_vec(),
            bytes: codes,
        }
    }

    /// An I8 tensor (an int8 layer's weight codes).
    pub fn i8(shape: &[usize], codes: &[i8]) -> OwnedTensor {
        OwnedTensor {
            dtype: Dtype::I8,
            shape: shape.to_vec(),
            bytes: codes.iter().map(|&c| c as u8).collect(),
        }
    }

    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Raw little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl safetensors::View for &OwnedTensor {
    fn dtype(&self) -> safetensors::Dtype {
        match self.dtype {
            Dtype::F32 => safetensors::Dtype::F32,
            Dtype::F16 => safetensors::Dtype::F16,
            Dtype::U8 => safetensors::Dtype::U8,
            Dtype::I8 => safetensors::Dtype::I8,
        }
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Why a model could not be written.
#[derive(Debug)]
pub enum WriteError {
    /// The tensors given do not make a valid file.
    Invalid(Error),
    /// A free information key collides with a key the format defines.
    ReservedKey(String),
    /// The `safetensors` crate refused the tensors.
    Serialize(String),
    /// The file could not be written.
    Io {
        /// The file being written.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Invalid(e) => write!(f, "refusing to write an invalid model: {e}"),
            WriteError::ReservedKey(k) => write!(f, "metadata key `{k}` is reserved by the format"),
            WriteError::Serialize(e) => write!(f, "safetensors serialization failed: {e}"),
            WriteError::Io { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WriteError::Invalid(e) => Some(e),
            WriteError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Collects a model's configuration, free information and tensors, then writes a file.
#[derive(Clone, Debug)]
pub struct ModelWriter {
    metadata: HashMap<String, String>,
    tensors: Vec<(String, OwnedTensor)>,
}

impl ModelWriter {
    /// Starts a file for `config`: its `__metadata__` keys are filled in from it.
    pub fn new(config: &Config) -> ModelWriter {
        ModelWriter {
            metadata: format_metadata(config).into_iter().collect(),
            tensors: Vec::new(),
        }
    }

    /// Adds a free information key (training settings, validation AUC, MLET k, ...).
    pub fn info(&mut self, key: &str, value: impl fmt::Display) -> Result<&mut Self, WriteError> {
        if !is_free_key(key) {
            return Err(WriteError::ReservedKey(key.to_string()));
        }
        self.metadata.insert(key.to_string(), value.to_string());
        Ok(self)
    }

    /// Adds a tensor under its name (`emb.0.weight`, `bottom.1.bias`, `top.0.acc_scale`, ...).
    pub fn tensor(&mut self, name: impl Into<String>, tensor: OwnedTensor) -> &mut Self {
        self.tensors.push((name.into(), tensor));
        self
    }

    /// Serializes the file and checks it against every rule of the reader.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WriteError> {
        // The safetensors crate panics on a repeated name, so refuse it first.
        let mut names: Vec<&str> = self.tensors.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
            return Err(WriteError::Invalid(Error::tensor(
                Rule::DuplicateTensor,
                Name::new(pair[0]),
            )));
        }
        let views = self.tensors.iter().map(|(name, t)| (name.as_str(), t));
        let bytes = safetensors::serialize(views, Some(self.metadata.clone()))
            .map_err(|e| WriteError::Serialize(e.to_string()))?;
        ModelFile::parse(&bytes).map_err(WriteError::Invalid)?;
        Ok(bytes)
    }

    /// Writes the file atomically to `path` (see [`write_atomic`]) and returns its bytes.
    pub fn write(&self, path: &Path) -> Result<Vec<u8>, WriteError> {
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes).map_err(|source| WriteError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(bytes)
    }
}

/// The `__metadata__` keys the format defines, with their values for `config`: what every file
/// of that configuration states besides its free information.
pub fn format_metadata(config: &Config) -> Vec<(String, String)> {
    let join = |values: &[u32], sep: &str| {
        values
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(sep)
    };
    let top_outputs = &config.top().as_slice()[1..];
    let pairs: [(Key, String); 11] = [
        (Key::Format, "mlet-dlrm".into()),
        (Key::FormatVersion, config.format_version().to_string()),
        (Key::NumDense, config.num_dense().to_string()),
        (Key::TableRows, join(config.table_rows(), ",")),
        (Key::Dim, config.dim().to_string()),
        (Key::BottomMlp, join(config.bottom().as_slice(), "-")),
        (Key::TopMlp, join(top_outputs, "-")),
        (Key::Interaction, "dot".into()),
        (
            Key::DenseTransform,
            config.dense_transform().as_str().into(),
        ),
        (Key::Hashing, "mod".into()),
        (
            Key::EmbeddingDtype,
            config.embedding_dtype().as_str().into(),
        ),
    ];
    let mut metadata: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| (k.name().to_string(), v))
        .collect();
    // A v2 file always states its MLP dtype; a v1 file never has the key.
    if config.format_version() == 2 {
        metadata.push((
            Key::MlpDtype.name().to_string(),
            config.mlp_dtype().as_str().into(),
        ));
    }
    metadata
}

/// Whether `key` is free information: the keys `ModelWriter::new` fills in (and v2's
/// `mlp_dtype`) are reserved.
pub fn is_free_key(key: &str) -> bool {
    !Key::ALL.iter().any(|k| k.name() == key) && key != Key::MlpDtype.name()
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it over `path`, so
/// that `path` holds either its old content or all of the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl ModelWriter {
    /// The tensors added so far, in order.
    pub fn tensors(&self) -> &[(String, OwnedTensor)] {
        &self.tensors
    }
}

/// A model with seeded random weights, for tests, benchmarks and firmware checks.
#[derive(Clone, Copy, Debug)]
pub struct RandomModel {
    /// The configuration; with `mlp_dtype = int8` every layer is an int8 layer.
    pub config: Config,
    /// F32/F16 MLPs (`config.mlp_dtype() == f32`): weight and bias dtype, F32 or F16.
    pub mlp_dtype: Dtype,
    /// int8 and int4 tables: one scale and offset per row (true) or per table (false).
    pub int8_per_row: bool,
    /// int8 and int4 tables: scale and offset dtype, F32 or F16.
    pub int8_scale_dtype: Dtype,
    /// Seed of the weights.
    pub seed: u64,
}

impl RandomModel {
    /// A model of `config` with F32 MLPs, per-row F16 int8 scales, and seed 0.
    pub fn new(config: Config) -> RandomModel {
        RandomModel {
            config,
            mlp_dtype: Dtype::F32,
            int8_per_row: true,
            int8_scale_dtype: Dtype::F16,
            seed: 0,
        }
    }

    /// A writer holding every tensor of the model: MLP weights uniform with variance 1/fan-in,
    /// table values uniform in [-0.5, 0.5) (int8 and int4: random codes, scales and offsets).
    /// int8 layers get random codes in -127..=127, input scales per tensor in even layers and
    /// per column in odd ones, zero points in 0..=127 (so that negative inputs have codes too
    /// and some inputs clamp), and accumulator scales that keep outputs near unit size.
    pub fn writer(&self) -> ModelWriter {
        let mut rng = SplitMix64(self.seed);
        let mut writer = ModelWriter::new(&self.config);
        let float = |shape: &[usize], values: Vec<f32>, dtype: Dtype| match dtype {
            Dtype::F16 => {
                let bits: Vec<u16> = values
                    .iter()
                    .map(|&v| half::f16::from_f32(v).to_bits())
                    .collect();
                OwnedTensor::f16_bits(shape, &bits)
            }
            _ => OwnedTensor::f32(shape, &values),
        };
        let d = self.config.dim();
        for (t, &rows) in self.config.table_rows().iter().enumerate() {
            let n = rows as usize;
            match self.config.embedding_dtype() {
                emb @ (crate::EmbeddingDtype::Int8 | crate::EmbeddingDtype::Int4) => {
                    let width = emb.row_bytes(d);
                    let mut codes: Vec<u8> =
                        (0..n * width).map(|_| (rng.next() >> 56) as u8).collect();
                    if emb == crate::EmbeddingDtype::Int4 && d % 2 == 1 {
                        // The high nibble past an odd d is written 0.
                        for row in codes.chunks_mut(width) {
                            row[width - 1] &= 0x0f;
                        }
                    }
                    writer.tensor(
                        format!("emb.{t}.weight"),
                        OwnedTensor::u8(&[n, width], codes),
                    );
                    let count = if self.int8_per_row { n } else { 1 };
                    let scale = (0..count).map(|_| 0.001 + 0.004 * rng.unit()).collect();
                    let offset = (0..count).map(|_| -0.5 * rng.unit()).collect();
                    writer.tensor(
                        format!("emb.{t}.scale"),
                        float(&[count], scale, self.int8_scale_dtype),
                    );
                    writer.tensor(
                        format!("emb.{t}.offset"),
                        float(&[count], offset, self.int8_scale_dtype),
                    );
                }
                emb => {
                    let values = (0..n * d).map(|_| rng.unit() - 0.5).collect();
                    let dtype = if emb == crate::EmbeddingDtype::F16 {
                        Dtype::F16
                    } else {
                        Dtype::F32
                    };
                    writer.tensor(format!("emb.{t}.weight"), float(&[n, d], values, dtype));
                }
            }
        }
        let int8_mlp = self.config.mlp_dtype() == MlpDtype::Int8;
        for (group, widths) in [("bottom", self.config.bottom()), ("top", self.config.top())] {
            for l in 0..widths.layers() {
                let (n_in, n_out) = widths.layer(l);
                if int8_mlp {
                    random_int8_layer(&mut writer, &mut rng, group, l, n_in, n_out);
                    continue;
                }
                let bound = (3.0 / n_in as f32).sqrt();
                let weight = (0..n_in * n_out)
                    .map(|_| bound * (2.0 * rng.unit() - 1.0))
                    .collect();
                let bias = (0..n_out).map(|_| 0.1 * (2.0 * rng.unit() - 1.0)).collect();
                writer.tensor(
                    format!("{group}.{l}.weight"),
                    float(&[n_out, n_in], weight, self.mlp_dtype),
                );
                writer.tensor(
                    format!("{group}.{l}.bias"),
                    float(&[n_out], bias, self.mlp_dtype),
                );
            }
        }
        writer
    }
}

/// Adds the tensors of a random int8 layer `{group}.{l}` (see [`RandomModel::writer`]).
fn random_int8_layer(
    writer: &mut ModelWriter,
    rng: &mut SplitMix64,
    group: &str,
    l: usize,
    n_in: usize,
    n_out: usize,
) {
    let codes: Vec<i8> = (0..n_in * n_out)
        .map(|_| ((rng.next() % 255) as i32 - 127) as i8)
        .collect();
    let columns = if l % 2 == 1 { n_in } else { 1 };
    let inv_scale: Vec<f32> = (0..columns).map(|_| 8.0 + 24.0 * rng.unit()).collect();
    let zero: Vec<u8> = (0..columns).map(|_| (rng.next() >> 57) as u8).collect();
    // Sums of n_in products of codes (about 73 x 40 each) back to outputs near 1.
    let unit = 1.0 / (3000.0 * (n_in as f32).sqrt());
    let acc_scale: Vec<f32> = (0..n_out).map(|_| unit * (0.5 + rng.unit())).collect();
    let bias: Vec<f32> = (0..n_out).map(|_| 0.1 * (2.0 * rng.unit() - 1.0)).collect();
    let name = |part: &str| format!("{group}.{l}.{part}");
    writer
        .tensor(name("weight"), OwnedTensor::i8(&[n_out, n_in], &codes))
        .tensor(name("bias"), OwnedTensor::f32(&[n_out], &bias))
        .tensor(name("acc_scale"), OwnedTensor::f32(&[n_out], &acc_scale))
        .tensor(
            name("input_inv_scale"),
            OwnedTensor::f32(&[columns], &inv_scale),
        )
        .tensor(name("input_zero"), OwnedTensor::u8(&[columns], zero));
}

/// The SplitMix64 generator: tiny, seeded, good enough for test weights.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}
