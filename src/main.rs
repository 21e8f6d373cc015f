//! `pipeline` binary: parse the command line, run the command, map errors to exit codes.

use clap::Parser;

fn main() {
    // Like other Unix tools, stop quietly when the reader of our output goes away
    // (`pipeline sql … | head`) instead of panicking on EPIPE.
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = jetpipe::cli::Cli::parse();
    if let Err(e) = jetpipe::cli::dispatch(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
