//! Message patterns: what the lines of a burst have in common.
//!
//! [`Miner`] groups messages into templates (`Received block <*> of size <*>`) in one pass
//! with bounded memory and one generic configuration; [`explain`] compares the templates
//! and attribute values of an incident's window with its baseline.
//!
//! # Layout
//! - [`mask`]: tokens, and the number-shaped parts that become `<*>`.
//! - [`miner`]: [`Miner`], the template tree.
//! - [`explain`]: [`explain()`], the templates and attribute values over-represented in an
//!   incident's window against its baseline; [`pattern_counts`], a sample's templates.

pub mod explain;
pub mod mask;
pub mod miner;

pub use explain::{
    AttributeBaseline, AttributeChange, Explanation, Line, PatternChange, PatternCount, SideSize,
    explain, pattern_counts,
};
pub use mask::WILDCARD;
pub use miner::{Miner, MinerSettings};
