//! `tidings`: the chat server and its operator commands. The command line is `server::cli`
//! (one module per command: serve, migrate, check, user, backup); the server itself is the
//! library (see `lib.rs` for the map).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    server::cli::Cli::parse().run().await
}
