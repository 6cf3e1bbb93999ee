//! `tidings bot …`: bot accounts for the `/api/v1` API. `create` prints the bearer token once
//! (only its sha256 is stored: lost means revoke and create again); `revoke` deletes every
//! token of the bot at once.

use super::Database;
use crate::auth;
use crate::store::{Store, StoreError};
use anyhow::{anyhow, Context};
use app::model::Username;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum BotCommand {
    /// Create a bot account (or give an existing bot a new token) and print its token once.
    Create(CreateArgs),
    /// Revoke every token of a bot: its requests are refused (401) from now on.
    Revoke(Named),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bot's username (the same rules as a person's).
    pub name: String,
    /// The token may read every event of `/api/v1/events`, not only the bot's conversations'.
    #[arg(long)]
    pub admin: bool,
    #[command(flatten)]
    pub db: Database,
}

#[derive(Debug, Args)]
pub struct Named {
    pub name: String,
    #[command(flatten)]
    pub db: Database,
}

pub async fn run(command: BotCommand) -> anyhow::Result<()> {
    match command {
        BotCommand::Create(args) => {
            let name = Username::parse(&args.name)?;
            let store = connect(&args.db.database_url).await?;
            let token = auth::new_token();
            let bot = match store
                .create_bot(&name, &auth::token_hash(&token), args.admin)
                .await
            {
                Err(StoreError::UsernameTaken) => {
                    return Err(anyhow!(
                        "{:?} is a person's account, not a bot: pick another name",
                        name.as_str()
                    ))
                }
                other => other?,
            };
            eprintln!(
                "bot {} (id {}): its token follows; it is shown only now",
                bot.username, bot.id
            );
            println!("{token}");
        }
        BotCommand::Revoke(named) => {
            let name = Username::parse(&named.name)?;
            let store = connect(&named.db.database_url).await?;
            let (_, tokens) = store
                .revoke_bot(&name)
                .await?
                .ok_or_else(|| anyhow!("there is no bot named {:?}", name.as_str()))?;
            println!("revoked {tokens} token(s) of {}", name.as_str());
        }
    }
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<Store> {
    Store::connect(url)
        .await
        .with_context(|| format!("opening the database at {url}"))
}
