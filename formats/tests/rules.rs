//! One test per rule of the format (v1, then v2's): each file breaks only that rule, and the
//! error names it.

use mlet_formats::{
    Config, DenseTransform, Dtype, EmbeddingDtype, Error, MlpDtype, ModelFile, Rule, Subject,
};

/// A tensor entry as it will be written in the header.
#[derive(Clone)]
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    offsets: (u64, u64),
}

/// A model file assembled by hand, so that each test can break exactly one thing.
#[derive(Clone)]
struct RawFile {
    /// (key, raw JSON value) pairs.
    metadata: Vec<(String, String)>,
    entries: Vec<Entry>,
    data: Vec<u8>,
    /// Extra JSON text inserted in the header object, raw.
    extra_json: String,
    /// Header padding to a multiple of this many bytes.
    pad: usize,
}

fn size_of(dtype: &str) -> u64 {
    match dtype {
        "F32" => 4,
        "F16" => 2,
        _ => 1,
    }
}

impl RawFile {
    /// A valid int8 model: 2 tables of 3 and 2 rows, d = 2, bottom 1-2, top 5-1; table 0 with
    /// per-row F16 scales, table 1 per-table.
    fn valid() -> RawFile {
        let meta = [
            ("format", "mlet-dlrm"),
            ("format_version", "1"),
            ("num_dense", "1"),
            ("table_rows", "3,2"),
            ("dim", "2"),
            ("bottom_mlp", "1-2"),
            ("top_mlp", "1"),
            ("interaction", "dot"),
            ("dense_transform", "log1p"),
            ("hashing", "mod"),
            ("embedding_dtype", "int8"),
            ("val_auc", "0.75"),
        ];
        let tensors: [(&str, &str, &[u64]); 10] = [
            ("bottom.0.weight", "F32", &[2, 1]),
            ("bottom.0.bias", "F32", &[2]),
            ("top.0.weight", "F32", &[1, 5]),
            ("top.0.bias", "F32", &[1]),
            ("emb.0.scale", "F16", &[3]),
            ("emb.0.offset", "F16", &[3]),
            ("emb.1.scale", "F16", &[1]),
            ("emb.1.offset", "F16", &[1]),
            ("emb.0.weight", "U8", &[3, 2]),
            ("emb.1.weight", "U8", &[2, 2]),
        ];
        RawFile::new(&meta, &tensors)
    }

    /// A valid v2 model: int4 tables (d = 3, so a row is 2 bytes and the last high nibble is
    /// padding), table 0 with per-row F16 scales, table 1 per-table F32; int8 layers, bottom
    /// 2-3 (per-column input scales), top 6-4-1 (per-tensor, then per-column scale with a
    /// per-tensor zero point).
    fn valid_v2() -> RawFile {
        let meta = [
            ("format", "mlet-dlrm"),
            ("format_version", "2"),
            ("num_dense", "2"),
            ("table_rows", "3,2"),
            ("dim", "3"),
            ("bottom_mlp", "2-3"),
            ("top_mlp", "4-1"),
            ("interaction", "dot"),
            ("dense_transform", "log1p"),
            ("hashing", "mod"),
            ("embedding_dtype", "int4"),
            ("mlp_dtype", "int8"),
        ];
        let tensors: [(&str, &str, &[u64]); 21] = [
            ("bottom.0.bias", "F32", &[3]),
            ("bottom.0.acc_scale", "F32", &[3]),
            ("bottom.0.input_inv_scale", "F32", &[2]),
            ("top.0.bias", "F32", &[4]),
            ("top.0.acc_scale", "F32", &[4]),
            ("top.0.input_inv_scale", "F32", &[1]),
            ("top.1.bias", "F32", &[1]),
            ("top.1.acc_scale", "F32", &[1]),
            ("top.1.input_inv_scale", "F32", &[4]),
            ("emb.1.scale", "F32", &[1]),
            ("emb.1.offset", "F32", &[1]),
            ("emb.0.scale", "F16", &[3]),
            ("emb.0.offset", "F16", &[3]),
            ("bottom.0.weight", "I8", &[3, 2]),
            ("bottom.0.input_zero", "U8", &[2]),
            ("top.0.weight", "I8", &[4, 6]),
            ("top.0.input_zero", "U8", &[1]),
            ("top.1.weight", "I8", &[1, 4]),
            ("top.1.input_zero", "U8", &[1]),
            ("emb.0.weight", "U8", &[3, 2]),
            ("emb.1.weight", "U8", &[2, 2]),
        ];
        RawFile::new(&meta, &tensors)
    }

