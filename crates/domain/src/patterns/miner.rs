//! The miner: groups masked messages into templates in one pass with bounded memory.
//!
//! Candidates are found as Drain finds them (He et al., ICWS 2017): a fixed-depth tree
//! keyed by the token count and the first two tokens leads to a short list of templates,
//! and a message joins the most similar one (the share of its tokens that agree, a
//! wildcard agreeing with any text) when at least half agree, or starts a template of its
//! own. Drain then turns every disagreeing token into a wildcard, which is how it merges
//! `Starting TrustedInstaller initialization.` with `… finalization.`; here a slot counts
//! the distinct words it has seen instead, and becomes a variable only past
//! [`MinerSettings::distinct_words`] of them. Until then each word it holds names a
//! template of its own (`VM Started` and `VM Paused` stay apart, the hundred user names of
//! `session opened for user <*>` do not). A number-shaped token ([`super::mask`]) makes its
//! slot variable at once.

use std::borrow::Cow;
use std::collections::HashMap;

use super::mask::{WILDCARD, is_unit, matches, tokens};

/// The miner's configuration: one set of values for every system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinerSettings {
    /// Share of its tokens a message must have in common with a template to join it.
    pub similarity: f64,
    /// Leading tokens the tree is keyed by (after the token count).
    pub prefix_tokens: usize,
    /// Children a tree node keeps before further keys share one wildcard child.
    pub max_children: usize,
    /// Templates kept at most; a message that fits none once they are all taken gets its
    /// masked tokens for template.
    pub max_templates: usize,
    /// Templates one tree leaf keeps at most (what a message is compared with): messages of
    /// one length and first tokens that fit none of them get their masked tokens, so a
    /// hostile stream of dissimilar lines cannot make each message cost thousands of
    /// comparisons.
    pub max_leaf_templates: usize,
    /// Distinct words a slot may hold as constants; one more makes it a variable.
    pub distinct_words: usize,
}

impl Default for MinerSettings {
    fn default() -> Self {
        MinerSettings {
            similarity: 0.5,
            prefix_tokens: 1,
            max_children: 100,
            max_templates: 10_000,
            max_leaf_templates: 256,
            distinct_words: 3,
        }
    }
}

/// What a slot has held.
#[derive(Debug, Clone)]
enum Words {
    /// Only its text.
    One,
    /// These few words, each of which names a template of its own.
    Few(Vec<Box<str>>),
    /// Too many to be constants, or a number-shaped value: a variable.
    Variable,
}

#[derive(Debug, Clone)]
struct Slot {
    /// The slot's text in the template: a word, or a pattern with wildcards.
    text: Box<str>,
    /// Whether `text` holds a wildcard.
    wild: bool,
    words: Words,
}

impl Slot {
    fn new(token: &str) -> Slot {
        let wild = token.contains(WILDCARD);
        Slot {
            text: token.into(),
            wild,
            words: if wild { Words::Variable } else { Words::One },
        }
    }

    fn agrees(&self, token: &str, token_wild: bool) -> bool {
        *self.text == *token
            || (self.wild && matches(&self.text, token))
            || (token_wild && matches(token, &self.text))
    }

    fn learn(&mut self, token: &str, token_wild: bool, distinct_words: usize) {
        // Two units in one slot (`KB`, `B`) are one quantity's, not two statements.
        let units = |words: &[Box<str>]| is_unit(token) && words.iter().any(|w| is_unit(w));
        let covered = *self.text == *token || (self.wild && matches(&self.text, token));
        let variable = match &mut self.words {
            Words::Variable => !covered,
            Words::One if *self.text == *token => false,
            _ if self.wild || token_wild => true,
            Words::One if units(std::slice::from_ref(&self.text)) => true,
            Words::One => {
                self.words = Words::Few(vec![self.text.clone(), token.into()]);
                false
            }
            Words::Few(words) if words.iter().any(|w| **w == *token) => false,
            Words::Few(words) if units(words) => true,
            Words::Few(words) => {
                words.push(token.into());
                words.len() > distinct_words
            }
        };
        if variable {
            let text = match &self.words {
                Words::Few(words) => words
                    .iter()
                    .fold(token.to_owned(), |text, word| generalized(&text, word)),
                Words::One | Words::Variable => generalized(&self.text, token),
            };
            self.wild = text.contains(WILDCARD);
            self.text = text.into();
            self.words = Words::Variable;
        }
    }
}

