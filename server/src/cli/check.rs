//! `tidings check`: is this configuration ready to serve? Reports each part on its own line —
//! the site, the database and its migrations, Redis — and exits 1 if any of them is not, with
//! what to do about it. It changes nothing (a missing SQLite file is reported, not created), so
//! it is safe beside a running server and in a deployment's pre-start step.

use crate::config::Config;
use crate::site;
use crate::store::schema::{self, SchemaState};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut report = |part: &str, outcome: Result<String, String>| match &outcome {
        Ok(note) => println!("ok    {part:<9} {note}"),
        Err(problem) => {
            failed = true;
            println!("FAIL  {part:<9} {problem}");
        }
    };
    report("site", check_site(&config));
    report("database", check_database(&config.database_url).await);
    report("redis", check_redis(config.redis_url.as_deref()).await);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn check_site(config: &Config) -> Result<String, String> {
    if site::Source::for_config(config) == site::Source::Embedded {
        return Ok("built into this binary".into());
    }
    let root = config
        .site_root
        .clone()
        .or_else(|| std::env::var("LEPTOS_SITE_ROOT").ok())
        .unwrap_or_else(|| "target/site".into());
    if Path::new(&root).join("pkg/tidings.js").is_file() {
        Ok(format!("served from {root}"))
    } else {
        Err(format!(
            "no built site at {root} (pkg/tidings.js is missing): pages would load without their \
             app. Build it with `cargo run -p sitebuild -- --release --site {root}`, point \
             --site-root at it, or use a one-file build (scripts/run)"
        ))
    }
}

async fn check_database(url: &str) -> Result<String, String> {
    let state = tokio::time::timeout(Duration::from_secs(15), schema::schema_state(url))
        .await
        .map_err(|_| format!("{url} did not answer within 15 s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    match state {
        SchemaState::Current(version) => Ok(format!("{url} (schema version {version})")),
        SchemaState::Behind(missing) => Err(format!(
            "{url} lacks migrations {}: run `tidings migrate` (the server also applies them when it starts)",
            missing
                .iter()
                .map(|(v, d)| format!("{v} ({d})"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        SchemaState::Ahead(versions) => Err(format!(
            "{url} was migrated by a newer tidings (versions {versions:?} are unknown to this one): \
             run the newer binary"
        )),
    }
}

async fn check_redis(url: Option<&str>) -> Result<String, String> {
    let Some(url) = url else {
        return Ok("not configured (this process is the whole service)".into());
    };
    let ping = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => Ok(format!("{url} answers")),
        Ok(Err(e)) => Err(format!("{url}: {e} (is Redis running? check REDIS_URL)")),
        Err(_) => Err(format!("{url} did not answer within 5 s (check REDIS_URL)")),
    }
}
