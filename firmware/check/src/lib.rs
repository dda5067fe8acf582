//! # mlet-firmware-check
//!
//! The host side of the firmware check (firmware/README.md): it makes models and input rows,
//! builds `mlet-firmware` for a Cortex-M target with them embedded, runs the image on QEMU, and
//! compares every score's f32 bits with `mlet-runtime` on the host. It also measures the
//! firmware's footprint from the ELF (`arm-none-eabi-size`, `arm-none-eabi-nm`) and the painted
//! stack the firmware reports.
//!
//! The binary's commands wrap these functions; the library keeps the pieces testable.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mlet_formats::writer::RandomModel;
use mlet_formats::{Config, DenseTransform, Dtype, EmbeddingDtype};

/// A failure of the check, with a message for a person.
#[derive(Debug)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// Result of this crate's functions.
pub type Result<T> = std::result::Result<T, Failure>;

/// Builds a [`Failure`] from a format string.
#[macro_export]
macro_rules! fail {
    ($($t:tt)*) => { $crate::Failure(format!($($t)*)) };
}

// ---------------------------------------------------------------------------------------------
// Input rows

/// Magic of the input-rows file the firmware embeds.
pub const ROWS_MAGIC: &[u8; 8] = b"MLETROWS";

/// Input rows: `num_dense` f32 and `num_ids` u32 per row, row after row.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Dense values per row.
    pub num_dense: usize,
    /// Raw ids per row.
    pub num_ids: usize,
    /// All dense values, row after row.
    pub dense: Vec<f32>,
    /// All raw ids, row after row.
    pub ids: Vec<u32>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.dense.len().checked_div(self.num_dense).unwrap_or(0)
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dense values and ids of row `r`.
    pub fn row(&self, r: usize) -> (&[f32], &[u32]) {
        (
            &self.dense[r * self.num_dense..(r + 1) * self.num_dense],
            &self.ids[r * self.num_ids..(r + 1) * self.num_ids],
        )
    }

    /// The first `count` rows of Criteo-Kaggle text (label, 13 integer columns, 26 hex tokens,
    /// tab-separated): dense = the integers as f32 (empty = 0), ids = `criteo_id` of the tokens.
    pub fn from_criteo_tsv(text: &str, count: usize) -> Result<Rows> {
        let mut rows = Rows {
            num_dense: 13,
            num_ids: 26,
            dense: Vec::new(),
            ids: Vec::new(),
        };
        for (n, line) in text.lines().take(count).enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != 40 {
                return Err(fail!(
                    "line {}: {} fields, a Criteo row has 40",
                    n + 1,
                    fields.len()
                ));
            }
            for f in &fields[1..14] {
                let v: i64 = if f.is_empty() {
                    0
                } else {
                    f.parse()
                        .map_err(|_| fail!("line {}: `{f}` is not an integer", n + 1))?
                };
                rows.dense.push(v as f32);
            }
            for f in &fields[14..] {
                let id = mlet_formats::ids::criteo_id(f.as_bytes())
                    .map_err(|e| fail!("line {}: `{f}`: {e}", n + 1))?;
                rows.ids.push(id);
            }
        }
        if rows.len() < count {
            return Err(fail!("asked for {count} rows, the text has {}", rows.len()));
        }
        Ok(rows)
    }

    /// The file the firmware embeds: `MLETROWS`, u32 LE rows, num_dense, num_ids, then each row's
    /// dense f32 LE and ids u32 LE.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = ROWS_MAGIC.to_vec();
        for v in [self.len(), self.num_dense, self.num_ids] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for r in 0..self.len() {
            let (dense, ids) = self.row(r);
            dense
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
            ids.iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        out
    }

    /// Reads what [`Rows::to_bytes`] writes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Rows> {
        let word = |i: usize| -> Option<usize> {
            Some(u32::from_le_bytes(bytes.get(8 + 4 * i..12 + 4 * i)?.try_into().ok()?) as usize)
        };
        if bytes.get(..8) != Some(&ROWS_MAGIC[..]) {
            return Err(fail!("not an input-rows file"));
        }
        let (rows, num_dense, num_ids) = match (word(0), word(1), word(2)) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => return Err(fail!("input-rows file truncated")),
        };
        if bytes.len() != 20 + rows * 4 * (num_dense + num_ids) {
            return Err(fail!("input-rows file length does not match its header"));
        }
        let mut out = Rows {
            num_dense,
            num_ids,
            dense: Vec::new(),
            ids: Vec::new(),
        };
        let mut words = bytes[20..]
            .chunks_exact(4)
            .map(|b| [b[0], b[1], b[2], b[3]]);
        for _ in 0..rows {
            out.dense
                .extend(words.by_ref().take(num_dense).map(f32::from_le_bytes));
            out.ids
                .extend(words.by_ref().take(num_ids).map(u32::from_le_bytes));
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Models

/// Criteo-Kaggle table cardinalities (the 26 categorical columns of the full data set).
pub const CRITEO_CARDINALITIES: [u32; 26] = [
    1460, 583, 10_131_227, 2_202_608, 305, 24, 12_517, 633, 3, 93_145, 5683, 8_351_593, 3194, 27,
    14_992, 5_461_306, 10, 5652, 2173, 4, 7_046_547, 18, 15, 286_181, 105, 142_572,
];

/// Largest file of a check model, in bytes.
pub const CHECK_MODEL_MAX_BYTES: usize = 256 * 1024;

/// A named model file.
#[derive(Clone, Debug)]
pub struct NamedModel {
    /// Short name (used for file names).
    pub name: String,
    /// What it is, for reports.
    pub description: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

#[allow(clippy::too_many_arguments)]
fn random_model(
    rows: &[u32],
    dim: u32,
    bottom_hidden: &[u32],
    top_hidden: &[u32],
    embedding: EmbeddingDtype,
    mlp_dtype: Dtype,
    int8_per_row: bool,
    int8_scale_dtype: Dtype,
    seed: u64,
) -> Vec<u8> {
    let bottom: Vec<u32> = [13]
        .iter()
        .chain(bottom_hidden)
        .chain(&[dim])
        .copied()
        .collect();
    let top: Vec<u32> = top_hidden.iter().chain(&[1]).copied().collect();
    let config = Config::new(rows, dim, &bottom, &top, DenseTransform::Log1p, embedding)
        .expect("the check configurations are valid");
    let model = RandomModel {
        config,
        mlp_dtype,
        int8_per_row,
        int8_scale_dtype,
        seed,
    };
    model.writer().to_bytes().expect("random models are valid")
}

/// The four check models, random weights: 26 tables with the Criteo cardinalities capped at the
/// largest power of two (at most 2^14) that keeps the file within [`CHECK_MODEL_MAX_BYTES`];
/// bottom 13-64-32-d, top 64-32-1.
///
/// | name | tables | MLP |
/// |---|---|---|
/// | `d4-int8-row` | d=4 int8, per-row F16 scale/offset | F32 |
/// | `d4-int8-table` | d=4 int8, per-table F32 scale/offset | F32 |
/// | `d8-f16` | d=8 F16 | F16 |
/// | `d16-f32` | d=16 F32 | F32 |
pub fn check_models() -> Vec<NamedModel> {
    let specs = [
        (
            "d4-int8-row",
            "d=4 int8 per-row (F16 scales), F32 MLP",
            4,
            EmbeddingDtype::Int8,
            Dtype::F32,
            true,
            Dtype::F16,
        ),
        (
            "d4-int8-table",
            "d=4 int8 per-table (F32 scales), F32 MLP",
            4,
            EmbeddingDtype::Int8,
            Dtype::F32,
            false,
            Dtype::F32,
        ),
        (
            "d8-f16",
            "d=8 f16, F16 MLP",
            8,
            EmbeddingDtype::F16,
            Dtype::F16,
            true,
            Dtype::F16,
        ),
        (
            "d16-f32",
            "d=16 f32, F32 MLP",
            16,
            EmbeddingDtype::F32,
            Dtype::F32,
            true,
            Dtype::F16,
        ),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, &(name, what, dim, emb, mlp, per_row, scale))| {
            let make = |cap: u32| {
                let rows: Vec<u32> = CRITEO_CARDINALITIES.iter().map(|&n| n.min(cap)).collect();
                random_model(
                    &rows,
                    dim,
                    &[64, 32],
                    &[64, 32],
                    emb,
                    mlp,
                    per_row,
                    scale,
                    1 + i as u64,
                )
            };
            let (cap, bytes) = (0..=14)
                .rev()
                .map(|p| (1u32 << p, make(1 << p)))
                .find(|(_, b)| b.len() <= CHECK_MODEL_MAX_BYTES)
                .expect("a 1-row model fits");
            NamedModel {
                name: name.into(),
                description: format!("{what}, rows capped at {cap}, random weights"),
                bytes,
            }
        })
        .collect()
}

/// The paper's Criteo configuration (26 tables, bottom 13-512-256-64-d, top 512-256-1, F32 MLPs),
/// random weights: plain d=16 f32 with 2^11 rows per table, and MLET-shaped d=4 int8 per-row
/// (F16 scale and offset) with 2^14 rows per table.
pub fn criteo_models() -> Vec<NamedModel> {
    let plain = random_model(
        &[1 << 11; 26],
        16,
        &[512, 256, 64],
        &[512, 256],
        EmbeddingDtype::F32,
        Dtype::F32,
        true,
        Dtype::F16,
        11,
    );
    let mlet = random_model(
        &[1 << 14; 26],
        4,
        &[512, 256, 64],
        &[512, 256],
        EmbeddingDtype::Int8,
        Dtype::F32,
        true,
        Dtype::F16,
        12,
    );
    vec![
        NamedModel {
            name: "criteo-d16-f32-2p11".into(),
            description: "paper Criteo config, plain d=16 f32, 2^11 rows/table, random weights"
                .into(),
            bytes: plain,
        },
        NamedModel {
            name: "criteo-d4-int8row-2p14".into(),
            description:
                "paper Criteo config, MLET-shaped d=4 int8 per-row, 2^14 rows/table, random weights"
                    .into(),
            bytes: mlet,
        },
    ]
}

/// Bytes of a model's embedding tables (weights, scales, offsets) and of its MLPs.
pub fn split_bytes(model: &[u8]) -> Result<(usize, usize)> {
    let file = mlet_formats::ModelFile::parse(model).map_err(|e| fail!("model: {e}"))?;
    let config = file.config();
    let tables: usize = (0..config.num_tables())
        .map(|t| {
            let table = file.table(t);
            table.weight.bytes.len()
                + table.scale.map_or(0, |s| s.bytes.len())
                + table.offset.map_or(0, |s| s.bytes.len())
        })
        .sum();
    let mlp: usize = (0..config.bottom().layers())
        .map(|l| file.bottom_layer(l))
        .chain((0..config.top().layers()).map(|l| file.top_layer(l)))
        .map(|l| l.weight.bytes.len() + l.bias.bytes.len())
        .sum();
    Ok((tables, mlp))
}

/// Flips bytes of a model's header in one of the ways [`corruptions`] names.
pub fn corrupt(model: &[u8], how: &str) -> Vec<u8> {
    let mut bad = model.to_vec();
    let find = |needle: &[u8]| {
        model
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("the header has it")
    };
    match how {
        "length" => bad[0] ^= 0xff,
        "json" => bad[8] ^= 0x20,
        "format" => bad[find(b"mlet-dlrm")] ^= 0x01,
        "offsets" => {
            let at = find(b"\"data_offsets\":[") + 16;
            bad[at] = if bad[at] == b'9' { b'1' } else { b'9' };
        }
        other => panic!("unknown corruption {other}"),
    }
    bad
}

/// The corruptions the check applies: header length, the JSON's first byte, the `format`
/// value, a digit of the first data offsets.
pub fn corruptions() -> [&'static str; 4] {
    ["length", "json", "format", "offsets"]
}

/// Every row's probability as f32 bits, scored by `mlet-runtime` on the host.
pub fn host_scores(
    model: &[u8],
    rows: &Rows,
) -> std::result::Result<Vec<u32>, mlet_runtime::Error> {
    let model = mlet_runtime::Model::parse(model)?;
    let mut scratch = vec![0.0f32; model.scratch_len()];
    (0..rows.len())
        .map(|r| {
            let (dense, ids) = rows.row(r);
            model.score(dense, ids, &mut scratch).map(f32::to_bits)
        })
        .collect()
}

/// Differences between host and device scores.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Rows compared.
    pub rows: usize,
    /// Rows whose bits differ.
    pub mismatches: usize,
    /// Largest difference in units in the last place.
    pub max_ulps: u32,
    /// Largest absolute difference.
    pub max_abs: f32,
}

