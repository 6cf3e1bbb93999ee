//! Search latency, part of scenario e: the words the history fill sends, so that the big
//! conversation holds text a full-text index can find, and the timing of `POST /api/search`
//! over it once it is filled.
//!
//! The words are made up and drawn as words are in real text, by Zipf's law: a vocabulary of
//! [`VOCABULARY`] words, rank `r` with weight `1/(r+1)`. Each word is spelled from its rank in
//! syllables (two or more, so four letters or more: MariaDB indexes words of three and up), so
//! the vocabulary needs no word list. In 1,000,000 messages of about 100 characters the commonest
//! word is in nearly every message and a word of rank 3,000 in several hundred, which gives the
//! three kinds of query timed: a **rare** word (a few hundred matches), the **common** word (a
//! match in almost every message: the newest page must not cost the whole match list), and
//! **two words** that must both occur (ranks 20 and 200).
//!
//! Bodies are a pure function of the message's number, so every run sends the same text.

use crate::stats::Percentiles;
use crate::target::Account;
use anyhow::{bail, Result};
use std::time::Instant;

/// Words in the vocabulary.
pub const VOCABULARY: usize = 5000;
const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ne", "pu", "ra", "si", "to", "vu", "ze", "ba", "do", "fe", "gi", "ho", "ju",
];
/// Results per search (the UI's page).
const LIMIT: u32 = 20;

/// The word of rank `rank` (0 is the commonest): `rank + 16` in base 16, one syllable a digit.
pub fn word(rank: usize) -> String {
    let mut n = rank + SYLLABLES.len();
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
    }
    digits.iter().rev().copied().collect()
}

/// Draws words by rank with Zipf's law.
pub struct Corpus {
    /// Cumulative weights, for a binary search with a uniform draw.
    cumulative: Vec<f64>,
    words: Vec<String>,
}

impl Default for Corpus {
    fn default() -> Self {
        let mut total = 0.0;
        let cumulative = (0..VOCABULARY)
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        Corpus {
            cumulative,
            words: (0..VOCABULARY).map(word).collect(),
        }
    }
}

impl Corpus {
    /// The body of message `n`: words drawn from `n` alone, about `chars` characters.
    pub fn body(&self, n: u32, chars: usize) -> String {
        let mut state = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        let total = *self.cumulative.last().expect("a vocabulary");
        let mut body = String::with_capacity(chars + 16);
        while body.len() < chars {
            let x = (splitmix(&mut state) >> 11) as f64 / (1u64 << 53) as f64 * total;
            let rank = self
                .cumulative
                .partition_point(|&c| c < x)
                .min(VOCABULARY - 1);
            if !body.is_empty() {
                body.push(' ');
            }
            body.push_str(&self.words[rank]);
        }
        body
    }
}

/// splitmix64: a small, good, seedable generator (the bodies must not depend on `rand`'s
/// versions).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The timings of the three kinds of query.
#[derive(Debug, serde::Serialize)]
pub struct SearchTimes {
    pub rare: Percentiles,
    pub common: Percentiles,
    pub two_words: Percentiles,
}

/// Times `reps` searches of each kind in `me`'s conversations (at most `budget` seconds each).
pub async fn time_searches(
    http: &reqwest::Client,
    base: &str,
    me: &Account,
    reps: usize,
    budget: f64,
) -> Result<SearchTimes> {
    // Rare words rotate through fifty ranks, so no answer is simply the one before.
    let rare: Vec<String> = (3000..3050).map(word).collect();
    let common = vec![word(0)];
    let two = vec![format!("{} {}", word(20), word(200))];
    Ok(SearchTimes {
        rare: time_queries(http, base, me, &rare, reps, budget).await?,
        common: time_queries(http, base, me, &common, reps, budget).await?,
        two_words: time_queries(http, base, me, &two, reps, budget).await?,
    })
}

/// Times `reps` searches cycling through `queries`, one at a time on a kept-alive connection,
/// after a few untimed ones; the first answer of each query must find something.
async fn time_queries(
    http: &reqwest::Client,
    base: &str,
    me: &Account,
    queries: &[String],
    reps: usize,
    budget: f64,
) -> Result<Percentiles> {
    let search = |query: &str| {
        let query = query.to_owned();
        let form = [("query", query.clone()), ("limit", LIMIT.to_string())];
        async move {
            let res = http
                .post(format!("{base}/api/search"))
                .header("cookie", &me.credential)
                .form(&form)
                .send()
                .await?;
            let status = res.status();
            let text = res.text().await?;
            if !status.is_success() {
                bail!("search {query:?}: {status}: {text}");
            }
            Ok::<String, anyhow::Error>(text)
        }
    };
    #[derive(serde::Deserialize)]
    struct Page {
        hits: Vec<serde::de::IgnoredAny>,
    }
    for query in queries {
        let page: Page = serde_json::from_str(&search(query).await?)?;
        if page.hits.is_empty() {
            bail!("search {query:?} found nothing: is the conversation filled with words?");
        }
    }
    for query in queries.iter().cycle().take(10) {
        search(query).await?;
    }
    let mut micros = Vec::with_capacity(reps);
    let started = Instant::now();
    for query in queries.iter().cycle().take(reps) {
        let t = Instant::now();
        search(query).await?;
        micros.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if micros.len() >= 10 && started.elapsed().as_secs_f64() > budget {
            eprintln!(
                "  time budget spent after {} of {reps} searches",
                micros.len()
            );
            break;
        }
    }
    Ok(Percentiles::of(&mut micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_long_enough_and_bodies_repeatable() {
        let words: std::collections::HashSet<String> = (0..VOCABULARY).map(word).collect();
        assert_eq!(words.len(), VOCABULARY);
        assert!(words.iter().all(|w| w.len() >= 4));
        let corpus = Corpus::default();
        assert_eq!(corpus.body(7, 100), corpus.body(7, 100));
        assert_ne!(corpus.body(7, 100), corpus.body(8, 100));
        assert!((100..120).contains(&corpus.body(7, 100).len()));
        // Zipf: the commonest word is in most bodies.
        let with = (0..1000)
            .filter(|&n| corpus.body(n, 100).split(' ').any(|w| w == word(0)))
            .count();
        assert!(with > 700, "{with}");
    }
}
