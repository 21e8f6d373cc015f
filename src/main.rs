//! `pipeline` binary: parse the command line, run the command, map errors to exit codes.

use clap::Parser;

fn main() {
    let cli = jetpipe::cli::Cli::parse();
    if let Err(e) = jetpipe::cli::dispatch(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
