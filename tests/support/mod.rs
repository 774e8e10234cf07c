//! Shared helpers for integration tests: a byte-level tar writer, image archive packing and
//! reading back, a block-level layer comparison, access to real runtimes, the idfit binary,
//! and the differential case table.

// Every test crate that declares `mod support;` compiles its own copy and uses only part
// of it.
#![allow(dead_code)]

pub mod archive;
pub mod bench;
pub mod blocks;
pub mod cases;
pub mod idfit;
pub mod inspect;
pub mod runtimes;
pub mod tar;
pub mod verdict;
