//! The built `mlet` binary on bad inputs and settings: each case must exit non-zero with a
//! message that names what is wrong and where, print no panic, and leave every file that
//! existed before it (data, models, checkpoints, an earlier output) exactly as it was.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{mlet, temp};

/// A folder of fixtures: synthetic rows, a trained model, a checkpoint, an earlier output, and
/// broken variants of each.
struct Fixtures {
    dir: PathBuf,
}

impl Fixtures {
    /// The fixtures in a folder of their own, `name`.
    fn new(name: &str) -> Fixtures {
        let dir = temp(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = Fixtures { dir };
        let data = f.path("rows.tsv");
        let (ok, _, err) = mlet(&["synth", "--rows", "2000", "--seed", "4", "--out", s(&data)]);
        assert!(ok, "{err}");
        let (ok, _, err) = mlet(&[
            "train",
            "--data",
            &f.criteo("rows.tsv"),
            "--dim",
            "4",
            "--bottom",
            "8",
            "--top",
            "8",
            "--rows",
            "64",
            "--batch",
            "100",
            "--out",
            s(&f.path("model.mlet")),
            "--checkpoint",
            s(&f.path("run.ckpt")),
            "--checkpoint-every",
            "10",
        ]);
        assert!(ok, "{err}");
        std::fs::write(f.path("earlier.mlet"), b"an earlier model, to be kept").unwrap();
        std::fs::write(f.path("notes.txt"), b"not a model\n").unwrap();
        std::fs::write(f.path("empty.mlet"), b"").unwrap();
        std::fs::create_dir_all(f.path("a-folder")).unwrap();
        let fifo = f.path("fifo");
        let made = Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());

        let model = std::fs::read(f.path("model.mlet")).unwrap();
        let header_len = u64::from_le_bytes(model[..8].try_into().unwrap()) as usize;
        let mut long_header = model.clone();
        long_header[..8].copy_from_slice(&(model.len() as u64 * 2).to_le_bytes());
        std::fs::write(f.path("long-header.mlet"), long_header).unwrap();
        std::fs::write(f.path("truncated.mlet"), &model[..model.len() - 100]).unwrap();
        let mut bad_json = model.clone();
        bad_json[8] = b'[';
        std::fs::write(f.path("bad-json.mlet"), bad_json).unwrap();
        let header = String::from_utf8(model[8..8 + header_len].to_vec()).unwrap();
        let renamed = header.replacen("\"emb.0.weight\"", "\"emb.0.wxight\"", 1);
        let mut mutated = model[..8].to_vec();
        mutated.extend_from_slice(renamed.as_bytes());
        mutated.extend_from_slice(&model[8 + header_len..]);
        std::fs::write(f.path("renamed-tensor.mlet"), mutated).unwrap();

        let line = |label: &str, token: &str| {
            let mut fields = vec![label.to_string()];
            fields.extend((0..13).map(|i| i.to_string()));
            fields.extend((0..26).map(|_| token.to_string()));
            fields.join("\t")
        };
        let good = line("1", "68fd1e64");
        std::fs::write(
            f.path("bad-hex.tsv"),
            format!("{good}\n{}\n", line("0", "68fd1e6g")),
        )
        .unwrap();
        std::fs::write(f.path("short.tsv"), format!("{good}\n1\t2\t3\n")).unwrap();
        std::fs::write(
            f.path("bad-label.tsv"),
            format!("{}\n", line("2", "68fd1e64")),
        )
        .unwrap();
        let unlabeled = line("", "68fd1e64").split_once('\t').unwrap().1.to_string();
        std::fs::write(f.path("unlabeled.tsv"), format!("{unlabeled}\n")).unwrap();
        std::fs::write(f.path("no-hour.csv"), "id,click,C1\n1,0,5\n").unwrap();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn criteo(&self, name: &str) -> String {
        format!("criteo:{}", self.path(name).display())
    }

    /// Every file in the folder with its bytes.
    fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        files.sort();
        files
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `args` and checks the failure: non-zero exit, every one of `expect` in the message, no
/// panic, no file of the fixtures changed, added or removed.
fn fails(f: &Fixtures, args: &[&str], expect: &[&str]) {
    let before = f.snapshot();
    let (ok, _, err) = mlet(args);
    assert!(!ok, "mlet {args:?} should fail");
    assert!(!err.contains("panicked"), "mlet {args:?} panicked: {err}");
    for e in expect {
        assert!(err.contains(e), "mlet {args:?}: `{e}` not in: {err}");
    }
    assert!(
        before == f.snapshot(),
        "mlet {args:?} changed a file in {}",
        f.dir.display()
    );
}

#[test]
fn bad_inputs_get_clear_errors_and_change_nothing() {
    let f = Fixtures::new("bad-inputs");
    let rows = f.criteo("rows.tsv");
    let earlier = f.path("earlier.mlet");
    let train_on = |data: &str, extra: &[&str]| -> Vec<String> {
        let mut a = vec!["train", "--data", data];
        a.extend(extra);
        a.into_iter().map(String::from).collect()
    };
    let train = |extra: &[&str]| train_on(&rows, extra);
    let check = |args: Vec<String>, expect: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&f, &args, expect);
    };
    let mut cases = 0;
    let mut case = |args: Vec<String>, expect: &[&str]| {
        check(args, expect);
        cases += 1;
    };

