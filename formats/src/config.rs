//! The model configuration that `__metadata__` declares, and its rules.

use crate::error::{Error, Name, Rule};
use crate::{MAX_LAYERS, MAX_TABLES};

/// A required `__metadata__` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Format,
    FormatVersion,
    NumDense,
    TableRows,
    Dim,
    BottomMlp,
    TopMlp,
    Interaction,
    DenseTransform,
    Hashing,
    EmbeddingDtype,
    /// v2's optional key (not in [`Key::ALL`]): absent means `f32`.
    MlpDtype,
}

impl Key {
    /// Every required key, in declaration order.
    pub(crate) const ALL: [Key; 11] = [
        Key::Format,
        Key::FormatVersion,
        Key::NumDense,
        Key::TableRows,
        Key::Dim,
        Key::BottomMlp,
        Key::TopMlp,
        Key::Interaction,
        Key::DenseTransform,
        Key::Hashing,
        Key::EmbeddingDtype,
    ];

    /// The key as written in the header.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Key::Format => "format",
            Key::FormatVersion => "format_version",
            Key::NumDense => "num_dense",
            Key::TableRows => "table_rows",
            Key::Dim => "dim",
            Key::BottomMlp => "bottom_mlp",
            Key::TopMlp => "top_mlp",
            Key::Interaction => "interaction",
            Key::DenseTransform => "dense_transform",
            Key::Hashing => "hashing",
            Key::EmbeddingDtype => "embedding_dtype",
            Key::MlpDtype => "mlp_dtype",
        }
    }
}

/// How dense inputs are transformed before the bottom MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseTransform {
    /// `ln(1 + max(x, 0))`.
    Log1p,
    /// `x` unchanged.
    Identity,
}

impl DenseTransform {
    /// The metadata spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DenseTransform::Log1p => "log1p",
            DenseTransform::Identity => "identity",
        }
    }
}

/// How embedding tables are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddingDtype {
    /// F32 rows.
    F32,
    /// F16 rows.
    F16,
    /// U8 codes with per-row or per-table scale and offset.
    Int8,
    /// 4-bit codes, two per U8 byte, with per-row or per-table scale and offset (format v2).
    Int4,
}

impl EmbeddingDtype {
    /// The metadata spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EmbeddingDtype::F32 => "f32",
            EmbeddingDtype::F16 => "f16",
            EmbeddingDtype::Int8 => "int8",
            EmbeddingDtype::Int4 => "int4",
        }
    }

    /// Bytes of one stored table row of `dim` values: `dim` times the element size, or
    /// `ceil(dim / 2)` for int4.
    pub fn row_bytes(self, dim: usize) -> usize {
        match self {
            EmbeddingDtype::F32 => 4 * dim,
            EmbeddingDtype::F16 => 2 * dim,
            EmbeddingDtype::Int8 => dim,
            EmbeddingDtype::Int4 => dim.div_ceil(2),
        }
    }

    /// True for the quantized dtypes, whose tables carry `scale` and `offset` tensors.
    pub fn is_quantized(self) -> bool {
        matches!(self, EmbeddingDtype::Int8 | EmbeddingDtype::Int4)
    }
}

/// How the MLP layers are stored (`mlp_dtype`, format v2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlpDtype {
    /// F32 or F16 weights and biases, as in v1 (also what an absent `mlp_dtype` means).
    F32,
    /// I8 weights with integer arithmetic, and F32 biases, accumulator and input scales.
    Int8,
}

impl MlpDtype {
    /// The metadata spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MlpDtype::F32 => "f32",
            MlpDtype::Int8 => "int8",
        }
    }
}

/// Most inputs an int8 layer may have: with codes |w| <= 128 and |q - z| <= 255, a sum of
/// 65,536 products stays inside i32 (65,536 x 128 x 255 = 2,139,095,040 < 2^31).
pub const MAX_INT8_LAYER_INPUTS: usize = 65_536;

