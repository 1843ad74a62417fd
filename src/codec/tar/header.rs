//! One 512-byte header block and the records of a PAX extended header, parsed field by field as
//! Go's `archive/tar` parses them (what containerd, Docker, skopeo and umoci read with): the
//! same formats, the same numeric encodings, the same fields that make a header invalid.

use super::Header;

/// The size of a tar block.
pub const BLOCK: usize = 512;

/// A header block.
pub(crate) type Block = [u8; BLOCK];

/// The header formats Go tells apart by their magic bytes; they decide which fields exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// No magic: the original Unix V7 header (no owner names, no prefix).
    V7,
    /// `ustar\0` + `00`: POSIX ustar, and PAX (a ustar header with extended headers).
    Ustar,
    /// `ustar ` + ` \0`: GNU tar's format (no prefix; access and change times instead).
    Gnu,
    /// `ustar\0` with `tar\0` at the end of the block: star (a shorter prefix, then times).
    Star,
}

/// The fields of one header block, before extension headers are applied: the entry's header
/// (its name joined to the prefix where the format has one), and the size field as stored
/// (which may be negative, and means nothing for header-only types).
#[derive(Debug)]
pub(crate) struct Fields {
    pub header: Header,
    pub size: i64,
}

/// Whether the block's checksum field matches its bytes: the unsigned sum with the checksum
/// field counted as spaces, or the signed sum some old tars wrote (Go and GNU tar accept both).
pub(crate) fn checksum_ok(block: &Block) -> bool {
    let Some(stored) = parse_octal(&block[148..156]) else {
        return false;
    };
    let mut unsigned: i64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored == signed
}

/// The block's format, or `None` when its checksum is wrong (Go's `getFormat`).
pub(crate) fn format(block: &Block) -> Option<Format> {
    if !checksum_ok(block) {
        return None;
    }
    let magic = &block[257..263];
    Some(if magic == b"ustar\0" && &block[508..512] == b"tar\0" {
        Format::Star
    } else if magic == b"ustar\0" {
        Format::Ustar
    } else if magic == b"ustar " && &block[263..265] == b" \0" {
        Format::Gnu
    } else {
        Format::V7
    })
}

/// Parses a header block whose checksum is right. `Err` names the field that is not a valid
/// number: Go refuses the whole archive then (`archive/tar: invalid tar header`).
pub(crate) fn parse(block: &Block, format: Format) -> Result<Fields, &'static str> {
    let number = |range: std::ops::Range<usize>, what: &'static str| {
        parse_numeric(&block[range]).ok_or(what)
    };
    let size = number(124..136, "size")?;
    let mut header = Header {
        typeflag: block[156],
        path: c_string(&block[..100]).to_vec(),
        link: c_string(&block[157..257]).to_vec(),
        mode: number(100..108, "mode")?,
        uid: number(108..116, "uid")?,
        gid: number(116..124, "gid")?,
        mtime: number(136..148, "mtime")?,
        ..Header::default()
    };
    if format == Format::V7 {
        return Ok(Fields { header, size });
    }
    header.uname = c_string(&block[265..297]).to_vec();
    header.gname = c_string(&block[297..329]).to_vec();
    header.devmajor = number(329..337, "devmajor")?;
    header.devminor = number(337..345, "devminor")?;
    let prefix: &[u8] = match format {
        Format::Ustar => c_string(&block[345..500]),
        Format::Star => {
            number(476..488, "atime")?;
            number(488..500, "ctime")?;
            c_string(&block[345..476])
        }
        Format::Gnu => {
            // GNU keeps access and change times where ustar has its prefix. Go before 1.8 wrote
            // a prefix there in GNU headers by mistake, so Go reads the field as a prefix when
            // the times do not parse and it is ASCII; so does ocikit.
            let times_ok = [&block[345..357], &block[357..369]]
                .iter()
                .all(|f| f[0] == 0 || parse_numeric(f).is_some());
            let prefix = c_string(&block[345..500]);
            if times_ok || !prefix.is_ascii() {
                &[]
            } else {
                prefix
            }
        }
        Format::V7 => &[],
    };
    if !prefix.is_empty() {
        header.path = [prefix, b"/", &header.path].concat();
    }
    Ok(Fields { header, size })
}

