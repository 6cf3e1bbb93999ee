//! Contacts and user search: requests (`contact_requests`, at most one pending per pair), the
//! accepted contacts (`contacts`, one row per direction), and finding users by the start of
//! their name.
//!
//! Every change is one write transaction that first reads where the pair stands, so each call
//! answers what it actually did ([`Requested`], [`Removed`]) and a refused call changes nothing.
//! Accepting also opens the pair's direct chat in the same transaction: sharing a conversation is
//! what carries presence (see `presence`), so a new contact's presence needs no second mechanism.

use super::conversations::open_direct_in;
use super::{now_ms, Result, Store, StoreError, Tx};
use app::contacts::{ContactList, Relation, MAX_PENDING_REQUESTS};
use app::model::{ConvId, UserId, UserRef, UsernamePrefix};
use sqlx::Row;

/// A user as the contact and search queries return them.
#[derive(Debug, sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
}

impl From<UserRow> for UserRef {
    fn from(r: UserRow) -> UserRef {
        UserRef {
            id: UserId(r.id),
            username: r.username,
        }
    }
}

/// What a contact request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requested {
    /// A new request now waits for the other person.
    Sent,
    /// They had already asked me: that request is accepted instead (and our direct chat opened,
    /// `created` if it is new).
    Accepted { conv: ConvId, created: bool },
    /// Nothing changed: we are contacts already.
    AlreadyContacts,
    /// Nothing changed: my request to them is still waiting.
    AlreadyAsked,
    /// Nothing changed: I have [`MAX_PENDING_REQUESTS`] requests waiting already.
    TooManyPending,
}

/// What removing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removed {
    /// We were contacts; we are not any more (both directions).
    Contact,
    /// My request to them was waiting; it is withdrawn.
    Withdrawn,
    /// Nothing to remove.
    Nothing,
}

/// "<lower id>:<higher id>": the key that allows one pending request per pair, either way.
fn pair_key(a: UserId, b: UserId) -> String {
    format!("{}:{}", a.0.min(b.0), a.0.max(b.0))
}

