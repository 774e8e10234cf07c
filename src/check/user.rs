//! The config's `User`, resolved the way runc resolves it at start: a name is looked up in the
//! image's own /etc/passwd and /etc/group; a missing group comes from the user's passwd entry.

use serde::Serialize;

/// The container user and the ids it resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedUser {
    /// The `User` field as written in the config.
    pub value: String,
    pub uid: Option<i64>,
    pub gid: Option<i64>,
    /// Why a part could not be resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
}

/// Resolves `user` (`name`, `uid`, `name:group`, `uid:gid`, …) against the account files.
pub fn resolve(user: &str, passwd: Option<&[u8]>, group: Option<&[u8]>) -> ResolvedUser {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd_entry = find(passwd, |fields| {
        fields[0] == user_part || fields[2] == user_part
    });
    let mut unresolved = None;
    let uid = user_part.parse::<i64>().ok().or_else(|| {
        let uid = passwd_entry.as_ref().and_then(|f| f[2].parse().ok());
        if uid.is_none() {
            unresolved = Some(format!("no user `{user_part}` in the image's /etc/passwd"));
        }
        uid
    });
    let gid = match group_part {
        Some(group_part) => group_part.parse::<i64>().ok().or_else(|| {
            let gid = find(group, |fields| fields[0] == group_part).and_then(|f| f[2].parse().ok());
            if gid.is_none() {
                unresolved = Some(format!("no group `{group_part}` in the image's /etc/group"));
            }
            gid
        }),
        None => passwd_entry
            .and_then(|f| f[3].parse().ok())
            .or(uid.map(|_| 0)),
    };
    ResolvedUser {
        value: user.to_owned(),
        uid,
        gid,
        unresolved,
    }
}

/// The first line of an account file, split on colons, that `matches`; lines with fewer than
/// four fields are skipped, as libc does.
fn find(file: Option<&[u8]>, matches: impl Fn(&[&str]) -> bool) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(file?);
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 4 && matches(fields))
        .map(|fields| fields.iter().map(|f| (*f).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000000:1000001::/app:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:\nstaff:x:50:\n";

    #[test]
    fn resolves_names_and_numbers() {
        let cases = [
            ("app", Some(1000000), Some(1000001)),
            ("app:staff", Some(1000000), Some(50)),
            ("1234", Some(1234), Some(0)),
            ("1234:77", Some(1234), Some(77)),
            ("0", Some(0), Some(0)),
            ("nobody", None, None),
        ];
        for (user, uid, gid) in cases {
            let resolved = resolve(user, Some(PASSWD), Some(GROUP));
            assert_eq!((resolved.uid, resolved.gid), (uid, gid), "{user}");
        }
        assert!(
            resolve("app:wheel", Some(PASSWD), Some(GROUP))
                .unresolved
                .is_some()
        );
    }
}