/// The bytes of `field` up to its first NUL.
pub(crate) fn c_string(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

/// A numeric field: GNU base-256 (two's complement) when the high bit of its first byte is
/// set, else octal. `None` when it is neither, or overflows 64 bits.
pub(crate) fn parse_numeric(field: &[u8]) -> Option<i64> {
    let Some(&first) = field.first() else {
        return Some(0);
    };
    if first & 0x80 == 0 {
        return parse_octal(field);
    }
    let invert: u8 = if first & 0x40 != 0 { 0xff } else { 0 };
    let mut x: u64 = 0;
    for (i, &byte) in field.iter().enumerate() {
        let mut c = byte ^ invert;
        if i == 0 {
            c &= 0x7f; // the marker bit
        }
        if x >> 56 > 0 {
            return None;
        }
        x = (x << 8) | u64::from(c);
    }
    if x >> 63 > 0 {
        return None;
    }
    let x = x as i64;
    Some(if invert == 0xff { !x } else { x })
}

/// An octal field, padded with spaces or NULs on either side, ending at a NUL (empty: 0).
pub(crate) fn parse_octal(field: &[u8]) -> Option<i64> {
    let blank = |b: &u8| *b == b' ' || *b == 0;
    let start = field.iter().position(|b| !blank(b)).unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    let digits = c_string(&field[start..end.max(start)]);
    if start == field.len() {
        return Some(0);
    }
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value as i64)
}

/// A decimal integer as Go's `strconv.ParseInt(s, 10, 64)` reads it: an optional sign, then at
/// least one digit, nothing else.
pub(crate) fn parse_decimal(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        value = value
            .checked_mul(10)?
            .checked_add(if negative { -d } else { d })?;
    }
    Some(value)
}

/// A PAX time (`seconds[.fraction]`), as Go's `parsePAXTime` accepts it; the whole seconds.
fn parse_pax_time(text: &[u8]) -> Option<i64> {
    let (seconds, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &[][..]),
    };
    let seconds = parse_decimal(seconds)?;
    fraction.iter().all(u8::is_ascii_digit).then_some(seconds)
}

const SPARSE_OFFSET: &[u8] = b"GNU.sparse.offset";
const SPARSE_NUMBYTES: &[u8] = b"GNU.sparse.numbytes";
const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// What a PAX extended header says, each key's last value kept (Go reads records into a map).
/// Only the records that change how an entry is read are kept, and extended attributes.
#[derive(Debug, Default)]
pub(crate) struct Pax {
    pub path: Option<Vec<u8>>,
    pub linkpath: Option<Vec<u8>>,
    pub size: Option<Vec<u8>>,
    pub uid: Option<Vec<u8>>,
    pub gid: Option<Vec<u8>>,
    pub uname: Option<Vec<u8>>,
    pub gname: Option<Vec<u8>>,
    pub mtime: Option<Vec<u8>>,
    pub atime: Option<Vec<u8>>,
    pub ctime: Option<Vec<u8>>,
    pub sparse_major: Option<Vec<u8>>,
    pub sparse_minor: Option<Vec<u8>>,
    pub sparse_name: Option<Vec<u8>>,
    pub sparse_size: Option<Vec<u8>>,
    pub sparse_realsize: Option<Vec<u8>>,
    /// `GNU.sparse.map`, or the 0.0 format's `GNU.sparse.offset`/`numbytes` pairs joined.
    pub sparse_map: bool,
    /// `SCHILY.xattr.<name>` records: (name, value), each name once.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Parses PAX records (`"%d %s=%s\n"`) as Go's `parsePAX` does: a record that does not parse,
/// a key that is empty, a NUL in a key (or in the value of `path`, `linkpath`, `uname`,
/// `gname`), or GNU 0.0 sparse records out of order make the whole header invalid. More than
/// `max_records` records is refused too (Go has no such limit; its 1 MiB cap on the header
/// bounds them at about 170,000).
pub(crate) fn parse_pax(mut data: &[u8], max_records: usize) -> Result<Pax, String> {
    let mut pax = Pax::default();
    let mut records = 0usize;
    let mut sparse_pairs = 0usize;
    while !data.is_empty() {
        records += 1;
        if records > max_records {
            return Err(format!(
                "it has more than {max_records} records, more than ocikit reads"
            ));
        }
        let Record { key, value, rest } = pax_record(data)?;
        data = rest;
        if key == SPARSE_OFFSET || key == SPARSE_NUMBYTES {
            let expected = if sparse_pairs.is_multiple_of(2) {
                SPARSE_OFFSET
            } else {
                SPARSE_NUMBYTES
            };
            if key != expected || value.contains(&b',') {
                return Err("its GNU 0.0 sparse records are out of order".into());
            }
            sparse_pairs += 1;
            pax.sparse_map = true;
            continue;
        }
        let slot = match key {
            b"path" => &mut pax.path,
            b"linkpath" => &mut pax.linkpath,
            b"size" => &mut pax.size,
            b"uid" => &mut pax.uid,
            b"gid" => &mut pax.gid,
            b"uname" => &mut pax.uname,
            b"gname" => &mut pax.gname,
            b"mtime" => &mut pax.mtime,
            b"atime" => &mut pax.atime,
            b"ctime" => &mut pax.ctime,
            b"GNU.sparse.major" => &mut pax.sparse_major,
            b"GNU.sparse.minor" => &mut pax.sparse_minor,
            b"GNU.sparse.name" => &mut pax.sparse_name,
            b"GNU.sparse.size" => &mut pax.sparse_size,
            b"GNU.sparse.realsize" => &mut pax.sparse_realsize,
            b"GNU.sparse.map" => {
                pax.sparse_map = !value.is_empty() || sparse_pairs > 0;
                continue;
            }
            k => {
                if let Some(name) = k.strip_prefix(XATTR_PREFIX) {
                    pax.xattrs.retain(|(n, _)| n != name);
                    pax.xattrs.push((name.to_vec(), value.to_vec()));
                }
                continue;
            }
        };
        *slot = Some(value.to_vec());
    }
    Ok(pax)
}

/// The records of a PAX global header that GNU tar and Python's tarfile apply to every later
/// entry while Go's `archive/tar` applies them to none: those that change an entry's name,
/// link, size, sparse layout, owner or extended attributes. Their keys, for a message;
/// `comment` (which `git archive` writes), times and other records change nothing that matters.
pub(crate) fn applied_globally(pax: &Pax) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for (key, value) in [
        ("path", &pax.path),
        ("linkpath", &pax.linkpath),
        ("size", &pax.size),
        ("uid", &pax.uid),
        ("gid", &pax.gid),
        ("uname", &pax.uname),
        ("gname", &pax.gname),
    ] {
        if value.is_some() {
            keys.push(key);
        }
    }
    let sparse = [
        &pax.sparse_major,
        &pax.sparse_minor,
        &pax.sparse_name,
        &pax.sparse_size,
        &pax.sparse_realsize,
    ];
    if pax.sparse_map || sparse.iter().any(|v| v.is_some()) {
        keys.push("GNU.sparse.*");
    }
    if !pax.xattrs.is_empty() {
        keys.push("SCHILY.xattr.*");
    }
    keys
}