impl Store {
    /// My contacts and the requests waiting either way, each by username. Three indexed
    /// queries (by `contacts`' primary key and by either end of a request).
    pub async fn contacts_of(&self, me: UserId) -> Result<ContactList> {
        let list = |sql: &'static str| {
            sqlx::query_as::<_, UserRow>(sql)
                .bind(me.0)
                .fetch_all(&self.pool)
        };
        let refs = |rows: Vec<UserRow>| rows.into_iter().map(UserRef::from).collect();
        Ok(ContactList {
            contacts: refs(
                list(
                    "SELECT u.id, u.username FROM contacts c JOIN users u ON u.id = c.contact_id \
                     WHERE c.user_id = ? ORDER BY u.username",
                )
                .await?,
            ),
            incoming: refs(
                list(
                    "SELECT u.id, u.username FROM contact_requests r JOIN users u ON u.id = r.from_id \
                     WHERE r.to_id = ? ORDER BY u.username",
                )
                .await?,
            ),
            outgoing: refs(
                list(
                    "SELECT u.id, u.username FROM contact_requests r JOIN users u ON u.id = r.to_id \
                     WHERE r.from_id = ? ORDER BY u.username",
                )
                .await?,
            ),
        })
    }

    /// Where `me` stands with `other`.
    pub async fn relation(&self, me: UserId, other: UserId) -> Result<Relation> {
        let mut tx = self.pool.begin().await?;
        let relation = relation_in(&mut tx, me, other).await?;
        tx.rollback().await?;
        Ok(relation)
    }

    /// `from` asks `to` to become a contact; if `to` had already asked `from`, that request is
    /// accepted instead. `from` and `to` must differ (the caller checks).
    pub async fn request_contact(&self, from: UserId, to: UserId) -> Result<Requested> {
        // Two people asking each other at once (MySQL, two nodes): both see no request, one
        // insert wins the pair's unique key and the other fails. The loser then runs again and
        // finds the winner's request, which it accepts. SQLite serializes writers up front, so
        // only MySQL ever takes the second turn (or, rarer, a third outcome: an error to retry).
        for _ in 0..3 {
            let mut tx = self.write().await?;
            match relation_in(&mut tx, from, to).await? {
                Relation::Contact => return Ok(Requested::AlreadyContacts),
                Relation::Outgoing => return Ok(Requested::AlreadyAsked),
                Relation::Incoming => {
                    // On MySQL the read above takes no lock: the request may have been declined
                    // or withdrawn since. Then nothing was written; look again.
                    let Some((conv, created)) = accept_in(self, &mut tx, from, to).await? else {
                        continue;
                    };
                    tx.commit().await?;
                    return Ok(Requested::Accepted { conv, created });
                }
                Relation::None => {}
            }
            let pending: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM contact_requests WHERE from_id = ?")
                    .bind(from.0)
                    .fetch_one(&mut *tx)
                    .await?
                    .get("n");
            if pending as usize >= MAX_PENDING_REQUESTS {
                return Ok(Requested::TooManyPending);
            }
            let inserted = sqlx::query(
                "INSERT INTO contact_requests (from_id, to_id, pair_key, created_at) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(from.0)
            .bind(to.0)
            .bind(pair_key(from, to))
            .bind(now_ms())
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {
                    tx.commit().await?;
                    return Ok(Requested::Sent);
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Db(sqlx::Error::Protocol(
            "a contact request kept colliding with another; retry".into(),
        )))
    }

    /// `me` accepts the request `from` sent: both become contacts and their direct chat is
    /// opened (`created` if new). `None` if no such request waits (nothing changes).
    pub async fn accept_contact(&self, me: UserId, from: UserId) -> Result<Option<(ConvId, bool)>> {
        let mut tx = self.write().await?;
        let accepted = accept_in(self, &mut tx, me, from).await?;
        if accepted.is_some() {
            tx.commit().await?;
        }
        Ok(accepted)
    }

    /// `me` declines the request `from` sent; false if no such request waits.
    pub async fn decline_contact(&self, me: UserId, from: UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM contact_requests WHERE from_id = ? AND to_id = ?")
            .bind(from.0)
            .bind(me.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// `me` removes `other` from their contacts (for both of them), or withdraws the request
    /// `me` sent `other`. The direct chat and its history stay.
    pub async fn remove_contact(&self, me: UserId, other: UserId) -> Result<Removed> {
        let mut tx = self.write().await?;
        let contacts = sqlx::query(
            "DELETE FROM contacts WHERE (user_id = ? AND contact_id = ?) \
             OR (user_id = ? AND contact_id = ?)",
        )
        .bind(me.0)
        .bind(other.0)
        .bind(other.0)
        .bind(me.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let removed = if contacts > 0 {
            Removed::Contact
        } else {
            let withdrawn =
                sqlx::query("DELETE FROM contact_requests WHERE from_id = ? AND to_id = ?")
                    .bind(me.0)
                    .bind(other.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if withdrawn > 0 {
                Removed::Withdrawn
            } else {
                Removed::Nothing
            }
        };
        tx.commit().await?;
        Ok(removed)
    }

    /// Up to `limit` users other than `me` whose name starts with `prefix`, by name: a range
    /// scan of the unique index on `username`, stopped after `limit` rows.
    pub async fn search_users(
        &self,
        me: UserId,
        prefix: &UsernamePrefix,
        limit: u32,
    ) -> Result<Vec<UserRef>> {
        let rows = sqlx::query_as::<_, UserRow>(
            "SELECT id, username FROM users WHERE username >= ? AND username < ? AND id <> ? \
             ORDER BY username LIMIT ?",
        )
        .bind(prefix.as_str())
        .bind(prefix.upper_bound())
        .bind(me.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(UserRef::from).collect())
    }
}

/// Where `me` stands with `other`, read inside `tx`.
async fn relation_in(tx: &mut Tx, me: UserId, other: UserId) -> Result<Relation> {
    let contact = sqlx::query("SELECT 1 AS yes FROM contacts WHERE user_id = ? AND contact_id = ?")
        .bind(me.0)
        .bind(other.0)
        .fetch_optional(&mut **tx)
        .await?;
    if contact.is_some() {
        return Ok(Relation::Contact);
    }
    let request = sqlx::query("SELECT from_id FROM contact_requests WHERE pair_key = ?")
        .bind(pair_key(me, other))
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match request.map(|r| UserId(r.get("from_id"))) {
        Some(from) if from == me => Relation::Outgoing,
        Some(_) => Relation::Incoming,
        None => Relation::None,
    })
}

/// Turns the request `from` → `me` into a contact both ways and opens their direct chat, inside
/// `tx`. `None` (and nothing written) if no such request waits. The delete comes first: it locks
/// the request's row, so a concurrent accept or decline of the same request waits and then
/// finds nothing.
async fn accept_in(
    store: &Store,
    tx: &mut Tx,
    me: UserId,
    from: UserId,
) -> Result<Option<(ConvId, bool)>> {
    let taken = sqlx::query("DELETE FROM contact_requests WHERE from_id = ? AND to_id = ?")
        .bind(from.0)
        .bind(me.0)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if taken == 0 {
        return Ok(None);
    }
    let now = now_ms();
    for (user, contact) in [(me, from), (from, me)] {
        sqlx::query(&store.dialect.insert_or_ignore(
            "INSERT INTO contacts (user_id, contact_id, created_at) VALUES (?, ?, ?)",
        ))
        .bind(user.0)
        .bind(contact.0)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Some(open_direct_in(store.dialect, tx, me, from).await?))
}