    // Settings, refused before any work.
    for (flag, value, says) in [
        ("--lr", "nan", "finite number above 0"),
        ("--lr", "0", "finite number above 0"),
        ("--lr", "-1", "finite number above 0"),
        ("--lr", "inf", "finite number above 0"),
        ("--dim", "0", "must be 1 to 65536"),
        ("--batch", "0", "must be 1 to"),
        ("--epochs", "0", "must be 1 to"),
        ("--rows", "0", "must be 1 to"),
        ("--mlet-k", "0", "must be 1 to 65536"),
        ("--mlet-init-scale", "nan", "finite number above 0"),
        ("--val-fraction", "1.5", "between 0 and 1"),
        ("--bottom", "64-x", "`x` in `64-x`"),
        ("--optimizer", "adam", "possible values: sgd, adagrad"),
        ("--dtype", "int3", "possible values"),
        ("--eval-every", "0", "--eval-every"),
    ] {
        let value = format!("{flag}={value}");
        case(train(&[&value]), &[flag, says]);
    }
    case(
        train(&["--eval-every", "10"]),
        &["--eval-every needs validation data"],
    );
    // A model larger than the machine's free memory is refused before anything is allocated:
    // MLET k=4096 at Criteo's table sizes holds 553 GB of n x k tables.
    case(
        train_on(
            "synthetic:1000:1",
            &[
                "--table-rows",
                "criteo",
                "--dim",
                "64",
                "--mlet-k",
                "4096",
                "--out",
                s(&earlier),
            ],
        ),
        &["this run needs about", "available", "--table-rows"],
    );

    // A run that diverges stops, naming the step, and keeps the earlier output.
    case(
        train(&[
            "--dim",
            "4",
            "--bottom",
            "8",
            "--top",
            "8",
            "--lr",
            "1e30",
            "--out",
            s(&earlier),
        ]),
        &[
            "training diverged at step",
            "last finite loss",
            "try a lower --lr",
        ],
    );

    // Outputs that are not regular files, or cannot be written, before training starts.
    case(
        train(&["--out", "/dev/full"]),
        &["--out /dev/full", "a device"],
    );
    case(
        train(&["--out", s(&f.path("a-folder"))]),
        &["--out", "a folder, not a regular file"],
    );
    case(train(&["--out", s(&f.path("fifo"))]), &["--out", "a FIFO"]);
    case(
        train(&["--out", s(&f.path("no/such/folder/m.mlet"))]),
        &["--out", "does not exist"],
    );
    case(
        train(&["--out", "/proc/m.mlet"]),
        &["--out /proc/m.mlet", "cannot write in /proc"],
    );
    case(
        train(&["--checkpoint", "/proc/run.ckpt", "--checkpoint-every", "5"]),
        &["--checkpoint /proc/run.ckpt", "cannot write"],
    );
    case(
        train(&["--checkpoint", "/dev/null"]),
        &["--checkpoint /dev/null", "a device"],
    );

    // Resuming from checkpoints that do not fit.
    let ckpt = f.path("run.ckpt");
    case(
        train(&[
            "--resume",
            s(&ckpt),
            "--rows",
            "64",
            "--batch",
            "100",
            "--dim",
            "4",
            "--bottom",
            "8",
            "--top",
            "8",
            "--lr",
            "0.3",
        ]),
        &["cannot resume from", "run.ckpt", "setting `lr`"],
    );
    case(
        train(&["--resume", s(&f.path("notes.txt"))]),
        &["notes.txt", "is not a safetensors file"],
    );
    case(
        train(&["--resume", s(&f.path("missing.ckpt"))]),
        &["cannot read checkpoint", "missing.ckpt"],
    );

