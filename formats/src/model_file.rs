//! The zero-allocation reader: validates a v1 or v2 file once and hands out its tensors in
//! place.

use crate::config::{Config, DenseTransform, EmbeddingDtype, Key, MlpDtype, Widths};
use crate::error::{Error, Fault, Name, Rule};
use crate::json::{Cursor, RawStr};
use crate::utf8::invalid_at;
use crate::{MAX_HEADER_LEN, MAX_LAYERS, MAX_TABLES};

/// The element types a file may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit float, little-endian.
    F32,
    /// 16-bit IEEE half float, little-endian.
    F16,
    /// Unsigned byte (int8 and int4 table codes, int8 layers' input zero points).
    U8,
    /// Signed byte (int8 layers' weight codes, v2).
    I8,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 => 2,
            Dtype::U8 | Dtype::I8 => 1,
        }
    }

    /// The safetensors spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
        }
    }

    fn parse(s: &[u8]) -> Option<Dtype> {
        let i = spelling(s, &[b"F32", b"F16", b"U8", b"I8"])?;
        Some([Dtype::F32, Dtype::F16, Dtype::U8, Dtype::I8][i])
    }
}

/// One tensor's bytes in the file, borrowed; its shape follows from the model's [`Config`].
/// The bytes need not be aligned in memory: read elements with `from_le_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tensor<'a> {
    /// Element type.
    pub dtype: Dtype,
    /// Raw little-endian bytes, `len() * dtype.size()` of them.
    pub bytes: &'a [u8],
}

