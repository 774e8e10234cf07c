//! The images the differential test loads, grouped the way docs/runtime-behaviour.md groups
//! its tables. Each case is one image; `B` (1000000) is an id outside every map under test.
//!
//! The maps are `0:100000:65536` for both Docker daemons and rootful Podman's store and, for
//! rootless Podman, the user's own id at 0 followed by `1:200000:65536`; so 65535 is the last
//! id Docker and rootful Podman map and 65536 the last one rootless Podman maps, and 100000
//! is the host id of their root.

use super::archive::{Compression, Format};
use super::runtimes::Runtime;
use super::tar::{
    IdField, Layer, LongName, Record, block_device, char_device, dir, fifo, file, file_with,
    global, hard_link, symlink,
};

const B: i64 = 1_000_000;
const LONG_DIR: &str = "long/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/\
                        ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// One image and the runtimes it is compared on.
pub struct Case {
    pub name: &'static str,
    pub layers: Vec<Layer>,
    pub format: Format,
    pub compression: Compression,
    /// Runtimes that cannot read the archive for reasons unrelated to ids (Docker 20.10 has
    /// no zstd and no OCI layout support): they are still run and shown, not compared.
    pub not_compared: Vec<Runtime>,
}

impl Case {
    fn new(name: &'static str, layers: Vec<Layer>) -> Case {
        Case {
            name,
            layers,
            format: Format::DockerArchive,
            compression: Compression::None,
            not_compared: Vec::new(),
        }
    }

    fn compressed(mut self, compression: Compression) -> Case {
        self.compression = compression;
        self
    }

    fn oci(mut self) -> Case {
        self.format = Format::OciArchive;
        self
    }

    fn not_on_docker(mut self) -> Case {
        self.not_compared = vec![Runtime::DockerOverlay2, Runtime::DockerVfs];
        self
    }

    /// The reference the archive carries; podman refuses upper case in it.
    pub fn tag(&self) -> String {
        format!("idfit-differential/{}:latest", self.name.replace('_', "-"))
    }
}

/// A case with a single layer.
fn one(name: &'static str, records: impl IntoIterator<Item = Record>) -> Case {
    Case::new(name, vec![Layer::of(records)])
}

/// A single layer holding one regular file `x` owned by `uid:gid`.
fn x(name: &'static str, uid: i64, gid: i64) -> Case {
    one(name, [file("x").owner(uid, gid).into()])
}

pub fn ownership() -> Vec<Case> {
    vec![
        x("in_range", 5, 5),
        x("uid_out", B, 0),
        x("gid_out", 0, B),
        x("uid_and_gid_out", B, B),
        one(
            "uid_70000_gid_80000_after_good_entry",
            [
                file("y").owner(5, 5).into(),
                file("x").owner(70000, 80000).into(),
            ],
        ),
        x("docker_root_host_pair", 100_000, 100_000),
        x("docker_root_host_uid", 100_000, 0),
        x("docker_root_host_gid", 0, 100_000),
        x("docker_root_host_uid_gid_out", 100_000, B),
        x("uid_100001", 100_001, 0),
        x("uid_gid_65535", 65535, 65535),
        x("uid_65536", 65536, 0),
        x("gid_65536", 0, 65536),
        x("uid_65537", 65537, 0),
    ]
}

pub fn encodings() -> Vec<Case> {
    let base256 = |name, uid, gid| {
        let entry = file("x").owner(uid, gid);
        one(
            name,
            [entry
                .uid_field(IdField::Base256)
                .gid_field(IdField::Base256)
                .into()],
        )
    };
    let pax_only = |name, key: &str, value: i64| {
        let entry = file("x").uid_field(IdField::Zero).gid_field(IdField::Zero);
        one(name, [entry.pax(key, value.to_string()).into()])
    };
    vec![
        base256("uid_minus_1_base256", -1, 0),
        base256("uid_minus_2_base256", -2, 0),
        base256("gid_minus_1_base256", 0, -1),
        base256("uid_out_base256", B, 0),
        base256("in_range_base256", 5, 5),
        pax_only("uid_minus_1_pax", "uid", -1),
        pax_only("uid_2_pow_32_pax", "uid", 1 << 32),
        pax_only("uid_2_pow_32_plus_5_pax", "uid", (1 << 32) + 5),
        pax_only("gid_2_pow_32_pax", "gid", 1 << 32),
        pax_only("uid_2_pow_32_minus_1_pax", "uid", (1 << 32) - 1),
        pax_only("uid_3000000_pax_zero_field", "uid", 3_000_000),
        one(
            "pax_in_range_header_out",
            [file("x").owner(B, 0).pax("uid", "5").into()],
        ),
        one(
            "uid_8388607_octal_without_nul",
            [file("x")
                .owner(0o37777777, 0)
                .uid_field(IdField::OctalNoNul)
                .into()],
        ),
        one(
            "global_pax_uid_out",
            [global(&[("uid", "1000000")]), file("x").into()],
        ),
    ]
}

