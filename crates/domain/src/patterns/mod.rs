//! Message patterns: what the lines of a burst have in common.
//!
//! [`Miner`] groups messages into templates (`Received block <*> of size <*>`) in one pass
//! with bounded memory and one generic configuration; [`explain`] compares the templates
//! and attribute values of an incident's window with its baseline.
//!
//! # Layout
//! - [`mask`]: tokens, and the number-shaped parts that become `<*>`.
//! - [`miner`]: [`Miner`], the template tree.

pub mod mask;
pub mod miner;

pub use mask::WILDCARD;
pub use miner::{Miner, MinerSettings};