/// One PAX record: its key, its value, and the data after it.
struct Record<'a> {
    key: &'a [u8],
    value: &'a [u8],
    rest: &'a [u8],
}

/// Parses the first record of `data`.
fn pax_record(data: &[u8]) -> Result<Record<'_>, String> {
    let space = data
        .iter()
        .position(|&b| b == b' ')
        .ok_or("a record has no length")?;
    let len = parse_decimal(&data[..space])
        .filter(|&n| n >= 5 && n as u64 <= data.len() as u64)
        .ok_or_else(|| {
            format!(
                "a record's length {:?} is not a number that fits the header",
                String::from_utf8_lossy(&data[..space])
            )
        })? as usize;
    if len <= space + 1 {
        return Err(format!("a record's length ({len}) is too short"));
    }
    let record = &data[space + 1..len];
    let Some((&b'\n', body)) = record.split_last() else {
        return Err("a record does not end with a newline".into());
    };
    let eq = body
        .iter()
        .position(|&b| b == b'=')
        .ok_or("a record has no '='")?;
    let (key, value) = (&body[..eq], &body[eq + 1..]);
    if key.is_empty() {
        return Err("a record has an empty key".into());
    }
    let nul_in = match key {
        b"path" | b"linkpath" | b"uname" | b"gname" => value,
        _ => key,
    };
    if nul_in.contains(&0) {
        return Err(format!(
            "the record {} holds a NUL byte",
            String::from_utf8_lossy(key)
        ));
    }
    Ok(Record {
        key,
        value,
        rest: &data[len..],
    })
}

/// Applies a PAX header to `fields` as Go's `mergePAX` does (an empty value keeps the header's
/// own); `Err` names a record whose value is not valid.
pub(crate) fn merge_pax(fields: &mut Fields, pax: &Pax) -> Result<(), &'static str> {
    fn set(value: &Option<Vec<u8>>) -> Option<&[u8]> {
        value.as_deref().filter(|v| !v.is_empty())
    }
    let header = &mut fields.header;
    if let Some(v) = set(&pax.path) {
        header.path = v.to_vec();
    }
    if let Some(v) = set(&pax.linkpath) {
        header.link = v.to_vec();
    }
    if let Some(v) = set(&pax.uname) {
        header.uname = v.to_vec();
    }
    if let Some(v) = set(&pax.gname) {
        header.gname = v.to_vec();
    }
    if let Some(v) = set(&pax.uid) {
        header.uid = parse_decimal(v).ok_or("uid")?;
    }
    if let Some(v) = set(&pax.gid) {
        header.gid = parse_decimal(v).ok_or("gid")?;
    }
    if let Some(v) = set(&pax.mtime) {
        header.mtime = parse_pax_time(v).ok_or("mtime")?;
    }
    for (value, what) in [(&pax.atime, "atime"), (&pax.ctime, "ctime")] {
        if let Some(v) = set(value) {
            parse_pax_time(v).ok_or(what)?;
        }
    }
    if let Some(v) = set(&pax.size) {
        fields.size = parse_decimal(v).ok_or("size")?;
    }
    header.xattrs = pax.xattrs.clone();
    Ok(())
}