/// Compares score bits row by row (a length difference counts as mismatches).
pub fn compare(host: &[u32], device: &[u32]) -> Comparison {
    let mut c = Comparison {
        rows: host.len().max(device.len()),
        ..Comparison::default()
    };
    c.mismatches = c.rows - host.len().min(device.len());
    for (&h, &d) in host.iter().zip(device) {
        if h != d {
            c.mismatches += 1;
            c.max_ulps = c.max_ulps.max((h as i64 - d as i64).unsigned_abs() as u32);
            c.max_abs = c.max_abs.max((f32::from_bits(h) - f32::from_bits(d)).abs());
        }
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Targets, building and running

/// A Cortex-M target and the QEMU board that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Cortex-M4F, hard float: `thumbv7em-none-eabihf` on `mps2-an386`.
    M4,
    /// Cortex-M3, soft float: `thumbv7m-none-eabi` on `mps2-an385`.
    M3,
}

impl Target {
    /// Both targets.
    pub const ALL: [Target; 2] = [Target::M4, Target::M3];

    /// Rust target triple.
    pub fn triple(self) -> &'static str {
        match self {
            Target::M4 => "thumbv7em-none-eabihf",
            Target::M3 => "thumbv7m-none-eabi",
        }
    }

    /// QEMU machine and CPU.
    pub fn qemu(self) -> (&'static str, &'static str) {
        match self {
            Target::M4 => ("mps2-an386", "cortex-m4"),
            Target::M3 => ("mps2-an385", "cortex-m3"),
        }
    }

    /// Short name: `m4` or `m3`.
    pub fn name(self) -> &'static str {
        match self {
            Target::M4 => "m4",
            Target::M3 => "m3",
        }
    }

    /// Parses `m4` or `m3`.
    pub fn parse(s: &str) -> Result<Target> {
        match s {
            "m4" => Ok(Target::M4),
            "m3" => Ok(Target::M3),
            _ => Err(fail!("unknown target `{s}` (m4 or m3)")),
        }
    }
}

