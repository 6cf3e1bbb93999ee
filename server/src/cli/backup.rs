//! `tidings backup PATH`: a consistent copy of the SQLite database, taken while the server
//! keeps running. SQLite's `VACUUM INTO` reads one snapshot (a read transaction, which in WAL
//! mode never blocks the writer) and writes it compacted to a new file, so the copy holds
//! exactly the messages committed before it started — and every one of them. MySQL/MariaDB
//! have their own tools for this, named in the error.

use super::Database;
use crate::store::schema::sqlite_path;
use crate::store::Dialect;
use anyhow::{bail, Context};
use clap::Args;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (it must not exist yet).
    pub path: PathBuf,
    #[command(flatten)]
    pub db: Database,
}

pub async fn run(args: BackupArgs) -> anyhow::Result<()> {
    let url = &args.db.database_url;
    if Dialect::of_url(url)? == Dialect::MySql {
        bail!(
            "tidings backup copies SQLite databases only. For MySQL/MariaDB use its own tools, \
             e.g. `mysqldump --single-transaction --routines DATABASE > tidings.sql` or \
             `mariabackup --backup --target-dir=DIR` (see README, Deploying)"
        );
    }
    let source = PathBuf::from(sqlite_path(url));
    let target = args.path.clone();
    let copied = tokio::task::spawn_blocking(move || copy(&source, &target)).await??;
    println!(
        "backed up {url} to {} ({} messages, {} bytes)",
        args.path.display(),
        copied.messages,
        copied.bytes
    );
    Ok(())
}

struct Copied {
    messages: i64,
    bytes: u64,
}

fn copy(source: &Path, target: &Path) -> anyhow::Result<Copied> {
    if !source.is_file() {
        bail!("there is no SQLite database at {}", source.display());
    }
    if target.exists() {
        bail!(
            "{} exists already: choose a new file name",
            target.display()
        );
    }
    let target_str = target
        .to_str()
        .context("the backup path must be valid UTF-8")?;
    // Read-write (never create): a WAL database's readers need its shared-memory file.
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", source.display()))?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute("VACUUM INTO ?1", [target_str])
        .with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
    drop(conn);
    // Check the copy before saying it is good.
    let copy = Connection::open_with_flags(target, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let integrity: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        bail!(
            "the copy at {} fails its integrity check: {integrity}",
            target.display()
        );
    }
    let messages: i64 = copy.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
    Ok(Copied {
        messages,
        bytes: std::fs::metadata(target)?.len(),
    })
}
