//! The operator's view of accounts (`tidings user …`): list them, set a new password, disable
//! and enable them, and the sweep that finds freshly disabled ones so their sockets close.
//! Disabling also deletes the account's sessions, so every cookie stops working at once.

use super::{now_ms, Result, Store};
use app::events::AccountChange;
use app::model::{UserId, Username};

/// One account as `tidings user list` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub username: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// When an operator disabled the account (ms), or `None` while it may log in.
    pub disabled_at: Option<i64>,
}

impl Store {
    /// Every account, oldest first.
    pub async fn list_accounts(&self) -> Result<Vec<AccountRow>> {
        Ok(sqlx::query_as::<_, AccountRow>(
            "SELECT id, username, created_at, disabled_at FROM users ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Replaces the password hash of `username` and ends all their sessions (whoever knew the
    /// old password is logged out). `None` if there is no such user.
    pub async fn reset_password(
        &self,
        username: &Username,
        password_hash: &str,
    ) -> Result<Option<UserId>> {
        let mut tx = self.write().await?;
        let Some(id) = user_id(&mut tx, username).await? else {
            return Ok(None);
        };
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        end_sessions(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Some(UserId(id)))
    }

    /// Disables (`true`) or enables (`false`) `username`. Disabling ends all their sessions;
    /// every node closes their open connections on its next sweep (see `lockout`). `None` if
    /// there is no such user.
    pub async fn set_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<Option<UserId>> {
        let mut tx = self.write().await?;
        let Some(id) = user_id(&mut tx, username).await? else {
            return Ok(None);
        };
        let changed = if disabled {
            // Keeps the first time for an account disabled twice.
            let done = sqlx::query(
                "UPDATE users SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL",
            )
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            end_sessions(&mut tx, id).await?;
            done.rows_affected() > 0
        } else {
            sqlx::query(
                "UPDATE users SET disabled_at = NULL WHERE id = ? AND disabled_at IS NOT NULL",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0
        };
        if changed {
            let change = if disabled {
                AccountChange::Disabled
            } else {
                AccountChange::Enabled
            };
            super::outbox::record_account(self.dialect, &mut tx, UserId(id), change, now_ms())
                .await?;
        }
        tx.commit().await?;
        Ok(Some(UserId(id)))
    }

    /// Whether an operator disabled this account.
    pub async fn is_disabled(&self, user: UserId) -> Result<bool> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT disabled_at FROM users WHERE id = ?")
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(matches!(row, Some((Some(_),))))
    }

    /// Accounts disabled at or after `since_ms` (and still disabled): an index range, cheap to
    /// ask every few seconds.
    pub async fn disabled_since(&self, since_ms: i64) -> Result<Vec<UserId>> {
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE disabled_at >= ?")
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| UserId(id)).collect())
    }
}

async fn user_id(tx: &mut super::Tx, username: &Username) -> Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE username = ?")
        .bind(username.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|(id,)| id))
}

/// Ends every session of account `id` in the operator's transaction: whoever held a cookie is
/// logged out with the change itself.
async fn end_sessions(tx: &mut super::Tx, id: i64) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = ?")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