/// The narrowest of: `a`, `b` (when one's wildcards cover the other), `key=<*>` (when both
/// are values of one key), `<*>`.
fn generalized(a: &str, b: &str) -> String {
    if a == b || matches(a, b) {
        return a.to_owned();
    }
    if matches(b, a) {
        return b.to_owned();
    }
    match (a.split_once('='), b.split_once('=')) {
        (Some((key, _)), Some((other, _))) if key == other && !key.is_empty() => {
            format!("{key}={WILDCARD}")
        }
        _ => WILDCARD.to_owned(),
    }
}

#[derive(Debug, Clone)]
struct Template {
    slots: Vec<Slot>,
}

#[derive(Debug, Default, Clone)]
struct Node {
    children: HashMap<Box<str>, Node>,
    templates: Vec<usize>,
}

/// Online template miner: [`Miner::add`] each message once, then ask [`Miner::template`]
/// for any message's template.
#[derive(Debug, Clone, Default)]
pub struct Miner {
    settings: MinerSettings,
    /// Tree roots by token count.
    roots: HashMap<usize, Node>,
    templates: Vec<Template>,
}

fn tree_key(token: &str) -> &str {
    if token.bytes().any(|b| b.is_ascii_digit()) || token.contains(WILDCARD) {
        WILDCARD
    } else {
        token
    }
}

impl Miner {
    pub fn new(settings: MinerSettings) -> Miner {
        Miner {
            settings,
            roots: HashMap::new(),
            templates: Vec::new(),
        }
    }

    /// Templates learned so far.
    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Learns from one message.
    pub fn add(&mut self, message: &str) {
        let tokens = tokens(message);
        let wild: Vec<bool> = tokens.iter().map(|t| t.contains(WILDCARD)).collect();
        let settings = self.settings;
        let mut node = self.roots.entry(tokens.len()).or_default();
        for token in tokens.iter().take(settings.prefix_tokens) {
            let mut key = tree_key(token);
            if !node.children.contains_key(key) && node.children.len() >= settings.max_children {
                key = WILDCARD;
            }
            node = node.children.entry(key.into()).or_default();
        }
        match best(
            &self.templates,
            &node.templates,
            &tokens,
            &wild,
            settings.similarity,
        ) {
            Some(id) => {
                for ((slot, token), &token_wild) in
                    self.templates[id].slots.iter_mut().zip(&tokens).zip(&wild)
                {
                    slot.learn(token, token_wild, settings.distinct_words);
                }
            }
            None if self.templates.len() < settings.max_templates
                && node.templates.len() < settings.max_leaf_templates =>
            {
                node.templates.push(self.templates.len());
                self.templates.push(Template {
                    slots: tokens.iter().map(|t| Slot::new(t)).collect(),
                });
            }
            None => {}
        }
    }

    /// The template of `message`, by what has been learned: variable parts are `<*>`.
    pub fn template(&self, message: &str) -> String {
        let tokens = tokens(message);
        match self.find(&tokens) {
            Some(id) => {
                let slots = &self.templates[id].slots;
                let texts = slots
                    .iter()
                    .zip(&tokens)
                    .map(|(slot, token)| match slot.words {
                        Words::Few(_) => token.as_ref(),
                        Words::One | Words::Variable => &*slot.text,
                    });
                join(texts)
            }
            None => join(tokens.iter().map(AsRef::as_ref)),
        }
    }

    fn find(&self, tokens: &[Cow<'_, str>]) -> Option<usize> {
        let mut node = self.roots.get(&tokens.len())?;
        for token in tokens.iter().take(self.settings.prefix_tokens) {
            let key = tree_key(token);
            node = node
                .children
                .get(key)
                .or_else(|| node.children.get(WILDCARD))?;
        }
        let wild: Vec<bool> = tokens.iter().map(|t| t.contains(WILDCARD)).collect();
        best(
            &self.templates,
            &node.templates,
            tokens,
            &wild,
            self.settings.similarity,
        )
    }
}

/// The candidate most similar to `tokens` (ties: the one with more wildcards), if similar
/// enough.
fn best(
    templates: &[Template],
    candidates: &[usize],
    tokens: &[Cow<'_, str>],
    wild: &[bool],
    similarity: f64,
) -> Option<usize> {
    let mut best: Option<(usize, usize, usize)> = None;
    for &id in candidates {
        let slots = &templates[id].slots;
        let (mut same, mut wildcards) = (0, 0);
        for ((slot, token), &token_wild) in slots.iter().zip(tokens).zip(wild) {
            same += usize::from(slot.agrees(token, token_wild));
            wildcards += usize::from(slot.wild);
        }
        if best.is_none_or(|(_, s, w)| same > s || (same == s && wildcards > w)) {
            best = Some((id, same, wildcards));
        }
    }
    let (id, same, _) = best?;
    #[allow(clippy::cast_precision_loss)] // token counts are at most MAX_TOKENS
    let enough = tokens.is_empty() || same as f64 >= similarity * tokens.len() as f64;
    enough.then_some(id)
}

fn join<'a>(texts: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for (i, text) in texts.enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(messages: &[&str]) -> Vec<String> {
        let mut miner = Miner::default();
        for m in messages {
            miner.add(m);
        }
        messages.iter().map(|m| miner.template(m)).collect()
    }

