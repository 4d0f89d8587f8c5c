//! The SigmaHQ rule files in `../shared/corpus/sigma`, for the tests that
//! hold trawl's YAML reading to the real corpus (CI; the data cannot be
//! committed into the project).

use std::path::PathBuf;

/// Every `.yml` file of the corpus, with its text, in walk order; `None`,
/// after saying so on stderr, where the corpus is absent.
pub(super) fn sigmahq_files() -> Option<Vec<(PathBuf, String)>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/sigma");
    if !root.is_dir() {
        eprintln!("skipped: {} is absent (CI only)", root.display());
        return None;
    }
    let files: Vec<(PathBuf, String)> = crate::walk::sorted(&root)
        .map(|e| e.expect("the corpus is readable").into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("corpus files are UTF-8");
            (p, text)
        })
        .collect();
    assert!(files.len() > 3000, "{} rule files", files.len());
    Some(files)
}