pub fn kinds() -> Vec<Case> {
    let long_parents = || {
        let second = LONG_DIR.split_once("/f").map_or(LONG_DIR, |(d, _)| d);
        [
            dir("long/").into(),
            dir(&format!("{second}/")).into(),
            dir(&format!("{LONG_DIR}/")).into(),
        ]
    };
    let long_file = |how| {
        file(&format!("{LONG_DIR}/file"))
            .owner(B, 0)
            .long_name(how)
            .into()
    };
    vec![
        one(
            "root_dot_slash_dir_out",
            [dir("./").owner(B, B).into(), file("x").into()],
        ),
        one(
            "root_dot_dir_out",
            [dir(".").owner(B, B).into(), file("x").into()],
        ),
        one(
            "root_slash_dir_out",
            [dir("/").owner(B, B).into(), file("x").into()],
        ),
        one("whiteout_out", [file(".wh.x").owner(B, B).into()]),
        // Runtimes know a whiteout by its name alone, whatever its type flag says.
        one("whiteout_dir_out", [dir(".wh.d/").owner(B, B).into()]),
        one(
            "whiteout_symlink_out",
            [symlink(".wh.s", "x").owner(B, B).into()],
        ),
        one(
            "opaque_out",
            [
                dir("dir/").into(),
                file("dir/.wh..wh..opq").owner(B, B).into(),
            ],
        ),
        // One dot short of the opaque marker: an ordinary whiteout of `.wh.opq`.
        one(
            "near_opaque_whiteout_out",
            [
                dir("dir/").into(),
                file("dir/.wh..wh.opq").owner(B, B).into(),
            ],
        ),
        one(
            "aufs_hardlink_dir_file_out",
            [
                dir(".wh..wh.plnk/").into(),
                file(".wh..wh.plnk/foo").owner(B, B).into(),
            ],
        ),
        one(
            "hard_link_out",
            [
                file_with("a", b"hi").owner(5, 5).into(),
                hard_link("b", "a").owner(B, 0).into(),
            ],
        ),
        one("symlink_out", [symlink("s", "target").owner(B, 0).into()]),
        one("dir_out", [dir("d/").owner(B, 0).into()]),
        one(
            "char_device_out",
            [char_device("c", 1, 3).owner(B, 0).into()],
        ),
        one(
            "block_device_out",
            [block_device("blk", 7, 0).owner(B, 0).into()],
        ),
        one("fifo_out", [fifo("p").owner(B, 0).into()]),
        one("char_device_in_range", [char_device("c", 1, 3).into()]),
        one(
            "long_gnu_name_out",
            long_parents().into_iter().chain([long_file(LongName::Gnu)]),
        ),
        one(
            "long_pax_name_out",
            long_parents().into_iter().chain([long_file(LongName::Pax)]),
        ),
        one("implicit_parents", [file("a/b/c").owner(5, 5).into()]),
    ]
}

