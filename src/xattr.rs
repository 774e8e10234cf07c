//! Ids stored inside extended attributes.
//!
//! Two kinds of xattr carry numeric ids that a user namespace must translate: POSIX ACLs
//! (`system.posix_acl_access` and `system.posix_acl_default`, the `posix_acl_xattr` layout of
//! linux/posix_acl_xattr.h) and version 3 file capabilities (`security.capability` with a
//! `rootid`, linux/capability.h). Inside a user namespace the kernel refuses to store either
//! when an id has no mapping; runtimes that run as real root store them unshifted.

/// ACL xattr names.
pub const ACL_ACCESS: &str = "system.posix_acl_access";
pub const ACL_DEFAULT: &str = "system.posix_acl_default";
/// File capability xattr name.
pub const CAPABILITY: &str = "security.capability";

const ACL_VERSION: u32 = 2;
const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;
const ACL_ENTRY_SIZE: usize = 8;
const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;
const VFS_CAP_V3_SIZE: usize = 24;

/// One id found inside an extended attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XattrIds {
    /// The attribute's name.
    pub name: String,
    pub id: i64,
    /// A group id (ACL_GROUP entry) rather than a user id.
    pub is_group: bool,
}

/// The ids held by any ACL or v3 capability among `xattrs`. Attributes too short or of an
/// unknown version carry no ids the kernel would translate, so none are reported.
pub fn ids_in(xattrs: &[(String, Vec<u8>)]) -> Vec<XattrIds> {
    let mut found = Vec::new();
    for (name, value) in xattrs {
        match name.as_str() {
            ACL_ACCESS | ACL_DEFAULT => found.extend(acl_ids(name, value)),
            CAPABILITY => found.extend(capability_root_id(value).map(|id| XattrIds {
                name: name.clone(),
                id,
                is_group: false,
            })),
            _ => {}
        }
    }
    found
}

fn acl_ids(name: &str, value: &[u8]) -> Vec<XattrIds> {
    if value.len() < 4 || le32(&value[..4]) != ACL_VERSION {
        return Vec::new();
    }
    value[4..]
        .chunks_exact(ACL_ENTRY_SIZE)
        .filter_map(|entry| {
            let tag = u16::from_le_bytes([entry[0], entry[1]]);
            let id = i64::from(le32(&entry[4..8]));
            let is_group = match tag {
                ACL_USER => false,
                ACL_GROUP => true,
                _ => return None,
            };
            Some(XattrIds {
                name: name.to_owned(),
                id,
                is_group,
            })
        })
        .collect()
}

fn capability_root_id(value: &[u8]) -> Option<i64> {
    if value.len() < VFS_CAP_V3_SIZE {
        return None;
    }
    let revision = le32(&value[..4]) & VFS_CAP_REVISION_MASK;
    (revision == VFS_CAP_REVISION_3).then(|| i64::from(le32(&value[20..24])))
}

fn le32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Replaces ids inside an ACL or v3 capability value, returning the new value when any id
/// changed. `map_uid` and `map_gid` return the replacement for an id, or `None` to keep it.
pub fn rewrite(
    name: &str,
    value: &[u8],
    map_uid: &dyn Fn(i64) -> Option<i64>,
    map_gid: &dyn Fn(i64) -> Option<i64>,
) -> Option<Vec<u8>> {
    let mut out = value.to_vec();
    let mut changed = false;
    let mut replace = |slot: &mut [u8], new: Option<i64>| {
        if let Some(new) = new {
            slot.copy_from_slice(&(new as u32).to_le_bytes());
            changed = true;
        }
    };
    match name {
        ACL_ACCESS | ACL_DEFAULT if value.len() >= 4 && le32(&value[..4]) == ACL_VERSION => {
            for entry in out[4..].chunks_exact_mut(ACL_ENTRY_SIZE) {
                let tag = u16::from_le_bytes([entry[0], entry[1]]);
                let id = i64::from(le32(&entry[4..8]));
                match tag {
                    ACL_USER => replace(&mut entry[4..8], map_uid(id)),
                    ACL_GROUP => replace(&mut entry[4..8], map_gid(id)),
                    _ => {}
                }
            }
        }
        CAPABILITY => {
            if let Some(id) = capability_root_id(value) {
                replace(&mut out[20..24], map_uid(id));
            }
        }
        _ => {}
    }
    changed.then_some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An access ACL granting `user` and `group` read access, as `setfacl` writes it.
    pub(crate) fn acl(user: u32, group: u32) -> Vec<u8> {
        let mut value = ACL_VERSION.to_le_bytes().to_vec();
        let entries = [
            (0x01u16, 6u16, u32::MAX),
            (ACL_USER, 4, user),
            (ACL_GROUP, 4, group),
        ];
        for (tag, perm, id) in entries {
            value.extend_from_slice(&tag.to_le_bytes());
            value.extend_from_slice(&perm.to_le_bytes());
            value.extend_from_slice(&id.to_le_bytes());
        }
        value
    }

    pub(crate) fn capability_v3(root_id: u32) -> Vec<u8> {
        let mut value = VFS_CAP_REVISION_3.to_le_bytes().to_vec();
        value.extend_from_slice(&[0; 16]);
        value.extend_from_slice(&root_id.to_le_bytes());
        value
    }

    #[test]
    fn finds_acl_and_capability_ids() {
        let xattrs = vec![
            (ACL_ACCESS.to_owned(), acl(1_000_000, 7)),
            (CAPABILITY.to_owned(), capability_v3(200_000)),
            ("user.note".to_owned(), b"x".to_vec()),
        ];
        let ids: Vec<(i64, bool)> = ids_in(&xattrs).iter().map(|i| (i.id, i.is_group)).collect();
        assert_eq!(ids, [(1_000_000, false), (7, true), (200_000, false)]);
    }

    #[test]
    fn ignores_short_and_unknown_versions() {
        let mut v2 = capability_v3(5);
        v2[3] = 0x02;
        let xattrs = vec![
            (ACL_ACCESS.to_owned(), vec![2, 0, 0]),
            (CAPABILITY.to_owned(), v2),
            (CAPABILITY.to_owned(), capability_v3(5)[..20].to_vec()),
        ];
        assert!(ids_in(&xattrs).is_empty());
    }

    #[test]
    fn rewrites_only_matching_ids() {
        let value = acl(1_000_000, 7);
        let new = rewrite(
            ACL_ACCESS,
            &value,
            &|id| (id == 1_000_000).then_some(60001),
            &|_| None,
        );
        assert_eq!(new, Some(acl(60001, 7)));
        assert_eq!(rewrite(ACL_ACCESS, &value, &|_| None, &|_| None), None);
    }
}
