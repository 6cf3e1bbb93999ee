//! Bot accounts and their bearer tokens (`tidings bot …`, `Authorization: Bearer` on `/api/v1`).
//!
//! A bot is a `users` row with `bot = 1` and a password hash that no password matches (so it
//! never logs in with a cookie); it joins conversations, is counted and limited like a person.
//! It authenticates with tokens: 256 random bits, of which only the sha256 is stored (a random
//! token needs no slow hash: there is nothing to guess). An `admin` token may read every event
//! of the stream; a plain one only those of the bot's conversations.
//! Tokens arrive here already digested (see `auth::token_hash`).

use super::{now_ms, outbox, Result, Store, StoreError, Tx};
use app::events::AccountChange;
use app::model::{UserId, UserRef, Username};
use sqlx::Row;

/// What a bot's `password_hash` holds: not a PHC string, so every password check fails. It also
/// says what made the bot: an operator (`tidings bot create`) or a webhook (see `webhooks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BotKind {
    Operator,
    Webhook,
}

impl BotKind {
    pub(super) fn no_password(self) -> &'static str {
        match self {
            BotKind::Operator => "!bot",
            BotKind::Webhook => "!webhook",
        }
    }
}

/// Creates bot account `name` of `kind` in `tx`, with its `created` account event; its id.
/// The name must be free (the caller has looked).
pub(super) async fn insert_bot(
    store: &Store,
    tx: &mut Tx,
    name: &Username,
    kind: BotKind,
) -> Result<UserId> {
    let now = now_ms();
    let done = sqlx::query(
        "INSERT INTO users (username, password_hash, created_at, bot) VALUES (?, ?, ?, 1)",
    )
    .bind(name.as_str())
    .bind(kind.no_password())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let id = UserId(super::inserted_id(store.dialect, tx, &done).await?);
    outbox::record_account(store.dialect, tx, id, AccountChange::Created, now).await?;
    Ok(id)
}

/// Who a bearer token speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUser {
    pub user: UserRef,
    /// May read every event (an operator's token).
    pub admin: bool,
}

impl Store {
    /// Creates bot `name` (or, if that bot exists, gives it one more token) with a token of
    /// digest `token_hash`. A person's name is [`StoreError::UsernameTaken`].
    pub async fn create_bot(
        &self,
        name: &Username,
        token_hash: &str,
        admin: bool,
    ) -> Result<UserRef> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let existing = sqlx::query("SELECT id, bot FROM users WHERE username = ?")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let id = match existing {
            Some(row) if row.try_get::<i64, _>("bot")? != 0 => row.try_get::<i64, _>("id")?,
            Some(_) => return Err(StoreError::UsernameTaken),
            None => insert_bot(self, &mut tx, name, BotKind::Operator).await?.0,
        };
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, admin, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(id)
        .bind(i64::from(admin))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(UserRef {
            id: UserId(id),
            username: name.as_str().to_owned(),
        })
    }

    /// Deletes every token of bot `name`; `None` if there is no such bot. The bot stays (its
    /// messages and memberships too); `tidings bot create` gives it a new token.
    pub async fn revoke_bot(&self, name: &Username) -> Result<Option<(UserId, u64)>> {
        let mut tx = self.write().await?;
        let Some(row) = sqlx::query("SELECT id FROM users WHERE username = ? AND bot = 1")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        let revoked = sqlx::query("DELETE FROM api_tokens WHERE user_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        outbox::record_account(
            self.dialect,
            &mut tx,
            UserId(id),
            AccountChange::Revoked,
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(Some((UserId(id), revoked)))
    }

    /// The bot a token digest belongs to (not disabled), or `None`.
    pub async fn token_user(&self, token_hash: &str) -> Result<Option<TokenUser>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, t.admin FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = ? AND u.disabled_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<TokenUser> {
            Ok(TokenUser {
                user: UserRef {
                    id: UserId(r.try_get("id")?),
                    username: r.try_get("username")?,
                },
                admin: r.try_get::<i64, _>("admin")? != 0,
            })
        })
        .transpose()
    }

    /// Which of `users` are bots (for showing them as bots).
    pub async fn is_bot(&self, user: UserId) -> Result<bool> {
        Ok(sqlx::query("SELECT bot FROM users WHERE id = ?")
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<i64, _>("bot"))
            .transpose()?
            .unwrap_or(0)
            != 0)
    }
}
