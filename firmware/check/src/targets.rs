//! The Cortex-M targets: building the firmware for one with a model and rows embedded, and
//! running the image on QEMU's board for it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