/// The firmware crate's folder (this crate lives in its `check/` folder).
pub fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("check/ is inside firmware/")
        .to_path_buf()
}

/// Builds the firmware in release mode for `target` with `model` and `inputs` embedded, and
/// copies the ELF to `out`. `harness_only` builds it without the runtime.
pub fn build_firmware(
    target: Target,
    model: &Path,
    inputs: &Path,
    harness_only: bool,
    out: &Path,
) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(firmware_dir())
        .args(["build", "--release", "--target", target.triple()])
        .env("MLET_MODEL", absolute(model)?)
        .env("MLET_INPUTS", absolute(inputs)?)
        .stdin(Stdio::null());
    if harness_only {
        cmd.args(["--features", "harness-only"]);
    }
    let output = cmd.output().map_err(|e| fail!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(fail!(
            "firmware build failed for {} with {}:\n{}",
            target.triple(),
            model.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let elf = firmware_dir()
        .join("target")
        .join(target.triple())
        .join("release")
        .join("mlet-firmware");
    fs::copy(&elf, out).map_err(|e| fail!("cannot copy {}: {e}", elf.display()))?;
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| fail!("{}: {e}", p.display()))
}

/// What a firmware run printed and how it ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    /// QEMU's exit code (None if it was killed).
    pub exit_code: Option<i32>,
    /// Killed at the timeout.
    pub timed_out: bool,
    /// Seconds it ran.
    pub seconds: f64,
    /// Address of the model in memory (`model` line).
    pub model_addr: Option<u32>,
    /// Peak stack in bytes while parsing the model (`stack parse N score M` line).
    pub parse_stack: Option<usize>,
    /// Peak stack in bytes while scoring the rows.
    pub score_stack: Option<usize>,
    /// Score bits (`score` lines, in row order).
    pub scores: Vec<u32>,
    /// `ok N` was printed.
    pub ok: bool,
    /// The code of the `error <code>` line, if any.
    pub error: Option<String>,
    /// Everything printed.
    pub output: String,
}

