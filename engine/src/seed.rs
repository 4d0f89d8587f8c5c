//! The embedded seed pack (filled in when the seed rules land).
use crate::load::RuleLoad;
/// Loads the seed pack.
pub fn load() -> RuleLoad {
    RuleLoad::default()
}