/// The widths of an MLP, input first: `widths[l]` is layer `l`'s input, `widths[l + 1]` its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Widths {
    /// How many of `values` are widths: 0 before a list is held, or for one too long to hold
    /// (both rejected by [`Widths::check`]).
    pub(crate) len: u8,
    pub(crate) values: [u32; MAX_LAYERS + 1],
}

impl Widths {
    /// Builds widths from a list of at least 2 and at most `MAX_LAYERS + 1` values, each >= 1.
    pub fn new(values: &[u32]) -> Result<Widths, Rule> {
        let widths = Widths::unchecked(values);
        widths.check()?;
        Ok(widths)
    }

    /// Holds `values` without checking them; a list longer than `MAX_LAYERS + 1` is held as
    /// none, which [`Widths::check`] rejects.
    fn unchecked(values: &[u32]) -> Widths {
        let mut widths = Widths::EMPTY;
        if let Some(slots) = widths.values.get_mut(..values.len()) {
            slots.copy_from_slice(values);
            widths.len = values.len() as u8;
        }
        widths
    }

    /// No widths yet.
    pub(crate) const EMPTY: Widths = Widths {
        len: 0,
        values: [0; MAX_LAYERS + 1],
    };

    /// The rules of an MLP's widths: 2 to `MAX_LAYERS + 1` of them, none zero.
    fn check(&self) -> Result<(), Rule> {
        if self.len < 2 {
            return Err(Rule::LayerCount);
        }
        if self.as_slice().contains(&0) {
            return Err(Rule::ZeroWidth);
        }
        Ok(())
    }

    /// All widths, input first.
    pub fn as_slice(&self) -> &[u32] {
        &self.values[..self.len as usize]
    }

    /// Number of layers (one less than the number of widths).
    pub fn layers(&self) -> usize {
        self.len as usize - 1
    }

    /// Input and output width of layer `l`.
    pub fn layer(&self, l: usize) -> (usize, usize) {
        (self.values[l] as usize, self.values[l + 1] as usize)
    }

    /// The input width.
    pub fn input(&self) -> usize {
        self.values[0] as usize
    }

    /// The output width of the last layer.
    pub fn output(&self) -> usize {
        self.values[self.len as usize - 1] as usize
    }
}

/// A validated DLRM configuration: everything `__metadata__` fixes about the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub(crate) num_tables: u8,
    pub(crate) table_rows: [u32; MAX_TABLES],
    pub(crate) dim: u32,
    pub(crate) bottom: Widths,
    /// Its input width is set by [`Config::check`].
    pub(crate) top: Widths,
    pub(crate) dense_transform: DenseTransform,
    pub(crate) embedding_dtype: EmbeddingDtype,
    pub(crate) mlp_dtype: MlpDtype,
}

impl Config {
    /// Validates a configuration. `bottom` lists every width from `num_dense` to `dim`;
    /// `top_outputs` lists the top MLP's output widths (its input width is implied, see
    /// [`Config::top_input_width`]) and must end at 1.
    pub fn new(
        table_rows: &[u32],
        dim: u32,
        bottom: &[u32],
        top_outputs: &[u32],
        dense_transform: DenseTransform,
        embedding_dtype: EmbeddingDtype,
    ) -> Result<Config, Error> {
        let error = |(rule, key): (Rule, Key)| Error::metadata(rule, Name::new(key.name()));
        if table_rows.len() > MAX_TABLES {
            return Err(error((Rule::TooManyTables, Key::TableRows)));
        }
        // The outputs go behind the input width, which `check` sets; none, or too many to hold,
        // stay as no widths, which `check` rejects.
        let mut top = Widths::EMPTY;
        if let Some(outputs) = top.values.get_mut(1..=top_outputs.len()) {
            if !top_outputs.is_empty() {
                outputs.copy_from_slice(top_outputs);
                top.len = 1 + top_outputs.len() as u8;
            }
        }
        let mut config = Config {
            num_tables: table_rows.len() as u8,
            table_rows: [0; MAX_TABLES],
            dim,
            bottom: Widths::unchecked(bottom),
            top,
            dense_transform,
            embedding_dtype,
            mlp_dtype: MlpDtype::F32,
        };
        config.table_rows[..table_rows.len()].copy_from_slice(table_rows);
        config.check().map_err(error)?;
        Ok(config)
    }