/// Whether the PAX records make the entry a GNU sparse file (formats 0.0, 0.1 and 1.0), and if
/// so the name they give it (Go's `readGNUSparsePAXHeaders`).
pub(crate) fn pax_sparse(pax: &Pax) -> Option<Option<&[u8]>> {
    let major = pax.sparse_major.as_deref().unwrap_or_default();
    let minor = pax.sparse_minor.as_deref().unwrap_or_default();
    let known =
        (major == b"0" && (minor == b"0" || minor == b"1")) || (major == b"1" && minor == b"0");
    let sparse = known || (major.is_empty() && minor.is_empty() && pax.sparse_map);
    sparse.then(|| pax.sparse_name.as_deref().filter(|n| !n.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::testkit::pax_records as records;

    #[test]
    fn numeric_fields_follow_go() {
        assert_eq!(parse_octal(b"  0000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"\0\0\0"), Some(0));
        assert_eq!(parse_octal(b"    "), Some(0));
        assert_eq!(parse_octal(b"12 34"), None);
        assert_eq!(parse_octal(b"0009"), None);
        // Go trims, then reads up to the first NUL.
        assert_eq!(parse_octal(b"12\x0034 "), Some(0o12));
        assert_eq!(
            parse_numeric(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Some(256)
        );
        // -1 in base-256 two's complement: a negative number (a size then is refused).
        assert_eq!(parse_numeric(&[0xff; 12]), Some(-1));
        assert_eq!(
            parse_numeric(&[
                0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]),
            None
        );
        assert_eq!(parse_decimal(b"+12"), Some(12));
        assert_eq!(parse_decimal(b"-3"), Some(-3));
        assert_eq!(parse_decimal(b"1 "), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"99999999999999999999"), None);
        assert_eq!(parse_pax_time(b"1.5"), Some(1));
        assert_eq!(parse_pax_time(b"1."), Some(1));
        assert_eq!(parse_pax_time(b".5"), None);
        assert_eq!(parse_pax_time(b"1.5x"), None);
    }

    #[test]
    fn pax_records_follow_go() {
        let pax = parse_pax(
            &records(&[
                ("path", "a"),
                ("path", "b"),
                ("SCHILY.xattr.user.x", "1"),
                ("SCHILY.xattr.user.x", "2"),
                ("comment", "ignored"),
            ]),
            100,
        )
        .unwrap();
        assert_eq!(pax.path.as_deref(), Some(&b"b"[..]));
        assert_eq!(pax.xattrs, vec![(b"user.x".to_vec(), b"2".to_vec())]);
        for bad in [
            b"7 path=x\n".to_vec(),                   // length wrong
            b"4 a=\n".to_vec(),                       // shorter than the smallest record
            b"6 =xy\n".to_vec(),                      // empty key
            b"9 path=x\0\n".to_vec(),                 // NUL in a path
            b"8 pathx\n".to_vec(),                    // no '='
            b"8 path=xy".to_vec(),                    // no newline
            records(&[("GNU.sparse.numbytes", "1")]), // 0.0 pairs out of order
        ] {
            assert!(
                parse_pax(&bad, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(&bad)
            );
        }
        assert!(parse_pax(&records(&[("a", "1"); 11]), 10).is_err());
        assert!(parse_pax(&records(&[("a", "1"); 10]), 10).is_ok());
    }

    #[test]
    fn empty_pax_values_keep_the_header_fields() {
        let mut fields = Fields {
            header: Header {
                path: b"header-name".to_vec(),
                ..Header::default()
            },
            size: 5,
        };
        let pax = parse_pax(&records(&[("path", ""), ("size", "+7")]), 10).unwrap();
        merge_pax(&mut fields, &pax).unwrap();
        assert_eq!(fields.header.path, b"header-name");
        assert_eq!(fields.size, 7);
        let pax = parse_pax(&records(&[("uid", "x")]), 10).unwrap();
        assert_eq!(merge_pax(&mut fields, &pax), Err("uid"));
    }
}
