//! A tar writer for building layers byte by byte, so tests can produce the dialects and
//! hostile encodings real images carry and that no ordinary writer emits on purpose: ids in
//! GNU base-256, ids in PAX records with a zero header field, eight-digit octal fields
//! without a terminator, negative ids, PAX global headers and GNU `L` long names.
//!
//! The layout follows POSIX.1-2001 `pax` (ustar headers and `x`/`g` extended headers) and the
//! GNU tar manual's description of base-256 numbers and `././@LongLink` entries.

const BLOCK: usize = 512;
const NAME_LEN: usize = 100;

/// How an id is written into its eight-byte header field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdField {
    /// Seven octal digits and a NUL: what every writer uses for ids up to 2097151.
    Octal,
    /// Eight octal digits with no terminator, which Go's reader accepts (up to 8388607).
    OctalNoNul,
    /// GNU base-256: big-endian two's complement with the top bit set; the only way to
    /// write a negative id.
    Base256,
    /// A zero field, as Go writes when the real id travels in a PAX record.
    Zero,
}

/// What an entry is, with what its type needs.
#[derive(Debug, Clone)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    HardLink(String),
    CharDevice(u32, u32),
    BlockDevice(u32, u32),
    Fifo,
}

/// How a name longer than the 100-byte header field is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongName {
    /// A preceding `././@LongLink` entry of type `L`.
    Gnu,
    /// A `path` record in the entry's PAX header.
    Pax,
}

/// One member of a layer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub uid: i64,
    pub gid: i64,
    pub uid_field: IdField,
    pub gid_field: IdField,
    /// Extended header records written before the entry, in order.
    pub pax: Vec<(String, Vec<u8>)>,
    pub long_name: LongName,
    /// Permission bits; `None` takes the kind's usual mode (0644 for files, 0755 for
    /// directories).
    pub mode: Option<u32>,
}

/// One record of a layer's tar stream.
#[derive(Debug, Clone)]
pub enum Record {
    Entry(Entry),
    /// A PAX global header (`g`), which applies to every later entry according to POSIX.
    Global(Vec<(String, Vec<u8>)>),
}

/// A layer: its records in tar order.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    pub records: Vec<Record>,
}

impl Entry {
    fn new(path: &str, kind: Kind) -> Entry {
        Entry {
            path: path.to_string(),
            kind,
            uid: 0,
            gid: 0,
            uid_field: IdField::Octal,
            gid_field: IdField::Octal,
            pax: Vec::new(),
            long_name: LongName::Gnu,
            mode: None,
        }
    }

    pub fn owner(mut self, uid: i64, gid: i64) -> Entry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    pub fn uid_field(mut self, field: IdField) -> Entry {
        self.uid_field = field;
        self
    }

    pub fn gid_field(mut self, field: IdField) -> Entry {
        self.gid_field = field;
        self
    }

    pub fn pax(mut self, key: &str, value: impl AsRef<[u8]>) -> Entry {
        self.pax.push((key.to_string(), value.as_ref().to_vec()));
        self
    }

    pub fn long_name(mut self, how: LongName) -> Entry {
        self.long_name = how;
        self
    }

    pub fn mode(mut self, mode: u32) -> Entry {
        self.mode = Some(mode);
        self
    }
}

pub fn file(path: &str) -> Entry {
    Entry::new(path, Kind::File(Vec::new()))
}

pub fn file_with(path: &str, data: &[u8]) -> Entry {
    Entry::new(path, Kind::File(data.to_vec()))
}

pub fn dir(path: &str) -> Entry {
    Entry::new(path, Kind::Dir)
}

pub fn symlink(path: &str, target: &str) -> Entry {
    Entry::new(path, Kind::Symlink(target.to_string()))
}

pub fn hard_link(path: &str, target: &str) -> Entry {
    Entry::new(path, Kind::HardLink(target.to_string()))
}

pub fn char_device(path: &str, major: u32, minor: u32) -> Entry {
    Entry::new(path, Kind::CharDevice(major, minor))
}

pub fn block_device(path: &str, major: u32, minor: u32) -> Entry {
    Entry::new(path, Kind::BlockDevice(major, minor))
}

pub fn fifo(path: &str) -> Entry {
    Entry::new(path, Kind::Fifo)
}

