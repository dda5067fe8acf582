//! Reader edge cases: empty fields, short and long lines, bad hex, CRLF, header only, empty
//! files, the unlabeled layout, and skipping malformed lines; for csv:, tsv: and parquet: also
//! quoting, byte order marks, column order, nulls of every type, every codec, part folders, and
//! errors that name the file, the line or row group and row, the column and the value.

mod common;

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema};
use mlet_formats::ids::fnv1a32;
use mlet_trainer::data::{Batch, BatchStream, ColumnSchema, DataSpec, ReadOptions, Vocab};
use parquet::basic::{BrotliLevel, Compression, GzipLevel, ZstdLevel};

use common::{temp, temp_file, write_parquet};

const TRAIN: ReadOptions = ReadOptions {
    skip_bad_lines: false,
    require_labels: true,
};

fn read_all(spec: &DataSpec, options: ReadOptions) -> anyhow::Result<(Batch, u64)> {
    let mut stream = BatchStream::spawn(spec, options, 0..u64::MAX, 3)?;
    let mut all = Batch::default();
    while let Some(b) = stream.next_batch()? {
        all.dense.extend(b.dense);
        all.ids.extend(b.ids);
        all.labels.extend(b.labels);
        all.carried.extend(b.carried);
    }
    Ok((all, stream.bad_lines()))
}

fn error_of(spec: &DataSpec, options: ReadOptions) -> String {
    match read_all(spec, options) {
        Ok(_) => panic!("{spec} should not read"),
        Err(e) => format!("{e:#}"),
    }
}

/// A Criteo line: label, 13 ints, 26 tokens.
fn criteo_line(label: &str, ints: &[&str; 13], token: &str) -> String {
    let mut fields = vec![label.to_string()];
    fields.extend(ints.iter().map(|s| s.to_string()));
    fields.extend((0..26).map(|_| token.to_string()));
    fields.join("\t")
}

const INTS: [&str; 13] = [
    "1", "-2", "", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13",
];

#[test]
fn criteo_empty_fields_are_zero() {
    let empty = criteo_line("1", &[""; 13], "");
    let full = criteo_line("0", &INTS, "68fd1e64");
    let path = temp_file("empty.tsv", format!("{empty}\n{full}\n"));
    let (b, _) = read_all(&DataSpec::Criteo(path), TRAIN).unwrap();
    assert_eq!(b.labels, vec![1.0, 0.0]);
    assert!(b.dense[..13].iter().all(|&v| v == 0.0));
    assert!(b.ids[..26].iter().all(|&v| v == 0));
    assert_eq!(&b.dense[13..16], &[1.0, -2.0, 0.0]);
    assert!(b.ids[26..].iter().all(|&v| v == 0x68fd_1e64));
}

#[test]
fn criteo_crlf_reads_like_lf() {
    let lines = [
        criteo_line("0", &INTS, "0000000a"),
        criteo_line("1", &INTS, ""),
    ];
    let lf = temp_file("lf.tsv", format!("{}\n{}\n", lines[0], lines[1]));
    let crlf = temp_file("crlf.tsv", format!("{}\r\n{}\r\n", lines[0], lines[1]));
    let no_newline = temp_file("nonl.tsv", format!("{}\n{}", lines[0], lines[1]));
    let a = read_all(&DataSpec::Criteo(lf), TRAIN).unwrap().0;
    assert_eq!(a.len(), 2);
    assert_eq!(
        a,
        read_all(&DataSpec::Criteo(crlf.clone()), TRAIN).unwrap().0
    );
    assert_eq!(a, read_all(&DataSpec::Criteo(no_newline), TRAIN).unwrap().0);
    assert_eq!(DataSpec::Criteo(crlf).count_rows().unwrap(), 2);
}

