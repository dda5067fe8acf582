//! `mlet inspect`: a model file's configuration, metadata (sorted by key), tensors and bytes, as
//! text or JSON.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use mlet_formats::{ModelFile, Tensor};
use mlet_trainer::export::{metadata_text, FileSizes};
use serde_json::json;

use super::args::InspectArgs;
use super::print::sizes_json;

pub fn run(args: InspectArgs) -> Result<ExitCode> {
    let bytes = super::read_model(&args.model)?;
    let file = ModelFile::parse(&bytes).map_err(|e| anyhow!("{}: {e}", args.model.display()))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        write_json(&file, &mut out)?;
    } else {
        write_text(&file, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Every tensor of the file: name, tensor and shape, in the order of the format's layout.
fn tensors<'a>(file: &ModelFile<'a>) -> Vec<(String, Tensor<'a>, Vec<usize>)> {
    let config = file.config();
    let d = config.dim();
    let mut tensors = Vec::new();
    for t in 0..config.num_tables() {
        let table = file.table(t);
        let n = config.table_rows()[t] as usize;
        tensors.push((format!("emb.{t}.weight"), table.weight, vec![n, d]));
        for (part, tensor) in [("scale", table.scale), ("offset", table.offset)] {
            if let Some(x) = tensor {
                tensors.push((format!("emb.{t}.{part}"), x, vec![x.len()]));
            }
        }
    }
    for (group, widths) in [("bottom", config.bottom()), ("top", config.top())] {
        for l in 0..widths.layers() {
            let layer = if group == "bottom" {
                file.bottom_layer(l)
            } else {
                file.top_layer(l)
            };
            let (i, o) = widths.layer(l);
            tensors.push((format!("{group}.{l}.weight"), layer.weight, vec![o, i]));
            tensors.push((format!("{group}.{l}.bias"), layer.bias, vec![o]));
        }
    }
    tensors
}

/// The metadata as text, sorted by key.
fn metadata<'a>(file: &ModelFile<'a>) -> Vec<(&'a str, String)> {
    let mut metadata = Vec::new();
    file.each_metadata(|k, v| metadata.push((k, metadata_text(v))));
    metadata.sort_unstable();
    metadata
}

fn join(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join("-")
}

fn write_json(file: &ModelFile<'_>, out: &mut dyn Write) -> Result<()> {
    let config = file.config();
    let value = json!({
        "config": {
            "num_dense": config.num_dense(),
            "table_rows": config.table_rows(),
            "dim": config.dim(),
            "bottom_mlp": join(config.bottom().as_slice()),
            "top_mlp": join(&config.top().as_slice()[1..]),
            "dense_transform": config.dense_transform().as_str(),
            "embedding_dtype": config.embedding_dtype().as_str(),
        },
        "metadata": metadata(file)
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "tensors": tensors(file)
            .iter()
            .map(|(n, t, s)| json!({"name": n, "dtype": t.dtype.as_str(), "shape": s, "bytes": t.bytes.len()}))
            .collect::<Vec<_>>(),
        "bytes": sizes_json(&FileSizes::of(file)),
    });
    writeln!(out, "{value}")?;
    Ok(())
}

fn write_text(file: &ModelFile<'_>, out: &mut dyn Write) -> Result<()> {
    let config = file.config();
    writeln!(
        out,
        "DLRM: {} dense, {} tables {:?}, d = {}, bottom {}, top {}, {} tables, transform {}",
        config.num_dense(),
        config.num_tables(),
        config.table_rows(),
        config.dim(),
        join(config.bottom().as_slice()),
        join(config.top().as_slice()),
        config.embedding_dtype().as_str(),
        config.dense_transform().as_str()
    )?;
    writeln!(out, "metadata:")?;
    for (k, v) in metadata(file) {
        writeln!(out, "  {k} = {v}")?;
    }
    writeln!(out, "tensors:")?;
    for (name, t, shape) in tensors(file) {
        writeln!(
            out,
            "  {name:<18} {:<4} {:?} {} bytes",
            t.dtype.as_str(),
            shape,
            t.bytes.len()
        )?;
    }
    writeln!(out, "{}", FileSizes::of(file))?;
    Ok(())
}
