//! Build script: embeds the model and the input rows chosen at build time.
//!
//! - `MLET_MODEL`: path of an MLET v1 model file (required). Copied to `OUT_DIR/model.bin`.
//! - `MLET_INPUTS`: path of an input-rows file (required), as `mlet-firmware-check inputs` writes:
//!   8 bytes `MLETROWS`, then u32 LE `rows`, `num_dense`, `num_ids`, then `rows` rows of
//!   `num_dense` f32 LE followed by `num_ids` u32 LE. Copied to `OUT_DIR/inputs.bin`.
//!
//! It writes `OUT_DIR/consts.rs` (lengths, and the scratch length read from the model with
//! `mlet-runtime` on the host; a model the host cannot parse gets a 1-value scratch, so the
//! firmware still builds and reports the parse error itself) and `OUT_DIR/memory.x` (mps2-an385/
//! an386 map: 4 MiB flash at 0, 4 MiB RAM at 0x2000_0000; the model goes in a `.model` section in
//! flash, or in the 16 MiB PSRAM at 0x2100_0000 standing in for external memory-mapped flash when
//! it does not fit the 4 MiB).

use std::env;
use std::fs;
use std::path::PathBuf;

/// Magic of the input-rows file.
const MAGIC: &[u8; 8] = b"MLETROWS";
/// Bytes of flash kept free for code and read-only data when deciding where the model goes.
const CODE_RESERVE: usize = 256 * 1024;
/// Flash size of the board.
const FLASH: usize = 4 * 1024 * 1024;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for var in ["MLET_MODEL", "MLET_INPUTS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let path = |var: &str| -> PathBuf {
        match env::var_os(var) {
            Some(p) => PathBuf::from(p),
            None => fail(&format!(
                "set {var}: MLET_MODEL=<model file> MLET_INPUTS=<rows file> (see firmware/README.md)"
            )),
        }
    };
    let (model_path, inputs_path) = (path("MLET_MODEL"), path("MLET_INPUTS"));
    println!("cargo:rerun-if-changed={}", model_path.display());
    println!("cargo:rerun-if-changed={}", inputs_path.display());
    let model = fs::read(&model_path)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", model_path.display())));
    let inputs = fs::read(&inputs_path)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", inputs_path.display())));

    let word =
        |i: usize| u32::from_le_bytes(inputs[8 + 4 * i..12 + 4 * i].try_into().unwrap()) as usize;
    if inputs.len() < 20 || &inputs[..8] != MAGIC {
        fail(&format!(
            "{} is not an input-rows file",
            inputs_path.display()
        ));
    }
    let (rows, num_dense, num_ids) = (word(0), word(1), word(2));
    let row_bytes = 4 * (num_dense + num_ids);
    if rows == 0 || inputs.len() != 20 + rows * row_bytes {
        fail(&format!(
            "{}: length does not match its header",
            inputs_path.display()
        ));
    }

    let scratch_len = match mlet_runtime::Model::parse(&model) {
        Ok(m) => m.scratch_len(),
        Err(e) => {
            println!(
                "cargo:warning=model does not parse on the host ({e}); the firmware will report it"
            );
            1
        }
    };

    fs::write(out.join("model.bin"), &model).unwrap();
    fs::write(out.join("inputs.bin"), &inputs).unwrap();
    fs::write(
        out.join("consts.rs"),
        format!(
            "/// Bytes of the embedded model file.\npub const MODEL_LEN: usize = {};\n\
             /// Bytes of the embedded input-rows file.\npub const INPUTS_LEN: usize = {};\n\
             /// Input rows embedded.\npub const ROWS: usize = {rows};\n\
             /// Dense values per row.\npub const NUM_DENSE: usize = {num_dense};\n\
             /// Raw ids per row.\npub const NUM_IDS: usize = {num_ids};\n\
             /// f32 values of scratch the model needs.\npub const SCRATCH_LEN: usize = {scratch_len};\n",
            model.len(),
            inputs.len()
        ),
    )
    .unwrap();

    let model_region = if model.len() + CODE_RESERVE <= FLASH {
        "FLASH"
    } else {
        "EXTFLASH"
    };
    fs::write(
        out.join("memory.x"),
        format!(
            "MEMORY
{{
  FLASH    : ORIGIN = 0x00000000, LENGTH = 4M
  RAM      : ORIGIN = 0x20000000, LENGTH = 4M
  EXTFLASH : ORIGIN = 0x21000000, LENGTH = 16M
}}

SECTIONS
{{
  .model : ALIGN(16)
  {{
    KEEP(*(.model .model.*));
  }} > {model_region}
}} INSERT AFTER .rodata;
"
        ),
    )
    .unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