    #[test]
    fn numbers_inside_messages_do_not_split_a_template() {
        let t = templates(&[
            "Received block blk_123456 of size 91178 from 10.0.0.1",
            "Received block blk_-98765 of size 12 from 10.0.0.2",
            "Deleting block blk_123456 file /data/blk_123456",
        ]);
        assert_eq!(t[0], "Received block <*> of size <*> from <*>");
        assert_eq!(t[0], t[1]);
        assert_ne!(t[0], t[2]);
    }

    #[test]
    fn a_few_words_are_constants_many_are_a_variable() {
        let few = templates(&[
            "VM Started (Lifecycle Event)",
            "VM Paused (Lifecycle Event)",
            "VM Started (Lifecycle Event)",
        ]);
        assert_eq!(few[0], "VM Started (Lifecycle Event)");
        assert_eq!(few[1], "VM Paused (Lifecycle Event)");
        assert_eq!(few[0], few[2]);

        let users = ["alice", "bob", "carol", "dave", "erin"];
        let messages: Vec<String> = users
            .iter()
            .map(|u| format!("session opened for user {u} by (uid=0)"))
            .collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        let many = templates(&refs);
        assert!(
            many.iter()
                .all(|t| t == "session opened for user <*> by (uid=<*>)"),
            "{many:?}"
        );
    }

    #[test]
    fn wildcards_absorb_empty_and_present_values() {
        let t = templates(&[
            "connection from 10.1.2.3 () at noon",
            "connection from 10.1.2.4 (host-123.example.net) at noon",
        ]);
        assert_eq!(t[0], t[1]);
        assert_eq!(t[0], "connection from <*> (<*>) at noon");
    }

    #[test]
    fn sizes_in_different_units_share_a_template() {
        let t = templates(&[
            "stored block (estimated size 5.4 KB, free 317.1 MB)",
            "stored block (estimated size 93.0 B, free 317.0 MB)",
            "took 12 ms",
            "took 30 ms",
        ]);
        assert_eq!(t[0], t[1]);
        assert_eq!(t[0], "stored block (estimated size <*> <*> free <*> MB)");
        assert_eq!(t[2], "took <*> ms");
    }

    #[test]
    fn dissimilar_messages_of_one_length_stay_apart() {
        let t = templates(&["disk full on sda", "user logged out now"]);
        assert_ne!(t[0], t[1]);
    }

    #[test]
    fn the_template_count_is_bounded() {
        let mut miner = Miner::new(MinerSettings {
            max_templates: 10,
            ..MinerSettings::default()
        });
        let messages: Vec<String> = (0..100)
            .map(|i| {
                format!(
                    "{} {} {}",
                    "w".repeat(i + 1),
                    "x".repeat(i + 2),
                    "y".repeat(i + 3)
                )
            })
            .collect();
        for m in &messages {
            miner.add(m);
        }
        assert_eq!(miner.len(), 10);
        // A message that fits none is its own masked tokens.
        assert_eq!(miner.template(&messages[99]), messages[99]);
    }

    #[test]
    fn a_leaf_keeps_a_bounded_number_of_templates() {
        let mut miner = Miner::default();
        // One length, one first two tokens, nothing else in common.
        let messages: Vec<String> = (0..1_000)
            .map(|i| {
                format!(
                    "same start {} {} {}",
                    "a".repeat(i % 50 + 1),
                    "b".repeat(i / 50 + 1),
                    "c".repeat(i % 7 + 1)
                )
            })
            .collect();
        for m in &messages {
            miner.add(m);
        }
        assert!(
            miner.len() <= MinerSettings::default().max_leaf_templates,
            "{}",
            miner.len()
        );
    }

    #[test]
    fn unseen_messages_get_a_template_too() {
        let miner = Miner::default();
        assert_eq!(miner.template("took 5 ms"), "took <*> ms");
        assert_eq!(miner.template(""), "");
    }
}
