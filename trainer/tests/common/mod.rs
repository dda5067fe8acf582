//! Helpers shared by the trainer's tests: temporary paths, the `mlet` binary, the real data
//! samples, and a model's weights as plain values.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;

use mlet_trainer::model::Dlrm;

/// A path in the temporary folder, unique to this test process: `mlet-{name}` with the pid.
pub fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mlet-test-{}-{name}", std::process::id()))
}

/// Writes `content` to [`temp`]`(name)` and returns the path.
pub fn temp_file(name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = temp(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Runs the built `mlet` with `args`: (success, stdout, stderr).
pub fn mlet<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mlet"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A file of the real data samples that sit beside this repository (`../shared/data`, present
/// in CI); a clear failure naming the file when it is missing.
pub fn shared_data(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(file);
    assert!(
        path.is_file(),
        "missing data sample {}: these tests read the samples in ../shared/data (beside the \
         repository's folder), which CI provides",
        path.display()
    );
    path
}

/// Every parameter of `model` by name, as plain values.
pub fn weights(model: &Dlrm) -> Vec<(String, Vec<f32>)> {
    model
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1().unwrap()))
        .collect()
}
