//! Kernel device paths (`\Device\HarddiskVolume3\Windows\…`) as the drive
//! paths rules are written for (`C:\Windows\…`).
//!
//! ETW's kernel providers name files and images by their NT device path. A
//! Sigma rule for `C:\Windows\TAPI\` would never match that, so every path a
//! source reports goes through a [`DeviceMap`] built from the system's DOS
//! device table (`QueryDosDeviceW` on Windows; injected in tests).
//!
//! ```
//! use trawl_sensor::etw::device_map::DeviceMap;
//!
//! let map = DeviceMap::new([("C:", r"\Device\HarddiskVolume3")], r"C:\Windows");
//! assert_eq!(map.to_dos(r"\Device\HarddiskVolume3\Windows\TAPI\pa.exe"), r"C:\Windows\TAPI\pa.exe");
//! ```

use std::borrow::Cow;

/// Drive letters for NT device names, plus the rewrites that need no table
/// (`\??\`, `\SystemRoot\`, `\Device\Mup\` for UNC paths).
#[derive(Debug, Clone, Default)]
pub struct DeviceMap {
    /// (device name, drive) pairs, e.g. (`\Device\HarddiskVolume3`, `C:`).
    drives: Vec<(String, String)>,
    system_root: String,
}

/// What [`DeviceMap::translate`] did with a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translation<'a> {
    /// Already a DOS path, or rewritten into one.
    Mapped(Cow<'a, str>),
    /// A device path no drive letter stands for (an unmounted volume, a pipe):
    /// kept as it is. Callers count these.
    Unmapped(&'a str),
}

impl DeviceMap {
    /// A map from `(drive, device)` pairs as `QueryDosDeviceW` reports them
    /// (`("C:", "\Device\HarddiskVolume3")`), and the system root for
    /// `\SystemRoot\` paths (`C:\Windows`).
    pub fn new<I, D, T>(drives: I, system_root: &str) -> DeviceMap
    where
        I: IntoIterator<Item = (D, T)>,
        D: Into<String>,
        T: Into<String>,
    {
        let mut drives: Vec<(String, String)> = drives
            .into_iter()
            .map(|(d, t)| (t.into(), d.into()))
            .filter(|(t, d)| !t.is_empty() && !d.is_empty())
            .collect();
        // Longer device names first, so a name that prefixes another (rare,
        // but `\Device\HarddiskVolume1` vs `…10`) never wins by accident; the
        // separator check below makes this belt and braces.
        drives.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.1.cmp(&b.1)));
        DeviceMap {
            drives,
            system_root: system_root.trim_end_matches('\\').to_owned(),
        }
    }

    /// How many drives the map knows.
    pub fn len(&self) -> usize {
        self.drives.len()
    }

    /// Whether the map knows no drive at all.
    pub fn is_empty(&self) -> bool {
        self.drives.is_empty()
    }

    /// `path` as a DOS path when one exists, otherwise as it was.
    pub fn to_dos<'a>(&self, path: &'a str) -> Cow<'a, str> {
        match self.translate(path) {
            Translation::Mapped(p) => p,
            Translation::Unmapped(p) => Cow::Borrowed(p),
        }
    }

    /// `path` as a DOS path, saying whether it could be mapped.
    pub fn translate<'a>(&self, path: &'a str) -> Translation<'a> {
        if !path.starts_with('\\') || path.starts_with("\\\\") {
            // `C:\…`, a relative name or a UNC path: nothing to do.
            return Translation::Mapped(Cow::Borrowed(path));
        }
        if let Some(rest) = strip_prefix_ci(path, "\\??\\UNC\\") {
            return Translation::Mapped(Cow::Owned(format!("\\\\{rest}")));
        }
        if let Some(rest) = strip_prefix_ci(path, "\\??\\") {
            return Translation::Mapped(Cow::Borrowed(rest));
        }
        if let Some(rest) = strip_prefix_ci(path, "\\SystemRoot") {
            if rest.is_empty() || rest.starts_with('\\') {
                return Translation::Mapped(Cow::Owned(format!("{}{rest}", self.system_root)));
            }
        }
        for redirector in ["\\Device\\Mup\\", "\\Device\\LanmanRedirector\\"] {
            if let Some(rest) = strip_prefix_ci(path, redirector) {
                // `\Device\Mup\;LanmanRedirector\;Z:0000…\server\share` names
                // a mapped drive's connection; keep from the server on.
                let rest = rest
                    .split_once(";Z:")
                    .and_then(|(_, r)| r.split_once('\\').map(|(_, r)| r))
                    .or_else(|| rest.strip_prefix(";LanmanRedirector\\"))
                    .unwrap_or(rest);
                return Translation::Mapped(Cow::Owned(format!("\\\\{rest}")));
            }
        }
        for (device, drive) in &self.drives {
            if let Some(rest) = strip_prefix_ci(path, device) {
                if rest.is_empty() || rest.starts_with('\\') {
                    return Translation::Mapped(Cow::Owned(format!("{drive}{rest}")));
                }
            }
        }
        Translation::Unmapped(path)
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> DeviceMap {
        DeviceMap::new(
            [
                ("C:", r"\Device\HarddiskVolume3"),
                ("D:", r"\Device\HarddiskVolume10"),
                ("E:", r"\Device\CdRom0"),
            ],
            r"C:\Windows\",
        )
    }

    #[test]
    fn volumes_become_drive_letters() {
        let m = map();
        assert_eq!(
            m.to_dos(r"\Device\HarddiskVolume3\Windows\TAPI\pa.exe"),
            r"C:\Windows\TAPI\pa.exe"
        );
        assert_eq!(
            m.to_dos(r"\Device\HarddiskVolume10\tools\x.exe"),
            r"D:\tools\x.exe"
        );
        // Case-insensitive, as the object manager is.
        assert_eq!(m.to_dos(r"\DEVICE\harddiskvolume3\a"), r"C:\a");
        assert_eq!(m.to_dos(r"\Device\HarddiskVolume3"), "C:");
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn a_volume_name_never_matches_a_longer_one() {
        let m = DeviceMap::new([("C:", r"\Device\HarddiskVolume1")], r"C:\Windows");
        assert_eq!(
            m.translate(r"\Device\HarddiskVolume10\x"),
            Translation::Unmapped(r"\Device\HarddiskVolume10\x")
        );
        assert_eq!(m.to_dos(r"\Device\HarddiskVolume1\x"), r"C:\x");
    }

    #[test]
    fn other_nt_forms_are_rewritten() {
        let m = map();
        assert_eq!(m.to_dos(r"\??\C:\Windows\x.dll"), r"C:\Windows\x.dll");
        assert_eq!(m.to_dos(r"\??\UNC\fs01\share\a.txt"), r"\\fs01\share\a.txt");
        assert_eq!(
            m.to_dos(r"\SystemRoot\System32\smss.exe"),
            r"C:\Windows\System32\smss.exe"
        );
        assert_eq!(
            m.to_dos(r"\Device\Mup\fs01\admin$\PAExec.exe"),
            r"\\fs01\admin$\PAExec.exe"
        );
        assert_eq!(
            m.to_dos(r"\Device\Mup\;LanmanRedirector\;Z:000000000001a2b3\fs01\share\f.txt"),
            r"\\fs01\share\f.txt"
        );
        assert_eq!(m.to_dos(r"C:\already\dos"), r"C:\already\dos");
        assert_eq!(m.to_dos(r"\\server\share\x"), r"\\server\share\x");
        assert_eq!(m.to_dos("notepad.exe"), "notepad.exe");
    }

    #[test]
    fn unknown_devices_are_kept_and_reported() {
        let m = map();
        assert_eq!(
            m.translate(r"\Device\NamedPipe\lsass"),
            Translation::Unmapped(r"\Device\NamedPipe\lsass")
        );
        assert_eq!(
            DeviceMap::default().translate(r"\Device\HarddiskVolume3\x"),
            Translation::Unmapped(r"\Device\HarddiskVolume3\x")
        );
        // Multi-byte text right at the prefix length must not split a char.
        assert_eq!(
            m.translate("\\Devicé\\x"),
            Translation::Unmapped("\\Devicé\\x")
        );
    }
}
