//! Sigma front end (stub until the sigma branch lands).
use crate::rule::{Rule, Unsupported};
/// Result of loading Sigma text.
pub struct SigmaLoad {
    pub rules: Vec<Rule>,
    pub unsupported: Vec<Unsupported>,
}
/// Parses Sigma YAML.
pub fn parse_str(_text: &str, _origin: &str) -> SigmaLoad {
    SigmaLoad {
        rules: vec![],
        unsupported: vec![],
    }
}
