//! Security identifiers: the binary SIDs ETW delivers, as the `S-1-…` text
//! and the `DOMAIN\user` names Sysmon writes in `User`.
//!
//! The kernel's MOF process events carry the user as a `TOKEN_USER` structure
//! followed by the SID; [`sid_from_token_user`] reads past the structure.
//! Names for SIDs come from the platform (`LookupAccountSidW` on Windows), once
//! per SID: [`AccountNames`] caches the answers, and knows the well-known
//! service accounts without asking, so tests and other platforms see the same
//! names for them.
//!
//! ```
//! use trawl_sensor::etw::sid::{sid_to_string, integrity_level};
//!
//! let system = [1u8, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
//! assert_eq!(sid_to_string(&system).as_deref(), Some("S-1-5-18"));
//! assert_eq!(integrity_level("S-1-16-12288"), Some("High"));
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// A SID's text form (`S-1-5-21-…`), or `None` when the bytes are not a SID
/// (wrong revision, too short for the sub-authority count it announces).
pub fn sid_to_string(bytes: &[u8]) -> Option<String> {
    let (&revision, rest) = bytes.split_first()?;
    let (&count, rest) = rest.split_first()?;
    if revision != 1 || count > 15 {
        return None;
    }
    let authority = rest.get(..6)?;
    let subs = rest.get(6..6 + 4 * usize::from(count))?;
    let mut value: u64 = 0;
    for b in authority {
        value = (value << 8) | u64::from(*b);
    }
    let mut out = String::with_capacity(16 + 11 * usize::from(count));
    if value >= 1 << 32 {
        // The SDDL form writes authorities that do not fit 32 bits in hex.
        let _ = write!(out, "S-1-0x{value:012X}");
    } else {
        let _ = write!(out, "S-1-{value}");
    }
    for chunk in subs.chunks_exact(4) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let _ = write!(out, "-{sub}");
    }
    Some(out)
}

/// The SID inside a `TOKEN_USER` blob as the kernel logs it (MOF `UserSID`,
/// type `WBEMSID`): a `SID_AND_ATTRIBUTES` (a pointer and a 32-bit attribute
/// word, padded to two pointers) and then the SID itself. `pointer_size` is 8
/// for 64-bit event headers, 4 for 32-bit ones.
pub fn sid_from_token_user(bytes: &[u8], pointer_size: usize) -> Option<String> {
    sid_to_string(bytes.get(2 * pointer_size..)?)
}

/// The name Sysmon gives a well-known account, without asking the system.
pub fn well_known_account(sid: &str) -> Option<&'static str> {
    Some(match sid {
        "S-1-5-18" => "NT AUTHORITY\\SYSTEM",
        "S-1-5-19" => "NT AUTHORITY\\LOCAL SERVICE",
        "S-1-5-20" => "NT AUTHORITY\\NETWORK SERVICE",
        _ => return None,
    })
}

/// Sysmon's `IntegrityLevel` for a mandatory-label SID (`S-1-16-…`), as the
/// Kernel-Process provider reports it in `MandatoryLabel`.
pub fn integrity_level(label_sid: &str) -> Option<&'static str> {
    let rid: u32 = label_sid.strip_prefix("S-1-16-")?.parse().ok()?;
    Some(match rid {
        0 => "Untrusted",
        0x1000 => "Low",
        0x2000 => "Medium",
        0x2100 => "MediumPlus",
        0x3000 => "High",
        0x4000 => "System",
        0x5000 => "Protected",
        _ => return None,
    })
}

/// Looks up the account name of a SID on the running system
/// (`DOMAIN\user`); `None` when the system does not know it.
pub type AccountLookup = Box<dyn Fn(&str) -> Option<String> + Send>;

/// SID → account name, cached. A SID the lookup cannot name is shown as the
/// SID itself (and cached as such), so `User` is never silently empty.
pub struct AccountNames {
    lookup: AccountLookup,
    cache: HashMap<String, Arc<str>>,
    capacity: usize,
}