#[test]
fn criteo_malformed_lines_name_file_line_and_column() {
    let good = criteo_line("0", &INTS, "68fd1e64");
    let cases = [
        (
            "short",
            format!("{good}\n{}\n", good.rsplit_once('\t').unwrap().0),
            "line 2: expected 40",
        ),
        (
            "long",
            format!("{good}\n{good}\textra\n"),
            "line 2: expected 40",
        ),
        (
            "first-short",
            "1\t2\t3\n".to_string(),
            "line 1: expected 40 tab-separated fields (39 without a label), found 3",
        ),
        (
            "badhex",
            format!(
                "{good}\n{good}\n{}\n",
                good.replacen("68fd1e64", "68fd1e6g", 1)
            ),
            "line 3: column 15 (C1): `68fd1e6g` is neither empty nor 8 hex digits",
        ),
        (
            "shorthex",
            format!("{}\n", good.replacen("68fd1e64", "68fd1e6", 2)),
            "line 1: column 15 (C1)",
        ),
        (
            "badint",
            format!(
                "{}\n",
                criteo_line(
                    "0",
                    &["1", "x1", "", "", "", "", "", "", "", "", "", "", ""],
                    ""
                )
            ),
            "line 1: column 3 (I2): `x1` is not an integer",
        ),
        (
            "badlabel",
            format!("{}\n", criteo_line("2", &INTS, "")),
            "line 1: column 1 (label): label `2` is not 0 or 1",
        ),
        (
            "blank",
            format!("{good}\n\n{good}\n"),
            "line 2: expected 40",
        ),
    ];
    for (name, content, expected) in cases {
        let path = temp_file(&format!("{name}.tsv"), &content);
        let message = error_of(&DataSpec::Criteo(path.clone()), TRAIN);
        assert!(
            message.contains(&path.display().to_string()),
            "{name}: {message}"
        );
        assert!(
            message.contains(expected),
            "{name}: `{message}` lacks `{expected}`"
        );
    }
}

#[test]
fn skip_bad_lines_counts_them() {
    let good = criteo_line("1", &INTS, "68fd1e64");
    let bad = good.replacen("68fd1e64", "zz", 1);
    let path = temp_file("skip.tsv", format!("{good}\n{bad}\n{good}\n1\t2\n{good}\n"));
    let options = ReadOptions {
        skip_bad_lines: true,
        require_labels: true,
    };
    let (b, bad_lines) = read_all(&DataSpec::Criteo(path), options).unwrap();
    assert_eq!((b.len(), bad_lines), (3, 2));
}

#[test]
fn criteo_unlabeled_layout_scores_but_does_not_train() {
    let line = criteo_line("0", &INTS, "68fd1e64");
    let unlabeled = line.split_once('\t').unwrap().1.to_string();
    let path = temp_file("test.tsv", format!("{unlabeled}\n{unlabeled}\n"));
    let spec = DataSpec::Criteo(path);
    let (b, _) = read_all(&spec, ReadOptions::default()).unwrap();
    assert_eq!(b.len(), 2);
    assert!(b.labels.iter().all(|l| l.is_nan()));
    assert_eq!(&b.dense[..2], &[1.0, -2.0]);
    assert!(error_of(&spec, TRAIN).contains("no label"));
}

#[test]
fn empty_and_header_only_files() {
    let empty = temp_file("empty.csv", "");
    assert_eq!(
        read_all(&DataSpec::Criteo(empty.clone()), TRAIN)
            .unwrap()
            .0
            .len(),
        0
    );
    assert!(error_of(&DataSpec::Avazu(empty), TRAIN).contains("line 1: the file is empty"));
    let header = "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21";
    let only = temp_file("header.csv", format!("{header}\n"));
    assert_eq!(
        read_all(&DataSpec::Avazu(only.clone()), TRAIN)
            .unwrap()
            .0
            .len(),
        0
    );
    assert_eq!(DataSpec::Avazu(only.clone()).count_rows().unwrap(), 0);
    let settings = mlet_trainer::train::TrainSettings::new(DataSpec::Avazu(only));
    let e = mlet_trainer::train::plan(&settings).unwrap_err();
    assert!(format!("{e:#}").contains("no training rows"), "{e:#}");
}

