//! Errors of the model file reader: which rule a file broke, and where.

use core::fmt;

use crate::config::Key;

/// A rule of the model file format (v1, and v2's additions at the end) that a file can break. [`Rule::code`] numbers the rules from 1
/// in the order listed here; new rules go at the end, so a code keeps its meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The file is shorter than the 8-byte header length prefix.
    TruncatedPrefix,
    /// The header length is larger than the file.
    HeaderPastEnd,
    /// The header length is above [`crate::MAX_HEADER_LEN`].
    HeaderTooLong,
    /// The header length is not a multiple of 8.
    HeaderNotPadded,
    /// The header is not valid UTF-8.
    InvalidUtf8,
    /// The header is not valid JSON of the safetensors shape.
    InvalidJson,
    /// The header has no `__metadata__` object.
    MissingMetadata,
    /// A `__metadata__` value is not a string.
    MetadataNotString,
    /// A required `__metadata__` key is absent.
    MissingMetadataKey,
    /// A `__metadata__` key appears twice.
    DuplicateMetadataKey,
    /// `format` is not `mlet-dlrm`.
    UnknownFormat,
    /// `format_version` is not `1` or `2`.
    UnsupportedVersion,
    /// A number in the metadata is not a decimal integer that fits in 32 bits.
    InvalidNumber,
    /// `num_dense`, `dim` or an MLP width is zero.
    ZeroWidth,
    /// A table has zero rows.
    ZeroRows,
    /// More tables than [`crate::MAX_TABLES`].
    TooManyTables,
    /// An MLP has no layer or more than [`crate::MAX_LAYERS`] layers.
    LayerCount,
    /// The MLP widths do not chain: `bottom_mlp` must start at `num_dense` and end at `dim`,
    /// `top_mlp` must end at 1.
    WidthsDontChain,
    /// `interaction` is not `dot`.
    UnknownInteraction,
    /// `dense_transform` is not `log1p` or `identity`.
    UnknownDenseTransform,
    /// `hashing` is not `mod`.
    UnknownHashing,
    /// `embedding_dtype` is not `f32`, `f16`, `int8` or `int4`.
    UnknownEmbeddingDtype,
    /// A tensor info lacks `dtype`, `shape` or `data_offsets`, has another field, or has one twice.
    TensorInfoFields,
    /// A tensor's dtype is not one of `F32`, `F16`, `U8`, `I8`.
    UnknownDtype,
    /// A tensor's dtype is not the one its name requires.
    WrongDtype,
    /// A tensor's shape is not the one the metadata implies.
    WrongShape,
    /// A tensor's byte length is not its element count times its dtype size.
    SizeMismatch,
    /// A tensor's data offsets are reversed or past the end of the data section.
    OffsetsOutOfBounds,
    /// An F32 tensor does not start at a multiple of 4, or an F16 one at a multiple of 2.
    Misaligned,
    /// Two tensors share bytes.
    Overlap,
    /// Bytes of the data section belong to no tensor.
    Hole,
    /// A tensor name the model does not define.
    UnexpectedTensor,
    /// A tensor the model needs is absent.
    MissingTensor,
    /// A tensor name appears twice.
    DuplicateTensor,
    /// `mlp_dtype` is not `f32` or `int8` (v2).
    UnknownMlpDtype,
    /// A `format_version` 1 file has the v2 key `mlp_dtype` or `int4` tables.
    V2FeatureInV1File,
    /// A `format_version` 2 file uses no v2 feature (int4 tables, an int8 MLP): it must say
    /// `1`, so that v1 readers read it.
    NeedlessVersion2,
    /// An int8 layer has more than [`crate::MAX_INT8_LAYER_INPUTS`] inputs.
    Int8LayerTooWide,
}

