//! User ids to names (`User`), from `/etc/passwd`, read once at start.
//!
//! Not NSS: a sensor must not block on a directory server for every event.
//! Ids missing from the file are shown as their number.

use std::collections::HashMap;

/// Local user names by uid.
#[derive(Debug, Default)]
pub struct UserNames(HashMap<u32, String>);

impl UserNames {
    /// Reads `/etc/passwd` (an unreadable file gives an empty table).
    pub fn load() -> UserNames {
        UserNames::parse(&std::fs::read_to_string("/etc/passwd").unwrap_or_default())
    }

    fn parse(text: &str) -> UserNames {
        let mut map = HashMap::new();
        for line in text.lines() {
            let mut parts = line.split(':');
            let (Some(name), Some(_), Some(uid)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if let Ok(uid) = uid.parse::<u32>() {
                map.entry(uid).or_insert_with(|| name.to_owned());
            }
        }
        UserNames(map)
    }

    /// The name of `uid`, or the number as text.
    pub fn name(&self, uid: u32) -> String {
        self.0.get(&uid).cloned().unwrap_or_else(|| uid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_uid_and_numbers_for_the_rest() {
        let u = UserNames::parse("root:x:0:0:root:/root:/bin/bash\nbad line\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n");
        assert_eq!(u.name(0), "root");
        assert_eq!(u.name(33), "www-data");
        assert_eq!(u.name(1000), "1000");
    }
}