#[test]
fn avazu_rows_and_errors() {
    let header = "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21";
    let row = "1000009418151094273,1,14102117,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,a99f214a,ddd2926e,44956a24,1,2,15706,320,50,1722,0,35,-1,79";
    let path = temp_file("ok.csv", format!("{header}\r\n{row}\r\n"));
    let (b, _) = read_all(&DataSpec::Avazu(path), TRAIN).unwrap();
    assert_eq!((b.labels.clone(), b.dense.clone()), (vec![1.0], vec![17.0]));
    assert_eq!(b.ids.len(), 21);
    assert_eq!(
        (b.ids[0], b.ids[2], b.ids[20]),
        (fnv1a32(b"1005"), fnv1a32(b"1fbe01fe"), fnv1a32(b"79"))
    );

    let cases = [
        (
            "badhour",
            format!("{header}\n{}\n", row.replace("14102117", "141021")),
            "line 2: column 3 (hour)",
        ),
        (
            "hour24",
            format!("{header}\n{}\n", row.replace("14102117", "14102124")),
            "line 2: column 3 (hour)",
        ),
        (
            "short",
            format!("{header}\n{row}\n{}\n", row.rsplit_once(',').unwrap().0),
            "line 3: expected 24 comma-separated fields",
        ),
        (
            "click",
            format!("{header}\n{}\n", row.replacen(",1,", ",yes,", 1)),
            "line 2: column 2 (click)",
        ),
        (
            "nocol",
            format!("{}\n{row}\n", header.replace("site_id", "site")),
            "line 1: the header has no `site_id` column",
        ),
    ];
    for (name, content, expected) in cases {
        let path = temp_file(&format!("{name}.csv"), &content);
        let message = error_of(&DataSpec::Avazu(path), TRAIN);
        assert!(
            message.contains(expected),
            "{name}: `{message}` lacks `{expected}`"
        );
    }
}

#[test]
fn synthetic_tsv_round_trips_through_the_criteo_reader() {
    let path = temp("synth.tsv");
    mlet_trainer::data::write_criteo_tsv(&path, 300, 4, 8, Vocab::Default).unwrap();
    let from_file = read_all(&DataSpec::Criteo(path), TRAIN).unwrap().0;
    let direct = read_all(
        &DataSpec::Synthetic {
            rows: 300,
            seed: 4,
            rank: 8,
            vocab: Vocab::Default,
        },
        TRAIN,
    )
    .unwrap()
    .0;
    assert_eq!(from_file, direct);
}

/// `spec` (`csv:PATH` and the like) with the schema `json` attached.
fn with_schema(spec: &str, json: &str) -> anyhow::Result<DataSpec> {
    let schema = ColumnSchema::from_json(json).unwrap();
    spec.parse::<DataSpec>().unwrap().with_schema(&schema, true)
}

const SCHEMA: &str = r#"{"label":"y","positive":["yes"],"dense":["n"],"categorical":["c","d"]}"#;

#[test]
fn csv_and_tsv_read_by_column_names() {
    // Columns in another order, an extra column, a BOM, CRLF, quotes around a comma, a quote
    // and a line break, and empty (missing) values.
    let csv = "\u{feff}extra,c,n,\"y\",d\r\n\
               x,\"a,b\",1.5,yes,\"say \"\"hi\"\"\"\r\n\
               x,\"two\nlines\",,no,\r\n\
               x,plain, -3 ,yes,d\r\n";
    let path = temp_file("order.csv", csv);
    let spec = with_schema(&format!("csv:{}", path.display()), SCHEMA).unwrap();
    let (b, _) = read_all(&spec, TRAIN).unwrap();
    assert_eq!(b.labels, vec![1.0, 0.0, 1.0]);
    assert_eq!(b.dense, vec![1.5, 0.0, -3.0]);
    assert_eq!(
        b.ids,
        vec![
            fnv1a32(b"a,b"),
            fnv1a32(b"say \"hi\""),
            fnv1a32(b"two\nlines"),
            fnv1a32(b""),
            fnv1a32(b"plain"),
            fnv1a32(b"d"),
        ]
    );
    assert_eq!(spec.count_rows().unwrap(), 3);
    // The same rows as TSV, columns in the schema's order, LF and no BOM.
    let tsv = "y\tn\tc\td\nyes\t1.5\ta,b\t\"say \"\"hi\"\"\"\nno\t\t\"two\nlines\"\t\nyes\t-3\tplain\td\n";
    let path = temp_file("order.tsv", tsv);
    let spec = with_schema(&format!("tsv:{}", path.display()), SCHEMA).unwrap();
    assert_eq!(read_all(&spec, TRAIN).unwrap().0, b);
    // Header only: no rows.
    let path = temp_file("header-only.csv", "y,n,c,d\n");
    let spec = with_schema(&format!("csv:{}", path.display()), SCHEMA).unwrap();
    assert_eq!(read_all(&spec, TRAIN).unwrap().0.len(), 0);
    assert_eq!(spec.count_rows().unwrap(), 0);
}