    fn new(meta: &[(&str, &str)], tensors: &[(&str, &str, &[u64])]) -> RawFile {
        let mut file = RawFile {
            metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), format!("\"{v}\"")))
                .collect(),
            entries: tensors
                .iter()
                .map(|(n, d, s)| Entry {
                    name: n.to_string(),
                    dtype: d.to_string(),
                    shape: s.to_vec(),
                    offsets: (0, 0),
                })
                .collect(),
            data: Vec::new(),
            extra_json: String::new(),
            pad: 8,
        };
        file.lay_out();
        file
    }

    /// Places the entries one after another in their current order and sizes the data.
    fn lay_out(&mut self) {
        let mut at = 0;
        for e in &mut self.entries {
            let len = e.shape.iter().product::<u64>() * size_of(&e.dtype);
            e.offsets = (at, at + len);
            at += len;
        }
        self.data = (0..at).map(|i| (i * 7 % 13) as u8).collect();
    }

    fn entry(&mut self, name: &str) -> &mut Entry {
        self.entries.iter_mut().find(|e| e.name == name).unwrap()
    }

    fn set_meta(&mut self, key: &str, raw_json: &str) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = raw_json.to_string(),
            None => self.metadata.push((key.to_string(), raw_json.to_string())),
        }
    }

    fn remove_meta(&mut self, key: &str) {
        self.metadata.retain(|(k, _)| k != key);
    }

    fn header(&self) -> Vec<u8> {
        let meta: Vec<String> = self
            .metadata
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        let mut parts = vec![format!("\"__metadata__\":{{{}}}", meta.join(","))];
        for e in &self.entries {
            let shape: Vec<String> = e.shape.iter().map(u64::to_string).collect();
            parts.push(format!(
                "\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                e.name,
                e.dtype,
                shape.join(","),
                e.offsets.0,
                e.offsets.1
            ));
        }
        if !self.extra_json.is_empty() {
            parts.push(self.extra_json.clone());
        }
        let mut header = format!("{{{}}}", parts.join(",")).into_bytes();
        while header.len() % self.pad != 0 {
            header.push(b' ');
        }
        header
    }

    fn bytes(&self) -> Vec<u8> {
        let header = self.header();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.data);
        out
    }
}

/// The error `parse` gives; `parse_rule` must give the same rule.
fn parse_err(bytes: &[u8]) -> Error {
    match ModelFile::parse(bytes) {
        Ok(_) => panic!("the file was accepted"),
        Err(e) => {
            assert_eq!(ModelFile::parse_rule(bytes).err(), Some(e.rule), "{e}");
            e
        }
    }
}

fn assert_rule(file: &RawFile, rule: Rule) -> Error {
    let err = parse_err(&file.bytes());
    assert_eq!(err.rule, rule, "{err}");
    err
}

fn assert_tensor_rule(file: &RawFile, rule: Rule, tensor: &str) {
    let err = assert_rule(file, rule);
    match err.subject {
        Subject::Tensor(name) => assert_eq!(name.as_str(), tensor, "{err}"),
        other => panic!("expected tensor {tensor}, got {other:?}"),
    }
}

fn assert_meta_rule(file: &RawFile, rule: Rule, key: &str) {
    let err = assert_rule(file, rule);
    match err.subject {
        Subject::Metadata(name) => assert_eq!(name.as_str(), key, "{err}"),
        other => panic!("expected metadata key {key}, got {other:?}"),
    }
}

#[test]
fn the_baseline_file_is_valid() {
    let bytes = RawFile::valid().bytes();
    let file = ModelFile::parse(&bytes).unwrap();
    let config = file.config();
    assert_eq!(config.table_rows(), &[3, 2]);
    assert_eq!(config.top_input_width(), 5);
    assert_eq!(file.table(0).scale.unwrap().len(), 3);
    assert_eq!(file.table(1).offset.unwrap().len(), 1);
    assert_eq!(file.metadata("val_auc"), Some("0.75"));
    assert_eq!(file.data_len(), 40 + 16 + 10);
}