    // Malformed data: file, line, column and value.
    let bad_hex = f.criteo("bad-hex.tsv");
    case(
        train_on(&bad_hex, &[]),
        &["bad-hex.tsv: line 2: column 15 (C1)", "`68fd1e6g`"],
    );
    case(
        train_on(&f.criteo("short.tsv"), &[]),
        &["short.tsv: line 2", "found 3"],
    );
    case(
        train_on(&f.criteo("bad-label.tsv"), &[]),
        &[
            "bad-label.tsv: line 1: column 1 (label)",
            "`2` is not 0 or 1",
        ],
    );
    case(
        train_on(&format!("avazu:{}", s(&f.path("no-hour.csv"))), &[]),
        &["no-hour.csv: line 1", "no `hour` column"],
    );
    case(train_on("foo:x", &[]), &["data spec `foo:x`"]);
    case(
        train_on(&f.criteo("missing.tsv"), &[]),
        &["cannot open", "missing.tsv"],
    );
    let avazu = common::shared_data("avazu/avazu_train_head_part2_1000rows.csv");
    case(
        train(&["--val", &format!("avazu:{}", s(&avazu))]),
        &["validation data avazu:", "num_dense: 1"],
    );

    // Model files: corrupt, truncated, mutated, not models, missing, or for other data.
    let model = |name: &str| s(&f.path(name)).to_string();
    for (cmd, file, says) in [
        (
            "eval",
            "long-header.mlet",
            "header length runs past the end of the file",
        ),
        ("eval", "truncated.mlet", "model file"),
        (
            "score",
            "bad-json.mlet",
            "header byte 0: header is not valid safetensors JSON",
        ),
        ("score", "renamed-tensor.mlet", "tensor `emb.0.wxight`"),
        ("inspect", "notes.txt", "model file"),
        (
            "inspect",
            "empty.mlet",
            "file is shorter than its 8-byte header length",
        ),
        ("eval", "missing.mlet", "cannot read the model"),
    ] {
        let path = model(file);
        let mut args = vec![cmd.to_string(), "--model".into(), path.clone()];
        if cmd != "inspect" {
            args.extend(["--data".to_string(), rows.clone()]);
        }
        case(args, &[file, says]);
    }
    case(
        vec![
            "eval".into(),
            "--model".into(),
            model("model.mlet"),
            "--data".into(),
            format!("avazu:{}", s(&avazu)),
        ],
        &["the model takes 13 dense values and 26 ids", "has 1 and 21"],
    );
    case(
        vec![
            "eval".into(),
            "--model".into(),
            model("model.mlet"),
            "--data".into(),
            f.criteo("unlabeled.tsv"),
        ],
        &["unlabeled.tsv: line 1", "no label"],
    );

    // Other commands' outputs.
    case(
        vec![
            "score".into(),
            "--model".into(),
            model("model.mlet"),
            "--data".into(),
            rows.clone(),
            "--out".into(),
            model("a-folder"),
        ],
        &["--out", "a folder"],
    );
    case(
        vec![
            "synth".into(),
            "--rows".into(),
            "10".into(),
            "--out".into(),
            "/dev/full".into(),
        ],
        &["--out /dev/full", "a device"],
    );
    case(
        vec![
            "synth".into(),
            "--rows".into(),
            "10".into(),
            "--rank".into(),
            "0".into(),
            "--out".into(),
            "x.tsv".into(),
        ],
        &["--rank"],
    );
    case(
        vec![
            "footprint-bench".into(),
            "--quick".into(),
            "--out".into(),
            "/dev/null".into(),
        ],
        &["--out /dev/null", "not a folder"],
    );
    assert!(cases >= 30, "{cases} cases");
}

/// A full disk (here: a file size limit, which makes writes fail the same way) while the model
/// is written: an error naming the file, and the earlier file as it was.
#[test]
fn a_write_that_fails_keeps_the_earlier_file() {
    let f = Fixtures::new("disk-full");
    let earlier = f.path("earlier.mlet");
    let command = format!(
        "ulimit -f 16; trap '' XFSZ; exec {} train --data {} --dim 16 --bottom 64 --top 64 --out {}",
        env!("CARGO_BIN_EXE_mlet"),
        f.criteo("rows.tsv"),
        s(&earlier)
    );
    let before = f.snapshot();
    let out = Command::new("bash")
        .args(["-c", &command])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("cannot export") && err.contains("earlier.mlet"),
        "{err}"
    );
    assert!(before == f.snapshot(), "a file changed");
}

/// `mlet score ... | head` and `mlet inspect ... | head`: the reader goes away; mlet stops
/// quietly with 141 (what a shell reports for a program killed by SIGPIPE), no panic.
#[test]
fn a_closed_pipe_ends_quietly() {
    let f = Fixtures::new("closed-pipe");
    let model = f.path("model.mlet");
    let rows = f.criteo("rows.tsv");
    for args in [
        vec!["score", "--model", s(&model), "--data", &rows],
        vec!["inspect", "--model", s(&model)],
    ] {
        // The pipe's reader is closed before mlet starts, so its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_mlet"))
            .args(&args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} printed: {err}");
    }
}