impl Run {
    /// Reads the firmware's output lines (see the firmware's docs).
    pub fn parse_output(&mut self, text: &str) {
        self.output = text.to_string();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("model"), Some(addr), _) => {
                    self.model_addr = u32::from_str_radix(addr.trim_start_matches("0x"), 16).ok()
                }
                (Some("stack"), Some("parse"), Some(n)) => {
                    self.parse_stack = n.parse().ok();
                    self.score_stack = words.nth(1).and_then(|m| m.parse().ok());
                }
                (Some("score"), Some(_), Some(bits)) => {
                    if let Ok(b) = u32::from_str_radix(bits, 16) {
                        self.scores.push(b)
                    }
                }
                (Some("ok"), _, _) => self.ok = true,
                (Some("error"), _, _) => {
                    self.error = Some(line["error".len()..].trim().to_string())
                }
                _ => {}
            }
        }
    }

    /// Exited 0 after printing `ok`.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.ok && !self.timed_out
    }
}

/// Runs an ELF on QEMU's board for `target`, killing it after `timeout`.
pub fn run_qemu(target: Target, elf: &Path, timeout: Duration) -> Result<Run> {
    let (machine, cpu) = target.qemu();
    let start = Instant::now();
    let mut child = Command::new("qemu-system-arm")
        .args([
            "-machine",
            machine,
            "-cpu",
            cpu,
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
        ])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail!("cannot run qemu-system-arm (apt-get install qemu-system-arm): {e}"))?;
    // Read both pipes on threads so a chatty child never blocks.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut run = Run::default();
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| fail!("waiting for qemu: {e}"))?
        {
            run.exit_code = status.code();
            break;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            run.timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    run.seconds = start.elapsed().as_secs_f64();
    let text = out_thread.join().unwrap_or_default() + &err_thread.join().unwrap_or_default();
    run.parse_output(&text);
    Ok(run)
}

