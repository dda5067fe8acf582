//! The firmware's footprint: section and symbol sizes read from its ELF with the Arm binutils.

use std::path::Path;
use std::process::Command;

use crate::Result;

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

    #[test]
    fn nm_output_is_summed() {
        let mut s = Sizes::default();
        s.startup_and_inputs("00000400 00000048 T Reset\n00001000 00000008 r mlet_firmware::INPUTS\n0000 0002 T main\n");
        assert_eq!((s.startup, s.inputs), (0x48, 8));
    }
}