#[test]
fn key_order_in_the_header_does_not_matter() {
    let mut file = RawFile::valid();
    file.entries.reverse();
    let bytes = file.bytes();
    ModelFile::parse(&bytes).unwrap();
}

#[test]
fn truncated_prefix() {
    assert_eq!(
        parse_err(&RawFile::valid().bytes()[..5]).rule,
        Rule::TruncatedPrefix
    );
    assert_eq!(parse_err(&[]).rule, Rule::TruncatedPrefix);
}

#[test]
fn header_past_end() {
    let mut bytes = RawFile::valid().bytes();
    let len = bytes.len() as u64;
    bytes[..8].copy_from_slice(&len.to_le_bytes());
    assert_eq!(parse_err(&bytes).rule, Rule::HeaderPastEnd);
}

#[test]
fn header_too_long() {
    let mut bytes = RawFile::valid().bytes();
    bytes[..8].copy_from_slice(&((1u64 << 20) + 8).to_le_bytes());
    assert_eq!(parse_err(&bytes).rule, Rule::HeaderTooLong);
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(parse_err(&bytes).rule, Rule::HeaderTooLong);
}

#[test]
fn header_not_padded() {
    let mut file = RawFile::valid();
    file.pad = 1;
    if file.header().len().is_multiple_of(8) {
        file.extra_json.push(' ');
    }
    // A valid JSON header whose length is not a multiple of 8.
    let header = {
        let mut h = file.header();
        while h.len().is_multiple_of(8) {
            h.push(b' ');
        }
        h
    };
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&file.data);
    assert_eq!(parse_err(&bytes).rule, Rule::HeaderNotPadded);
}

#[test]
fn invalid_utf8() {
    let mut file = RawFile::valid();
    file.set_meta("note", "\"abc\"");
    let mut bytes = file.bytes();
    let at = bytes.windows(3).position(|w| w == b"abc").unwrap();
    bytes[at + 1] = 0xff;
    let err = parse_err(&bytes);
    assert_eq!(err.rule, Rule::InvalidUtf8);
    assert_eq!(err.subject, Subject::HeaderByte((at + 1 - 8) as u32));
}

#[test]
fn invalid_json() {
    for extra in [
        "\"x\":",
        "\"x\":{\"dtype\":\"F32\",}",
        "]",
        "\"x\":{\"dtype\":\"F32\",\"shape\":[1.5]}",
    ] {
        let mut file = RawFile::valid();
        file.extra_json = extra.to_string();
        assert_rule(&file, Rule::InvalidJson);
    }
    let mut bytes = RawFile::valid().bytes();
    let close = bytes.iter().rposition(|&b| b == b'}').unwrap();
    bytes[close] = b' ';
    assert_eq!(parse_err(&bytes).rule, Rule::InvalidJson);
}

#[test]
fn trailing_text_after_the_header_object() {
    let mut bytes = RawFile::valid().bytes();
    let close = bytes.iter().rposition(|&b| b == b'}').unwrap();
    bytes[close + 1] = b'x';
    assert_eq!(parse_err(&bytes).rule, Rule::InvalidJson);
}

#[test]
fn missing_metadata() {
    let mut file = RawFile::valid();
    let header_without_metadata = {
        let text = String::from_utf8(file.header()).unwrap();
        let start = text.find("\"__metadata__\"").unwrap();
        let end = text[start..].find("},").unwrap() + start + 2;
        format!("{}{}", &text[..start], &text[end..])
    };
    file.pad = 8;
    let mut header = header_without_metadata.into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&file.data);
    assert_eq!(parse_err(&bytes).rule, Rule::MissingMetadata);
}

#[test]
fn metadata_not_string() {
    let mut file = RawFile::valid();
    file.set_meta("dim", "2");
    assert_meta_rule(&file, Rule::MetadataNotString, "dim");
}

#[test]
fn missing_metadata_key() {
    for key in [
        "format",
        "format_version",
        "num_dense",
        "table_rows",
        "dim",
        "bottom_mlp",
        "top_mlp",
        "interaction",
        "dense_transform",
        "hashing",
        "embedding_dtype",
    ] {
        let mut file = RawFile::valid();
        file.remove_meta(key);
        assert_meta_rule(&file, Rule::MissingMetadataKey, key);
    }
}

