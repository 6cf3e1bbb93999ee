//! `tidings user …`: accounts without SQL. Passwords are read from standard input (one line;
//! typed without echo at a terminal), never from the command line, where `ps` would show them.
//! Disabling ends the account's sessions at once and every running node closes its open
//! connections within a few seconds (see `lockout`).

use super::Database;
use crate::auth;
use crate::store::Store;
use anyhow::{anyhow, Context};
use app::model::{Password, Username};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal, Write};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (password from standard input).
    Create(Named),
    /// Set a new password (from standard input) and end the account's sessions.
    ResetPassword(Named),
    /// Refuse the account's logins, end its sessions and close its open connections.
    Disable(Named),
    /// Let a disabled account log in again.
    Enable(Named),
    /// List every account with its state.
    List(Database),
}

#[derive(Debug, Args)]
pub struct Named {
    /// The account's username.
    pub username: String,
    #[command(flatten)]
    pub db: Database,
}

pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(named) => {
            let (store, username) = open(&named).await?;
            let hash = hash(read_password(&username)?).await?;
            let user = store.create_user(&username, &hash).await?;
            println!("created {} (id {})", user.username, user.id);
        }
        UserCommand::ResetPassword(named) => {
            let (store, username) = open(&named).await?;
            let hash = hash(read_password(&username)?).await?;
            store
                .reset_password(&username, &hash)
                .await?
                .ok_or_else(|| no_such_user(&username))?;
            println!(
                "new password set for {}; their sessions are ended",
                username.as_str()
            );
        }
        UserCommand::Disable(named) => {
            let (store, username) = open(&named).await?;
            store
                .set_disabled(&username, true)
                .await?
                .ok_or_else(|| no_such_user(&username))?;
            println!(
                "disabled {}: logged out everywhere; running servers close their connections \
                 within {} s",
                username.as_str(),
                crate::lockout::SWEEP.as_secs() + 1
            );
        }
        UserCommand::Enable(named) => {
            let (store, username) = open(&named).await?;
            store
                .set_disabled(&username, false)
                .await?
                .ok_or_else(|| no_such_user(&username))?;
            println!("enabled {}", username.as_str());
        }
        UserCommand::List(db) => {
            let store = connect(&db.database_url).await?;
            println!("{:>6}  {:<32}  {:<20}  state", "id", "username", "created");
            for row in store.list_accounts().await? {
                let state = match row.disabled_at {
                    None => "active".to_owned(),
                    Some(at) => format!("disabled {}", date(at)),
                };
                println!(
                    "{:>6}  {:<32}  {:<20}  {state}",
                    row.id,
                    row.username,
                    date(row.created_at)
                );
            }
        }
    }
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<Store> {
    Store::connect(url)
        .await
        .with_context(|| format!("opening the database at {url}"))
}

async fn open(named: &Named) -> anyhow::Result<(Store, Username)> {
    let username = Username::parse(&named.username)?;
    Ok((connect(&named.db.database_url).await?, username))
}

fn no_such_user(username: &Username) -> anyhow::Error {
    anyhow!(
        "there is no user named {:?} (see `tidings user list`)",
        username.as_str()
    )
}

/// Argon2 takes a while and a lot of memory: off the async threads.
async fn hash(password: Password) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(password.expose()))
        .await?
        .map_err(|e| anyhow!("could not hash the password: {e}"))
}

/// One line from standard input; at a terminal, prompted and without echo.
fn read_password(username: &Username) -> anyhow::Result<Password> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("password for {}: ", username.as_str());
        std::io::stderr().flush()?;
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if terminal {
        set_echo(true);
        eprintln!();
    }
    read.context("reading the password from standard input")?;
    let line = line.trim_end_matches(['\n', '\r']);
    Ok(Password::parse(line)?)
}

/// Turns the terminal's echo off or on (best effort: `stty`, present on every Unix).
fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status();
}

fn date(ms: i64) -> String {
    crate::store::time(ms)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}