pub fn xattrs() -> Vec<Case> {
    let acl_key = "SCHILY.xattr.system.posix_acl_access";
    let cap_key = "SCHILY.xattr.security.capability";
    let with = |name, key: &str, value: Vec<u8>| one(name, [file("x").pax(key, value).into()]);
    vec![
        with("acl_user_out", acl_key, acl(ACL_USER, B)),
        with("acl_group_out", acl_key, acl(ACL_GROUP, B)),
        one(
            "default_acl_on_dir_out",
            [dir("d/")
                .pax("SCHILY.xattr.system.posix_acl_default", acl(ACL_USER, B))
                .into()],
        ),
        with("acl_user_5", acl_key, acl(ACL_USER, 5)),
        with("acl_user_65536", acl_key, acl(ACL_USER, 65536)),
        with("capability_v3_rootid_out", cap_key, capability_v3(B)),
        with("capability_v3_rootid_0", cap_key, capability_v3(0)),
        with("capability_v3_rootid_5", cap_key, capability_v3(5)),
        with("capability_v3_rootid_65536", cap_key, capability_v3(65536)),
        one(
            "acl_out_then_owner_out",
            [
                file("a").pax(acl_key, acl(ACL_USER, B)).into(),
                file("b").owner(B, 0).into(),
            ],
        ),
        one(
            "owner_and_acl_out_same_entry",
            [file("x").owner(B, 0).pax(acl_key, acl(ACL_USER, B)).into()],
        ),
    ]
}

pub fn layering() -> Vec<Case> {
    vec![
        Case::new(
            "out_then_whiteout_in_later_layer",
            vec![
                Layer::of([file("x").owner(B, 0).into()]),
                Layer::of([file(".wh.x").into()]),
            ],
        ),
        one(
            "two_offenders_in_one_layer",
            [
                file("z").owner(B + 2, 0).into(),
                file("a").owner(B + 3, 0).into(),
            ],
        ),
        Case::new(
            "offenders_in_two_layers",
            vec![
                Layer::of([file("b").owner(B + 1, 0).into()]),
                Layer::of([file("a").owner(B, 0).into()]),
            ],
        ),
    ]
}

pub fn compression() -> Vec<Case> {
    use Compression::{Gzip, Zstd};
    vec![
        x("gzip_in_range", 5, 5).compressed(Gzip),
        x("gzip_uid_out", B, 0).compressed(Gzip),
        x("zstd_in_range", 5, 5).compressed(Zstd).not_on_docker(),
        x("zstd_uid_out", B, 0).compressed(Zstd).not_on_docker(),
        x("oci_gzip_in_range", 5, 5)
            .compressed(Gzip)
            .oci()
            .not_on_docker(),
        x("oci_gzip_uid_out", B, 0)
            .compressed(Gzip)
            .oci()
            .not_on_docker(),
        x("oci_zstd_in_range", 5, 5)
            .compressed(Zstd)
            .oci()
            .not_on_docker(),
        x("oci_zstd_uid_out", B, 0)
            .compressed(Zstd)
            .oci()
            .not_on_docker(),
    ]
}

const ACL_USER: u16 = 0x02;
const ACL_GROUP: u16 = 0x08;
/// The id the kernel stores for entries that name nobody (owner, mask, other).
const ACL_UNDEFINED_ID: u32 = u32::MAX;

/// A `posix_acl_xattr` value (linux/posix_acl_xattr.h): version 2, then `(tag, perm, id)`
/// entries, little-endian, sorted by tag as the kernel requires. `tag` is ACL_USER or
/// ACL_GROUP and names `id`.
fn acl(tag: u16, id: i64) -> Vec<u8> {
    let named = [(tag, 6, u32::try_from(id).expect("ACL ids are 32-bit"))];
    let entries = [(0x01, 6, ACL_UNDEFINED_ID)]
        .into_iter()
        .chain(named.into_iter().filter(|_| tag == ACL_USER))
        .chain([(0x04, 4, ACL_UNDEFINED_ID)])
        .chain(named.into_iter().filter(|_| tag == ACL_GROUP))
        .chain([(0x10, 6, ACL_UNDEFINED_ID), (0x20, 4, ACL_UNDEFINED_ID)]);

    let mut value = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        value.extend_from_slice(&u16::to_le_bytes(tag));
        value.extend_from_slice(&u16::to_le_bytes(perm));
        value.extend_from_slice(&u32::to_le_bytes(id));
    }
    value
}

/// A `vfs_ns_cap_data` value (linux/capability.h): revision 3 with the effective bit,
/// CAP_NET_BIND_SERVICE permitted, and the namespace root id the capability belongs to.
fn capability_v3(root_id: i64) -> Vec<u8> {
    let root_id = u32::try_from(root_id).expect("root ids are 32-bit");
    let words = [0x0300_0001u32, 1 << 10, 0, 0, 0, root_id];
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}