pub fn global(records: &[(&str, &str)]) -> Record {
    let records = records
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()));
    Record::Global(records.collect())
}

impl From<Entry> for Record {
    fn from(entry: Entry) -> Record {
        Record::Entry(entry)
    }
}

impl Layer {
    pub fn of(records: impl IntoIterator<Item = Record>) -> Layer {
        Layer {
            records: records.into_iter().collect(),
        }
    }

    /// The uncompressed tar stream, ending with the two zero blocks.
    pub fn to_tar(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for record in &self.records {
            write_record(&mut out, record);
        }
        out.extend_from_slice(&[0; 2 * BLOCK]);
        out
    }
}

/// A tar of plain root-owned files, for the outer archive around an image.
pub fn plain_tar(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let records = members
        .iter()
        .map(|(name, data)| file_with(name, data).into());
    Layer::of(records).to_tar()
}

fn write_record(out: &mut Vec<u8>, record: &Record) {
    match record {
        Record::Entry(entry) => write_entry(out, entry),
        Record::Global(records) => write_extended(out, b'g', "pax_global_header", records),
    }
}

fn write_entry(out: &mut Vec<u8>, entry: &Entry) {
    let mut pax = entry.pax.clone();
    let long = entry.path.len() > NAME_LEN;
    if long && entry.long_name == LongName::Gnu {
        let mut name = entry.path.clone().into_bytes();
        name.push(0);
        write_member(out, &Header::meta("././@LongLink", b'L', name.len()), &name);
    }
    if long && entry.long_name == LongName::Pax {
        pax.push(("path".to_string(), entry.path.clone().into_bytes()));
    }
    if !pax.is_empty() {
        write_extended(
            out,
            b'x',
            &format!("PaxHeaders.0/{}", base_name(&entry.path)),
            &pax,
        );
    }

    let data = match &entry.kind {
        Kind::File(data) => data.as_slice(),
        _ => &[],
    };
    write_member(out, &Header::for_entry(entry, data.len()), data);
}

fn write_extended(out: &mut Vec<u8>, kind: u8, name: &str, records: &[(String, Vec<u8>)]) {
    let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    write_member(out, &Header::meta(name, kind, body.len()), &body);
}

fn write_member(out: &mut Vec<u8>, header: &Header, data: &[u8]) {
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(BLOCK), 0);
}

/// `"<len> <key>=<value>\n"`, where the length counts its own digits.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // space, '=', newline
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len = len.to_string().len() + rest;
    }

    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

fn base_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let base = if base.is_empty() { "root" } else { base };
    &base[..base.len().min(80)]
}

/// The fields of one ustar header before encoding.
struct Header {
    name: Vec<u8>,
    mode: u32,
    uid: (i64, IdField),
    gid: (i64, IdField),
    size: usize,
    kind: u8,
    link: Vec<u8>,
    device: (u32, u32),
}

impl Header {
    fn meta(name: &str, kind: u8, size: usize) -> Header {
        Header {
            name: truncate(name),
            mode: 0o644,
            uid: (0, IdField::Octal),
            gid: (0, IdField::Octal),
            size,
            kind,
            link: Vec::new(),
            device: (0, 0),
        }
    }

    fn for_entry(entry: &Entry, size: usize) -> Header {
        let (kind, link, device, mode) = match &entry.kind {
            Kind::File(_) => (b'0', "", (0, 0), 0o644),
            Kind::HardLink(target) => (b'1', target.as_str(), (0, 0), 0o644),
            Kind::Symlink(target) => (b'2', target.as_str(), (0, 0), 0o777),
            Kind::CharDevice(major, minor) => (b'3', "", (*major, *minor), 0o666),
            Kind::BlockDevice(major, minor) => (b'4', "", (*major, *minor), 0o660),
            Kind::Dir => (b'5', "", (0, 0), 0o755),
            Kind::Fifo => (b'6', "", (0, 0), 0o644),
        };
        assert!(
            link.len() <= NAME_LEN,
            "link targets over 100 bytes are not supported"
        );
        Header {
            name: truncate(&entry.path),
            mode: entry.mode.unwrap_or(mode),
            uid: (entry.uid, entry.uid_field),
            gid: (entry.gid, entry.gid_field),
            size,
            kind,
            link: link.as_bytes().to_vec(),
            device,
        }
    }

