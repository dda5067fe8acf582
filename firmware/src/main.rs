//! # mlet-firmware
//!
//! Scores an MLET model embedded in flash on input rows embedded at build time, on a Cortex-M4F
//! (`thumbv7em-none-eabihf`, QEMU `mps2-an386`) or a Cortex-M3 (`thumbv7m-none-eabi`,
//! `mps2-an385`), and prints through semihosting:
//!
//! ```text
//! model 0x00001230 123456        address and bytes of the model in flash
//! stack parse 1234 score 567     peak stack in bytes while parsing, then while scoring (painted)
//! score 0 3f1a2b3c               each row's probability as f32 bits, hex
//! ...
//! ok 32                          rows scored
//! ```
//!
//! or `error <code>` if the model does not parse or a row does not score: the number of
//! `mlet_runtime::Error::code` (the broken format rule's `Rule::code`, or 101-105 for a scoring
//! error; the host tool prints the rule for it), so that no message text is linked in. It exits
//! through semihosting: 0 after `ok`, non-zero after an error, a panic or a hard fault.
//!
//! No heap: the scratch buffer and the scores are statics sized at build time (`build.rs`).
#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use core::ptr::{addr_of, read_volatile, write_volatile};

use cortex_m as _; // the critical-section implementation semihosting needs
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};

mod consts {
    include!(concat!(env!("OUT_DIR"), "/consts.rs"));
}
use consts::{INPUTS_LEN, MODEL_LEN, NUM_DENSE, NUM_IDS, ROWS, SCRATCH_LEN};

/// Bytes with 16-byte alignment, so f32 tensors sit aligned in flash (the runtime does not need
/// it, but it keeps the word loads fast).
#[repr(C, align(16))]
struct Aligned<T>(T);

/// The model file, in its own `.model` section (placed by `memory.x`).
#[link_section = ".model"]
#[used]
static MODEL: Aligned<[u8; MODEL_LEN]> =
    Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/model.bin")));

/// The input rows: a 20-byte header (checked by `build.rs`), then rows of dense f32 and ids u32.
static INPUTS: [u8; INPUTS_LEN] = *include_bytes!(concat!(env!("OUT_DIR"), "/inputs.bin"));
const HEADER: usize = 20;
const ROW_BYTES: usize = 4 * (NUM_DENSE + NUM_IDS);

/// The word painted over the free stack before scoring.
const PAINT: u32 = 0xC0FF_EE55;

extern "C" {
    /// Top of the stack (cortex-m-rt's link.x): the stack grows down from here.
    static _stack_start: u32;
    /// Lowest address the stack may use: the end of `.bss`/`.uninit`.
    static _stack_end: u32;
}

/// The parsed model view, kept in a static (`.bss`) so its 3 KB are not moved through the stack.
#[cfg(not(feature = "harness-only"))]
type Parsed = mlet_runtime::Model<'static>;
/// The harness-only build parses nothing.
#[cfg(feature = "harness-only")]
type Parsed = ();
/// Why parsing or scoring failed: `mlet_runtime::Error::code`.
type Failure = u16;

#[entry]
fn main() -> ! {
    static mut SCRATCH: [f32; SCRATCH_LEN] = [0.0; SCRATCH_LEN];
    static mut SCORES: [u32; ROWS] = [0; ROWS];
    static mut PARSED: MaybeUninit<Parsed> = MaybeUninit::uninit();

    hprintln!("model {:#010x} {}", MODEL.0.as_ptr() as usize, MODEL_LEN);
    paint_stack();
    let parsed = parse(&MODEL.0, PARSED);
    let parse_stack = peak_stack();
    paint_stack();
    let result = parsed.and_then(|model| score_rows(model, SCRATCH, SCORES));
    let score_stack = peak_stack();
    hprintln!("stack parse {} score {}", parse_stack, score_stack);
    finish(result, SCORES)
}