impl Rule {
    /// The rule's number (1 = `TruncatedPrefix`, in declaration order): what a device with no
    /// room for messages reports; the host tools turn it back into the rule.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// A one-line statement of the rule.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::TruncatedPrefix => "file is shorter than its 8-byte header length",
            Rule::HeaderPastEnd => "header length runs past the end of the file",
            Rule::HeaderTooLong => "header length is over the 1 MiB limit",
            Rule::HeaderNotPadded => "header length must be a multiple of 8",
            Rule::InvalidUtf8 => "header is not valid UTF-8",
            Rule::InvalidJson => "header is not valid safetensors JSON",
            Rule::MissingMetadata => "header has no __metadata__ object",
            Rule::MetadataNotString => "__metadata__ values must be strings",
            Rule::MissingMetadataKey => "required __metadata__ key is missing",
            Rule::DuplicateMetadataKey => "__metadata__ key appears twice",
            Rule::UnknownFormat => "format must be `mlet-dlrm`",
            Rule::UnsupportedVersion => "format_version must be `1` or `2`",
            Rule::InvalidNumber => "value must be decimal integers that fit in 32 bits",
            Rule::ZeroWidth => "num_dense, dim and MLP widths must be at least 1",
            Rule::ZeroRows => "every table needs at least 1 row",
            Rule::TooManyTables => "more tables than this reader supports (64)",
            Rule::LayerCount => "an MLP needs 1 to 8 layers",
            Rule::WidthsDontChain => {
                "MLP widths must chain: bottom_mlp from num_dense to dim, top_mlp ending at 1"
            }
            Rule::UnknownInteraction => "interaction must be `dot`",
            Rule::UnknownDenseTransform => "dense_transform must be `log1p` or `identity`",
            Rule::UnknownHashing => "hashing must be `mod`",
            Rule::UnknownEmbeddingDtype => "embedding_dtype must be `f32`, `f16`, `int8` or `int4`",
            Rule::TensorInfoFields => {
                "tensor info needs exactly the fields dtype, shape and data_offsets"
            }
            Rule::UnknownDtype => "dtype must be F32, F16, U8 or I8",
            Rule::WrongDtype => "dtype is not allowed for this tensor",
            Rule::WrongShape => "shape does not match the metadata",
            Rule::SizeMismatch => "byte length does not match shape and dtype",
            Rule::OffsetsOutOfBounds => "data_offsets are reversed or past the end of the data",
            Rule::Misaligned => "F32 data must start at a multiple of 4 and F16 at a multiple of 2",
            Rule::Overlap => "tensors overlap",
            Rule::Hole => "data section has bytes that belong to no tensor",
            Rule::UnexpectedTensor => "tensor is not part of the model",
            Rule::MissingTensor => "tensor is missing",
            Rule::DuplicateTensor => "tensor appears twice",
            Rule::UnknownMlpDtype => "mlp_dtype must be `f32` or `int8`",
            Rule::V2FeatureInV1File => {
                "format_version 1 cannot have mlp_dtype or int4 tables (format v2)"
            }
            Rule::NeedlessVersion2 => {
                "format_version 2 needs int4 tables or an int8 MLP; other files are version 1"
            }
            Rule::Int8LayerTooWide => "an int8 layer takes at most 65,536 inputs",
        }
    }
}

/// Up to [`Name::CAPACITY`] bytes of a name from the header, copied so that errors carry no
/// borrow (longer names are cut and end in `..`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    len: u8,
    /// The name was cut (it ends in `..`); nothing more is appended.
    cut: bool,
    bytes: [u8; Name::CAPACITY],
}

impl Name {
    /// Most bytes a name keeps.
    pub const CAPACITY: usize = 40;

    /// Copies `s`, cutting it at `CAPACITY` bytes.
    pub fn new(s: &str) -> Name {
        Name::from_bytes(s.as_bytes())
    }

