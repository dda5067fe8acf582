//! `mlet-firmware-check`: builds the MLET firmware with models and Criteo rows embedded, runs it
//! on QEMU and compares every score with the host bit for bit; reports the footprint.
//!
//! ```text
//! mlet-firmware-check check     [--model FILE]... [--targets m4,m3] [--rows N] [--tsv FILE] [--work DIR] [--timeout S]
//! mlet-firmware-check footprint [--model FILE]... [--targets m4] [--no-criteo] [--code-budget BYTES] [--rows N] [--tsv FILE] [--work DIR] [--timeout S]
//! mlet-firmware-check models    --out DIR [--criteo]
//! mlet-firmware-check inputs    --out FILE [--rows N] [--tsv FILE]
//! ```
//!
//! Without `--model`, `check` uses the four random check models ([`check_models`]) and
//! `footprint` adds the paper's Criteo configuration ([`criteo_models`]). With `--model`, the given
//! files (trained models) are used instead. `--code-budget` makes `footprint` fail when an image's
//! runtime code is larger (CI holds the runtime, F32 and int8 paths, to 16 KB on the M4).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mlet_firmware_check::*;

struct Options {
    models: Vec<PathBuf>,
    targets: Vec<Target>,
    rows: usize,
    tsv: PathBuf,
    work: PathBuf,
    out: Option<PathBuf>,
    timeout: Duration,
    criteo: bool,
    /// Most bytes of runtime code `footprint` accepts.
    code_budget: Option<usize>,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        models: Vec::new(),
        targets: Vec::new(),
        rows: 32,
        tsv: firmware_dir().join("../../shared/data/criteo/criteo_kaggle_train_head10k.tsv"),
        work: firmware_dir().join("target/check"),
        out: None,
        timeout: Duration::from_secs(120),
        criteo: true,
        code_budget: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--criteo" || flag == "--no-criteo" {
            o.criteo = flag == "--criteo";
            continue;
        }
        let value = it.next().ok_or_else(|| fail!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => o.models.push(value.into()),
            "--targets" => {
                o.targets = value.split(',').map(Target::parse).collect::<Result<_>>()?
            }
            "--rows" => o.rows = value.parse().map_err(|_| fail!("--rows: not a number"))?,
            "--tsv" => o.tsv = value.into(),
            "--work" => o.work = value.into(),
            "--out" => o.out = Some(value.into()),
            "--code-budget" => {
                o.code_budget = Some(value.parse().map_err(|_| fail!("--code-budget: bytes"))?)
            }
            "--timeout" => {
                o.timeout =
                    Duration::from_secs(value.parse().map_err(|_| fail!("--timeout: seconds"))?)
            }
            _ => return Err(fail!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some(cmd @ ("check" | "footprint" | "models" | "inputs")) => {
            parse_options(&args[1..]).and_then(|o| match cmd {
                "check" => check(o),
                "footprint" => footprint(o),
                "models" => write_models(o),
                _ => write_inputs(o),
            })
        }
        _ => Err(fail!("usage: mlet-firmware-check check|footprint|models|inputs [options] (see firmware/README.md)")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| fail!("{}: {e}", dir.display()))?;
    }
    fs::write(path, bytes).map_err(|e| fail!("{}: {e}", path.display()))
}

fn read_rows(o: &Options) -> Result<Rows> {
    let text = fs::read_to_string(&o.tsv).map_err(|e| fail!("{}: {e}", o.tsv.display()))?;
    Rows::from_criteo_tsv(&text, o.rows)
}

/// The models a command works on: the given files, or the built-in random ones.
fn models(o: &Options, footprint: bool) -> Result<Vec<NamedModel>> {
    let mut list = if o.models.is_empty() {
        check_models()
    } else {
        o.models
            .iter()
            .map(|p| {
                let bytes = fs::read(p).map_err(|e| fail!("{}: {e}", p.display()))?;
                let name = p
                    .file_stem()
                    .map_or("model".into(), |s| s.to_string_lossy().into_owned());
                Ok(NamedModel {
                    name,
                    description: p.display().to_string(),
                    bytes,
                })
            })
            .collect::<Result<_>>()?
    };
    if footprint && o.criteo {
        list.extend(criteo_models());
    }
    Ok(list)
}

fn write_models(o: Options) -> Result<()> {
    let out = o
        .out
        .clone()
        .ok_or_else(|| fail!("models needs --out DIR"))?;
    let mut list = check_models();
    if o.criteo {
        list.extend(criteo_models());
    }
    for m in list {
        let path = out.join(format!("{}.mlet", m.name));
        write(&path, &m.bytes)?;
        println!(
            "{} {} bytes: {}",
            path.display(),
            m.bytes.len(),
            m.description
        );
    }
    Ok(())
}

