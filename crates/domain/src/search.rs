//! Log search: the words of a message and the attribute pairs of an event, hashed into the
//! 32-bit *terms* ingest stores beside each row (`logs.terms`, GIN-indexed), and the query
//! language that looks them up.
//!
//! A *word* is a maximal run of letters, digits and `_`, compared case-insensitively
//! (Unicode lowercase). Everything else separates words and is ignored, as Elasticsearch's
//! standard analyzer does: `db-2` is the phrase `db 2`, `user=4739bb14` the phrase `user
//! 4739bb14`, and `card declined` matches `Card DECLINED`, `card: declined` and
//! `card-declined` alike. An attribute pair is a top-level key and its scalar value (a
//! string as is, a number or boolean as its JSON text), compared exactly.
//!
//! Two words can hash to one term, so the index only finds candidates and
//! [`Search::matches`] decides. The same functions run at ingest and at query time, so what
//! is stored and what is looked up cannot disagree.

use std::hash::Hasher;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Words of a message that are indexed: the first this many (repeats included). Later
/// words are found by substring search only; they bound what a stack trace costs at ingest.
pub const MAX_MESSAGE_WORDS: usize = 256;
/// Attribute pairs of an event that are indexed: the first this many scalar ones.
pub const MAX_ATTRIBUTE_TERMS: usize = 32;
/// Words a query may hold, over all its phrases.
pub const MAX_QUERY_WORDS: usize = 32;
/// Attribute filters a query may hold.
pub const MAX_QUERY_ATTRIBUTES: usize = 8;

/// Width of a block of event time in the term index, in seconds.
pub const BLOCK_SECONDS: i64 = 10;
/// Slices a block's terms are split into (by their low bits): looking a term up reads one.
pub const SLICES: i32 = 64;

/// The start of the block holding `ts` (blocks are aligned to the Unix epoch).
pub fn block_of(ts: DateTime<Utc>) -> DateTime<Utc> {
    let width = BLOCK_SECONDS * 1_000_000;
    let micros = ts.timestamp_micros();
    DateTime::from_timestamp_micros(micros - micros.rem_euclid(width)).unwrap_or(ts)
}

/// The slice a term is stored in.
pub fn slice_of(term: i32) -> i16 {
    // In 0..64: fits.
    (term & (SLICES - 1)) as i16
}

const WORD: u8 = 1;
const ATTRIBUTE: u8 = 2;

/// What is wrong with a search.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error(
        "q has no words to search for (words are letters, digits and _); use match=substring to find punctuation"
    )]
    NoWords,
    #[error("q has more than {MAX_QUERY_WORDS} words")]
    TooManyWords,
    #[error("more than {MAX_QUERY_ATTRIBUTES} attribute filters")]
    TooManyAttributes,
    #[error("attribute filter {0:?} has an empty key")]
    EmptyAttributeKey(String),
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Calls `each` with every word of `text`, lowercased, until it breaks.
fn scan_words(text: &str, mut each: impl FnMut(&str) -> ControlFlow<()>) {
    let mut word = String::new();
    for c in text.chars() {
        if is_word_char(c) {
            if c.is_ascii() {
                word.push(c.to_ascii_lowercase());
            } else {
                // Keeps the lowercase letters only: `İ` lowercases to `i` and a combining
                // dot, and the dot would split the word when the lowercase text is read back.
                word.extend(c.to_lowercase().filter(|lower| is_word_char(*lower)));
            }
        } else if !word.is_empty() {
            if each(&word).is_break() {
                return;
            }
            word.clear();
        }
    }
    if !word.is_empty() {
        let _ = each(&word);
    }
}

/// The words of `text`, lowercased.
pub fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    scan_words(text, |word| {
        words.push(word.to_owned());
        ControlFlow::Continue(())
    });
    words
}

/// FNV-1a (a fixed, published function: stored terms stay valid across builds), folded to
/// 32 bits.
fn hash(kind: u8, parts: &[&[u8]]) -> i32 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(&[kind]);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.write(&[0xff]);
        }
        hasher.write(part);
    }
    let folded = hasher.finish();
    ((folded >> 32) as u32 ^ folded as u32) as i32
}

/// The term of one (lowercased) word.
pub fn word_term(word: &str) -> i32 {
    hash(WORD, &[word.as_bytes()])
}

/// The term of one attribute pair.
pub fn attribute_term(key: &str, value: &str) -> i32 {
    hash(ATTRIBUTE, &[key.as_bytes(), value.as_bytes()])
}