impl std::fmt::Debug for AccountNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountNames")
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl AccountNames {
    /// A cache of at most `capacity` names over `lookup` (cleared when full:
    /// a machine has few accounts, so this only bounds a pathological case).
    pub fn new(lookup: AccountLookup, capacity: usize) -> AccountNames {
        AccountNames {
            lookup,
            cache: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Names that only the well-known table answers (tests, other platforms).
    pub fn well_known_only() -> AccountNames {
        AccountNames::new(Box::new(|_| None), 64)
    }

    /// The account name for `sid`.
    pub fn name(&mut self, sid: &str) -> Arc<str> {
        if let Some(n) = self.cache.get(sid) {
            return Arc::clone(n);
        }
        let name: Arc<str> = match well_known_account(sid) {
            Some(n) => Arc::from(n),
            None => Arc::from((self.lookup)(sid).unwrap_or_else(|| sid.to_owned())),
        };
        if self.cache.len() >= self.capacity {
            self.cache.clear();
        }
        self.cache.insert(sid.to_owned(), Arc::clone(&name));
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain_user_sid() -> Vec<u8> {
        // S-1-5-21-1004336348-1177238915-682003330-1001
        let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 1004336348, 1177238915, 682003330, 1001] {
            b.extend_from_slice(&sub.to_le_bytes());
        }
        b
    }

    #[test]
    fn binary_sids_become_text() {
        assert_eq!(
            sid_to_string(&domain_user_sid()).as_deref(),
            Some("S-1-5-21-1004336348-1177238915-682003330-1001")
        );
        assert_eq!(
            sid_to_string(&[1, 1, 0, 0, 0, 0, 0, 16, 0, 0x30, 0, 0]).as_deref(),
            Some("S-1-16-12288")
        );
        // Big authorities are written in hex, as ConvertSidToStringSid does.
        assert_eq!(
            sid_to_string(&[1, 0, 1, 0, 0, 0, 0, 0]).as_deref(),
            Some("S-1-0x010000000000")
        );
    }

    #[test]
    fn malformed_sids_are_refused() {
        assert_eq!(sid_to_string(&[]), None);
        assert_eq!(sid_to_string(&[2, 0, 0, 0, 0, 0, 0, 5]), None, "revision 2");
        let full = domain_user_sid();
        for cut in 0..full.len() {
            assert_eq!(sid_to_string(&full[..cut]), None, "cut at {cut}");
        }
        assert_eq!(sid_to_string(&[1, 200, 0, 0, 0, 0, 0, 5]), None);
    }

    #[test]
    fn token_user_blobs_skip_the_header() {
        let mut blob64 = vec![0xAAu8; 16];
        blob64.extend_from_slice(&domain_user_sid());
        assert_eq!(
            sid_from_token_user(&blob64, 8).as_deref(),
            Some("S-1-5-21-1004336348-1177238915-682003330-1001")
        );
        let mut blob32 = vec![0xAAu8; 8];
        blob32.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
        assert_eq!(sid_from_token_user(&blob32, 4).as_deref(), Some("S-1-5-18"));
        assert_eq!(sid_from_token_user(&blob32[..10], 4), None);
    }

    #[test]
    fn integrity_levels_follow_sysmon() {
        assert_eq!(integrity_level("S-1-16-8192"), Some("Medium"));
        assert_eq!(integrity_level("S-1-16-16384"), Some("System"));
        assert_eq!(integrity_level("S-1-16-4096"), Some("Low"));
        assert_eq!(integrity_level("S-1-16-77"), None);
        assert_eq!(integrity_level("S-1-5-18"), None);
    }

    #[test]
    fn account_names_are_looked_up_once_and_fall_back_to_the_sid() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let mut names = AccountNames::new(
            Box::new(move |sid| {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (sid == "S-1-5-21-1-2-3-1001").then(|| "LAB\\alice".to_owned())
            }),
            8,
        );
        assert_eq!(&*names.name("S-1-5-21-1-2-3-1001"), "LAB\\alice");
        assert_eq!(&*names.name("S-1-5-21-1-2-3-1001"), "LAB\\alice");
        assert_eq!(&*names.name("S-1-5-18"), "NT AUTHORITY\\SYSTEM");
        assert_eq!(&*names.name("S-1-5-21-9-9-9-500"), "S-1-5-21-9-9-9-500");
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
