//! `tidings migrate`: bring the database's schema up to this binary's version and stop.
//! The server does the same when it starts; this is for doing it on purpose (before a rolling
//! upgrade of a cluster, or to create an empty database).

use super::Database;
use crate::store::schema::{migrator, SchemaState};
use crate::store::{schema, Dialect, Store};
use anyhow::Context;

pub async fn run(db: Database) -> anyhow::Result<()> {
    let before = schema::schema_state(&db.database_url).await.ok();
    Store::connect(&db.database_url)
        .await
        .with_context(|| format!("migrating the database at {}", db.database_url))?;
    let latest = migrator(Dialect::of_url(&db.database_url)?)
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    match before {
        Some(SchemaState::Current(_)) => {
            println!("{}: already at schema version {latest}", db.database_url)
        }
        Some(SchemaState::Behind(missing)) if !missing.is_empty() => {
            for (version, description) in &missing {
                println!("applied {version} {description}");
            }
            println!("{}: now at schema version {latest}", db.database_url);
        }
        _ => println!("{}: created at schema version {latest}", db.database_url),
    }
    Ok(())
}