#[test]
fn delimited_errors_name_file_line_column_and_value() {
    let header = "y,n,c,d";
    let cases = [
        (
            "notnum",
            "yes,1,a,b\nno,abc,a,b\n",
            "line 3: column 2 (n): dense value `abc` is not a number",
        ),
        (
            "nan",
            "yes,nan,a,b\n",
            "line 2: column 2 (n): dense value `nan` is not finite",
        ),
        (
            "nolabel",
            "yes,1,a,b\n,1,a,b\n",
            "line 3: column 1 (y): the label is missing",
        ),
        (
            "fields",
            "yes,1,a\n",
            "line 2: expected 4 fields like the header, found 3",
        ),
        // A record that spans lines is reported at the line where it starts.
        (
            "spans",
            "yes,1,\"a\nb\",b\nyes,x,a,b\n",
            "line 4: column 2 (n)",
        ),
    ];
    for (name, rows, expected) in cases {
        let path = temp_file(&format!("{name}.csv"), format!("{header}\n{rows}"));
        let spec = with_schema(&format!("csv:{}", path.display()), SCHEMA).unwrap();
        let message = error_of(&spec, TRAIN);
        assert!(
            message.contains(&path.display().to_string()),
            "{name}: {message}"
        );
        assert!(
            message.contains(expected),
            "{name}: `{message}` lacks `{expected}`"
        );
    }
    // Without `positive`, a label must be 0/1 or true/false.
    let path = temp_file("label.csv", "y,n,c,d\ntrue,1,a,b\nmaybe,1,a,b\n");
    let spec = with_schema(
        &format!("csv:{}", path.display()),
        r#"{"label":"y","dense":["n"],"categorical":["c"]}"#,
    )
    .unwrap();
    let message = error_of(&spec, TRAIN);
    assert!(
        message.contains("line 3: column 1 (y): label `maybe` is neither 0/1 nor true/false"),
        "{message}"
    );
    let skipping = ReadOptions {
        skip_bad_lines: true,
        require_labels: true,
    };
    assert_eq!(read_all(&spec, skipping).unwrap().1, 1);
    // Columns: missing, named twice, a pattern that matches nothing; the file empty.
    let spec_of = |content: &str, json: &str| {
        let path = temp_file("columns.csv", content);
        let spec = format!("csv:{}", path.display());
        format!("{:#}", with_schema(&spec, json).unwrap_err())
    };
    let missing = spec_of("y,n,c\n", SCHEMA);
    assert!(
        missing.contains("columns.csv") && missing.contains("no column `d`"),
        "{missing}"
    );
    let twice = spec_of("y,n,c,d,c\n", SCHEMA);
    assert!(
        twice.contains("column `c` appears more than once (columns 3 and 5)"),
        "{twice}"
    );
    let pattern = spec_of(
        "y,n,c\n",
        r#"{"label":"y","dense":["q*"],"categorical":["c"]}"#,
    );
    assert!(
        pattern.contains("pattern `q*` matches no column"),
        "{pattern}"
    );
    let empty = spec_of("", SCHEMA);
    assert!(empty.contains("line 1: the file is empty"), "{empty}");
    // A spec without a schema says how to give one.
    let bare: DataSpec = "csv:x.csv".parse().unwrap();
    let message = format!("{:#}", bare.schema().unwrap_err());
    assert!(
        message
            .contains("csv:x.csv needs a schema: --schema FILE or --label/--dense/--categorical"),
        "{message}"
    );
}

/// A table with every kind of column and a null in each: label (strings), dense Int32,
/// Float64, Boolean and string columns, categorical string, Int64, Boolean, UInt8 and binary
/// columns, and an extra column.
fn typed_batch() -> RecordBatch {
    let fields = vec![
        Field::new("extra", DataType::Float64, true),
        Field::new("y", DataType::Utf8, true),
        Field::new("n_int", DataType::Int32, true),
        Field::new("n_float", DataType::Float64, true),
        Field::new("n_bool", DataType::Boolean, true),
        Field::new("n_text", DataType::Utf8, true),
        Field::new("c_text", DataType::Utf8, true),
        Field::new("c_int", DataType::Int64, true),
        Field::new("c_bool", DataType::Boolean, true),
        Field::new("c_small", DataType::UInt8, true),
        Field::new("c_bytes", DataType::Binary, true),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(vec![Some(0.5), None, Some(2.0)])),
        Arc::new(StringArray::from(vec![Some("1"), Some("0"), Some("true")])),
        Arc::new(Int32Array::from(vec![Some(-4), None, Some(7)])),
        Arc::new(Float64Array::from(vec![Some(0.1), Some(2.5), None])),
        Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
        Arc::new(StringArray::from(vec![Some("3.25"), None, Some(" 8 ")])),
        Arc::new(StringArray::from(vec![Some("a"), None, Some("a")])),
        Arc::new(Int64Array::from(vec![Some(-12), Some(0), None])),
        Arc::new(BooleanArray::from(vec![None, Some(true), Some(false)])),
        Arc::new(UInt8Array::from(vec![Some(255), None, Some(1)])),
        Arc::new(BinaryArray::from(vec![
            Some(&b"\xff\x00"[..]),
            Some(b"b"),
            None,
        ])),
    ];
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