impl Tensor<'_> {
    const EMPTY: Tensor<'static> = Tensor {
        dtype: Dtype::U8,
        bytes: &[],
    };

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.dtype.size()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The tensors of embedding table `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableTensors<'a> {
    /// `emb.{t}.weight`, [n_t, d] (int4: [n_t, ceil(d / 2)], two codes a byte).
    pub weight: Tensor<'a>,
    /// `emb.{t}.scale`, `[n_t]` or `[1]`; int8 and int4 tables only.
    pub scale: Option<Tensor<'a>>,
    /// `emb.{t}.offset`, `[n_t]` or `[1]`; int8 and int4 tables only.
    pub offset: Option<Tensor<'a>>,
}

/// The tensors of one MLP layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerTensors<'a> {
    /// `{bottom,top}.{l}.weight`, [out, in]: F32 or F16, or I8 codes in an int8 layer.
    pub weight: Tensor<'a>,
    /// `{bottom,top}.{l}.bias`, `[out]`.
    pub bias: Tensor<'a>,
    /// The scales of an int8 layer (`mlp_dtype = int8`); `None` in an F32/F16 layer.
    pub int8: Option<Int8Tensors<'a>>,
}

/// The tensors of an int8 layer besides its weight and bias (format v2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Int8Tensors<'a> {
    /// `L.acc_scale`, F32 `[out]`: the factor from an integer sum back to a real output.
    pub acc_scale: Tensor<'a>,
    /// `L.input_inv_scale`, F32 `[1]` (per tensor) or `[in]` (per input column).
    pub input_inv_scale: Tensor<'a>,
    /// `L.input_zero`, U8 `[1]` or `[in]`: the code of a real 0.
    pub input_zero: Tensor<'a>,
}

/// Tensors of one MLP layer: weight, bias, and an int8 layer's three scale tensors.
const LAYER_PARTS: usize = 5;

/// Slots for every tensor a model can have: 3 per table, then 5 per bottom and top layer.
const SLOTS: usize = 3 * MAX_TABLES + 2 * LAYER_PARTS * MAX_LAYERS;

/// A validated model file (format v1 or v2), borrowing the bytes it was parsed from.
#[derive(Clone, Copy, Debug)]
pub struct ModelFile<'a> {
    header: &'a [u8],
    data: &'a [u8],
    config: Config,
    /// Where each tensor starts in `data`, by [`slot`] index.
    starts: [usize; SLOTS],
    /// What each slot holds ([`SlotKind`]); lengths follow from the configuration. Offsets and
    /// kinds rather than slices keep this view small: on a microcontroller it lives on the stack.
    kinds: [SlotKind; SLOTS],
}

/// What a slot of [`ModelFile`] holds, in one byte: absent, or a dtype and whether a tensor
/// that may have one value for all (a table's scale or offset, a layer's input scale or zero)
/// has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotKind {
    Absent,
    F32,
    F16,
    U8,
    I8,
    F32One,
    F16One,
    U8One,
}

impl SlotKind {
    fn new(dtype: Dtype, one: bool) -> SlotKind {
        match (dtype, one) {
            (Dtype::F32, false) => SlotKind::F32,
            (Dtype::F16, false) => SlotKind::F16,
            (Dtype::U8, false) => SlotKind::U8,
            (Dtype::I8, _) => SlotKind::I8,
            (Dtype::F32, true) => SlotKind::F32One,
            (Dtype::F16, true) => SlotKind::F16One,
            (Dtype::U8, true) => SlotKind::U8One,
        }
    }

    /// The dtype and the one-value flag, or `None` for an absent tensor.
    fn get(self) -> Option<(Dtype, bool)> {
        match self {
            SlotKind::Absent => None,
            SlotKind::F32 => Some((Dtype::F32, false)),
            SlotKind::F16 => Some((Dtype::F16, false)),
            SlotKind::U8 => Some((Dtype::U8, false)),
            SlotKind::I8 => Some((Dtype::I8, false)),
            SlotKind::F32One => Some((Dtype::F32, true)),
            SlotKind::F16One => Some((Dtype::F16, true)),
            SlotKind::U8One => Some((Dtype::U8, true)),
        }
    }
}

impl<'a> ModelFile<'a> {
    /// Validates `bytes` against every rule of the format (v1 or v2) and returns a view of it. A failure
    /// names the rule and where: the tensor, metadata key or header byte.
    pub fn parse(bytes: &'a [u8]) -> Result<ModelFile<'a>, Error> {
        ModelFile::parse_fault(bytes).map_err(|fault| error(fault, bytes))
    }

    /// [`ModelFile::parse`] with the failure as only the rule broken (its [`Rule::code`] is what
    /// a device reports). Builds no names: the code that reads them back and copies them, about
    /// 1.4 KB of flash on a Cortex-M4, is then not linked in.
    pub fn parse_rule(bytes: &'a [u8]) -> Result<ModelFile<'a>, Rule> {
        ModelFile::parse_fault(bytes).map_err(|fault| fault.rule())
    }

    // Out of line: inlined into a caller, its checks and the moves of the view were compiled
    // there again (0.4 KB more flash on a Cortex-M4).
    #[inline(never)]
    fn parse_fault(bytes: &'a [u8]) -> Result<ModelFile<'a>, Fault> {
        let prefix: [u8; 8] = match bytes.get(..8) {
            Some(p) => [p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]],
            None => return Err(Fault::File(Rule::TruncatedPrefix)),
        };
        let header_len = u64::from_le_bytes(prefix);
        if header_len > MAX_HEADER_LEN as u64 {
            return Err(Fault::File(Rule::HeaderTooLong));
        }
        let header_end = 8 + header_len as usize;
        let header = bytes
            .get(8..header_end)
            .ok_or(Fault::File(Rule::HeaderPastEnd))?;
        if !header_len.is_multiple_of(8) {
            return Err(Fault::File(Rule::HeaderNotPadded));
        }
        if let Some(at) = invalid_at(header) {
            return Err(Fault::Byte(Rule::InvalidUtf8, at as u32));
        }
        let data = &bytes[header_end..];

        let mut file = ModelFile {
            header,
            data,
            config: read_config(header)?,
            starts: [0; SLOTS],
            kinds: [SlotKind::Absent; SLOTS],
        };
        file.place_all()?;
        Ok(file)
    }

    /// Places every tensor of the header, then checks that none is missing and that they tile
    /// the data section.
    fn place_all(&mut self) -> Result<(), Fault> {
        let header = self.header;
        Cursor::new(header).object(&mut |c, key| {
            if key == METADATA {
                return skip_metadata(c);
            }
            let info = tensor_info(c)?;
            self.place(key, info)
                .map_err(|rule| Fault::Tensor(rule, quote_at(header, key)))
        })?;
        self.check_complete()?;
        self.check_tiling()
    }

    /// The model configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn tensor(&self, id: TensorId) -> Option<Tensor<'a>> {
        let i = slot(id);
        let (dtype, per_table) = self.kinds.get(i)?.get()?;
        let (_, shape, rank) = self.expectation(id, dtype)?;
        let elements = if per_table {
            1
        } else {
            shape[..rank].iter().product::<u64>() as usize
        };
        let start = self.starts[i];
        let bytes = self.data.get(start..start + elements * dtype.size())?;
        Some(Tensor { dtype, bytes })
    }

    /// The tensors of table `t` (`t < num_tables`).
    pub fn table(&self, t: usize) -> TableTensors<'a> {
        TableTensors {
            weight: self
                .tensor(TensorId::Emb(t, Part::Weight))
                .unwrap_or(Tensor::EMPTY),
            scale: self.tensor(TensorId::Emb(t, Part::Scale)),
            offset: self.tensor(TensorId::Emb(t, Part::Offset)),
        }
    }

    /// The tensors of bottom MLP layer `l`.
    pub fn bottom_layer(&self, l: usize) -> LayerTensors<'a> {
        self.layer(TensorId::Bottom, l)
    }

    /// The tensors of top MLP layer `l`.
    pub fn top_layer(&self, l: usize) -> LayerTensors<'a> {
        self.layer(TensorId::Top, l)
    }

    fn layer(&self, group: fn(usize, Part) -> TensorId, l: usize) -> LayerTensors<'a> {
        let part = |p: Part| self.tensor(group(l, p));
        let int8 = match (
            part(Part::AccScale),
            part(Part::InputInvScale),
            part(Part::InputZero),
        ) {
            (Some(acc_scale), Some(input_inv_scale), Some(input_zero)) => Some(Int8Tensors {
                acc_scale,
                input_inv_scale,
                input_zero,
            }),
            _ => None,
        };
        LayerTensors {
            weight: part(Part::Weight).unwrap_or(Tensor::EMPTY),
            bias: part(Part::Bias).unwrap_or(Tensor::EMPTY),
            int8,
        }
    }

    /// Bytes of the JSON header, padding included.
    pub fn header_len(&self) -> usize {
        self.header.len()
    }

    /// Bytes of the data section.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// The raw value of a `__metadata__` key, the free information keys included.
    pub fn metadata(&self, key: &str) -> Option<&'a str> {
        let mut found = None;
        self.each_metadata(|k, v| {
            if k == key {
                found = Some(v);
            }
        });
        found
    }

    /// Calls `f` with every `__metadata__` key and raw value, in file order.
    pub fn each_metadata(&self, mut f: impl FnMut(&'a str, &'a str)) {
        let mut cursor = Cursor::new(self.header);
        // `parse` checked the header (UTF-8, JSON), so neither the walk nor `text` can fail.
        let text = |raw: RawStr<'a>| core::str::from_utf8(raw).unwrap_or("");
        let _ = cursor.object(&mut |c, key| {
            if key == METADATA {
                c.object(&mut |c, k| {
                    f(text(k), text(c.string()?));
                    Ok(())
                })
            } else {
                tensor_info(c).map(|_| ())
            }
        });
    }
}

const METADATA: &[u8] = b"__metadata__";

/// Walks the header once: checks the JSON, finds `__metadata__` and validates the configuration.
/// Not inlined: its frame (the metadata values) is gone before the tensors are placed, which
/// keeps `ModelFile::parse`'s peak stack down on a microcontroller.
#[inline(never)]
fn read_config(header: &[u8]) -> Result<Config, Fault> {
    let mut values: [Option<&[u8]>; KEYS.len()] = [None; KEYS.len()];
    let mut seen_metadata = false;
    let mut cursor = Cursor::new(header);
    let walk = cursor.object(&mut |c, key| {
        if key != METADATA {
            return tensor_info(c).map(|_| ());
        }
        if seen_metadata || !c.at_object() {
            return Err(Fault::Byte(Rule::InvalidJson, c.pos() as u32));
        }
        seen_metadata = true;
        c.object(&mut |c, k| {
            if !c.at_string() {
                return Err(Fault::Metadata(
                    Rule::MetadataNotString,
                    quote_at(header, k),
                ));
            }
            let value = c.string()?;
            if let Some(i) = KEYS.iter().position(|key| key.name().as_bytes() == k) {
                if values[i].replace(value).is_some() {
                    return Err(Fault::Metadata(
                        Rule::DuplicateMetadataKey,
                        quote_at(header, k),
                    ));
                }
            }
            Ok(())
        })
    });
    walk.and_then(|()| cursor.end())?;
    if !seen_metadata {
        return Err(Fault::File(Rule::MissingMetadata));
    }
    config_from(&values).map_err(|(rule, key)| Fault::Key(rule, key))
}

/// The metadata keys the reader reads: the required ones ([`Key::ALL`]), then v2's optional
/// `mlp_dtype`.
const KEYS: [Key; Key::ALL.len() + 1] = {
    let mut keys = [Key::MlpDtype; Key::ALL.len() + 1];
    let mut i = 0;
    while i < Key::ALL.len() {
        keys[i] = Key::ALL[i];
        i += 1;
    }
    keys
};

/// The configuration from the metadata values (in [`KEYS`] order); a failure is the rule broken
/// and the key it concerns.
fn config_from(values: &[Option<&[u8]>; KEYS.len()]) -> Result<Config, (Rule, Key)> {
    let mut present: [&[u8]; Key::ALL.len()] = [&[]; Key::ALL.len()];
    for ((value, slot), key) in values.iter().zip(&mut present).zip(Key::ALL) {
        *slot = value.ok_or((Rule::MissingMetadataKey, key))?;
    }
    let [format, version, num_dense, table_rows, dim, bottom, top, interaction, transform, hashing, emb] =
        present;
    let mlp = values[Key::ALL.len()];
    if spelling(format, &[b"mlet-dlrm"]).is_none() {
        return Err((Rule::UnknownFormat, Key::Format));
    }
    let v2 = match spelling(version, &[b"1", b"2"]) {
        Some(i) => i == 1,
        None => return Err((Rule::UnsupportedVersion, Key::FormatVersion)),
    };
    if spelling(interaction, &[b"dot"]).is_none() {
        return Err((Rule::UnknownInteraction, Key::Interaction));
    }
    if spelling(hashing, &[b"mod"]).is_none() {
        return Err((Rule::UnknownHashing, Key::Hashing));
    }
    let dense_transform = match spelling(transform, &[b"log1p", b"identity"]) {
        Some(0) => DenseTransform::Log1p,
        Some(_) => DenseTransform::Identity,
        None => return Err((Rule::UnknownDenseTransform, Key::DenseTransform)),
    };
    let embedding_dtype = match spelling(emb, &[b"f32", b"f16", b"int8", b"int4"]) {
        Some(0) => EmbeddingDtype::F32,
        Some(1) => EmbeddingDtype::F16,
        Some(2) => EmbeddingDtype::Int8,
        Some(_) => EmbeddingDtype::Int4,
        None => return Err((Rule::UnknownEmbeddingDtype, Key::EmbeddingDtype)),
    };
    let mlp_dtype = match mlp.map(|v| spelling(v, &[b"f32", b"int8"])) {
        None | Some(Some(0)) => MlpDtype::F32,
        Some(Some(_)) => MlpDtype::Int8,
        Some(None) => return Err((Rule::UnknownMlpDtype, Key::MlpDtype)),
    };
    // v1 readers ignore free keys and know no int4: a v1 file must not need v2 to be read, and
    // a file that needs nothing of v2 says 1, so that v1 readers read it.
    if !v2 && mlp.is_some() {
        return Err((Rule::V2FeatureInV1File, Key::MlpDtype));
    }
    if !v2 && embedding_dtype == EmbeddingDtype::Int4 {
        return Err((Rule::V2FeatureInV1File, Key::EmbeddingDtype));
    }
    if v2 && embedding_dtype != EmbeddingDtype::Int4 && mlp_dtype != MlpDtype::Int8 {
        return Err((Rule::NeedlessVersion2, Key::FormatVersion));
    }
    let number = |s: &[u8], key| parse_u32(s).ok_or((Rule::InvalidNumber, key));
    let num_dense = number(num_dense, Key::NumDense)?;
    let dim = number(dim, Key::Dim)?;
    if num_dense == 0 {
        return Err((Rule::ZeroWidth, Key::NumDense));
    }
    let mut config = Config {
        num_tables: 0,
        table_rows: [0; MAX_TABLES],
        dim,
        bottom: Widths::EMPTY,
        top: Widths::EMPTY,
        dense_transform,
        embedding_dtype,
        mlp_dtype,
    };
    let tables = parse_list(
        table_rows,
        b',',
        &mut config.table_rows,
        Key::TableRows,
        Rule::TooManyTables,
    )?;
    config.num_tables = tables as u8;
    let widths = parse_list(
        bottom,
        b'-',
        &mut config.bottom.values,
        Key::BottomMlp,
        Rule::LayerCount,
    )?;
    config.bottom.len = widths as u8;
    // The top MLP's input width goes in front; `check` computes it.
    let outputs = parse_list(
        top,
        b'-',
        &mut config.top.values[1..],
        Key::TopMlp,
        Rule::LayerCount,
    )?;
    config.top.len = 1 + outputs as u8;
    if config.bottom.values[0] != num_dense {
        return Err((Rule::WidthsDontChain, Key::BottomMlp));
    }
    config.check()?;
    Ok(config)
}

/// The index of `value` in `spellings`. One out-of-line loop: a `match` on byte-string
/// patterns compiles to a compare per byte, which costs flash on a microcontroller.
#[inline(never)]
fn spelling(value: &[u8], spellings: &[&[u8]]) -> Option<usize> {
    spellings.iter().position(|s| *s == value)
}

/// Parses a plain decimal u32 (digits only, no sign).
fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u32, |value, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        value.checked_mul(10)?.checked_add(digit as u32)
    })
}

/// Parses `a<sep>b<sep>c` into the front of `out` and returns how many values there were; more
/// values than `out` holds breaks `too_many`.
fn parse_list(
    s: &[u8],
    sep: u8,
    out: &mut [u32],
    key: Key,
    too_many: Rule,
) -> Result<usize, (Rule, Key)> {
    let mut count = 0;
    for part in s.split(|&b| b == sep) {
        let value = parse_u32(part).ok_or((Rule::InvalidNumber, key))?;
        *out.get_mut(count).ok_or((too_many, key))? = value;
        count += 1;
    }
    Ok(count)
}

fn skip_metadata(c: &mut Cursor<'_>) -> Result<(), Fault> {
    c.object(&mut |c, _| c.string().map(|_| ()))
}

/// A tensor's entry in the header, as written.
struct TensorInfo<'a> {
    dtype: RawStr<'a>,
    /// Tensors have 1 or 2 dimensions; a longer shape is `WrongShape` where it is read.
    shape: [u64; 2],
    rank: usize,
    begin: u64,
    end: u64,
}

/// Reads `{"dtype": .., "shape": [..], "data_offsets": [b, e]}` in any key order.
fn tensor_info<'a>(c: &mut Cursor<'a>) -> Result<TensorInfo<'a>, Fault> {
    let fields = Fault::Byte(Rule::TensorInfoFields, c.pos() as u32);
    let (mut dtype, mut shape, mut offsets) = (None, None, None);
    c.object(&mut |c, key| {
        match spelling(key, &[b"dtype", b"shape", b"data_offsets"]) {
            Some(0) if dtype.is_none() => dtype = Some(c.string()?),
            Some(1) if shape.is_none() => {
                let mut dims = [0u64; 2];
                let too_many = Fault::Byte(Rule::WrongShape, c.pos() as u32);
                let rank = c.uint_array(&mut dims, too_many)?;
                shape = Some((dims, rank));
            }
            Some(2) if offsets.is_none() => {
                let mut pair = [0u64; 2];
                let at = c.pos();
                if c.uint_array(&mut pair, fields)? != 2 {
                    return Err(Fault::Byte(Rule::TensorInfoFields, at as u32));
                }
                offsets = Some(pair);
            }
            _ => return Err(Fault::Byte(Rule::TensorInfoFields, c.pos() as u32)),
        }
        Ok(())
    })?;
    match (dtype, shape, offsets) {
        (Some(dtype), Some((shape, rank)), Some([begin, end])) => Ok(TensorInfo {
            dtype,
            shape,
            rank,
            begin,
            end,
        }),
        _ => Err(fields),
    }
}

/// Which tensor of a table or layer a name denotes (declared in the order of [`PARTS`]).
#[derive(Clone, Copy)]
enum Part {
    Weight,
    Scale,
    Offset,
    Bias,
    AccScale,
    InputInvScale,
    InputZero,
}

/// Every part, in the order of [`PART_NAMES`].
const PARTS: [Part; 7] = [
    Part::Weight,
    Part::Scale,
    Part::Offset,
    Part::Bias,
    Part::AccScale,
    Part::InputInvScale,
    Part::InputZero,
];

/// The names of [`PARTS`].
const PART_NAMES: [&[u8]; 7] = [
    b"weight",
    b"scale",
    b"offset",
    b"bias",
    b"acc_scale",
    b"input_inv_scale",
    b"input_zero",
];

#[derive(Clone, Copy)]
enum TensorId {
    Emb(usize, Part),
    Bottom(usize, Part),
    Top(usize, Part),
}

/// Parses `emb.{t}.{weight|scale|offset}` and
/// `{bottom|top}.{l}.{weight|bias|acc_scale|input_inv_scale|input_zero}`.
fn parse_name(name: &[u8]) -> Option<TensorId> {
    let mut parts = name.split(|&b| b == b'.');
    let (group, index, part) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || index.is_empty() || (index.len() > 1 && index[0] == b'0') {
        return None;
    }
    let index: usize = parse_u32(index)? as usize;
    let part = PARTS[spelling(part, &PART_NAMES)?];
    let is_table_part = matches!(part, Part::Weight | Part::Scale | Part::Offset);
    let is_layer_part = !matches!(part, Part::Scale | Part::Offset);
    match spelling(group, &[b"emb", b"bottom", b"top"])? {
        0 if is_table_part => Some(TensorId::Emb(index, part)),
        1 if is_layer_part => Some(TensorId::Bottom(index, part)),
        2 if is_layer_part => Some(TensorId::Top(index, part)),
        _ => None,
    }
}

/// A part's place among its table's 3 slots or its layer's [`LAYER_PARTS`].
fn part_index(p: Part) -> usize {
    match p {
        Part::Weight => 0,
        Part::Scale | Part::Bias => 1,
        Part::Offset | Part::AccScale => 2,
        Part::InputInvScale => 3,
        Part::InputZero => 4,
    }
}

/// Where a tensor lives in [`ModelFile::starts`] and [`ModelFile::kinds`].
fn slot(id: TensorId) -> usize {
    const TOP: usize = 3 * MAX_TABLES + LAYER_PARTS * MAX_LAYERS;
    match id {
        TensorId::Emb(t, p) => 3 * t + part_index(p),
        TensorId::Bottom(l, p) => 3 * MAX_TABLES + LAYER_PARTS * l + part_index(p),
        TensorId::Top(l, p) => TOP + LAYER_PARTS * l + part_index(p),
    }
}

/// The tensor that lives in slot `i`.
fn slot_id(i: usize) -> TensorId {
    const LAYER: [Part; LAYER_PARTS] = [
        Part::Weight,
        Part::Bias,
        Part::AccScale,
        Part::InputInvScale,
        Part::InputZero,
    ];
    if i < 3 * MAX_TABLES {
        TensorId::Emb(i / 3, [Part::Weight, Part::Scale, Part::Offset][i % 3])
    } else if i < 3 * MAX_TABLES + LAYER_PARTS * MAX_LAYERS {
        let j = i - 3 * MAX_TABLES;
        TensorId::Bottom(j / LAYER_PARTS, LAYER[j % LAYER_PARTS])
    } else {
        let j = i - 3 * MAX_TABLES - LAYER_PARTS * MAX_LAYERS;
        TensorId::Top(j / LAYER_PARTS, LAYER[j % LAYER_PARTS])
    }
}

impl<'a> ModelFile<'a> {
    /// The dtype test and shape a tensor must have, or `None` if the model has no such tensor.
    fn expectation(&self, id: TensorId, dtype: Dtype) -> Option<(bool, [u64; 2], usize)> {
        let config = &self.config;
        let float = dtype == Dtype::F32 || dtype == Dtype::F16;
        let int8 = config.mlp_dtype() == MlpDtype::Int8;
        let layer = |widths: &Widths, l: usize, part: Part| {
            if l >= widths.layers() {
                return None;
            }
            let (input, output) = widths.layer(l);
            let (input, output) = (input as u64, output as u64);
            match (part, int8) {
                (Part::Weight, false) => Some((float, [output, input], 2)),
                (Part::Bias, false) => Some((float, [output, 0], 1)),
                (Part::Weight, true) => Some((dtype == Dtype::I8, [output, input], 2)),
                (Part::Bias | Part::AccScale, true) => Some((dtype == Dtype::F32, [output, 0], 1)),
                (Part::InputInvScale, true) => Some((dtype == Dtype::F32, [input, 0], 1)),
                (Part::InputZero, true) => Some((dtype == Dtype::U8, [input, 0], 1)),
                _ => None,
            }
        };
        match id {
            TensorId::Emb(t, part) if t < config.num_tables() => {
                let rows = u64::from(config.table_rows()[t]);
                let emb = config.embedding_dtype();
                match part {
                    Part::Weight => {
                        let (want, width) = match emb {
                            EmbeddingDtype::F32 => (Dtype::F32, config.dim()),
                            EmbeddingDtype::F16 => (Dtype::F16, config.dim()),
                            EmbeddingDtype::Int8 => (Dtype::U8, config.dim()),
                            EmbeddingDtype::Int4 => (Dtype::U8, config.dim().div_ceil(2)),
                        };
                        Some((dtype == want, [rows, width as u64], 2))
                    }
                    Part::Scale | Part::Offset if emb.is_quantized() => Some((float, [rows, 0], 1)),
                    _ => None,
                }
            }
            TensorId::Bottom(l, part) => layer(config.bottom(), l, part),
            TensorId::Top(l, part) => layer(config.top(), l, part),
            _ => None,
        }
    }

    /// Checks one tensor against the rules and stores it; a failure is the rule broken (the
    /// caller names the tensor).
    fn place(&mut self, key: RawStr<'_>, info: TensorInfo<'_>) -> Result<(), Rule> {
        let id = parse_name(key).ok_or(Rule::UnexpectedTensor)?;
        let dtype = Dtype::parse(info.dtype).ok_or(Rule::UnknownDtype)?;
        let (dtype_ok, want, rank) = self.expectation(id, dtype).ok_or(Rule::UnexpectedTensor)?;
        if self.tensor(id).is_some() {
            return Err(Rule::DuplicateTensor);
        }
        if !dtype_ok {
            return Err(Rule::WrongDtype);
        }
        let shape = &info.shape[..info.rank];
        let may_be_one = matches!(
            id,
            TensorId::Emb(_, Part::Scale | Part::Offset)
                | TensorId::Bottom(_, Part::InputInvScale | Part::InputZero)
                | TensorId::Top(_, Part::InputInvScale | Part::InputZero)
        );
        let per_table = may_be_one && shape == [1];
        if shape != &want[..rank] && !per_table {
            return Err(Rule::WrongShape);
        }
        if info.begin > info.end || info.end > self.data.len() as u64 {
            return Err(Rule::OffsetsOutOfBounds);
        }
        let elements = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        let bytes = elements.and_then(|n| n.checked_mul(dtype.size() as u64));
        if bytes != Some(info.end - info.begin) {
            return Err(Rule::SizeMismatch);
        }
        if !info.begin.is_multiple_of(dtype.size() as u64) {
            return Err(Rule::Misaligned);
        }
        let i = slot(id);
        self.starts[i] = info.begin as usize;
        self.kinds[i] = SlotKind::new(dtype, per_table && want[0] != 1);
        Ok(())
    }

    /// Every tensor the configuration implies is present.
    fn check_complete(&self) -> Result<(), Fault> {
        for i in 0..SLOTS {
            if self.kinds[i] == SlotKind::Absent
                && self.expectation(slot_id(i), Dtype::F32).is_some()
            {
                return Err(Fault::Slot(Rule::MissingTensor, i as u16));
            }
        }
        Ok(())
    }

    /// No two tensors overlap and their sizes add up to the data section: no holes.
    fn check_tiling(&self) -> Result<(), Fault> {
        let base = self.data.as_ptr() as usize;
        let span = |t: &Tensor<'_>| {
            let begin = t.bytes.as_ptr() as usize - base;
            (begin, begin + t.bytes.len())
        };
        let mut covered = 0usize;
        let tensor = |i: usize| self.tensor(slot_id(i));
        for i in 0..SLOTS {
            let Some(a) = tensor(i) else { continue };
            let (begin, end) = span(&a);
            covered += end - begin;
            for b in (i + 1..SLOTS).filter_map(tensor) {
                let (b_begin, b_end) = span(&b);
                if begin < b_end && b_begin < end {
                    return Err(Fault::Slot(Rule::Overlap, i as u16));
                }
            }
        }
        if covered != self.data.len() {
            return Err(Fault::File(Rule::Hole));
        }
        Ok(())
    }
}

/// Where the opening quote of `key`, a string of `header`, is.
fn quote_at(header: &[u8], key: RawStr<'_>) -> u32 {
    (key.as_ptr() as usize - header.as_ptr() as usize - 1) as u32
}

/// The `Error` for a `Fault` found in the file `bytes`: the names it points at are read back
/// from its header.
fn error(fault: Fault, bytes: &[u8]) -> Error {
    let header = bytes.get(8..).unwrap_or_default();
    // `quote` is where a string that was read without error starts, so this read succeeds.
    let name = |quote: u32| {
        let mut cursor = Cursor::new(header.get(quote as usize..).unwrap_or_default());
        Name::from_bytes(cursor.string().unwrap_or_default())
    };
    match fault {
        Fault::File(rule) => Error::file(rule),
        Fault::Byte(rule, at) => Error::at(rule, at as usize),
        Fault::Metadata(rule, quote) => Error::metadata(rule, name(quote)),
        Fault::Key(rule, key) => Error::metadata(rule, Name::new(key.name())),
        Fault::Tensor(rule, quote) => Error::tensor(rule, name(quote)),
        Fault::Slot(rule, slot) => Error::tensor(rule, id_name(slot_id(slot as usize))),
    }
}

/// The canonical name of a tensor.
fn id_name(id: TensorId) -> Name {
    let (group, index, p) = match id {
        TensorId::Emb(t, p) => ("emb.", t, p),
        TensorId::Bottom(l, p) => ("bottom.", l, p),
        TensorId::Top(l, p) => ("top.", l, p),
    };
    let mut name = Name::new(group);
    name.push_number(index);
    name.push(b".");
    name.push(PART_NAMES[p as usize]);
    name
}
