//! The folder walk that rule loading and replay share: recursive, in
//! file-name order, hidden entries passed over, symbolic links followed.
//!
//! Why not walkdir's `sort_by_file_name`: it takes each name with
//! `Path::file_name`, which parses the whole path into components at every
//! comparison; on SigmaHQ's 3,754 rule files that was a tenth of the work
//! done before the files could be parsed, on one thread.

use std::path::Path;

/// Every entry below `dir` (and `dir` itself, at depth 0), depth first, the
/// entries of a folder in byte order of their names, as
/// [`walkdir::WalkDir::sort_by_file_name`] orders them. Entries whose name
/// starts with `.` (`.git`, editor files) are passed over, with all they
/// hold, except `dir` itself.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// for name in ["b.yml", "a.yml", ".hidden.yml"] {
///     std::fs::write(dir.path().join(name), "").unwrap();
/// }
/// let names: Vec<String> = trawl_engine::walk::sorted(dir.path())
///     .filter_map(|e| e.ok())
///     .filter(|e| e.depth() == 1)
///     .map(|e| e.file_name().to_string_lossy().into_owned())
///     .collect();
/// assert_eq!(names, ["a.yml", "b.yml"]);
/// ```
pub fn sorted(dir: &Path) -> impl Iterator<Item = walkdir::Result<walkdir::DirEntry>> {
    walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by(|a, b| name(a).cmp(name(b)))
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !name(e).starts_with(b"."))
}

/// The bytes of an entry's name: its path after the last separator. A walk
/// joins each name to its folder's path, so below depth 0 this is exactly
/// `file_name()`, without parsing the path. On Windows a drive's colon
/// counts as a separator too: the walk of `C:` joins `a` as `C:a`.
fn name(entry: &walkdir::DirEntry) -> &[u8] {
    let path = entry.path().as_os_str().as_encoded_bytes();
    let start = path
        .iter()
        .rposition(|&b| std::path::is_separator(char::from(b)) || (cfg!(windows) && b == b':'))
        .map_or(0, |i| i + 1);
    &path[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order and the names are walkdir's own, on names that sort
    /// differently by bytes, by characters and by case.
    #[test]
    fn the_order_is_walkdirs_by_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let names = ["b", "B", "a-c", "a", "é", "z.yml", "_x", "a.b"];
        for n in names {
            std::fs::create_dir(dir.path().join(n)).unwrap();
            for m in names {
                std::fs::write(dir.path().join(n).join(m), "").unwrap();
            }
        }
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/config"), "").unwrap();
        let ours: Vec<_> = sorted(dir.path()).map(|e| e.unwrap().into_path()).collect();
        let theirs: Vec<_> = walkdir::WalkDir::new(dir.path())
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .filter(|p| !p.to_string_lossy().contains(".git"))
            .collect();
        assert_eq!(ours.len(), 1 + names.len() * (1 + names.len()));
        assert_eq!(ours, theirs);
        for e in sorted(dir.path()).skip(1) {
            let e = e.unwrap();
            assert_eq!(name(&e), e.file_name().as_encoded_bytes());
        }
    }
}