#[test]
fn duplicate_metadata_key() {
    let mut file = RawFile::valid();
    file.metadata.push(("dim".into(), "\"2\"".into()));
    assert_meta_rule(&file, Rule::DuplicateMetadataKey, "dim");
}

#[test]
fn unknown_format_and_version() {
    let mut file = RawFile::valid();
    file.set_meta("format", "\"safetensors\"");
    assert_meta_rule(&file, Rule::UnknownFormat, "format");
    for version in ["3", "0", "01", "", "1.0"] {
        let mut file = RawFile::valid();
        file.set_meta("format_version", &format!("\"{version}\""));
        assert_meta_rule(&file, Rule::UnsupportedVersion, "format_version");
    }
}

#[test]
fn invalid_numbers() {
    for (key, value) in [
        ("dim", "two"),
        ("dim", "-2"),
        ("num_dense", ""),
        ("table_rows", "3,,2"),
        ("table_rows", "3,99999999999"),
        ("bottom_mlp", "1-x"),
    ] {
        let mut file = RawFile::valid();
        file.set_meta(key, &format!("\"{value}\""));
        assert_meta_rule(&file, Rule::InvalidNumber, key);
    }
}

#[test]
fn zero_widths_and_rows() {
    let mut file = RawFile::valid();
    file.set_meta("dim", "\"0\"");
    assert_meta_rule(&file, Rule::ZeroWidth, "dim");
    let mut file = RawFile::valid();
    file.set_meta("bottom_mlp", "\"1-0-2\"");
    assert_meta_rule(&file, Rule::ZeroWidth, "bottom_mlp");
    let mut file = RawFile::valid();
    file.set_meta("table_rows", "\"3,0\"");
    assert_meta_rule(&file, Rule::ZeroRows, "table_rows");
}

#[test]
fn too_many_tables() {
    let mut file = RawFile::valid();
    file.set_meta("table_rows", &format!("\"{}\"", vec!["1"; 65].join(",")));
    assert_meta_rule(&file, Rule::TooManyTables, "table_rows");
}

#[test]
fn layer_count() {
    let mut file = RawFile::valid();
    file.set_meta("bottom_mlp", "\"1-2-2-2-2-2-2-2-2-2\"");
    assert_meta_rule(&file, Rule::LayerCount, "bottom_mlp");
    let mut file = RawFile::valid();
    file.set_meta("bottom_mlp", "\"2\"");
    file.set_meta("num_dense", "\"2\"");
    assert_meta_rule(&file, Rule::LayerCount, "bottom_mlp");
}

#[test]
fn widths_dont_chain() {
    let mut file = RawFile::valid();
    file.set_meta("bottom_mlp", "\"1-3\"");
    assert_meta_rule(&file, Rule::WidthsDontChain, "bottom_mlp");
    let mut file = RawFile::valid();
    file.set_meta("num_dense", "\"4\"");
    assert_meta_rule(&file, Rule::WidthsDontChain, "bottom_mlp");
    let mut file = RawFile::valid();
    file.set_meta("top_mlp", "\"2\"");
    assert_meta_rule(&file, Rule::WidthsDontChain, "top_mlp");
}

#[test]
fn unknown_enumerations() {
    for (key, rule) in [
        ("interaction", Rule::UnknownInteraction),
        ("dense_transform", Rule::UnknownDenseTransform),
        ("hashing", Rule::UnknownHashing),
        ("embedding_dtype", Rule::UnknownEmbeddingDtype),
    ] {
        let mut file = RawFile::valid();
        file.set_meta(key, "\"other\"");
        assert_meta_rule(&file, rule, key);
    }
}

#[test]
fn tensor_info_fields() {
    let mut file = RawFile::valid();
    file.extra_json = "\"top.0.bias\":{\"dtype\":\"F32\",\"shape\":[1]}".into();
    file.entries.retain(|e| e.name != "top.0.bias");
    assert_rule(&file, Rule::TensorInfoFields);
    let mut file = RawFile::valid();
    file.extra_json =
        "\"emb.9.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}".into();
    assert_rule(&file, Rule::TensorInfoFields);
    let mut file = RawFile::valid();
    file.extra_json =
        "\"emb.9.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}".into();
    assert_rule(&file, Rule::TensorInfoFields);
}

