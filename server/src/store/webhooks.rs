//! Incoming webhooks: a secret URL that posts into one conversation as a named bot. Only the
//! sha256 of the secret is stored (it is random, so no slow hash is needed); the URL is shown
//! once, to the member who creates it. Revoking deletes the row: the URL answers 404 after.
//!
//! The webhook's bot is an ordinary bot account (see `bots`) that is a member of the
//! conversation, so its posts obey the same membership, size and rate rules as anyone's. It
//! outlives its webhooks: revoking one leaves the bot, its messages and its membership, and a new
//! webhook of the same conversation may speak as it again.

use super::bots::{insert_bot, BotKind};
use super::{now_ms, Result, Store, StoreError};
use app::model::{ConvId, UserId, UserRef, Username, Webhook};
use sqlx::Row;

#[derive(Debug, sqlx::FromRow)]
struct WebhookRow {
    id: i64,
    conv_id: i64,
    bot_id: i64,
    bot_name: String,
    created_by: i64,
    creator_name: String,
    created_at: i64,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Webhook {
        Webhook {
            id: r.id,
            conv: ConvId(r.conv_id),
            bot: UserRef {
                id: UserId(r.bot_id),
                username: r.bot_name,
            },
            created_by: UserRef {
                id: UserId(r.created_by),
                username: r.creator_name,
            },
            created_at: super::time(r.created_at),
        }
    }
}

const SELECT: &str = "SELECT w.id, w.conv_id, w.bot_id, b.username AS bot_name, w.created_by, \
     c.username AS creator_name, w.created_at FROM webhooks w \
     JOIN users b ON b.id = w.bot_id JOIN users c ON c.id = w.created_by";

impl Store {
    /// The bot a new webhook of `conv` posts as: a new bot named `name`, or the webhook bot of
    /// that name that already serves this conversation: one of its webhooks (live or revoked)
    /// made it a member here, and it is still one. Any other existing account's name is
    /// [`StoreError::UsernameTaken`]: a person, an operator's bot, or another conversation's
    /// webhook bot (a webhook must not speak as someone else).
    pub async fn webhook_bot(&self, conv: ConvId, name: &Username) -> Result<UserRef> {
        let mut tx = self.write().await?;
        // Revoking deletes the webhook's row, so "serves this conversation" cannot be asked of
        // the webhooks table alone: a bot only a webhook makes (its marker password) that is a
        // member here was made or joined for one of this conversation's webhooks.
        let existing = sqlx::query(
            "SELECT u.id, \
             (SELECT COUNT(*) FROM webhooks w WHERE w.bot_id = u.id AND w.conv_id = ?) \
             + (SELECT COUNT(*) FROM members m WHERE m.user_id = u.id AND m.conv_id = ? \
                AND u.password_hash = ?) AS here \
             FROM users u WHERE u.username = ?",
        )
        .bind(conv.0)
        .bind(conv.0)
        .bind(BotKind::Webhook.no_password())
        .bind(name.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let id = match existing {
            Some(row) if row.try_get::<i64, _>("here")? > 0 => UserId(row.try_get("id")?),
            Some(_) => return Err(StoreError::UsernameTaken),
            None => insert_bot(self, &mut tx, name, BotKind::Webhook).await?,
        };
        tx.commit().await?;
        Ok(UserRef {
            id,
            username: name.as_str().to_owned(),
        })
    }

    /// Records a webhook of `conv` posting as `bot`, made by `by`, with secret digest `secret_hash`.
    pub async fn create_webhook(
        &self,
        conv: ConvId,
        bot: UserId,
        by: UserId,
        secret_hash: &str,
    ) -> Result<Webhook> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "INSERT INTO webhooks (secret_hash, conv_id, bot_id, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(secret_hash)
        .bind(conv.0)
        .bind(bot.0)
        .bind(by.0)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let id = super::inserted_id(self.dialect, &mut tx, &done).await?;
        let row = sqlx::query_as::<_, WebhookRow>(&format!("{SELECT} WHERE w.id = ?"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    /// The webhooks of `conv`, oldest first.
    pub async fn webhooks(&self, conv: ConvId) -> Result<Vec<Webhook>> {
        Ok(
            sqlx::query_as::<_, WebhookRow>(&format!("{SELECT} WHERE w.conv_id = ? ORDER BY w.id"))
                .bind(conv.0)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(Webhook::from)
                .collect(),
        )
    }

    /// The conversation and bot of the webhook with secret digest `secret_hash`.
    pub async fn webhook_by_secret(&self, secret_hash: &str) -> Result<Option<Webhook>> {
        Ok(
            sqlx::query_as::<_, WebhookRow>(&format!("{SELECT} WHERE w.secret_hash = ?"))
                .bind(secret_hash)
                .fetch_optional(&self.pool)
                .await?
                .map(Webhook::from),
        )
    }

    /// Deletes webhook `id` of `conv`; false if there is none.
    pub async fn delete_webhook(&self, conv: ConvId, id: i64) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM webhooks WHERE id = ? AND conv_id = ?")
                .bind(id)
                .bind(conv.0)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }
}
