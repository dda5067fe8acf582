//! Writer -> reader round trips, and atomic writes.

use mlet_formats::writer::{ModelWriter, OwnedTensor, RandomModel, WriteError};
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype, MlpDtype, ModelFile, Rule};

fn config(emb: EmbeddingDtype) -> Config {
    Config::new(
        &[5, 1, 7],
        3,
        &[4, 8, 3],
        &[6, 1],
        DenseTransform::Log1p,
        emb,
    )
    .unwrap()
}

#[test]
fn every_tensor_round_trips_byte_for_byte() {
    for emb in [
        EmbeddingDtype::F32,
        EmbeddingDtype::F16,
        EmbeddingDtype::Int8,
        EmbeddingDtype::Int4,
    ] {
        for (mlp_dtype, per_row, scale_dtype) in [
            (Dtype::F32, true, Dtype::F16),
            (Dtype::F16, false, Dtype::F32),
            (Dtype::I8, true, Dtype::F32),
        ] {
            let mut config = config(emb);
            if mlp_dtype == Dtype::I8 {
                config = config.with_mlp_dtype(MlpDtype::Int8).unwrap();
            }
            let model = RandomModel {
                config,
                mlp_dtype,
                int8_per_row: per_row,
                int8_scale_dtype: scale_dtype,
                seed: 7,
            };
            let mut writer = model.writer();
            writer.info("mlet_k", 64).unwrap();
            let bytes = writer.to_bytes().unwrap();
            let file = ModelFile::parse(&bytes).unwrap();
            assert_eq!(file.config(), &config);
            assert_eq!(file.metadata("mlet_k"), Some("64"));
            assert_eq!(file.metadata("embedding_dtype"), Some(emb.as_str()));
            // Version 2 only when a v2 feature is used, and then with its mlp_dtype stated.
            let v2 = emb == EmbeddingDtype::Int4 || mlp_dtype == Dtype::I8;
            assert_eq!(
                file.metadata("format_version"),
                Some(if v2 { "2" } else { "1" })
            );
            let mlp = v2.then_some(if mlp_dtype == Dtype::I8 {
                "int8"
            } else {
                "f32"
            });
            assert_eq!(file.metadata("mlp_dtype"), mlp);
            for (name, tensor) in writer.tensors() {
                let parts: Vec<&str> = name.split('.').collect();
                let index: usize = parts[1].parse().unwrap();
                let layer = match parts[0] {
                    "bottom" => file.bottom_layer(index),
                    _ => file.top_layer(index),
                };
                let stored = match (parts[0], parts[2]) {
                    ("emb", "weight") => file.table(index).weight,
                    ("emb", "scale") => file.table(index).scale.unwrap(),
                    ("emb", "offset") => file.table(index).offset.unwrap(),
                    (_, "weight") => layer.weight,
                    (_, "bias") => layer.bias,
                    (_, "acc_scale") => layer.int8.unwrap().acc_scale,
                    (_, "input_inv_scale") => layer.int8.unwrap().input_inv_scale,
                    _ => layer.int8.unwrap().input_zero,
                };
                assert_eq!(stored.dtype, tensor.dtype(), "{name}");
                assert_eq!(stored.bytes, tensor.bytes(), "{name}");
            }
            // Alignment rule: F32 first, then F16, then U8, so every tensor is aligned.
            assert_eq!((bytes.len() - file.data_len()) % 8, 0);
        }
    }
}

#[test]
fn the_reader_accepts_unaligned_buffers() {
    let bytes = RandomModel::new(config(EmbeddingDtype::F32))
        .writer()
        .to_bytes()
        .unwrap();
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let file = ModelFile::parse(&shifted[1..]).unwrap();
    assert_eq!(file.config(), &config(EmbeddingDtype::F32));
}

#[test]
fn reserved_keys_are_refused() {
    let mut writer = ModelWriter::new(&config(EmbeddingDtype::F32));
    for key in ["dim", "format_version", "mlp_dtype"] {
        assert!(matches!(writer.info(key, 4), Err(WriteError::ReservedKey(k)) if k == key));
    }
}

#[test]
fn invalid_models_are_not_written() {
    let dir = std::env::temp_dir().join(format!("mlet-writer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    std::fs::write(&path, b"old content").unwrap();
    let mut writer = RandomModel::new(config(EmbeddingDtype::F32)).writer();
    writer.tensor("top.0.bias", OwnedTensor::f32(&[6], &[0.0; 6]));
    match writer.write(&path) {
        Err(WriteError::Invalid(e)) => assert_eq!(e.rule, Rule::DuplicateTensor),
        Err(WriteError::Serialize(_)) => {}
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"old content");

    let good = RandomModel::new(config(EmbeddingDtype::F32)).writer();
    let bytes = good.write(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "model.safetensors")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn int4_rows_pack_two_codes_a_byte() {
    // d = 3: 2 bytes a row, the last high nibble written 0.
    let model = RandomModel::new(config(EmbeddingDtype::Int4));
    let bytes = model.writer().to_bytes().unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    let weight = file.table(2).weight;
    assert_eq!(weight.bytes.len(), 7 * 2);
    assert!(weight.bytes.chunks(2).all(|row| row[1] >> 4 == 0));
}
