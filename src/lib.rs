//! idfit finds the entries of a container image that a runtime with user-namespace remapping
//! cannot give an owner, and says what that runtime will print when it tries.

pub mod accounts;
pub mod check;
pub mod fix;
pub mod host;
pub mod idmap;
pub mod image;
pub mod progress;
pub mod runtime;
pub mod tar;
pub mod targets;
pub mod transport;
pub mod xattr;
