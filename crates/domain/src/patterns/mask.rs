//! Masking: a message becomes whitespace-separated tokens in which the parts that vary
//! between occurrences of the same statement are replaced by [`WILDCARD`].
//!
//! One generic rule set, no per-system expressions. A token is cut at delimiters
//! (`, ; = | ( ) { } [ ] " ' < > @ :`) into parts, and a part is variable when it is
//! number-shaped:
//! - it starts with a digit, or a sign and a digit (counts, sizes, IPs, dates, `0x…`);
//! - it holds a run of three digits or more (`blk_-1608…`, `node-129`, `job_1445…`);
//! - it holds a digit and a `/` (`2016/9/27`, `HTTP/1.1`), or it is a path (`/var/…`) or URL;
//! - it is eight or more hex digits with a digit among them (ids, hashes, UUIDs).
//!
//! Identifiers with a short number (`ext3`, `wl0`, `SOCKS5`, `x86_64`) are left as words: the
//! miner decides from how many values a slot takes whether they vary (see
//! [`super::Miner`]), which also lets a slot that holds two units (`KB`, `B`) vary. Weekday
//! and month names next to a number or another date word are part of a date
//! (`Fri Jun 24 18:55:11 2005` → five wildcards).
//!
//! Quoted values are words like any other (`KeyError: 'user_id'` and `KeyError: 'order_id'`
//! are two errors; a hundred `user 'alice'` lines make the slot a variable): a quote says
//! nothing about whether its content varies, and masking it hid new errors.
//!
//! Masking keeps each token's skeleton (`(uid=0)` → `(uid=<*>)`, `rhost=1.2.3.4` →
//! `rhost=<*>`), so templates read like the messages they stand for.

use std::borrow::Cow;

/// What a variable part becomes.
pub const WILDCARD: &str = "<*>";

/// Tokens read from one message at most; the rest of a longer message becomes one
/// trailing wildcard, which bounds the cost of a message and the size of a template.
pub const MAX_TOKENS: usize = 128;

/// Units a number is commonly followed by.
const UNITS: [&str; 27] = [
    "b", "kb", "mb", "gb", "tb", "kib", "mib", "gib", "tib", "byte", "bytes", "ms", "us", "µs",
    "ns", "s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "h",
    "hours", "%",
];

const DATE_WORDS: [&str; 27] = [
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
];

/// Punctuation around a word that does not change which word it is.
fn is_wrapping(c: char) -> bool {
    matches!(
        c,
        '(' | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '<'
            | '>'
            | '"'
            | '\''
            | ','
            | ';'
            | ':'
            | '.'
            | '!'
            | '?'
    )
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b',' | b';'
            | b'='
            | b'|'
            | b'('
            | b')'
            | b'{'
            | b'}'
            | b'['
            | b']'
            | b'"'
            | b'\''
            | b'<'
            | b'>'
            | b'@'
            | b':'
    )
}

/// Whether one part of a token (between delimiters) is number-shaped: see the module doc.
fn is_variable(part: &str) -> bool {
    let bytes = part.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if first.is_ascii_digit()
        || ((first == b'-' || first == b'+') && bytes.get(1).is_some_and(u8::is_ascii_digit))
    {
        return true;
    }
    let (mut digits, mut run, mut longest_run, mut hex) = (0, 0, 0, 0);
    let (mut slash, mut hex_shaped) = (false, true);
    for &b in bytes {
        if b.is_ascii_digit() {
            digits += 1;
            run += 1;
            longest_run = longest_run.max(run);
        } else {
            run = 0;
        }
        if b.is_ascii_hexdigit() {
            hex += 1;
        } else if b != b'-' {
            hex_shaped = false;
        }
        slash |= b == b'/';
    }
    if digits == 0 {
        return first == b'/' || part.contains("://");
    }
    longest_run >= 3 || slash || (hex_shaped && hex >= 8)
}

/// One token with its variable parts masked; borrowed when nothing was.
fn mask_token(token: &str) -> Cow<'_, str> {
    // Only a digit or a slash can make a part variable.
    if !token.bytes().any(|b| b.is_ascii_digit() || b == b'/') {
        return Cow::Borrowed(token);
    }
    let mut masked = String::with_capacity(token.len());
    let mut changed = false;
    let mut start = 0;
    let bytes = token.as_bytes();
    for end in (0..=bytes.len()).filter(|&i| i == bytes.len() || is_delimiter(bytes[i])) {
        let part = &token[start..end];
        if is_variable(part.trim_end_matches(['.', '!', '?'])) {
            masked.push_str(WILDCARD);
            changed = true;
        } else {
            masked.push_str(part);
        }
        if end < bytes.len() {
            masked.push(char::from(bytes[end]));
        }
        start = end + 1;
    }
    if changed {
        Cow::Owned(masked)
    } else {
        Cow::Borrowed(token)
    }
}

fn word_of(token: &str) -> &str {
    token.trim_matches(is_wrapping)
}

