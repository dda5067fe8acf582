//! Reader speed: how many rows a second each data reader turns into batches, on the path
//! training uses (`DataSpec::open` on the reader thread of `BatchStream`, batches of 4096).
//!
//! Writes N rows (default 1M) of `mlet synth` data (13 dense, 26 categorical, a label) in every
//! layout to a temporary folder (Criteo TSV without a header; TSV and CSV with a header; Parquet,
//! snappy, dictionary-encoded strings), reads each file three times and prints the best run's
//! rows/s and MB/s of input, by the wall clock and by the CPU time the process was given (the
//! two differ when other processes share the core). The reader thread and the consumer share
//! one core when run as
//!
//! `taskset -c 0 cargo bench -p mlet-benches --bench readers [-- --rows N]`

use std::path::Path;
use std::time::Instant;

use mlet_trainer::data::{
    write_synthetic, BatchStream, ColumnSchema, DataSpec, ReadOptions, Vocab, WriteFormat,
};

/// Reads of each file; the fastest counts (the others absorb a shared machine's noise).
const RUNS: usize = 3;

fn main() -> anyhow::Result<()> {
    let mut rows = 1_000_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--rows" {
            rows = args.next().unwrap_or_default().parse()?;
        }
    }
    let dir = std::env::temp_dir().join(format!("mlet-readers-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let schema =
        ColumnSchema::from_json(r#"{"label":"label","dense":["I*"],"categorical":["C*"]}"#)?;
    let options = ReadOptions {
        skip_bad_lines: false,
        require_labels: true,
    };
    println!(
        "{rows} rows of mlet synth data (13 dense, 26 categorical, label); best of {RUNS} reads"
    );
    println!(
        "{:<10} {:>8} {:>12} {:>9} {:>14} {:>11}",
        "reader", "MB", "rows/s", "MB/s", "rows/cpu-s", "MB/cpu-s"
    );
    for (name, format, file) in [
        ("criteo:", WriteFormat::Criteo, "rows.criteo.tsv"),
        ("tsv:", WriteFormat::Tsv, "rows.tsv"),
        ("csv:", WriteFormat::Csv, "rows.csv"),
        ("parquet:", WriteFormat::Parquet, "rows.parquet"),
    ] {
        let path = dir.join(file);
        write_synthetic(&path, format, rows, 1, 8, Vocab::Default)?;
        let spec: DataSpec = format!("{name}{}", path.display()).parse()?;
        let spec = if format == WriteFormat::Criteo {
            spec
        } else {
            spec.with_schema(&schema, true)?
        };
        let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..RUNS {
            let (w, c) = read(&spec, options, rows)?;
            (wall, cpu) = (wall.min(w), cpu.min(c));
        }
        let mb = std::fs::metadata(&path)?.len() as f64 / 1e6;
        let n = rows as f64;
        println!(
            "{name:<10} {mb:>8.1} {:>12.0} {:>9.1} {:>14.0} {:>11.1}",
            n / wall,
            mb / wall,
            n / cpu,
            mb / cpu
        );
        remove(&path);
    }
    remove(&dir);
    Ok(())
}

/// Wall-clock and CPU seconds to read every row of `spec` through a `BatchStream`.
fn read(spec: &DataSpec, options: ReadOptions, rows: u64) -> anyhow::Result<(f64, f64)> {
    let (start, cpu_start) = (Instant::now(), cpu_seconds()?);
    let mut stream = BatchStream::spawn(spec, options, 0..u64::MAX, 4096)?;
    let mut read = 0u64;
    while let Some(batch) = stream.next_batch()? {
        read += batch.len() as u64;
    }
    let (wall, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds()? - cpu_start);
    anyhow::ensure!(read == rows, "{spec}: read {read} rows of {rows}");
    Ok((wall, cpu))
}

/// CPU time of this process, all threads, user and system (`/proc/self/stat`, in the kernel's
/// clock ticks of 1/100 s).
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // After the command name (in parentheses), utime and stime are the 12th and 13th fields.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> { Ok(fields.get(i).unwrap_or(&"").parse()?) };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

fn remove(path: &Path) {
    let _ = if path.is_dir() {
        std::fs::remove_dir(path)
    } else {
        std::fs::remove_file(path)
    };
}
