//! # mlet-firmware-check
//!
//! The host side of the firmware check (firmware/README.md): it makes models and input rows,
//! builds `mlet-firmware` for a Cortex-M target with them embedded, runs the image on QEMU, and
//! compares every score's f32 bits with `mlet-runtime` on the host. It also measures the
//! firmware's footprint from the ELF (`arm-none-eabi-size`, `arm-none-eabi-nm`) and the painted
//! stack the firmware reports.
//!
//! The binary's commands wrap these functions; the library keeps the pieces testable:
//!
//! - `rows`: input rows, read from Criteo text, and the file of them the firmware embeds;
//! - `models`: the check and Criteo models, header corruptions, host scores and their comparison
//!   with the device's;
//! - `targets`: the Cortex-M targets, building the firmware and running it on QEMU;
//! - `footprint`: section and symbol sizes of the firmware's ELF.

use std::fmt;

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

mod footprint;
mod models;
mod rows;
mod targets;

pub use footprint::{sizes, Sizes};
pub use models::{
    check_models, compare, corrupt, corruptions, criteo_models, host_scores, split_bytes,
    Comparison, NamedModel, CHECK_MODEL_MAX_BYTES, CRITEO_CARDINALITIES,
};
pub use rows::{Rows, ROWS_MAGIC};
pub use targets::{build_firmware, firmware_dir, run_qemu, Run, Target};
