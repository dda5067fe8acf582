//! `mlet`: train, evaluate, score, inspect and export DLRM click models with plain or MLET
//! embedding tables. The command line is in `cli/`: its flags in `cli/args.rs`, one handler per
//! command beside them.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