/// A panic prints `panicked` and exits non-zero. The message and location are not printed:
/// formatting them would link `core::fmt`'s string and integer printing (about 1.5 KB of flash)
/// for the runtime's bounds-check panics, which its tests show never fire.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    hprintln!("panicked");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Prints the scores or the error and exits.
fn finish(result: Result<(), Failure>, scores: &[u32]) -> ! {
    match result {
        Ok(()) => {
            for (i, bits) in scores.iter().enumerate() {
                hprintln!("score {} {:08x}", i, bits);
            }
            hprintln!("ok {}", scores.len());
            debug::exit(debug::EXIT_SUCCESS);
        }
        Err(e) => {
            hprintln!("error {}", e);
            debug::exit(debug::EXIT_FAILURE);
        }
    }
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Reads row `r` of the embedded inputs into `dense` and `ids`.
fn read_row(r: usize, dense: &mut [f32; NUM_DENSE], ids: &mut [u32; NUM_IDS]) {
    let start = HEADER + r * ROW_BYTES;
    let (d, i) = INPUTS[start..start + ROW_BYTES].split_at(4 * NUM_DENSE);
    for (v, b) in dense.iter_mut().zip(d.chunks_exact(4)) {
        *v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    for (v, b) in ids.iter_mut().zip(i.chunks_exact(4)) {
        *v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

/// Validates the model once, into `slot`.
#[cfg(not(feature = "harness-only"))]
#[inline(never)]
fn parse<'s>(
    model: &'static [u8],
    slot: &'s mut MaybeUninit<Parsed>,
) -> Result<&'s Parsed, Failure> {
    // `parse_rule`: the device reports only the rule's code, so no error names are built.
    let model = mlet_runtime::Model::parse_rule(model).map_err(|rule| u16::from(rule.code()))?;
    Ok(slot.write(model))
}

/// Scores every embedded row into `scores` (f32 bits).
#[cfg(not(feature = "harness-only"))]
#[inline(never)]
fn score_rows(model: &Parsed, scratch: &mut [f32], scores: &mut [u32]) -> Result<(), Failure> {
    let (mut dense, mut ids) = ([0.0f32; NUM_DENSE], [0u32; NUM_IDS]);
    for (r, out) in scores.iter_mut().enumerate() {
        read_row(r, &mut dense, &mut ids);
        *out = model
            .score(&dense, &ids, scratch)
            .map_err(|e| e.code())?
            .to_bits();
    }
    Ok(())
}

/// Harness only: no runtime, the same statics.
#[cfg(feature = "harness-only")]
#[inline(never)]
fn parse<'s>(
    model: &'static [u8],
    slot: &'s mut MaybeUninit<Parsed>,
) -> Result<&'s Parsed, Failure> {
    let _ = core::hint::black_box(model.first());
    Ok(slot.write(()))
}

/// Harness only: reads the rows the same way, so that its size is everything but the runtime.
#[cfg(feature = "harness-only")]
#[inline(never)]
fn score_rows(_model: &Parsed, scratch: &mut [f32], scores: &mut [u32]) -> Result<(), Failure> {
    let (mut dense, mut ids) = ([0.0f32; NUM_DENSE], [0u32; NUM_IDS]);
    for (r, out) in scores.iter_mut().enumerate() {
        read_row(r, &mut dense, &mut ids);
        if let Some(s) = scratch.first_mut() {
            *s = dense[0];
        }
        *out = dense[0].to_bits() ^ ids[0];
    }
    Ok(())
}

/// Fills the free stack, from the end of static RAM up to just below the current stack
/// pointer, with [`PAINT`].
#[inline(never)]
fn paint_stack() {
    let bottom = addr_of!(_stack_end) as usize;
    // 64 bytes of margin below this function's own frame; nothing is called inside the loop.
    let top = cortex_m::register::msp::read() as usize - 64;
    let mut p = bottom;
    while p < top {
        // SAFETY: [bottom, top) is RAM below every live stack frame and above every static.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes of stack used so far at most: from the top of RAM down to the lowest word that no
/// longer holds [`PAINT`].
fn peak_stack() -> usize {
    let (bottom, top) = (
        addr_of!(_stack_end) as usize,
        addr_of!(_stack_start) as usize,
    );
    let mut p = bottom;
    // SAFETY: [bottom, top) is the stack region, plain RAM.
    while p < top && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

/// A hard fault prints its address and exits non-zero instead of spinning forever.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("hardfault pc {:#010x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}
