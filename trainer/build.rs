//! With the `cuda` feature: compiles the trainer's own CUDA kernel (`src/cuda/*.cu`) to PTX
//! with `nvcc`, which must be on PATH, for the GPU generation in CUDA_COMPUTE_CAP (default 90:
//! H100/H200; `benches/gpu/build.sh` sets both up). Without the feature it does nothing.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/cuda/index_add_rows.cu");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let cap = env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let ptx = out.join("index_add_rows.ptx");
    let status = Command::new("nvcc")
        .args(["--ptx", "-O3", &format!("-arch=compute_{cap}"), "-o"])
        .arg(&ptx)
        .arg("src/cuda/index_add_rows.cu")
        .status()
        .expect("the cuda feature needs nvcc on PATH (see benches/gpu/build.sh)");
    assert!(
        status.success(),
        "nvcc failed on src/cuda/index_add_rows.cu"
    );
}