const TYPED: &str = r#"{"label":"y","dense":["n_*"],"categorical":["c_*"]}"#;

/// The rows of [`typed_batch`] as a CSV file writes them (nulls empty).
const TYPED_CSV: &str = "extra,y,n_int,n_float,n_bool,n_text,c_text,c_int,c_bool,c_small,c_bytes\n\
                         0.5,1,-4,0.1,1,3.25,a,-12,,255,B\n\
                         ,0,,2.5,,,,0,true,,b\n\
                         2,true,7,,0, 8 ,a,,false,1,\n";

#[test]
fn parquet_reads_like_csv_with_nulls_types_dictionaries_and_every_codec() {
    let csv = temp_file("typed.csv", TYPED_CSV);
    let (from_csv, _) = read_all(
        &with_schema(&format!("csv:{}", csv.display()), TYPED).unwrap(),
        TRAIN,
    )
    .unwrap();
    let codecs = [
        Compression::UNCOMPRESSED,
        Compression::SNAPPY,
        Compression::ZSTD(ZstdLevel::default()),
        Compression::GZIP(GzipLevel::default()),
        Compression::BROTLI(BrotliLevel::default()),
        Compression::LZ4_RAW,
    ];
    for (k, codec) in codecs.into_iter().enumerate() {
        let path = temp(&format!("typed-{k}.parquet"));
        write_parquet(&path, &typed_batch(), codec, 2);
        let spec = with_schema(&format!("parquet:{}", path.display()), TYPED).unwrap();
        assert_eq!(spec.count_rows().unwrap(), 3);
        let (b, _) = read_all(&spec, TRAIN).unwrap();
        assert_eq!(b.labels, vec![1.0, 0.0, 1.0], "{codec:?}");
        assert_eq!(
            b.dense,
            vec![-4.0, 0.1, 1.0, 3.25, 0.0, 2.5, 0.0, 0.0, 7.0, 0.0, 0.0, 8.0]
        );
        let ids = |texts: [&[u8]; 5]| texts.map(fnv1a32).to_vec();
        let expected = [
            ids([b"a", b"-12", b"", b"255", b"\xff\x00"]),
            ids([b"", b"0", b"true", b"", b"b"]),
            ids([b"a", b"", b"false", b"1", b""]),
        ]
        .concat();
        assert_eq!(b.ids, expected, "{codec:?}");
        // The CSV copy differs only in the binary value it cannot hold.
        let mut csv_ids = from_csv.ids.clone();
        csv_ids[4] = fnv1a32(b"\xff\x00");
        assert_eq!(
            (&from_csv.labels, &from_csv.dense, &csv_ids),
            (&b.labels, &b.dense, &b.ids)
        );
    }
}