// ---------------------------------------------------------------------------------------------
// Footprint

/// Sizes read from an ELF.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sizes {
    /// `.vector_table` bytes.
    pub vectors: usize,
    /// `.text` bytes.
    pub text: usize,
    /// `.rodata` bytes.
    pub rodata: usize,
    /// `.data` bytes (in RAM, and its initial values in flash).
    pub data: usize,
    /// `.bss` + `.uninit` bytes.
    pub bss: usize,
    /// `.model` bytes (the model, padded to 16).
    pub model: usize,
    /// Size of the `INPUTS` bytes (the embedded input rows).
    pub inputs: usize,
    /// Sizes of the start-up code: `Reset`, the pre-init and default handlers, the hard fault
    /// trampoline.
    pub startup: usize,
}

impl Sizes {
    /// Flash bytes of code and constants besides the model, the input rows, the vector table
    /// and the start-up code: `.text + .rodata + .data - inputs - startup`.
    pub fn code(&self) -> usize {
        (self.text + self.rodata + self.data).saturating_sub(self.inputs + self.startup)
    }

    /// Static RAM: `.data + .bss + .uninit`.
    pub fn static_ram(&self) -> usize {
        self.data + self.bss
    }
}

/// Start-up symbols of cortex-m-rt, subtracted from the firmware's code.
const STARTUP_SYMBOLS: [&str; 7] = [
    "Reset",
    "DefaultPreInit",
    "__pre_init",
    "DefaultHandler_",
    "DefaultHandler",
    "HardFaultTrampoline",
    "HardFault_",
];

