//! Accounts and sessions: argon2 password hashes and random session tokens stored only as
//! hashes. (How often a password may be tried is a limit like the others: see `limits`.)
//!
//! Argon2 is slow and memory-hard on purpose (about 19 MiB and tens of milliseconds per hash), so
//! it is also the cheapest way for a stranger to exhaust a server: a burst of sign-ups or logins
//! run side by side on blocking threads once took 2.35 GB. Every hash and check therefore runs on
//! a [`HashPool`]: a fixed set of threads (one per core) behind a short queue; when the queue is
//! full the request is refused at once (`rate_limited`) instead of piling up.
//!
//! Owns the crypto; the rows themselves are the store's. Nothing here touches HTTP.

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

/// Hashes a password with argon2id and a random salt, as a PHC string (`$argon2id$v=19$…`).
/// Slow on purpose: run it on a [`HashPool`].
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let argon = Argon2::default();
    let salt = SaltString::generate(&mut OsRng);
    let hash = compute(&argon, password, salt.as_salt(), Params::DEFAULT_OUTPUT_LEN)?;
    Ok(PasswordHash {
        algorithm: Algorithm::default().ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(argon.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(hash),
    }
    .to_string())
}

/// Checks a password against a stored hash. With no stored hash (unknown user) it still does the
/// work of one check, so the answer's timing does not tell whether the user exists.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    let ok = check(password, stored.unwrap_or(dummy)).unwrap_or(false);
    ok && stored.is_some()
}

/// Recomputes a stored PHC hash (with its own algorithm, version, parameters and salt) and
/// compares the outputs in constant time.
fn check(password: &str, stored: &str) -> Result<bool, argon2::password_hash::Error> {
    let parsed = PasswordHash::new(stored)?;
    let expected = parsed.hash.ok_or(argon2::password_hash::Error::Password)?;
    let salt = parsed.salt.ok_or(argon2::password_hash::Error::Password)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let argon = Argon2::new(
        Algorithm::try_from(parsed.algorithm)?,
        version,
        Params::try_from(&parsed)?,
    );
    Ok(compute(&argon, password, salt, expected.len())? == expected)
}

thread_local! {
    /// Argon2's working memory (19 MiB with the default parameters), allocated once per thread
    /// that hashes — the few [`HashPool`] threads — and reused for every hash. Allocating it per
    /// hash left glibc's allocator holding hundreds of MiB after a burst of sign-ups.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// One argon2 computation into an output of `len` bytes, in this thread's reused memory.
fn compute(
    argon: &Argon2,
    password: &str,
    salt: Salt,
    len: usize,
) -> Result<Output, argon2::password_hash::Error> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    BLOCKS.with_borrow_mut(|blocks| {
        blocks.resize(argon.params().block_count(), Block::default());
        Output::init_with(len, |out| {
            argon
                .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *blocks)
                .map_err(Into::into)
        })
    })
}

/// A new session token: 256 random bits, hex-encoded. Only the cookie ever holds it.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the database keeps instead of the token: a leaked table does not yield live sessions.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The pool's queue is full: too many password hashes are waiting. Answered as `rate_limited`.
#[derive(Debug, thiserror::Error)]
#[error("the server is busy checking passwords; retry in a moment")]
pub struct Busy;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed number of threads that run password work, fed by a bounded queue.
///
/// Why not `spawn_blocking`: tokio's blocking pool grows to hundreds of threads, each of which
/// would hold its own 19 MiB argon2 block at once, and the allocator keeps what they freed. Here
/// at most `threads` blocks exist at any time, and a full queue refuses work instead of letting
/// it wait unboundedly.
#[derive(Clone)]
pub struct HashPool {
    jobs: mpsc::SyncSender<Job>,
}

impl HashPool {
    /// Starts `threads` workers (at least one) behind a queue of `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize) -> HashPool {
        let (jobs, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || loop {
                    // One worker waits in `recv` while the others wait for the lock: same effect
                    // as a shared queue. The pool ends when its sender is dropped.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
                .expect("starting a password-hashing thread");
        }
        HashPool { jobs }
    }

    /// Runs `work` on the pool and waits for its result, or answers [`Busy`] at once when the
    /// queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.try_send(job).map_err(|_| Busy)?;
        result.await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("correct horse", Some("not a hash")));
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_itself_still_verify() {
        // Accounts created before the reused-memory code must keep logging in, whatever
        // parameters their hash was made with.
        use argon2::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let params = Params::new(8 * 1024, 3, 1, None).unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let stored = argon
            .hash_password(b"old account", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("old account", Some(&stored)));
        assert!(!verify_password("old accounts", Some(&stored)));
        let ours = hash_password("old account").unwrap();
        let theirs = Argon2::default()
            .hash_password(
                b"old account",
                PasswordHash::new(&ours).unwrap().salt.unwrap(),
            )
            .unwrap()
            .to_string();
        assert_eq!(
            ours, theirs,
            "the same PHC string as the crate's own hasher"
        );
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a), token_hash(&a));
    }

    #[tokio::test]
    async fn the_hash_pool_refuses_work_beyond_its_queue() {
        let pool = HashPool::new(1, 1);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Mutex::new(hold);
        // The one worker is busy until released; one job may wait; the next is refused.
        let p = pool.clone();
        let busy = tokio::spawn(async move {
            p.run(move || {
                let _ = hold.lock().unwrap().recv();
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let p = pool.clone();
        let waiting = tokio::spawn(async move { p.run(|| 2).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(pool.run(|| 3).await, Err(Busy)));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
        assert_eq!(pool.run(|| 4).await.unwrap(), 4);
    }
}