fn write_inputs(o: Options) -> Result<()> {
    let out = o
        .out
        .clone()
        .ok_or_else(|| fail!("inputs needs --out FILE"))?;
    write(&out, &read_rows(&o)?.to_bytes())?;
    println!(
        "{}: {} rows from {}",
        out.display(),
        o.rows,
        o.tsv.display()
    );
    Ok(())
}

/// Writes the model and the rows into the work folder, builds and runs the firmware.
struct Bench {
    work: PathBuf,
    inputs: PathBuf,
    timeout: Duration,
}

impl Bench {
    fn new(o: &Options, rows: &Rows) -> Result<Bench> {
        let inputs = o.work.join("inputs.bin");
        write(&inputs, &rows.to_bytes())?;
        Ok(Bench {
            work: o.work.clone(),
            inputs,
            timeout: o.timeout,
        })
    }

    fn model_file(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.work.join("models").join(format!("{name}.mlet"));
        write(&path, bytes)?;
        Ok(path)
    }

    fn build(
        &self,
        target: Target,
        name: &str,
        model: &Path,
        harness_only: bool,
    ) -> Result<(PathBuf, f64)> {
        let suffix = if harness_only { "-harness" } else { "" };
        let elf = self
            .work
            .join("elf")
            .join(format!("{name}-{}{suffix}.elf", target.name()));
        fs::create_dir_all(elf.parent().unwrap()).map_err(|e| fail!("{e}"))?;
        let start = Instant::now();
        build_firmware(target, model, &self.inputs, harness_only, &elf)?;
        Ok((elf, start.elapsed().as_secs_f64()))
    }
}