#[test]
fn unknown_dtype() {
    let mut file = RawFile::valid();
    file.entry("top.0.bias").dtype = "BF16".into();
    assert_tensor_rule(&file, Rule::UnknownDtype, "top.0.bias");
}

#[test]
fn wrong_dtype() {
    let mut file = RawFile::valid();
    file.entry("emb.1.weight").dtype = "F16".into();
    assert_tensor_rule(&file, Rule::WrongDtype, "emb.1.weight");
    let mut file = RawFile::valid();
    file.entry("bottom.0.bias").dtype = "U8".into();
    assert_tensor_rule(&file, Rule::WrongDtype, "bottom.0.bias");
}

#[test]
fn wrong_shape() {
    let mut file = RawFile::valid();
    file.entry("bottom.0.weight").shape = vec![1, 2];
    assert_tensor_rule(&file, Rule::WrongShape, "bottom.0.weight");
    let mut file = RawFile::valid();
    file.entry("emb.0.scale").shape = vec![2];
    assert_tensor_rule(&file, Rule::WrongShape, "emb.0.scale");
    // v1 shapes have at most 2 dimensions; a longer one is rejected where it is read.
    for shape in [vec![2, 2, 1], vec![2, 2, 1, 1, 1]] {
        let mut file = RawFile::valid();
        file.entry("emb.1.weight").shape = shape;
        assert_rule(&file, Rule::WrongShape);
    }
}

#[test]
fn size_mismatch() {
    let mut file = RawFile::valid();
    file.entry("top.0.weight").offsets.1 -= 4;
    assert_tensor_rule(&file, Rule::SizeMismatch, "top.0.weight");
}

#[test]
fn offsets_out_of_bounds() {
    let mut file = RawFile::valid();
    let len = file.data.len() as u64;
    file.entry("emb.1.weight").offsets = (len - 2, len + 2);
    assert_tensor_rule(&file, Rule::OffsetsOutOfBounds, "emb.1.weight");
    let mut file = RawFile::valid();
    file.entry("emb.1.weight").offsets = (8, 4);
    assert_tensor_rule(&file, Rule::OffsetsOutOfBounds, "emb.1.weight");
}

#[test]
fn misaligned() {
    let mut file = RawFile::valid();
    let scale = file
        .entries
        .iter()
        .position(|e| e.name == "emb.1.scale")
        .unwrap();
    let entry = file.entries.remove(scale);
    file.entries.insert(0, entry);
    file.lay_out();
    assert_tensor_rule(&file, Rule::Misaligned, "bottom.0.weight");
}

#[test]
fn overlap() {
    let mut file = RawFile::valid();
    let offsets = file.entry("emb.1.scale").offsets;
    file.entry("emb.1.offset").offsets = offsets;
    file.data.truncate(file.data.len() - 2);
    for e in &mut file.entries {
        if e.name.ends_with(".weight") && e.name.starts_with("emb") {
            e.offsets = (e.offsets.0 - 2, e.offsets.1 - 2);
        }
    }
    assert_rule(&file, Rule::Overlap);
}

#[test]
fn hole() {
    let mut file = RawFile::valid();
    file.data.extend_from_slice(&[0; 4]);
    assert_rule(&file, Rule::Hole);
}