#[test]
fn parquet_errors_name_file_row_group_row_and_column() {
    let batch = typed_batch();
    let with_column = |name: &str, column: ArrayRef| {
        let mut columns = batch.columns().to_vec();
        let i = batch.schema().index_of(name).unwrap();
        columns[i] = column;
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[i] = Field::new(name, columns[i].data_type().clone(), true);
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    };
    let cases = [
        (
            "null-label",
            with_column(
                "y",
                Arc::new(StringArray::from(vec![Some("1"), Some("0"), None])),
            ),
            "row group 1, row 0: column 2 (y): the label is missing",
        ),
        (
            "bad-label",
            with_column(
                "y",
                Arc::new(StringArray::from(vec![Some("1"), Some("2"), Some("1")])),
            ),
            "row group 0, row 1: column 2 (y): label `2` is neither 0/1 nor true/false",
        ),
        (
            "bad-dense",
            with_column(
                "n_text",
                Arc::new(StringArray::from(vec![Some("1"), Some("1"), Some("x1")])),
            ),
            "row group 1, row 0: column 6 (n_text): dense value `x1` is not a number",
        ),
        (
            "inf-dense",
            with_column(
                "n_float",
                Arc::new(Float64Array::from(vec![
                    Some(1.0),
                    Some(f64::INFINITY),
                    None,
                ])),
            ),
            "row group 0, row 1: column 4 (n_float): dense value inf is not finite",
        ),
    ];
    for (name, batch, expected) in cases {
        let path = temp(&format!("{name}.parquet"));
        write_parquet(&path, &batch, Compression::SNAPPY, 2);
        let spec = with_schema(&format!("parquet:{}", path.display()), TYPED).unwrap();
        let message = error_of(&spec, TRAIN);
        assert!(
            message.contains(&path.display().to_string()),
            "{name}: {message}"
        );
        assert!(
            message.contains(expected),
            "{name}: `{message}` lacks `{expected}`"
        );
        let skipping = ReadOptions {
            skip_bad_lines: true,
            require_labels: true,
        };
        let (b, bad) = read_all(&spec, skipping).unwrap();
        assert_eq!((b.len(), bad), (2, 1), "{name}");
    }
    // Refused up front: a float categorical column, a missing column.
    let path = temp("float-cat.parquet");
    write_parquet(&path, &batch, Compression::SNAPPY, 2);
    let spec = format!("parquet:{}", path.display());
    let float = with_schema(
        &spec,
        r#"{"label":"y","dense":["n_int"],"categorical":["extra"]}"#,
    )
    .unwrap();
    let message = error_of(&float, TRAIN);
    assert!(
        message.contains("column 1 (extra) is a float column and cannot be categorical"),
        "{message}"
    );
    let missing = format!(
        "{:#}",
        with_schema(
            &spec,
            r#"{"label":"y","dense":["zz"],"categorical":["c_int"]}"#
        )
        .unwrap_err()
    );
    assert!(missing.contains("no column `zz`"), "{missing}");
    // Not Parquet, truncated, empty: errors naming the file.
    let bytes = std::fs::read(&path).unwrap();
    for (name, content) in [
        ("text.parquet", b"label,x\n1,2\n".to_vec()),
        ("cut.parquet", bytes[..bytes.len() / 2].to_vec()),
        ("empty.parquet", Vec::new()),
    ] {
        let path = temp_file(name, content);
        let message = format!(
            "{:#}",
            with_schema(&format!("parquet:{}", path.display()), TYPED).unwrap_err()
        );
        assert!(
            message.contains(&path.display().to_string())
                && message.contains("not a readable Parquet file"),
            "{name}: {message}"
        );
    }
    // Damaged pages (the footer intact): an error naming the file, from the footer's checks or
    // from reading, never a panic.
    let mut damaged = bytes.clone();
    for b in &mut damaged[4..bytes.len() / 2] {
        *b = 0xa5;
    }
    let path = temp_file("damaged.parquet", damaged);
    let message = match with_schema(&format!("parquet:{}", path.display()), TYPED) {
        Ok(spec) => error_of(&spec, TRAIN),
        Err(e) => format!("{e:#}"),
    };
    assert!(message.contains("damaged.parquet"), "{message}");
}

#[test]
fn parquet_folders_read_parts_in_order_and_ranges_skip_row_groups() {
    let dir = temp("parts");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = typed_batch();
    write_parquet(&dir.join("part-1.parquet"), &batch, Compression::SNAPPY, 1);
    write_parquet(
        &dir.join("part-0.parquet"),
        &batch.slice(0, 2),
        Compression::ZSTD(ZstdLevel::default()),
        1,
    );
    std::fs::write(dir.join("_SUCCESS"), "").unwrap();
    std::fs::write(dir.join(".part-0.parquet.crc"), "xx").unwrap();
    let spec = with_schema(&format!("parquet:{}", dir.display()), TYPED).unwrap();
    assert_eq!(spec.count_rows().unwrap(), 5);
    let (all, _) = read_all(&spec, TRAIN).unwrap();
    assert_eq!(all.labels, vec![1.0, 0.0, 1.0, 0.0, 1.0]);
    // Every range reads exactly those rows, whether it starts inside a row group or not.
    for start in 0..5u64 {
        let mut stream = BatchStream::spawn(&spec, TRAIN, start..4, 2).unwrap();
        let mut dense = Vec::new();
        while let Some(b) = stream.next_batch().unwrap() {
            dense.extend(b.dense);
        }
        assert_eq!(
            dense,
            all.dense[start.min(4) as usize * 4..16],
            "from row {start}"
        );
    }
}