    /// Checks a configuration whose lists are in place (the reader parses them there) and sets
    /// the top MLP's input width; a failure is the rule broken and the metadata key it concerns.
    pub(crate) fn check(&mut self) -> Result<(), (Rule, Key)> {
        if self.num_tables == 0 || self.table_rows().contains(&0) {
            return Err((Rule::ZeroRows, Key::TableRows));
        }
        if self.dim == 0 {
            return Err((Rule::ZeroWidth, Key::Dim));
        }
        self.bottom.check().map_err(|rule| (rule, Key::BottomMlp))?;
        if self.bottom.output() != self.dim as usize {
            return Err((Rule::WidthsDontChain, Key::BottomMlp));
        }
        let tables = self.num_tables();
        self.top.values[0] = (self.dim() + tables * (tables + 1) / 2) as u32;
        self.top.check().map_err(|rule| (rule, Key::TopMlp))?;
        if self.top.output() != 1 {
            return Err((Rule::WidthsDontChain, Key::TopMlp));
        }
        if self.mlp_dtype == MlpDtype::Int8 {
            for (widths, key) in [(&self.bottom, Key::BottomMlp), (&self.top, Key::TopMlp)] {
                let widest = widths.as_slice()[..widths.layers()].iter().max();
                if widest.is_some_and(|&w| w as usize > MAX_INT8_LAYER_INPUTS) {
                    return Err((Rule::Int8LayerTooWide, key));
                }
            }
        }
        Ok(())
    }

    /// The same configuration with its MLP layers stored as `mlp_dtype`. An int8 layer takes
    /// at most [`MAX_INT8_LAYER_INPUTS`] inputs.
    pub fn with_mlp_dtype(mut self, mlp_dtype: MlpDtype) -> Result<Config, Error> {
        self.mlp_dtype = mlp_dtype;
        self.check()
            .map_err(|(rule, key)| Error::metadata(rule, Name::new(key.name())))?;
        Ok(self)
    }

    /// Number of dense inputs D.
    pub fn num_dense(&self) -> usize {
        self.bottom.input()
    }

    /// Number of embedding tables T.
    pub fn num_tables(&self) -> usize {
        self.num_tables as usize
    }

    /// Rows of each table.
    pub fn table_rows(&self) -> &[u32] {
        &self.table_rows[..self.num_tables as usize]
    }

    /// Embedding width d.
    pub fn dim(&self) -> usize {
        self.dim as usize
    }

    /// Bottom MLP widths, `num_dense` to `dim`.
    pub fn bottom(&self) -> &Widths {
        &self.bottom
    }

    /// Top MLP widths, from the implied input `d + T(T+1)/2` to 1.
    pub fn top(&self) -> &Widths {
        &self.top
    }

    /// The top MLP's input width: `d + T(T+1)/2`.
    pub fn top_input_width(&self) -> usize {
        self.top.input()
    }

    /// The dense transform.
    pub fn dense_transform(&self) -> DenseTransform {
        self.dense_transform
    }

    /// How tables are stored.
    pub fn embedding_dtype(&self) -> EmbeddingDtype {
        self.embedding_dtype
    }

    /// How the MLP layers are stored.
    pub fn mlp_dtype(&self) -> MlpDtype {
        self.mlp_dtype
    }

    /// The `format_version` a file of this configuration has: 2 when it uses int4 tables or
    /// an int8 MLP, else 1 (so that a v1 reader reads every file that needs nothing newer).
    pub fn format_version(&self) -> u32 {
        if self.embedding_dtype == EmbeddingDtype::Int4 || self.mlp_dtype == MlpDtype::Int8 {
            2
        } else {
            1
        }
    }
}