    /// [`Name::new`] for UTF-8 text as bytes (the reader has validated the header).
    pub(crate) fn from_bytes(s: &[u8]) -> Name {
        let mut name = Name {
            len: 0,
            cut: false,
            bytes: [0; Name::CAPACITY],
        };
        name.push(s);
        name
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 characters are ever copied in, so this cannot fail.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// Appends `s` (UTF-8); a name that would pass `CAPACITY` bytes is cut at a character
    /// boundary and ends in `..`. (Written out rather than through `core::fmt`, which is several
    /// KB of flash on a microcontroller.)
    pub(crate) fn push(&mut self, s: &[u8]) {
        if self.cut {
            return;
        }
        let at = self.len as usize;
        // Room for whole characters, keeping two bytes for the `..` of a cut.
        let room = Name::CAPACITY - 2 - at;
        let mut take = s.len().min(room);
        // A UTF-8 continuation byte (10xxxxxx) is not the start of a character.
        while s.get(take).is_some_and(|b| b & 0xc0 == 0x80) {
            take -= 1;
        }
        self.bytes[at..at + take].copy_from_slice(&s[..take]);
        self.len += take as u8;
        if take < s.len() {
            let end = self.len as usize;
            self.bytes[end..end + 2].copy_from_slice(b"..");
            self.len += 2;
            self.cut = true;
        }
    }

    /// Appends `n` in decimal.
    pub(crate) fn push_number(&mut self, n: usize) {
        let mut digits = [0u8; 20];
        let (mut at, mut rest) = (digits.len(), n);
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.push(&digits[at..]);
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What part of the file an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The file as a whole.
    File,
    /// A byte position inside the JSON header (0 = first byte after the length prefix).
    HeaderByte(u32),
    /// A `__metadata__` key.
    Metadata(Name),
    /// A tensor, by name.
    Tensor(Name),
}

/// A model file broke a rule of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// The rule broken.
    pub rule: Rule,
    /// Where.
    pub subject: Subject,
}

impl Error {
    pub(crate) fn file(rule: Rule) -> Error {
        Error {
            rule,
            subject: Subject::File,
        }
    }

    pub(crate) fn at(rule: Rule, header_byte: usize) -> Error {
        Error {
            rule,
            subject: Subject::HeaderByte(header_byte as u32),
        }
    }

    pub(crate) fn metadata(rule: Rule, key: Name) -> Error {
        Error {
            rule,
            subject: Subject::Metadata(key),
        }
    }

    pub(crate) fn tensor(rule: Rule, name: Name) -> Error {
        Error {
            rule,
            subject: Subject::Tensor(name),
        }
    }
}

/// A broken rule and where, in 8 bytes: what the reader's steps return. `ModelFile::parse`
/// turns it into an [`Error`] (reading the names back from the header), `parse_rule` keeps only
/// the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The file as a whole.
    File(Rule),
    /// A header byte.
    Byte(Rule, u32),
    /// The `__metadata__` key whose opening quote is at this header byte.
    Metadata(Rule, u32),
    /// A required `__metadata__` key.
    Key(Rule, Key),
    /// The tensor whose name's opening quote is at this header byte.
    Tensor(Rule, u32),
    /// The tensor of this slot of the reader (named canonically: it may be absent).
    Slot(Rule, u16),
}

impl Fault {
    /// The rule broken.
    pub(crate) fn rule(self) -> Rule {
        match self {
            Fault::File(rule)
            | Fault::Byte(rule, _)
            | Fault::Metadata(rule, _)
            | Fault::Key(rule, _)
            | Fault::Tensor(rule, _)
            | Fault::Slot(rule, _) => rule,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subject {
            Subject::File => write!(f, "model file: {}", self.rule.describe()),
            Subject::HeaderByte(at) => {
                write!(f, "model file header byte {at}: {}", self.rule.describe())
            }
            Subject::Metadata(key) => {
                write!(
                    f,
                    "model file __metadata__ `{}`: {}",
                    key.as_str(),
                    self.rule.describe()
                )
            }
            Subject::Tensor(name) => {
                write!(
                    f,
                    "model file tensor `{}`: {}",
                    name.as_str(),
                    self.rule.describe()
                )
            }
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_built_and_cut() {
        let mut name = Name::new("emb.");
        name.push_number(0);
        name.push(b".");
        name.push_number(4_294_967_295);
        assert_eq!(name.as_str(), "emb.0.4294967295");
        // 30 two-byte characters: 19 fit before the `..` (38 + 2 = 40 bytes).
        let long = Name::new("éééééééééééééééééééééééééééééé");
        assert_eq!(long.as_str(), "ééééééééééééééééééé..");
        let mut full = long;
        full.push(b"more");
        assert_eq!(full, long);
    }
}