fn is_date_word(token: &str) -> bool {
    // Most tokens are ruled out by length or first letter before any comparison.
    if !(3..=11).contains(&token.len()) {
        return false;
    }
    let word = word_of(token);
    (3..=9).contains(&word.len())
        && matches!(
            word.as_bytes()[0].to_ascii_lowercase(),
            b'm' | b't' | b'w' | b'f' | b's' | b'j' | b'a' | b'o' | b'n' | b'd'
        )
        && DATE_WORDS.iter().any(|d| d.eq_ignore_ascii_case(word))
}

/// Whether `token` is a unit (`ms`, `KB`, `%`…), punctuation around it aside.
pub(super) fn is_unit(token: &str) -> bool {
    let word = word_of(token);
    word.len() <= 7 && UNITS.iter().any(|u| u.eq_ignore_ascii_case(word))
}

/// The masked tokens of `message`, in order.
pub fn tokens(message: &str) -> Vec<Cow<'_, str>> {
    let mut tokens: Vec<Cow<'_, str>> = Vec::new();
    let mut words = message.split_whitespace();
    for word in words.by_ref() {
        tokens.push(mask_token(word));
        if tokens.len() == MAX_TOKENS - 1 {
            break;
        }
    }
    if words.next().is_some() {
        tokens.push(Cow::Borrowed(WILDCARD));
    }
    if tokens.iter().any(|t| is_date_word(t)) {
        let dates: Vec<bool> = tokens.iter().map(|t| is_date_word(t)).collect();
        let dated = |j: usize| dates[j] || tokens[j].contains(WILDCARD);
        let masked: Vec<usize> = (0..tokens.len())
            .filter(|&i| {
                dates[i] && ((i + 1 < tokens.len() && dated(i + 1)) || (i > 0 && dated(i - 1)))
            })
            .collect();
        for i in masked {
            tokens[i] = Cow::Borrowed(WILDCARD);
        }
    }
    tokens
}

/// Whether `pattern`, read with each wildcard standing for any text (possibly empty),
/// matches `text`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split(WILDCARD);
    let Some(head) = pieces.next() else {
        return pattern == text;
    };
    let Some(rest) = text.strip_prefix(head) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((tail, middle)) = pieces.split_last() else {
        // No wildcard in the pattern.
        return rest.is_empty();
    };
    let Some(mut rest) = rest.strip_suffix(tail) else {
        return false;
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(message: &str) -> String {
        tokens(message).join(" ")
    }

    #[test]
    fn numbers_ids_and_addresses_are_masked_words_are_not() {
        assert_eq!(
            masked("Received block blk_-1608999687919862906 of size 91178 from /10.250.10.6"),
            "Received block <*> of size <*> from <*>"
        );
        assert_eq!(
            masked("session opened for user root by (uid=0)"),
            "session opened for user root by (uid=<*>)"
        );
        assert_eq!(
            masked("request 550e8400-e29b-41d4-a716-446655440000 from 10.0.0.1:5070 took 5.4 ms"),
            "request <*> from <*>:<*> took <*> ms"
        );
        assert_eq!(masked("deadbeef12 ok at /var/log/syslog"), "<*> ok at <*>");
        // Quoted values are words: the miner decides by their variety.
        assert_eq!(
            masked("KeyError: 'user_id' in \"users\""),
            "KeyError: 'user_id' in \"users\""
        );
        assert_eq!(
            masked(r#"{"user": "bob", "n": 1}"#),
            r#"{"user": "bob", "n": <*>}"#
        );
        // Short-numbered identifiers stay words; the miner decides by their variety.
        assert_eq!(
            masked("interface wl0 uses ext3 over SOCKS5"),
            "interface wl0 uses ext3 over SOCKS5"
        );
        assert_eq!(
            masked("connection at Fri Jun 24 18:55:11 2005 from node-129"),
            "connection at <*> <*> <*> <*>:<*>:<*> <*> from <*>"
        );
        // Words that merely look like dates or units stay words.
        assert_eq!(masked("may fail in s mode"), "may fail in s mode");
    }

    #[test]
    fn long_messages_are_bounded() {
        let long = vec!["word"; 1_000].join(" ");
        let tokens = tokens(&long);
        assert_eq!(tokens.len(), MAX_TOKENS);
        assert_eq!(tokens[MAX_TOKENS - 1], WILDCARD);
        assert_eq!(
            tokens.len(),
            super::tokens(&vec!["w"; MAX_TOKENS].join(" ")).len()
        );
    }

    #[test]
    fn wildcards_match_any_text() {
        assert!(matches("(<*>)", "()"));
        assert!(matches("(<*>)", "(host)"));
        assert!(matches("rhost=<*>", "rhost="));
        assert!(matches("<*>", "anything"));
        assert!(matches("a<*>b<*>c", "a-x-b-y-c"));
        assert!(!matches("(uid=<*>)", "LOGIN(uid=<*>)"));
        assert!(!matches("a<*>b<*>c", "a-c"));
        assert!(!matches("plain", "plains"));
        assert!(matches("plain", "plain"));
    }
}