/// Reads section sizes (`arm-none-eabi-size -A`) and symbol sizes (`arm-none-eabi-nm -S`).
pub fn sizes(elf: &Path) -> Result<Sizes> {
    let tool = |name: &str, args: &[&str]| -> Result<String> {
        let out = Command::new(name)
            .args(args)
            .arg(elf)
            .output()
            .map_err(|e| {
                fail!("cannot run {name} (apt-get install binutils-arm-none-eabi): {e}")
            })?;
        if !out.status.success() {
            return Err(fail!(
                "{name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mut s = Sizes::default();
    for line in tool("arm-none-eabi-size", &["-A", "-d"])?.lines() {
        let mut w = line.split_whitespace();
        let (Some(name), Some(size)) = (w.next(), w.next().and_then(|v| v.parse::<usize>().ok()))
        else {
            continue;
        };
        match name {
            ".vector_table" => s.vectors += size,
            ".text" => s.text += size,
            ".rodata" => s.rodata += size,
            ".data" => s.data += size,
            ".bss" | ".uninit" => s.bss += size,
            ".model" => s.model += size,
            _ => {}
        }
    }
    s.startup_and_inputs(&tool("arm-none-eabi-nm", &["-S", "--size-sort"])?);
    Ok(s)
}

impl Sizes {
    /// Adds up the start-up and input-row symbols of `nm -S` output.
    fn startup_and_inputs(&mut self, nm: &str) {
        for line in nm.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let [_, size, _, name] = w[..] else { continue };
            let Ok(size) = usize::from_str_radix(size, 16) else {
                continue;
            };
            if STARTUP_SYMBOLS.contains(&name) {
                self.startup += size;
            } else if name.contains("INPUTS") {
                self.inputs += size;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "0\t1\t\t-1\t4\t5\t6\t7\t8\t9\t10\t11\t12\t13\t68fd1e64\t\t0000000a\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\tFFFFFFFF\n";

    #[test]
    fn criteo_rows_parse_and_round_trip() {
        let rows = Rows::from_criteo_tsv(TSV, 1).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows.dense[..4], &[1.0, 0.0, -1.0, 4.0]);
        assert_eq!(&rows.ids[..3], &[0x68fd_1e64, 0, 10]);
        assert_eq!(rows.ids[25], u32::MAX);
        let bytes = rows.to_bytes();
        assert_eq!(bytes.len(), 20 + 4 * 39);
        assert_eq!(Rows::from_bytes(&bytes).unwrap(), rows);
        assert!(Rows::from_criteo_tsv(TSV, 2).is_err(), "too few rows");
        assert!(
            Rows::from_criteo_tsv("0\t1\n", 1).is_err(),
            "too few fields"
        );
        assert!(Rows::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn check_models_fit_and_differ() {
        let models = check_models();
        assert_eq!(models.len(), 4);
        for m in &models {
            assert!(
                m.bytes.len() <= CHECK_MODEL_MAX_BYTES,
                "{}: {}",
                m.name,
                m.bytes.len()
            );
            assert!(
                m.bytes.len() > CHECK_MODEL_MAX_BYTES / 2,
                "{}: rows cap too small",
                m.name
            );
            let model = mlet_runtime::Model::parse(&m.bytes).unwrap();
            assert_eq!(model.config().num_tables(), 26);
        }
    }

    #[test]
    fn every_corruption_is_rejected_on_the_host() {
        let model = &check_models()[0].bytes;
        for how in corruptions() {
            let bad = corrupt(model, how);
            assert_ne!(&bad, model);
            assert!(mlet_runtime::Model::parse(&bad).is_err(), "{how}");
        }
    }

    #[test]
    fn output_is_parsed() {
        let mut run = Run {
            exit_code: Some(0),
            ..Run::default()
        };
        run.parse_output("model 0x00001230 100\nstack parse 1200 score 300\nscore 0 3f000000\nscore 1 00000001\nok 2\n");
        assert_eq!(run.model_addr, Some(0x1230));
        assert_eq!((run.parse_stack, run.score_stack), (Some(1200), Some(300)));
        assert_eq!(run.scores, vec![0x3f00_0000, 1]);
        assert!(run.succeeded());
        let mut bad = Run {
            exit_code: Some(1),
            ..Run::default()
        };
        bad.parse_output("model 0x00001230 100\nstack parse 10 score 10\nerror 4\n");
        assert_eq!(bad.error.as_deref(), Some("4"));
        assert!(!bad.succeeded());
    }

    #[test]
    fn comparison_counts_ulps() {
        let one = 1.0f32.to_bits();
        let c = compare(&[one, one + 2], &[one, one]);
        assert_eq!((c.rows, c.mismatches, c.max_ulps), (2, 1, 2));
        assert!(c.max_abs > 0.0);
        assert_eq!(compare(&[one], &[]).mismatches, 1);
    }

    #[test]
    fn nm_output_is_summed() {
        let mut s = Sizes::default();
        s.startup_and_inputs("00000400 00000048 T Reset\n00001000 00000008 r mlet_firmware::INPUTS\n0000 0002 T main\n");
        assert_eq!((s.startup, s.inputs), (0x48, 8));
    }
}
