//! The image's account files, /etc/passwd and /etc/group (passwd(5), group(5)): which ids
//! they name, and the same files with ids replaced, byte for byte otherwise.

use std::collections::{BTreeMap, BTreeSet};

/// Ids named by an account file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountIds {
    pub uids: BTreeSet<i64>,
    pub gids: BTreeSet<i64>,
}

/// The ids of `content`: uid and gid fields of passwd, gid fields of group. Lines with too
/// few fields or ids that are not numbers are skipped, as libc skips them.
pub fn ids(is_passwd: bool, content: &[u8]) -> AccountIds {
    let mut ids = AccountIds::default();
    for line in content.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        let number = |index: usize| {
            fields
                .get(index)
                .and_then(|f| std::str::from_utf8(f).ok()?.parse::<i64>().ok())
        };
        if is_passwd && fields.len() >= 4 {
            ids.uids.extend(number(2));
            ids.gids.extend(number(3));
        } else if !is_passwd && fields.len() >= 3 {
            ids.gids.extend(number(2));
        }
    }
    ids
}

/// `content` with every uid and gid field found in the tables replaced, or `None` if none is.
pub fn rewrite(
    is_passwd: bool,
    content: &[u8],
    uids: &BTreeMap<i64, i64>,
    gids: &BTreeMap<i64, i64>,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(content.len());
    let mut changed = false;
    for (index, line) in content.split(|&b| b == b'\n').enumerate() {
        if index > 0 {
            out.push(b'\n');
        }
        let mut fields: Vec<Vec<u8>> = line.split(|&b| b == b':').map(<[u8]>::to_vec).collect();
        let slots: &[(usize, &BTreeMap<i64, i64>)] = match (is_passwd, fields.len()) {
            (true, 4..) => &[(2, uids), (3, gids)],
            (false, 3..) => &[(2, gids)],
            _ => &[],
        };
        for &(index, table) in slots {
            let old = std::str::from_utf8(&fields[index])
                .ok()
                .and_then(|f| f.parse::<i64>().ok());
            if let Some(new) = old.and_then(|old| table.get(&old)) {
                fields[index] = new.to_string().into_bytes();
                changed = true;
            }
        }
        out.extend_from_slice(&fields.join(&b':'));
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] =
        b"root:x:0:0:root:/root:/bin/bash\napp:x:1000000:1000000::/app:/bin/sh\n# odd\n";
    const GROUP: &[u8] = b"root:x:0:\napp:x:1000000:\n";

    #[test]
    fn reads_ids() {
        let ids = ids(true, PASSWD);
        assert_eq!(ids.uids, BTreeSet::from([0, 1000000]));
        assert_eq!(super::ids(false, GROUP).gids, BTreeSet::from([0, 1000000]));
    }

    #[test]
    fn rewrites_only_the_id_fields() {
        let uids = BTreeMap::from([(1000000, 60001)]);
        let gids = BTreeMap::from([(1000000, 60002)]);
        let passwd = rewrite(true, PASSWD, &uids, &gids).unwrap();
        assert_eq!(
            passwd,
            b"root:x:0:0:root:/root:/bin/bash\napp:x:60001:60002::/app:/bin/sh\n# odd\n"
        );
        let group = rewrite(false, GROUP, &uids, &gids).unwrap();
        assert_eq!(group, b"root:x:0:\napp:x:60002:\n");
        assert_eq!(rewrite(true, b"a:x:1:1:::\r\n", &uids, &gids), None);
    }
}
