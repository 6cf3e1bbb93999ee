//! Users and sessions: the rows behind register, login and the session cookie.
//! Passwords arrive here already hashed and tokens already digested (see `auth`).

use super::{inserted_id, now_ms, Result, Store, StoreError};
use app::events::AccountChange;
use app::model::{UserId, UserRef, Username};
use sqlx::Row;
use std::time::Duration;

impl Store {
    pub async fn create_user(&self, username: &Username, password_hash: &str) -> Result<UserRef> {
        let mut tx = self.write().await?;
        let res =
            sqlx::query("INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)")
                .bind(username.as_str())
                .bind(password_hash)
                .bind(now_ms())
                .execute(&mut *tx)
                .await;
        let done = match res {
            Ok(done) => done,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::UsernameTaken)
            }
            Err(e) => return Err(e.into()),
        };
        let id = inserted_id(self.dialect, &mut tx, &done).await?;
        super::outbox::record_account(
            self.dialect,
            &mut tx,
            UserId(id),
            AccountChange::Created,
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(UserRef {
            id: UserId(id),
            username: username.as_str().to_owned(),
        })
    }

    /// The user and their password hash.
    pub async fn user_with_hash(&self, username: &str) -> Result<Option<(UserRef, String)>> {
        let row = sqlx::query("SELECT id, username, password_hash FROM users WHERE username = ?")
            .bind(username.trim().to_ascii_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| {
            (
                UserRef {
                    id: UserId(r.get("id")),
                    username: r.get("username"),
                },
                r.get("password_hash"),
            )
        }))
    }

    pub async fn user_by_name(&self, username: &Username) -> Result<Option<UserRef>> {
        Ok(self
            .user_with_hash(username.as_str())
            .await?
            .map(|(u, _)| u))
    }

    pub async fn create_session(
        &self,
        user: UserId,
        token_hash: &str,
        ttl: Duration,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(token_hash)
            .bind(user.0)
            .bind(now)
            .bind(now + ttl.as_millis() as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn session_user(&self, token_hash: &str) -> Result<Option<UserRef>> {
        Ok(self.session(token_hash).await?.map(|(user, _)| user))
    }

    /// The user behind a live session, and when the session expires (ms since the epoch).
    pub async fn session(&self, token_hash: &str) -> Result<Option<(UserRef, i64)>> {
        let row = sqlx::query(
            "SELECT u.id, u.username, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            (
                UserRef {
                    id: UserId(r.get("id")),
                    username: r.get("username"),
                },
                r.get("expires_at"),
            )
        }))
    }

    /// Moves a live session's expiry forward to `expires_at` (never back; an expired or ended
    /// session stays ended). Whether it moved.
    pub async fn extend_session(&self, token_hash: &str, expires_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET expires_at = ? WHERE token_hash = ? AND expires_at > ? \
             AND expires_at < ?",
        )
        .bind(expires_at)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces `user`'s password hash and ends every other session of theirs, in one
    /// transaction: whoever knew the old password is out.
    pub async fn set_password(&self, user: UserId, password_hash: &str, keep: &str) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?")
            .bind(user.0)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes sessions past their expiry (they already stopped working); how many.
    pub async fn delete_expired_sessions(&self) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Ends every session of `user` (log out everywhere).
    pub async fn delete_sessions_of(&self, user: UserId) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
