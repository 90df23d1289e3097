//! `walletctl`: parse, run, print the error chain, exit with a code.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the profile of `serve` under
/// load spent about a tenth of its CPU in glibc's malloc and free
/// (docs/benchmarks.md, "Profile").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = walletctl_cmd::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(walletctl_cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            if e.downcast_ref::<walletctl_cmd::ExitStatus>().is_none() {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(walletctl_cmd::exit_code(&e))
        }
    }
}
