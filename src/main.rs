use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kaicalls_notify::cli::{Cli, CliError, Command, run};
use kaicalls_notify::{config::Config, telemetry};

/// Large blocks (each password hash takes 19 MiB) go back to the system when freed. By default
/// glibc raises its mmap threshold to the size of the first large block freed, and from then on
/// keeps such blocks in per-thread arenas: a burst of sign-ins left the process hundreds of MiB
/// larger for good. A fixed threshold also turns that adjustment off. Fewer arenas than glibc's
/// default (eight per core) keep the memory of a burst from being spread over twenty threads.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; called first thing, before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn main() -> ExitCode {
    return_large_blocks_to_the_system();
    let cli = Cli::parse();
    let config = match telemetry::init().and_then(|_| Config::from_env()) {
        Ok(config) => config,
        // check-config reports a bad variable as its first failed check.
        Err(e) if matches!(cli.command, Some(Command::CheckConfig { .. })) => {
            println!("\u{2718} Settings: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli, config));
    // Whatever is still running (a send, a page query) gets a moment, not a say in when we exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
