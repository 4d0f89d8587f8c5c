//! Which filesystems hold files worth watching: every local, non-pseudo
//! filesystem mounted now, from `/proc/self/mountinfo`.

/// Filesystem types with no files of their own (kernel views, device nodes,
/// control files) or whose files live elsewhere (network, FUSE).
const SKIPPED_TYPES: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "pstore",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "nsfs",
    "rpc_pipefs",
    "selinuxfs",
    "rootfs",
    "ramfs",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "ceph",
    "glusterfs",
    "afs",
    "lustre",
];

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: String,
    pub fs_type: String,
    /// The mount shows the filesystem's root (not a bind mount of a folder).
    pub whole: bool,
}

/// Local, non-pseudo mounts, in mountinfo order.
pub fn local_filesystems() -> std::io::Result<Vec<Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .filter(|m| is_local(&m.fs_type) && !is_kernel_tree(&m.mount_point))
        .collect())
}

fn is_local(fs_type: &str) -> bool {
    !SKIPPED_TYPES.contains(&fs_type) && !fs_type.starts_with("fuse")
}

/// Mounts inside the kernel's own trees (a tmpfs at `/sys/fs/cgroup`) hold
/// no user files, whatever their type.
fn is_kernel_tree(mount_point: &str) -> bool {
    ["/sys", "/proc"].iter().any(|t| {
        mount_point == *t
            || mount_point
                .strip_prefix(t)
                .is_some_and(|r| r.starts_with('/'))
    })
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let fs_type = right.split(' ').next()?;
            Some(Mount {
                mount_point: unescape(f.get(4)?),
                fs_type: fs_type.to_owned(),
                whole: *f.get(3)? == "/",
            })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_and_pseudo_filesystems_are_skipped() {
        let text = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    23 22 0:5 / /proc rw - proc proc rw\n\
                    24 22 0:30 / /mnt/my\\040disk rw - xfs /dev/sdb1 rw\n\
                    25 22 0:31 /sub /srv rw - ext4 /dev/vda rw\n\
                    26 22 0:32 / /run/user/1000/doc rw - fuse.portal portal rw\n";
        let all = parse_mountinfo(text);
        assert_eq!(all.len(), 5);
        assert_eq!(all[2].mount_point, "/mnt/my disk");
        assert!(!all[3].whole);
        let local: Vec<_> = all
            .iter()
            .filter(|m| is_local(&m.fs_type))
            .map(|m| m.mount_point.as_str())
            .collect();
        assert_eq!(local, ["/", "/mnt/my disk", "/srv"]);
        assert!(is_kernel_tree("/sys/fs/cgroup") && is_kernel_tree("/proc"));
        assert!(!is_kernel_tree("/system") && !is_kernel_tree("/"));
    }

    #[test]
    fn this_machine_has_a_local_root() {
        assert!(local_filesystems()
            .unwrap()
            .iter()
            .any(|m| m.mount_point == "/"));
    }
}
