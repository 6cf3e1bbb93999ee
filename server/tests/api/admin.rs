//! The operator's commands, run as the real `tidings` binary against real databases (a SQLite
//! file and a fresh MariaDB database) while a real server uses the same database: accounts
//! (create, reset-password, disable — which closes the user's open socket — enable, list),
//! migrate and check, backup while messages are being written, and `--version`.

use crate::helpers::{traffic, Client, TestApp};
use crate::store::TempDb;
use app::model::ConvId;
use app::protocol::ServerFrame;
use futures::StreamExt;
use server::config::Config;
use server::Server;
use sqlx::{Connection, Row};
use std::collections::BTreeSet;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const PASSWORD: &str = "correct horse battery";

/// Runs `tidings ARGS` with `stdin` as its input; the environment's database and Redis
/// settings are cleared so only the flags count.
async fn tidings(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("TIDINGS_SITE_ROOT")
        .env_remove("LEPTOS_SITE_ROOT")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run tidings");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("tidings finished within a minute")
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn assert_ok(out: &Output) -> String {
    assert!(out.status.success(), "expected success: {}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_fails(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "expected exit 1: {}", text(out));
    let all = text(out);
    assert!(all.contains(needle), "expected {needle:?} in {all}");
}

/// Logs in over HTTP: the status and, on success, the session cookie.
async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Option<String>) {
    let res = app
        .http
        .post(app.url("/api/login"))
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tidings_session="))
        .map(|v| v.split(';').next().unwrap().to_owned());
    (res.status().as_u16(), cookie)
}

/// `/api/me` with `cookie`: the username, or None when the session is not valid.
async fn me(app: &TestApp, cookie: &str) -> Option<String> {
    let (status, body) = app.post("/api/me", Some(cookie), &[]).await;
    assert_eq!(status, 200, "{body}");
    body["username"].as_str().map(str::to_owned)
}

/// Waits for the server to close `client`'s socket; returns the close code.
async fn close_code(client: &mut Client, within: Duration) -> Option<u16> {
    tokio::time::timeout(within, async {
        while let Some(msg) = client.socket.next().await {
            match msg {
                Ok(WsMessage::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the socket was closed in time")
}

async fn start_server(db_url: &str) -> (Server, TestApp) {
    let mut config = Config::with_database(db_url);
    config.addr = Some("127.0.0.1:0".parse().unwrap());
    config.log = "warn".into();
    // The backup test's writer sends as fast as its acks come back: far past the default
    // per-user send rate, which is not what these tests are about.
    traffic(&mut config);
    let server = Server::start(config).await.expect("server starts");
    let app = TestApp::attach(server.addr);
    (server, app)
}

/// The whole account life cycle through the commands, with a server running on the same
/// database: what the commands change is what the server enforces.
async fn account_commands(db_url: &str) {
    let (server, app) = start_server(db_url).await;
    let db = ["--database-url", db_url];
    let with_db = |args: &[&'static str]| -> Vec<&str> { args.iter().copied().chain(db).collect() };

    // create
    let out = tidings(
        &with_db(&["user", "create", "Alice"]),
        &format!("{PASSWORD}\n"),
    )
    .await;
    assert!(assert_ok(&out).contains("created alice"), "{}", text(&out));
    assert_fails(
        &tidings(&with_db(&["user", "create", "alice"]), "another password\n").await,
        "taken",
    );
    assert_fails(
        &tidings(&with_db(&["user", "create", "bob"]), "short\n").await,
        "at least 8",
    );
    assert_fails(
        &tidings(
            &with_db(&["user", "create", "no spaces"]),
            &format!("{PASSWORD}\n"),
        )
        .await,
        "username must be",
    );
    let (status, old_cookie) = login(&app, "alice", PASSWORD).await;
    assert_eq!(status, 200, "the created account logs in");
    let old_cookie = old_cookie.unwrap();
    assert_eq!(me(&app, &old_cookie).await.as_deref(), Some("alice"));

    // reset-password: the old password and the old sessions stop working, the new one works.
    let out = tidings(
        &with_db(&["user", "reset-password", "alice"]),
        "a brand new secret\n",
    )
    .await;
    assert_ok(&out);
    assert_eq!(
        login(&app, "alice", PASSWORD).await.0,
        401,
        "old password refused"
    );
    assert_eq!(me(&app, &old_cookie).await, None, "old session ended");
    let (status, cookie) = login(&app, "alice", "a brand new secret").await;
    assert_eq!(status, 200, "new password works");
    let cookie = cookie.unwrap();
    assert_fails(
        &tidings(
            &with_db(&["user", "reset-password", "nobody"]),
            &format!("{PASSWORD}\n"),
        )
        .await,
        "no user named \"nobody\"",
    );

    // disable: the open socket is closed with 4005, the cookie is dead, login is refused.
    let mut socket = Client::connect(app.addr, Some(&cookie)).await.unwrap();
    let out = tidings(&with_db(&["user", "disable", "alice"]), "").await;
    assert!(assert_ok(&out).contains("disabled alice"));
    assert_eq!(
        close_code(&mut socket, server::lockout::SWEEP * 4).await,
        Some(4005),
        "the disabled user's socket is closed as 'account disabled'"
    );
    assert_eq!(me(&app, &cookie).await, None, "the session no longer works");
    assert!(
        Client::connect(app.addr, Some(&cookie)).await.is_err(),
        "no new socket for a disabled user"
    );
    let (status, _) = login(&app, "alice", "a brand new secret").await;
    assert_eq!(status, 403, "a disabled account cannot log in");
    let list = assert_ok(&tidings(&with_db(&["user", "list"]), "").await);
    let alice = list.lines().find(|l| l.contains(" alice ")).expect(&list);
    assert!(alice.contains("disabled"), "{list}");

    // enable
    assert_ok(&tidings(&with_db(&["user", "enable", "alice"]), "").await);
    let (status, cookie) = login(&app, "alice", "a brand new secret").await;
    assert_eq!(status, 200, "enabled again");
    assert!(Client::connect(app.addr, Some(&cookie.unwrap()))
        .await
        .is_ok());

    // list: everyone, with their state
    app.register("bob").await;
    let list = assert_ok(&tidings(&with_db(&["user", "list"]), "").await);
    let lines: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].contains(" alice ") && lines[0].ends_with("active"),
        "{list}"
    );
    assert!(
        lines[1].contains(" bob ") && lines[1].ends_with("active"),
        "{list}"
    );
    server.stop().await;
}

#[tokio::test]
async fn user_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("admin.db").display());
    account_commands(&url).await;
}

#[tokio::test]
async fn user_commands_on_mariadb() {
    let (_store, db) = TempDb::mysql().await;
    account_commands(&db.url()).await;
    db.drop_db().await;
}

/// A folder that looks like a built site, for `check`.
fn fake_site() -> tempfile::TempDir {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/tidings.js"), "export default 1;").unwrap();
    site
}

/// `tidings check` on `url` with the site folder `site` and `extra` flags.
async fn check(url: &str, site: &str, extra: &[&str]) -> Output {
    let mut args = vec!["check", "--database-url", url, "--site-root", site];
    args.extend_from_slice(extra);
    tidings(&args, "").await
}

#[tokio::test]
async fn migrate_and_check_report_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let url = format!("sqlite://{}", path.display());
    let site = fake_site();
    let site = site.path().to_str().unwrap();
    // Nothing there yet: check says so and creates nothing.
    assert_fails(&check(&url, site, &[]).await, "no SQLite database");
    assert!(!path.exists(), "check created nothing");

    let out = tidings(&["migrate", "--database-url", &url], "").await;
    assert!(
        assert_ok(&out).contains("created at schema version"),
        "{}",
        text(&out)
    );
    let out = check(&url, site, &[]).await;
    assert!(assert_ok(&out).contains("ok    database"), "{}", text(&out));
    let out = tidings(&["migrate", "--database-url", &url], "").await;
    assert!(
        assert_ok(&out).contains("already at schema version"),
        "{}",
        text(&out)
    );

    // A migration missing (as after installing a newer binary): check fails and names it.
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let newest: i64 = sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get("v");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = ?")
        .bind(newest)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_fails(
        &check(&url, site, &[]).await,
        &format!("lacks migrations {newest}"),
    );

    // Redis: reachable when configured, a failure when it does not answer.
    let redis =
        std::env::var("TIDINGS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let url = format!("sqlite://{}", dir.path().join("second.db").display());
    assert_ok(&tidings(&["migrate", "--database-url", &url], "").await);
    let out = check(&url, site, &["--redis-url", &redis]).await;
    assert!(assert_ok(&out).contains("ok    redis"), "{}", text(&out));
    let dead = format!("redis://127.0.0.1:{}", crate::helpers::free_addr().port());
    assert_fails(
        &check(&url, site, &["--redis-url", &dead]).await,
        "FAIL  redis",
    );

    // A site folder without the app in it.
    let empty = tempfile::tempdir().unwrap();
    let out = tidings(
        &[
            "check",
            "--database-url",
            &url,
            "--site-root",
            empty.path().to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert_fails(&out, "no built site");
}

#[tokio::test]
async fn check_and_migrate_on_mariadb() {
    let (_store, db) = TempDb::mysql().await;
    let site = fake_site();
    let url = db.url();
    let out = tidings(&["migrate", "--database-url", &url], "").await;
    assert!(
        assert_ok(&out).contains("already at schema version"),
        "{}",
        text(&out)
    );
    let out = tidings(
        &[
            "check",
            "--database-url",
            &url,
            "--site-root",
            site.path().to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert!(assert_ok(&out).contains("ok    database"), "{}", text(&out));
    assert_fails(
        &tidings(
            &["backup", "/tmp/never-written.db", "--database-url", &url],
            "",
        )
        .await,
        "mysqldump",
    );
    db.drop_db().await;
}

/// Sends messages into `conv` as fast as they are acknowledged, recording each acked
/// client_id, until `stop` is set.
fn spawn_writer(
    mut client: Client,
    conv: ConvId,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            // A few in flight at once, as a busy client would.
            let ids: Vec<String> = (0..8).map(|i| format!("m-{}", n + i)).collect();
            n += 8;
            for id in &ids {
                client
                    .send_message(conv, id, &format!("message {id}"))
                    .await;
            }
            for id in &ids {
                match client.expect_ack(id).await {
                    ServerFrame::Ack { .. } => acked.lock().unwrap().push(id.clone()),
                    other => panic!("expected an ack, got {other:?}"),
                }
            }
        }
    })
}

#[tokio::test]
async fn backup_of_a_live_sqlite_database_holds_every_message_acked_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("live.db").display());
    let (server, app) = start_server(&url).await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let conv = app.open_direct(&alice, "bob").await.id;
    let client = app.connect(&alice).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = spawn_writer(client, conv, acked.clone(), stop.clone());

    while acked.lock().unwrap().len() < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before: BTreeSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let copy = dir.path().join("copy.db");
    let out = tidings(
        &["backup", copy.to_str().unwrap(), "--database-url", &url],
        "",
    )
    .await;
    let during = acked.lock().unwrap().len();
    // Keep writing a little after the copy, then stop.
    while acked.lock().unwrap().len() < during + 50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    assert!(assert_ok(&out).contains("backed up"), "{}", text(&out));
    assert!(
        during > before.len(),
        "messages kept being acknowledged while the backup ran ({} before, {during} after)",
        before.len()
    );

    // The copy opens on its own, is a Tidings database, and holds every message acked before
    // the backup began (and none twice).
    let copy_url = format!("sqlite://{}", copy.display());
    let mut conn = sqlx::SqliteConnection::connect(&copy_url).await.unwrap();
    let rows = sqlx::query("SELECT client_id, seq FROM messages WHERE conv_id = ? ORDER BY seq")
        .bind(conv.0)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let in_copy: Vec<String> = rows.iter().map(|r| r.get("client_id")).collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.get("seq")).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "gap-free seqs"
    );
    let in_copy: BTreeSet<String> = in_copy.into_iter().collect();
    assert_eq!(in_copy.len(), seqs.len(), "no message twice");
    let missing: Vec<_> = before.difference(&in_copy).collect();
    assert!(
        missing.is_empty(),
        "acked before the backup but not in it: {missing:?}"
    );
    conn.close().await.unwrap();
    // And the server can run on it (a restore).
    let (restored, restored_app) = start_server(&copy_url).await;
    let (status, _) = login(&restored_app, "alice", "correct horse battery").await;
    assert_eq!(status, 200);
    restored.stop().await;

    // A second backup never overwrites a file.
    assert_fails(
        &tidings(
            &["backup", copy.to_str().unwrap(), "--database-url", &url],
            "",
        )
        .await,
        "exists already",
    );
    server.stop().await;
}

#[tokio::test]
async fn version_and_help_name_the_commands() {
    let out = tidings(&["--version"], "").await;
    assert_eq!(
        assert_ok(&out).trim(),
        format!("tidings {}", env!("CARGO_PKG_VERSION"))
    );
    let help = assert_ok(&tidings(&["--help"], "").await);
    for word in [
        "serve",
        "migrate",
        "check",
        "user",
        "backup",
        "--addr",
        "--database-url",
    ] {
        assert!(help.contains(word), "--help mentions {word}: {help}");
    }
    let help = assert_ok(&tidings(&["serve", "--help"], "").await);
    assert!(help.contains("--ping-interval-secs"), "{help}");
    let help = assert_ok(&tidings(&["user", "--help"], "").await);
    for word in ["create", "reset-password", "disable", "enable", "list"] {
        assert!(help.contains(word), "user --help mentions {word}: {help}");
    }
}