fn check(o: Options) -> Result<()> {
    let start = Instant::now();
    let rows = read_rows(&o)?;
    let bench = Bench::new(&o, &rows)?;
    let targets = if o.targets.is_empty() {
        Target::ALL.to_vec()
    } else {
        o.targets.clone()
    };
    let list = models(&o, false)?;
    let mut failures = Vec::new();
    println!(
        "{} rows of {}; targets {:?}",
        rows.len(),
        o.tsv.display(),
        targets
    );
    println!("| model | bytes | target | rows | bit-identical | max ulps | build s | qemu s |");
    println!("|---|---:|---|---:|---|---:|---:|---:|");
    for m in &list {
        let host = host_scores(&m.bytes, &rows)
            .map_err(|e| fail!("{}: the host cannot score it: {e}", m.name))?;
        let path = bench.model_file(&m.name, &m.bytes)?;
        for &target in &targets {
            let (elf, build_s) = bench.build(target, &m.name, &path, false)?;
            let run = run_qemu(target, &elf, bench.timeout)?;
            let c = compare(&host, &run.scores);
            let aligned = run.model_addr.is_some_and(|a| a % 16 == 0);
            let same = run.succeeded() && c.mismatches == 0 && aligned;
            println!(
                "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
                m.name,
                m.bytes.len(),
                target.name(),
                run.scores.len(),
                if same { "yes" } else { "NO" },
                c.max_ulps,
                build_s,
                run.seconds
            );
            if !same {
                failures.push(format!(
                    "{} on {}: exit {:?}, timed out {}, model at {:?}, {} of {} rows differ (max {} ulps, {:e} abs)\n{}",
                    m.name, target.name(), run.exit_code, run.timed_out, run.model_addr, c.mismatches, c.rows,
                    c.max_ulps, c.max_abs, tail(&run.output)
                ));
            }
        }
    }
    // A corrupt model in flash must end in an `error` exit, never a fault, a panic or a hang.
    let victim = &list[0];
    println!(
        "\n| corrupt header ({}) | target | exit | firmware says | the host's error (same code) | qemu s |",
        victim.name
    );
    println!("|---|---|---:|---|---|---:|");
    for how in corruptions() {
        let name = format!("corrupt-{how}");
        let bad = corrupt(&victim.bytes, how);
        let host = match mlet_runtime::Model::parse(&bad) {
            Ok(_) => return Err(fail!("corruption {how} still parses on the host")),
            Err(e) => e,
        };
        let path = bench.model_file(&name, &bad)?;
        for &target in &targets {
            let (elf, _) = bench.build(target, &name, &path, false)?;
            let run = run_qemu(target, &elf, bench.timeout)?;
            let clean_error = run.error.as_deref() == Some(host.code().to_string().as_str())
                && !run.timed_out
                && matches!(run.exit_code, Some(c) if c != 0)
                && !run.output.contains("hardfault")
                && !run.output.contains("panicked");
            println!(
                "| {how} | {} | {:?} | error {} | {} ({}) | {:.1} |",
                target.name(),
                run.exit_code,
                run.error.as_deref().unwrap_or("-"),
                host.code(),
                host,
                run.seconds
            );
            if !clean_error {
                failures.push(format!(
                    "corrupt model ({how}) on {}: no clean error exit with code {} ({host})\n{}",
                    target.name(),
                    host.code(),
                    tail(&run.output)
                ));
            }
        }
    }
    println!("\ncheck took {:.0} s", start.elapsed().as_secs_f64());
    if failures.is_empty() {
        println!("PASSED: every score bit-identical to the host; every corrupt model rejected");
        Ok(())
    } else {
        Err(fail!("{}", failures.join("\n")))
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

fn footprint(o: Options) -> Result<()> {
    let start = Instant::now();
    let rows = read_rows(&o)?;
    let bench = Bench::new(&o, &rows)?;
    let targets = if o.targets.is_empty() {
        vec![Target::M4]
    } else {
        o.targets.clone()
    };
    let list = models(&o, true)?;
    let mut lines = Vec::new();
    let mut over_budget = Vec::new();
    let mut differ = Vec::new();
    for &target in &targets {
        for m in &list {
            let path = bench.model_file(&m.name, &m.bytes)?;
            let (elf, _) = bench.build(target, &m.name, &path, false)?;
            let (harness, _) = bench.build(target, &m.name, &path, true)?;
            let (full, base) = (sizes(&elf)?, sizes(&harness)?);
            let runtime_code = full.code() - base.code();
            if o.code_budget.is_some_and(|budget| runtime_code > budget) {
                over_budget.push(format!("{} on {}: {runtime_code}", m.name, target.name()));
            }
            let run = run_qemu(target, &elf, bench.timeout)?;
            if !run.succeeded() {
                return Err(fail!(
                    "{} on {} did not score:\n{}",
                    m.name,
                    target.name(),
                    tail(&run.output)
                ));
            }
            let host = host_scores(&m.bytes, &rows).map_err(|e| fail!("{e}"))?;
            let c = compare(&host, &run.scores);
            let identical = c.mismatches == 0;
            if !identical {
                differ.push(format!(
                    "{} on {}: {} of {} rows differ from the host (max {} ulps)",
                    m.name,
                    target.name(),
                    c.mismatches,
                    c.rows,
                    c.max_ulps
                ));
            }
            let scratch = 4 * mlet_runtime::Model::parse(&m.bytes)
                .map_err(|e| fail!("{e}"))?
                .scratch_len();
            let (parse_stack, score_stack) =
                (run.parse_stack.unwrap_or(0), run.score_stack.unwrap_or(0));
            let (tables, mlp) = split_bytes(&m.bytes)?;
            let place = match run.model_addr {
                Some(a) if a >= 0x2100_0000 => "PSRAM",
                _ => "flash",
            };
            lines.push(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.name,
                target.name(),
                runtime_code,
                full.code(),
                full.vectors + full.startup,
                m.bytes.len(),
                tables,
                mlp,
                place,
                full.static_ram(),
                scratch,
                parse_stack,
                score_stack,
                parse_stack.max(score_stack) + scratch,
                if identical { "yes" } else { "NO" }
            ));
        }
    }
    println!(
        "Footprint ({} Criteo rows scored on QEMU; sizes in bytes; random weights)\n",
        rows.len()
    );
    println!("| model | target | runtime code | firmware code | vectors + start-up | model | tables | MLPs | model in | static RAM | scratch | peak stack, parse | peak stack, score | max stack + scratch | bit-identical |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|");
    for l in lines {
        println!("{l}");
    }
    println!();
    println!("- runtime code: flash of the firmware minus flash of the same firmware built with --features harness-only (no parse, no score):");
    println!("  mlet-runtime, mlet-formats, libm, half and the float and memcpy built-ins (the device prints error codes, so no message text).");
    println!("- firmware code: .text + .rodata + .data - input rows - start-up (vectors excluded); includes the semihosting printing and panic harness.");
    println!("- static RAM: .data + .bss: scratch, the parsed Model view (a static), the {}-row score buffer, semihosting state.", rows.len());
    println!("- peak stack: painted stack touched from the top of RAM (includes start-up and main frames), while Model::parse_rule runs, then while score runs for every row.");
    println!("- model in PSRAM: the model does not fit the board's 4 MiB flash; it sits in the 16 MiB PSRAM at 0x2100_0000, standing in for external memory-mapped flash.");
    for m in &list {
        println!("- {}: {}", m.name, m.description);
    }
    println!("footprint took {:.0} s", start.elapsed().as_secs_f64());
    if !differ.is_empty() {
        return Err(fail!("scores not bit-identical: {}", differ.join("; ")));
    }
    match o.code_budget {
        Some(budget) if !over_budget.is_empty() => Err(fail!(
            "runtime code over the budget of {budget} bytes: {}",
            over_budget.join(", ")
        )),
        Some(budget) => {
            println!("runtime code within the budget of {budget} bytes on every image");
            Ok(())
        }
        None => Ok(()),
    }
}
