//! Reader edge cases: empty fields, short and long lines, bad hex, CRLF, header only, empty
//! files, the unlabeled layout, and skipping malformed lines.

mod common;

use mlet_formats::ids::fnv1a32;
use mlet_trainer::data::{Batch, BatchStream, DataSpec, ReadOptions};

use common::{temp, temp_file};

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
    mlet_trainer::data::write_criteo_tsv(&path, 300, 4, 8).unwrap();
    let from_file = read_all(&DataSpec::Criteo(path), TRAIN).unwrap().0;
    let direct = read_all(
        &DataSpec::Synthetic {
            rows: 300,
            seed: 4,
            rank: 8,
        },
        TRAIN,
    )
    .unwrap()
    .0;
    assert_eq!(from_file, direct);
}