    fn encode(&self) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        block[..self.name.len()].copy_from_slice(&self.name);
        block[100..108].copy_from_slice(&octal(self.mode as i64, 8));
        block[108..116].copy_from_slice(&id_field(self.uid.0, self.uid.1));
        block[116..124].copy_from_slice(&id_field(self.gid.0, self.gid.1));
        block[124..136].copy_from_slice(&octal(self.size as i64, 12));
        block[136..148].copy_from_slice(&octal(1_700_000_000, 12));
        block[156] = self.kind;
        block[157..157 + self.link.len()].copy_from_slice(&self.link);
        block[257..265].copy_from_slice(b"ustar\x0000");
        block[329..337].copy_from_slice(&octal(self.device.0 as i64, 8));
        block[337..345].copy_from_slice(&octal(self.device.1 as i64, 8));
        set_checksum(&mut block);
        block
    }
}

fn truncate(name: &str) -> Vec<u8> {
    name.as_bytes()[..name.len().min(NAME_LEN)].to_vec()
}

/// The checksum is the byte sum of the header with its own field read as eight spaces,
/// written as six octal digits, a NUL and a space.
fn set_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn id_field(id: i64, field: IdField) -> Vec<u8> {
    match field {
        IdField::Octal => octal(id, 8),
        IdField::OctalNoNul => {
            let digits = format!("{id:08o}");
            assert_eq!(digits.len(), 8, "{id} does not fit eight octal digits");
            digits.into_bytes()
        }
        IdField::Base256 => base256(id),
        IdField::Zero => octal(0, 8),
    }
}

/// `width - 1` zero-padded octal digits and a NUL.
fn octal(value: i64, width: usize) -> Vec<u8> {
    let digits = format!("{value:0w$o}", w = width - 1);
    assert!(
        value >= 0 && digits.len() < width,
        "{value} does not fit an octal field of {width} bytes"
    );
    let mut field = digits.into_bytes();
    field.push(0);
    field
}

/// An eight-byte base-256 field: the value in two's complement with bit 7 of the first byte
/// set as the marker; bit 6 then carries the sign.
fn base256(value: i64) -> Vec<u8> {
    let mut field = value.to_be_bytes();
    assert!(
        value < 0 || field[0] & 0xc0 == 0,
        "{value} is too large for a base-256 id field"
    );
    field[0] |= 0x80;
    field.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base256_matches_gnu_tar() {
        // The values GNU tar (and Python's tarfile in GNU mode) write for these ids.
        assert_eq!(base256(-1), [0xff; 8]);
        assert_eq!(
            base256(-2),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]
        );
        assert_eq!(base256(3_000_000), [0x80, 0, 0, 0, 0, 0x2d, 0xc6, 0xc0]);
    }

    #[test]
    fn octal_fields_are_terminated_unless_asked_not_to() {
        assert_eq!(id_field(1_000_000, IdField::Octal), b"3641100\0");
        assert_eq!(id_field(0o37777777, IdField::OctalNoNul), b"37777777");
        assert_eq!(id_field(1_000_000, IdField::Zero), b"0000000\0");
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("uid", b"5"), b"8 uid=5\n");
        // A body of 98 bytes would make 100 with a two-digit length, so the length needs
        // three digits and becomes 101; one of 96 bytes stays at 98.
        let record = pax_record("path", &[b'a'; 91]);
        assert!(record.starts_with(b"101 path="));
        assert_eq!(record.len(), 101);
        let record = pax_record("path", &[b'a'; 89]);
        assert!(record.starts_with(b"98 path="));
        assert_eq!(record.len(), 98);
    }

    #[test]
    fn checksum_covers_the_header_with_spaces_in_its_own_field() {
        let block = Header::meta("x", b'0', 0).encode();
        let mut blank = block;
        blank[148..156].copy_from_slice(b"        ");
        let sum: u32 = blank.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(&block[148..156], format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn long_gnu_names_come_first_as_their_own_member() {
        let name = format!("{}/file", "d".repeat(120));
        let tar = Layer::of([file(&name).into()]).to_tar();
        assert_eq!(&tar[..13], b"././@LongLink");
        assert_eq!(tar[156], b'L');
        assert_eq!(&tar[512..512 + name.len()], name.as_bytes());
    }
}
