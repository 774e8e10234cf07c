//! User-namespace ID maps (user_namespaces(7), "User and group ID mappings").
//!
//! A map is a list of ranges, each mapping `size` consecutive ids starting at `container_id`
//! inside the namespace to ids starting at `host_id` outside. The syntax on the command line is
//! the `CONTAINER:HOST:SIZE` of podman's `--uidmap` and umoci's `--uid-map`.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// One line of a map: `size` ids from `container_id` map to ids from `host_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

impl IdMapping {
    /// The host id for a container id inside this range.
    pub fn to_host(&self, id: i64) -> Option<i64> {
        let offset = id.checked_sub(i64::from(self.container_id))?;
        (0..i64::from(self.size))
            .contains(&offset)
            .then(|| i64::from(self.host_id) + offset)
    }

    /// One past the last container id of the range.
    pub fn container_end(&self) -> u64 {
        u64::from(self.container_id) + u64::from(self.size)
    }
}

impl fmt::Display for IdMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.container_id, self.host_id, self.size)
    }
}

/// A `CONTAINER:HOST:SIZE` triple that does not parse or does not fit in 32 bits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdMapError {
    #[error("`{0}` is not of the form CONTAINER:HOST:SIZE")]
    Syntax(String),
    #[error("`{0}` has a zero size")]
    Empty(String),
    #[error("`{0}` runs past the largest id, 4294967295")]
    Overflow(String),
    #[error("`{0}` overlaps `{1}` inside the container")]
    Overlap(String, String),
}

impl FromStr for IdMapping {
    type Err = IdMapError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || IdMapError::Syntax(text.to_owned());
        let mut parts = text.split(':').map(|part| part.trim().parse::<u32>());
        let (Some(Ok(container_id)), Some(Ok(host_id)), Some(Ok(size)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(syntax());
        };
        let mapping = IdMapping {
            container_id,
            host_id,
            size,
        };
        if size == 0 {
            return Err(IdMapError::Empty(text.to_owned()));
        }
        let host_end = u64::from(host_id) + u64::from(size);
        if mapping.container_end() > 1 << 32 || host_end > 1 << 32 {
            return Err(IdMapError::Overflow(text.to_owned()));
        }
        Ok(mapping)
    }
}

/// The uid or gid half of a namespace's mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct IdMap {
    mappings: Vec<IdMapping>,
}

impl IdMap {
    /// A map of the given ranges; ranges may not overlap on the container side, as the kernel
    /// refuses such a map.
    pub fn new(mappings: Vec<IdMapping>) -> Result<Self, IdMapError> {
        for (i, a) in mappings.iter().enumerate() {
            for b in &mappings[i + 1..] {
                let disjoint = a.container_end() <= u64::from(b.container_id)
                    || b.container_end() <= u64::from(a.container_id);
                if !disjoint {
                    return Err(IdMapError::Overlap(a.to_string(), b.to_string()));
                }
            }
        }
        Ok(IdMap { mappings })
    }

    /// Consecutive host ranges stacked from container id 0 upwards, the way dockerd and the
    /// rootless runtimes turn the lines of /etc/subuid into a map.
    pub fn stacked(
        host_ranges: &[(u32, u32)],
        first_container_id: u32,
    ) -> Result<Self, IdMapError> {
        let mut next = u64::from(first_container_id);
        let mut mappings = Vec::new();
        for &(host_id, size) in host_ranges {
            let text = format!("{next}:{host_id}:{size}");
            mappings.push(text.parse()?);
            next += u64::from(size);
        }
        IdMap::new(mappings)
    }

    pub fn mappings(&self) -> &[IdMapping] {
        &self.mappings
    }

    pub fn is_empty(&self) -> bool {
        self.mappings.is_empty()
    }

    /// The host id of a container id, if any range holds it.
    pub fn to_host(&self, id: i64) -> Option<i64> {
        self.mappings.iter().find_map(|mapping| mapping.to_host(id))
    }

    pub fn contains(&self, id: i64) -> bool {
        self.to_host(id).is_some()
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.mappings.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// The uid and gid maps of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceMap {
    pub uid: IdMap,
    pub gid: IdMap,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(text: &str) -> IdMap {
        IdMap::new(text.split(',').map(|m| m.parse().unwrap()).collect()).unwrap()
    }

    #[test]
    fn boundaries_of_the_usual_map() {
        let usual = map("0:100000:65536");
        let cases = [
            (-1, None),
            (0, Some(100000)),
            (65535, Some(165535)),
            (65536, None),
        ];
        for (id, host) in cases {
            assert_eq!(usual.to_host(id), host, "id {id}");
        }
        assert_eq!(usual.to_host(1 << 32), None);
    }

    #[test]
    fn parse_errors_name_the_text() {
        let cases = [
            ("0:1", IdMapError::Syntax("0:1".into())),
            ("0:1:2:3", IdMapError::Syntax("0:1:2:3".into())),
            ("a:1:2", IdMapError::Syntax("a:1:2".into())),
            ("-1:1:2", IdMapError::Syntax("-1:1:2".into())),
            ("0:1:0", IdMapError::Empty("0:1:0".into())),
            (
                "4294967295:0:2",
                IdMapError::Overflow("4294967295:0:2".into()),
            ),
        ];
        for (text, error) in cases {
            assert_eq!(text.parse::<IdMapping>(), Err(error));
        }
        assert!(IdMap::new(vec!["0:1:10".parse().unwrap(), "5:100:10".parse().unwrap()]).is_err());
    }

    #[test]
    fn stacked_subordinate_ranges() {
        let stacked = IdMap::stacked(&[(100000, 65536), (300000, 10)], 0).unwrap();
        assert_eq!(stacked.to_string(), "0:100000:65536,65536:300000:10");
        assert_eq!(stacked.to_host(65540), Some(300004));
        assert_eq!(stacked.to_host(65546), None);
        assert_eq!(stacked.to_host(i64::MIN), None);
    }

    proptest! {
        #[test]
        fn to_host_agrees_with_range_arithmetic(
            container in 0u32..1_000_000, host in 0u32..1_000_000, size in 1u32..200_000,
            id in -10i64..2_000_000,
        ) {
            let mapping = IdMapping { container_id: container, host_id: host, size };
            let inside = id >= i64::from(container) && id < i64::from(container) + i64::from(size);
            prop_assert_eq!(mapping.to_host(id).is_some(), inside);
            if let Some(host_id) = mapping.to_host(id) {
                prop_assert_eq!(host_id - i64::from(host), id - i64::from(container));
            }
        }
    }
}
