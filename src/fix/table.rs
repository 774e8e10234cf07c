//! The id table of a fix: which out-of-range id becomes which in-range one.
//!
//! An id is out of range when some runtime checked would refuse it as an owner. Explicit
//! `FROM=TO` entries come first; a policy covers the rest. The default policy gives each
//! out-of-range id its own id that nothing in the image uses yet, so that distinct owners
//! stay distinct, and picks them in a fixed order so the same image always gets the same table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::check::scan::Target;

/// The first id the remap policy tries; below it sit the ids distributions hand out.
pub const FIRST_FREE_ID: i64 = 60001;
/// Ids never handed out: `nobody`/`nogroup` and the 16-bit `(uid_t)-1`.
const RESERVED: [i64; 2] = [65534, 65535];

/// How ids the explicit table does not cover are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Each id gets its own unused in-range id.
    Remap,
    /// Every out-of-range uid becomes `uid`, every out-of-range gid becomes `gid`.
    Owner { uid: i64, gid: i64 },
    /// Only the explicit table applies; an id it misses is an error.
    TableOnly,
}

/// A replacement for each out-of-range uid and gid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdTable {
    pub uids: BTreeMap<i64, i64>,
    pub gids: BTreeMap<i64, i64>,
}

impl IdTable {
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.gids.is_empty()
    }
}

impl fmt::Display for IdTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uids = self
            .uids
            .iter()
            .map(|(from, to)| format!("uid {from}={to}"));
        let gids = self
            .gids
            .iter()
            .map(|(from, to)| format!("gid {from}={to}"));
        f.write_str(&uids.chain(gids).collect::<Vec<_>>().join(", "))
    }
}

/// Which side of the map an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Uid,
    Gid,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Uid => "uid",
            Side::Gid => "gid",
        })
    }
}

/// A table that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("{side} {id} is out of range and no --map-{side} entry or --policy covers it")]
    Uncovered { side: Side, id: i64 },
    #[error("--map-{side} maps to {id}, which is itself out of range")]
    TargetOutOfRange { side: Side, id: i64 },
    #[error("no free in-range {side} is left for {id}")]
    Exhausted { side: Side, id: i64 },
}

/// What the table is built from, for one side.
#[derive(Debug, Clone, Default)]
pub struct SideInput {
    /// The ids that some runtime refuses.
    pub offending: BTreeSet<i64>,
    /// Every id the image uses anywhere: owners, xattrs, account files.
    pub used: BTreeSet<i64>,
    /// Explicit replacements.
    pub explicit: BTreeMap<i64, i64>,
}

/// Builds one side of the table. Free ids are tried from [`FIRST_FREE_ID`] upwards, then
/// from 1 upwards, and must be unused and inside every runtime's map.
pub fn build_side(
    side: Side,
    input: &SideInput,
    policy: Policy,
    targets: &[Target],
) -> Result<BTreeMap<i64, i64>, TableError> {
    let accepted = |id: i64| {
        targets.iter().all(|target| {
            let map = match side {
                Side::Uid => &target.map.uid,
                Side::Gid => &target.map.gid,
            };
            target.runtime.accepts_id(map, id) && map.contains(id)
        })
    };
    let mut table = BTreeMap::new();
    let taken: BTreeSet<i64> = input
        .used
        .iter()
        .chain(input.explicit.values())
        .copied()
        .collect();
    // Candidates only move forward: one passed over is taken or refused for good.
    let mut candidates = (FIRST_FREE_ID..FIRST_FREE_ID + (1 << 20)).chain(1..FIRST_FREE_ID);
    for &id in &input.offending {
        let replacement = match (input.explicit.get(&id), policy) {
            (Some(&to), _) => to,
            (None, Policy::Owner { uid, gid }) => {
                if side == Side::Uid {
                    uid
                } else {
                    gid
                }
            }
            (None, Policy::Remap) => candidates
                .by_ref()
                .find(|c| !taken.contains(c) && !RESERVED.contains(c) && accepted(*c))
                .ok_or(TableError::Exhausted { side, id })?,
            (None, Policy::TableOnly) => return Err(TableError::Uncovered { side, id }),
        };
        if !accepted(replacement) {
            return Err(TableError::TargetOutOfRange {
                side,
                id: replacement,
            });
        }
        table.insert(id, replacement);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Runtime;

    fn targets() -> Vec<Target> {
        Runtime::ALL
            .iter()
            .map(|&runtime| Target {
                runtime,
                map: runtime.default_map(),
            })
            .collect()
    }

    fn input(offending: &[i64], used: &[i64], explicit: &[(i64, i64)]) -> SideInput {
        SideInput {
            offending: offending.iter().copied().collect(),
            used: used.iter().copied().collect(),
            explicit: explicit.iter().copied().collect(),
        }
    }

    #[test]
    fn remap_picks_distinct_unused_ids_in_order() {
        let table = build_side(
            Side::Uid,
            &input(&[1000000, 1000001], &[60001, 1000000], &[]),
            Policy::Remap,
            &targets(),
        )
        .unwrap();
        assert_eq!(table, BTreeMap::from([(1000000, 60002), (1000001, 60003)]));
    }

    #[test]
    fn explicit_entries_win_and_are_checked() {
        let both = input(&[1000000, 70000], &[], &[(70000, 1000)]);
        let table = build_side(
            Side::Gid,
            &both,
            Policy::Owner { uid: 0, gid: 0 },
            &targets(),
        )
        .unwrap();
        assert_eq!(table, BTreeMap::from([(70000, 1000), (1000000, 0)]));
        let bad = input(&[70000], &[], &[(70000, 65536)]);
        assert_eq!(
            build_side(Side::Uid, &bad, Policy::Remap, &targets()),
            Err(TableError::TargetOutOfRange {
                side: Side::Uid,
                id: 65536
            })
        );
        assert_eq!(
            build_side(
                Side::Uid,
                &input(&[5_000_000], &[], &[]),
                Policy::TableOnly,
                &targets()
            ),
            Err(TableError::Uncovered {
                side: Side::Uid,
                id: 5_000_000
            })
        );
    }

    #[test]
    fn remap_stays_inside_a_small_map() {
        let small = vec![Target {
            runtime: Runtime::Docker,
            map: crate::idmap::NamespaceMap {
                uid: crate::idmap::IdMap::new(vec!["0:100000:1000".parse().unwrap()]).unwrap(),
                gid: crate::idmap::IdMap::new(vec!["0:100000:1000".parse().unwrap()]).unwrap(),
            },
        }];
        let table = build_side(
            Side::Uid,
            &input(&[5000], &[0, 1], &[]),
            Policy::Remap,
            &small,
        )
        .unwrap();
        assert_eq!(table, BTreeMap::from([(5000, 2)]));
    }
}
