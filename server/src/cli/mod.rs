//! The `tidings` command line. `tidings` alone serves with every flag of [`Config`] (so do
//! `tidings serve …` and any older invocation); the other commands are for operators and run
//! once against the same database (`DATABASE_URL`), beside a running server or without one:
//!
//! - [`serve`]   run the server (the default)
//! - [`migrate`] apply the schema's migrations and stop
//! - [`check`]   configuration, database, migrations, Redis: report, exit 1 if anything fails
//! - [`user`]    create, reset-password, disable, enable, list accounts
//! - [`backup`]  a consistent copy of a live SQLite database
//! - [`events`]  `events tail`: the event stream as a consumer group's member
//! - [`bot`]     create and revoke bot accounts' tokens

pub mod backup;
pub mod bot;
pub mod check;
pub mod events;
pub mod migrate;
pub mod serve;
pub mod user;

use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

/// Tidings: a real-time chat server. With no command (or `serve`) it serves; with no settings
/// it runs everything in one process on a SQLite file in the working directory.
#[derive(Debug, Parser)]
#[command(
    name = "tidings",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The server's settings, when no command is given.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve (the default when no command is given).
    Serve(Config),
    /// Apply the database migrations, then stop (the server also applies them when it starts).
    Migrate(Database),
    /// Check the configuration, the database and its migrations, and Redis; exit 1 on a problem.
    Check(Config),
    /// Manage accounts.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Copy the SQLite database to PATH while the server keeps running.
    Backup(backup::BackupArgs),
    /// Read the integration event stream (Redis consumer groups).
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Manage bot accounts and their API tokens.
    #[command(subcommand)]
    Bot(bot::BotCommand),
}

/// The database an admin command works on (the same variable and default as the server's).
#[derive(Debug, Clone, Args)]
pub struct Database {
    /// sqlite://PATH or mysql://USER:PASSWORD@HOST:PORT/DATABASE.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tidings.db")]
    pub database_url: String,
}

impl Cli {
    /// Runs the chosen command. Failures are printed as `error: …` with exit code 1.
    pub async fn run(self) -> ExitCode {
        let command = self.command.unwrap_or(Command::Serve(self.serve));
        if !matches!(command, Command::Serve(_)) {
            // One-shot commands print their own results; only warnings are worth a log line.
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(tracing_subscriber::EnvFilter::new("warn,sqlx=error"))
                .init();
        }
        let result = match command {
            Command::Serve(config) => serve::run(config).await.map(|()| ExitCode::SUCCESS),
            Command::Migrate(db) => migrate::run(db).await.map(|()| ExitCode::SUCCESS),
            Command::Check(config) => check::run(config).await,
            Command::User(command) => user::run(command).await.map(|()| ExitCode::SUCCESS),
            Command::Backup(args) => backup::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Events(command) => events::run(command).await.map(|()| ExitCode::SUCCESS),
            Command::Bot(command) => bot::run(command).await.map(|()| ExitCode::SUCCESS),
        };
        result.unwrap_or_else(|e| {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        })
    }
}