#[test]
fn unexpected_tensor() {
    let mut file = RawFile::valid();
    file.extra_json =
        "\"emb.2.weight\":{\"dtype\":\"U8\",\"shape\":[1,2],\"data_offsets\":[0,2]}".into();
    assert_tensor_rule(&file, Rule::UnexpectedTensor, "emb.2.weight");
    for name in [
        "foo",
        "emb.01.weight",
        "bottom.0.scale",
        "top.1.weight",
        "emb.0.weight.x",
    ] {
        let mut file = RawFile::valid();
        file.extra_json =
            format!("\"{name}\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
        assert_tensor_rule(&file, Rule::UnexpectedTensor, name);
    }
}

#[test]
fn scales_are_unexpected_outside_int8() {
    let mut file = RawFile::valid();
    file.set_meta("embedding_dtype", "\"f32\"");
    assert_tensor_rule(&file, Rule::UnexpectedTensor, "emb.0.scale");
    file.entries.retain(|e| {
        !e.name.ends_with("scale") && !e.name.ends_with("offset") || !e.name.starts_with("emb")
    });
    for e in &mut file.entries {
        if e.dtype == "U8" {
            e.dtype = "F32".into();
        }
    }
    file.lay_out();
    ModelFile::parse(&file.bytes()).unwrap();
    file.entries.push(Entry {
        name: "emb.0.scale".into(),
        dtype: "F32".into(),
        shape: vec![1],
        offsets: (0, 0),
    });
    file.lay_out();
    assert_tensor_rule(&file, Rule::UnexpectedTensor, "emb.0.scale");
}

#[test]
fn missing_tensor() {
    for name in [
        "top.0.bias",
        "emb.1.scale",
        "emb.0.weight",
        "bottom.0.weight",
    ] {
        let mut file = RawFile::valid();
        file.entries.retain(|e| e.name != name);
        file.lay_out();
        assert_tensor_rule(&file, Rule::MissingTensor, name);
    }
}

#[test]
fn duplicate_tensor() {
    let mut file = RawFile::valid();
    let copy = file.entry("top.0.bias").clone();
    file.entries.push(copy);
    assert_tensor_rule(&file, Rule::DuplicateTensor, "top.0.bias");
}

#[test]
fn long_names_are_cut_in_errors() {
    let mut file = RawFile::valid();
    let name = "x".repeat(100);
    file.extra_json =
        format!("\"{name}\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
    let err = assert_rule(&file, Rule::UnexpectedTensor);
    let shown = err.to_string();
    assert!(shown.contains("xxxx..") && shown.len() < 150, "{shown}");
}

/// Rule codes are the declaration order from 1, fixed at both ends, and distinct.
#[test]
fn rule_codes_are_stable() {
    use Rule::*;
    let rules = [
        TruncatedPrefix,
        HeaderPastEnd,
        HeaderTooLong,
        HeaderNotPadded,
        InvalidUtf8,
        InvalidJson,
        MissingMetadata,
        MetadataNotString,
        MissingMetadataKey,
        DuplicateMetadataKey,
        UnknownFormat,
        UnsupportedVersion,
        InvalidNumber,
        ZeroWidth,
        ZeroRows,
        TooManyTables,
        LayerCount,
        WidthsDontChain,
        UnknownInteraction,
        UnknownDenseTransform,
        UnknownHashing,
        UnknownEmbeddingDtype,
        TensorInfoFields,
        UnknownDtype,
        WrongDtype,
        WrongShape,
        SizeMismatch,
        OffsetsOutOfBounds,
        Misaligned,
        Overlap,
        Hole,
        UnexpectedTensor,
        MissingTensor,
        DuplicateTensor,
        UnknownMlpDtype,
        V2FeatureInV1File,
        NeedlessVersion2,
        Int8LayerTooWide,
    ];
    for (i, rule) in rules.iter().enumerate() {
        assert_eq!(rule.code() as usize, i + 1, "{rule:?}");
    }
}

// ---- format v2: int4 tables and int8 layers ----

#[test]
fn the_v2_baseline_file_is_valid() {
    let bytes = RawFile::valid_v2().bytes();
    let file = ModelFile::parse(&bytes).unwrap();
    let config = file.config();
    assert_eq!(config.embedding_dtype(), EmbeddingDtype::Int4);
    assert_eq!(config.mlp_dtype(), MlpDtype::Int8);
    assert_eq!(config.format_version(), 2);
    assert_eq!(config.top().as_slice(), &[6, 4, 1]);
    assert_eq!(file.table(0).weight.len(), 6);
    assert_eq!(file.table(1).scale.unwrap().len(), 1);
    let bottom = file.bottom_layer(0);
    assert_eq!(bottom.weight.dtype, Dtype::I8);
    let int8 = bottom.int8.unwrap();
    assert_eq!(
        (
            int8.acc_scale.len(),
            int8.input_inv_scale.len(),
            int8.input_zero.len()
        ),
        (3, 2, 2)
    );
    let top = file.top_layer(0).int8.unwrap();
    assert_eq!((top.input_inv_scale.len(), top.input_zero.len()), (1, 1));
    let last = file.top_layer(1).int8.unwrap();
    assert_eq!((last.input_inv_scale.len(), last.input_zero.len()), (4, 1));
    // The F32/F16 layers of a v1 file have no int8 tensors.
    let v1 = RawFile::valid().bytes();
    assert_eq!(ModelFile::parse(&v1).unwrap().top_layer(0).int8, None);
}

#[test]
fn int4_only_and_int8_mlp_only_files_are_version_2() {
    // int4 tables with F32 layers: mlp_dtype `f32` or absent.
    let mut file = RawFile::valid();
    file.set_meta("format_version", "\"2\"");
    file.set_meta("embedding_dtype", "\"int4\"");
    file.entry("emb.0.weight").shape = vec![3, 1];
    file.entry("emb.1.weight").shape = vec![2, 1];
    file.lay_out();
    let bytes = file.bytes();
    assert_eq!(
        ModelFile::parse(&bytes).unwrap().config().mlp_dtype(),
        MlpDtype::F32
    );
    file.set_meta("mlp_dtype", "\"f32\"");
    ModelFile::parse(&file.bytes()).unwrap();
    // int8 layers with F32 tables.
    let mut file = RawFile::valid_v2();
    file.set_meta("embedding_dtype", "\"f32\"");
    file.entries
        .retain(|e| !e.name.starts_with("emb") || e.name.ends_with("weight"));
    file.entry("emb.0.weight").shape = vec![3, 3];
    file.entry("emb.0.weight").dtype = "F32".into();
    file.entry("emb.1.weight").shape = vec![2, 3];
    file.entry("emb.1.weight").dtype = "F32".into();
    file.entries
        .sort_by_key(|e| std::cmp::Reverse(size_of(&e.dtype)));
    file.lay_out();
    ModelFile::parse(&file.bytes()).unwrap();
}

#[test]
fn the_padding_nibble_of_an_odd_width_is_ignored() {
    let mut file = RawFile::valid_v2();
    let (begin, end) = file.entry("emb.0.weight").offsets;
    for byte in &mut file.data[begin as usize..end as usize] {
        *byte = 0xff;
    }
    ModelFile::parse(&file.bytes()).unwrap();
}

#[test]
fn unknown_mlp_dtype() {
    for value in ["f16", "int4", "INT8", ""] {
        let mut file = RawFile::valid_v2();
        file.set_meta("mlp_dtype", &format!("\"{value}\""));
        assert_meta_rule(&file, Rule::UnknownMlpDtype, "mlp_dtype");
    }
    let mut file = RawFile::valid_v2();
    file.set_meta("mlp_dtype", "8");
    assert_meta_rule(&file, Rule::MetadataNotString, "mlp_dtype");
    let mut file = RawFile::valid_v2();
    file.metadata.push(("mlp_dtype".into(), "\"int8\"".into()));
    assert_meta_rule(&file, Rule::DuplicateMetadataKey, "mlp_dtype");
}

#[test]
fn v2_features_in_a_v1_file() {
    let mut file = RawFile::valid_v2();
    file.set_meta("format_version", "\"1\"");
    assert_meta_rule(&file, Rule::V2FeatureInV1File, "mlp_dtype");
    // The key alone, even saying `f32`: v1 readers would take it for free information.
    let mut file = RawFile::valid();
    file.set_meta("mlp_dtype", "\"f32\"");
    assert_meta_rule(&file, Rule::V2FeatureInV1File, "mlp_dtype");
    let mut file = RawFile::valid();
    file.set_meta("embedding_dtype", "\"int4\"");
    assert_meta_rule(&file, Rule::V2FeatureInV1File, "embedding_dtype");
}

#[test]
fn needless_version_2() {
    let mut file = RawFile::valid();
    file.set_meta("format_version", "\"2\"");
    assert_meta_rule(&file, Rule::NeedlessVersion2, "format_version");
    file.set_meta("mlp_dtype", "\"f32\"");
    assert_meta_rule(&file, Rule::NeedlessVersion2, "format_version");
}

#[test]
fn int8_layer_too_wide() {
    let mut file = RawFile::valid_v2();
    file.set_meta("bottom_mlp", "\"2-65537-3\"");
    assert_meta_rule(&file, Rule::Int8LayerTooWide, "bottom_mlp");
    let mut file = RawFile::valid_v2();
    file.set_meta("top_mlp", "\"70000-1\"");
    assert_meta_rule(&file, Rule::Int8LayerTooWide, "top_mlp");
    // The same widths are fine in F32 layers, and 65,536 inputs are fine in int8 ones.
    let config = |widest: u32| {
        Config::new(
            &[3],
            2,
            &[2, widest, 2],
            &[1],
            DenseTransform::Log1p,
            EmbeddingDtype::F32,
        )
        .unwrap()
    };
    assert!(config(65_536).with_mlp_dtype(MlpDtype::Int8).is_ok());
    let err = config(65_537).with_mlp_dtype(MlpDtype::Int8).unwrap_err();
    assert_eq!(err.rule, Rule::Int8LayerTooWide);
}

#[test]
fn int8_layer_dtypes() {
    for (name, dtype) in [
        ("bottom.0.weight", "U8"),
        ("bottom.0.weight", "F32"),
        ("top.0.bias", "F16"),
        ("top.0.acc_scale", "F16"),
        ("top.1.input_inv_scale", "F16"),
        ("bottom.0.input_zero", "I8"),
        ("top.0.input_zero", "F32"),
    ] {
        let mut file = RawFile::valid_v2();
        file.entry(name).dtype = dtype.into();
        file.lay_out();
        assert_tensor_rule(&file, Rule::WrongDtype, name);
    }
    // I8 weights need an int8 MLP.
    let mut file = RawFile::valid();
    file.entry("top.0.weight").dtype = "I8".into();
    file.lay_out();
    assert_tensor_rule(&file, Rule::WrongDtype, "top.0.weight");
    let mut file = RawFile::valid();
    file.entry("top.0.bias").dtype = "I16".into();
    assert_tensor_rule(&file, Rule::UnknownDtype, "top.0.bias");
}

#[test]
fn int8_layer_shapes() {
    for (name, shape) in [
        ("bottom.0.acc_scale", vec![1]),
        ("top.0.acc_scale", vec![4, 1]),
        ("bottom.0.input_inv_scale", vec![3]),
        ("top.1.input_inv_scale", vec![2]),
        ("bottom.0.input_zero", vec![2, 1]),
        ("top.0.input_zero", vec![6, 1]),
        ("top.0.weight", vec![6, 4]),
        ("top.1.bias", vec![4]),
    ] {
        let mut file = RawFile::valid_v2();
        file.entry(name).shape = shape;
        file.lay_out();
        assert_tensor_rule(&file, Rule::WrongShape, name);
    }
}

#[test]
fn int4_row_width() {
    // d = 3: a row is ceil(3 / 2) = 2 bytes, not 3 and not 1.
    for width in [3, 1] {
        let mut file = RawFile::valid_v2();
        file.entry("emb.0.weight").shape = vec![3, width];
        file.lay_out();
        assert_tensor_rule(&file, Rule::WrongShape, "emb.0.weight");
    }
    let mut file = RawFile::valid_v2();
    file.entry("emb.1.weight").dtype = "I8".into();
    assert_tensor_rule(&file, Rule::WrongDtype, "emb.1.weight");
}

#[test]
fn int8_tensors_outside_int8_layers() {
    let mut file = RawFile::valid();
    file.extra_json =
        "\"top.0.acc_scale\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}".into();
    assert_tensor_rule(&file, Rule::UnexpectedTensor, "top.0.acc_scale");
    for name in [
        "emb.0.acc_scale",
        "emb.0.input_zero",
        "top.0.scale",
        "top.2.acc_scale",
    ] {
        let mut file = RawFile::valid_v2();
        file.extra_json =
            format!("\"{name}\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
        assert_tensor_rule(&file, Rule::UnexpectedTensor, name);
    }
}

#[test]
fn int8_layer_tensors_are_required() {
    for name in [
        "top.0.acc_scale",
        "top.1.input_inv_scale",
        "bottom.0.input_zero",
        "bottom.0.bias",
        "emb.1.offset",
    ] {
        let mut file = RawFile::valid_v2();
        file.entries.retain(|e| e.name != name);
        file.lay_out();
        assert_tensor_rule(&file, Rule::MissingTensor, name);
    }
}
