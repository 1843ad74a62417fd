//! Hand-built tars and compressed frames, hostile ones included, for the tests of every module
//! that reads them (one kit, not a copy per module).

use std::io::Write;

// `Compression` comes from the parent module, so that the integration tests can include this
// file as it is (`#[path]`): one kit for the unit and the integration tests.
use super::Compression;

/// The size of a tar block.
pub const BLOCK: usize = 512;

/// The zero bytes after `size` bytes of data up to the next block boundary.
pub fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// `bytes` compressed by the reference implementations (flate2, libzstd), not ocikit's writer.
pub fn compress(bytes: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => bytes.to_vec(),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        Compression::Zstd => zstd::stream::encode_all(bytes, 3).unwrap(),
    }
}

pub fn set_checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A ustar header.
pub fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    set_checksum(&mut h);
    h
}

#[derive(Default)]
pub struct Tar(pub Vec<u8>);

impl Tar {
    /// `header` (one block, or a header with its extension blocks) and `data`, padded to a block.
    pub fn raw(mut self, header: impl AsRef<[u8]>, data: &[u8]) -> Tar {
        self.0.extend_from_slice(header.as_ref());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().div_ceil(BLOCK) * BLOCK, 0);
        self
    }
    pub fn file(self, name: &str, data: &[u8]) -> Tar {
        self.raw(header(name.as_bytes(), b'0', data.len() as u64, b""), data)
    }
    pub fn node(self, name: &str, typeflag: u8, link: &str) -> Tar {
        self.raw(header(name.as_bytes(), typeflag, 0, link.as_bytes()), b"")
    }
    pub fn pax(self, records: &[(&str, &str)]) -> Tar {
        let data = pax_records(records);
        self.raw(
            header(b"././@PaxHeader", b'x', data.len() as u64, b""),
            &data,
        )
    }
    /// A PAX global header (typeflag `g`) with `records`.
    pub fn global(self, records: &[(&str, &str)]) -> Tar {
        let data = pax_records(records);
        self.raw(
            header(b"pax_global_header", b'g', data.len() as u64, b""),
            &data,
        )
    }
    /// Two zero blocks, padded to a 10 KiB record as GNU tar does.
    pub fn end(mut self) -> Vec<u8> {
        let len = (self.0.len() + 2 * BLOCK).div_ceil(10240) * 10240;
        self.0.resize(len, 0);
        self.0
    }
}

pub fn pax_records(records: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = format!(" {k}={v}\n");
        let mut len = body.len() + 1;
        while format!("{len}").len() + body.len() != len {
            len += 1;
        }
        out.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    out
}

/// A GNU sparse header ('S') with `regions` (offset, length) of data, the first four in the
/// header, the rest in extension blocks.
pub fn gnu_sparse(name: &str, regions: &[(u64, u64)], real_size: u64) -> Vec<u8> {
    let data: u64 = regions.iter().map(|r| r.1).sum();
    let mut h = header(name.as_bytes(), b'S', data, b"");
    h[257..265].copy_from_slice(b"ustar  \0");
    let put = |block: &mut [u8; BLOCK], at: usize, (offset, len): (u64, u64)| {
        block[at..at + 12].copy_from_slice(format!("{offset:011o}\0").as_bytes());
        block[at + 12..at + 24].copy_from_slice(format!("{len:011o}\0").as_bytes());
    };
    for (i, r) in regions.iter().take(4).enumerate() {
        put(&mut h, 386 + 24 * i, *r);
    }
    h[483..495].copy_from_slice(format!("{real_size:011o}\0").as_bytes());
    let rest: Vec<&(u64, u64)> = regions.iter().skip(4).collect();
    let chunks: Vec<&[&(u64, u64)]> = rest.chunks(21).collect();
    h[482] = u8::from(!chunks.is_empty());
    set_checksum(&mut h);
    let mut out = h.to_vec();
    for (c, chunk) in chunks.iter().enumerate() {
        let mut ext = [0u8; BLOCK];
        for (i, r) in chunk.iter().enumerate() {
            put(&mut ext, 24 * i, **r);
        }
        ext[504] = u8::from(c + 1 < chunks.len());
        out.extend_from_slice(&ext);
    }
    out.resize(out.len() + data as usize + padding(data) as usize, b'x');
    out
}

/// A zstd frame of raw blocks whose header declares `window_descriptor`.
pub fn zstd_raw_frame(window_descriptor: u8, content: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd];
    frame.extend_from_slice(&[0x00, window_descriptor]);
    let chunks: Vec<&[u8]> = if content.is_empty() {
        vec![&[]]
    } else {
        content.chunks(1024).collect()
    };
    for (i, chunk) in chunks.iter().enumerate() {
        let last = u32::from(i + 1 == chunks.len());
        let block = last | ((chunk.len() as u32) << 3);
        frame.extend_from_slice(&block.to_le_bytes()[..3]);
        frame.extend_from_slice(chunk);
    }
    frame
}