/// A scalar attribute value as text (what `attributes->>key` gives); `None` for null,
/// arrays and objects, which are not indexed.
fn scalar_text(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Value::String(text) => Some(text.as_str().into()),
        Value::Number(number) => Some(number.to_string().into()),
        Value::Bool(flag) => Some(if *flag { "true" } else { "false" }.into()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The terms of one event: its first [`MAX_MESSAGE_WORDS`] words and first
/// [`MAX_ATTRIBUTE_TERMS`] scalar attribute pairs, sorted and without repeats.
pub fn terms(message: &str, attributes: &Map<String, Value>) -> Vec<i32> {
    let mut terms = Vec::with_capacity(16);
    let mut seen = 0;
    scan_words(message, |word| {
        terms.push(word_term(word));
        seen += 1;
        if seen == MAX_MESSAGE_WORDS {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    terms.extend(
        attributes
            .iter()
            .filter_map(|(key, value)| Some(attribute_term(key, &scalar_text(value)?)))
            .take(MAX_ATTRIBUTE_TERMS),
    );
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// A parsed search: every phrase must occur in the message and every attribute filter must
/// hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Search {
    /// Each a run of consecutive words (one word is a phrase of one).
    phrases: Vec<Vec<String>>,
    /// (key, value) pairs compared exactly.
    attributes: Vec<(String, String)>,
}

impl Search {
    /// Parses `q` (words, and `"quoted phrases"`; all must match) and attribute filters.
    /// A bare chunk with punctuation inside is a phrase of its words (`db-2`); an unclosed
    /// quote runs to the end.
    pub fn parse(
        q: Option<&str>,
        attributes: Vec<(String, String)>,
    ) -> Result<Search, SearchError> {
        let mut phrases = Vec::new();
        if let Some(q) = q {
            for (i, part) in q.split('"').enumerate() {
                let quoted = i % 2 == 1;
                if quoted {
                    phrases.push(words(part));
                } else {
                    phrases.extend(part.split_whitespace().map(words));
                }
            }
            phrases.retain(|phrase| !phrase.is_empty());
            if phrases.is_empty() {
                return Err(SearchError::NoWords);
            }
            if phrases.iter().map(Vec::len).sum::<usize>() > MAX_QUERY_WORDS {
                return Err(SearchError::TooManyWords);
            }
        }
        if attributes.len() > MAX_QUERY_ATTRIBUTES {
            return Err(SearchError::TooManyAttributes);
        }
        if let Some((key, value)) = attributes.iter().find(|(key, _)| key.is_empty()) {
            return Err(SearchError::EmptyAttributeKey(format!("{key}={value}")));
        }
        Ok(Search {
            phrases,
            attributes,
        })
    }

    /// Whether there is nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty() && self.attributes.is_empty()
    }

    /// The terms every matching row holds, sorted and without repeats.
    pub fn terms(&self) -> Vec<i32> {
        let mut terms: Vec<i32> = self
            .phrases
            .iter()
            .flatten()
            .map(|word| word_term(word))
            .chain(
                self.attributes
                    .iter()
                    .map(|(key, value)| attribute_term(key, value)),
            )
            .collect();
        terms.sort_unstable();
        terms.dedup();
        terms
    }

    /// Whether an event matches: every phrase occurs in `message` as consecutive words and
    /// every attribute filter equals the attribute's scalar value.
    pub fn matches(&self, message: &str, attributes: &Value) -> bool {
        let attributes_hold = self.attributes.iter().all(|(key, value)| {
            attributes
                .get(key)
                .and_then(scalar_text)
                .is_some_and(|text| text == value.as_str())
        });
        if !attributes_hold {
            return false;
        }
        if self.phrases.is_empty() {
            return true;
        }
        let message_words = words(message);
        self.phrases.iter().all(|phrase| {
            message_words
                .windows(phrase.len())
                .any(|window| window == phrase.as_slice())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn words_are_runs_of_letters_digits_and_underscores_lowercased() {
        assert_eq!(
            words("Card DECLINED: user=4739bb14, db-2 (Größe) snake_case"),
            [
                "card",
                "declined",
                "user",
                "4739bb14",
                "db",
                "2",
                "größe",
                "snake_case"
            ]
        );
        assert!(words("--- !!! ...").is_empty());
    }

    #[test]
    fn a_query_finds_its_words_in_any_case_and_with_any_punctuation_between() {
        let search = Search::parse(Some("card declined"), vec![]).unwrap();
        assert!(search.matches("payment 17: Card was DECLINED", &json!({})));
        assert!(!search.matches("payment 17: card accepted", &json!({})));
        // Words, not substrings.
        assert!(!search.matches("cards declined", &json!({})));
    }

    #[test]
    fn quotes_ask_for_consecutive_words() {
        let phrase = Search::parse(Some("\"card declined\""), vec![]).unwrap();
        assert!(phrase.matches("payment: card-declined (insufficient funds)", &json!({})));
        assert!(!phrase.matches("card was declined", &json!({})));
        assert!(!phrase.matches("declined card", &json!({})));
        // A bare chunk with punctuation is a phrase of its words.
        let chunk = Search::parse(Some("db-2"), vec![]).unwrap();
        assert!(chunk.matches("timeout on DB-2 after 30 s", &json!({})));
        assert!(!chunk.matches("db 1 and 2", &json!({})));
    }

    #[test]
    fn attribute_filters_compare_scalar_values_exactly() {
        let search = Search::parse(
            None,
            vec![
                ("host".into(), "web-3".into()),
                ("status".into(), "500".into()),
            ],
        )
        .unwrap();
        assert!(search.matches("x", &json!({"host": "web-3", "status": 500})));
        assert!(search.matches("x", &json!({"host": "web-3", "status": "500"})));
        assert!(!search.matches("x", &json!({"host": "Web-3", "status": 500})));
        assert!(!search.matches("x", &json!({"host": "web-3"})));
        assert!(!search.matches("x", &json!({"host": ["web-3"], "status": 500})));
    }

    #[test]
    fn queries_without_words_or_with_too_many_are_refused() {
        assert_eq!(
            Search::parse(Some(" -- !! "), vec![]),
            Err(SearchError::NoWords)
        );
        assert_eq!(
            Search::parse(Some("\"\""), vec![]),
            Err(SearchError::NoWords)
        );
        let long = "w ".repeat(MAX_QUERY_WORDS + 1);
        assert_eq!(
            Search::parse(Some(&long), vec![]),
            Err(SearchError::TooManyWords)
        );
        let filters = (0..=MAX_QUERY_ATTRIBUTES)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        assert_eq!(
            Search::parse(None, filters),
            Err(SearchError::TooManyAttributes)
        );
        assert!(matches!(
            Search::parse(None, vec![(String::new(), "v".into())]),
            Err(SearchError::EmptyAttributeKey(_))
        ));
    }

    #[test]
    fn an_unclosed_quote_runs_to_the_end() {
        let search = Search::parse(Some("timeout \"db 2"), vec![]).unwrap();
        assert!(search.matches("timeout talking to db-2", &json!({})));
        assert!(!search.matches("timeout talking to db-3 2", &json!({})));
    }

    #[test]
    fn stored_terms_are_fixed_values() {
        // Terms are stored: a change to the hash would make every stored row unsearchable.
        assert_eq!(word_term("declined"), word_term("declined"));
        let expected = {
            // FNV-1a 64 of [1, b"declined"...], folded, computed by hand from the published
            // constants rather than by the code under test.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in std::iter::once(1u8).chain(*b"declined") {
                h ^= u64::from(byte);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            ((h >> 32) as u32 ^ h as u32) as i32
        };
        assert_eq!(word_term("declined"), expected);
        assert_ne!(word_term("host"), attribute_term("host", ""));
    }

    #[test]
    fn terms_cover_the_first_words_and_scalar_attributes() {
        let message = (0..MAX_MESSAGE_WORDS + 10)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let stored = terms(&message, &map(json!({"host": "web-3", "nested": {"a": 1}})));
        assert!(stored.contains(&word_term("w0")));
        assert!(stored.contains(&word_term(&format!("w{}", MAX_MESSAGE_WORDS - 1))));
        assert!(!stored.contains(&word_term(&format!("w{MAX_MESSAGE_WORDS}"))));
        assert!(stored.contains(&attribute_term("host", "web-3")));
        assert_eq!(stored.len(), MAX_MESSAGE_WORDS + 1);
    }

    #[test]
    fn blocks_are_ten_second_steps_from_the_epoch() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        assert_eq!(
            block_of(at("2026-12-02T10:00:19.999999Z")),
            at("2026-12-02T10:00:10Z")
        );
        assert_eq!(
            block_of(at("2026-12-02T10:00:20Z")),
            at("2026-12-02T10:00:20Z")
        );
        assert_eq!(
            block_of(at("1969-12-31T23:59:55Z")),
            at("1969-12-31T23:59:50Z")
        );
        assert!((0..SLICES as i16).contains(&slice_of(-1)));
    }

    proptest! {
        /// Whatever a message says, a query made of any of its words (or a run of them, as a
        /// phrase) finds it through the terms stored for it, and matches it.
        #[test]
        fn every_stored_message_is_found_by_its_own_words(
            message in "[a-zA-Z0-9_ .:=/\\-éÉßİ]{0,80}",
            start in 0usize..20,
            len in 1usize..4,
        ) {
            let message_words = words(&message);
            prop_assume!(!message_words.is_empty());
            let start = start % message_words.len();
            let end = (start + len).min(message_words.len());
            let phrase = message_words[start..end].join(" ").to_ascii_uppercase();
            let search = Search::parse(Some(&format!("\"{phrase}\"")), vec![]).unwrap();
            let stored = terms(&message, &Map::new());
            prop_assert!(search.terms().iter().all(|term| stored.binary_search(term).is_ok()));
            let no_attributes = json!({});
            prop_assert!(search.matches(&message, &no_attributes));
        }
    }
}
