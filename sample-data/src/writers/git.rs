//! `git/<owner>/<name>.git`: a bare repository per repo, its history ([`crate::git`]) in one
//! packfile with its v2 index, written here without git.
//!
//! The pack holds every object whole (no deltas): a `PACK` header with the object count, each
//! object's type-and-size header and zlib stream, and the SHA-1 of all that. The zlib streams are
//! stored blocks, what git writes with `core.compression = 0`: deflating these small objects (a
//! third of each tree is binary ids) saved only 12% of the pack, and a compressor's reset per
//! object cost 5.6 µs (zlib-rs, level 1; 16.6 µs with miniz_oxide), minutes at the large scale. The index
//! (`gitformat-pack(5)`, version 2) holds the 256-entry fan-out, the sorted ids, each entry's
//! CRC-32, its offset (a 64-bit table past 2 GiB), the pack's checksum and its own. Objects are
//! streamed to the pack as the history is walked; only what the index needs (32 bytes an object)
//! stays in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use crate::GenerateError;
use crate::delivery::RepoHistory;
use crate::git::{ObjectId, ObjectKind, ObjectSink, walk};
use crate::org::Org;

/// The repository directory of `repo` (`owner/name`) under `git_dir`: `git_dir/owner/name.git`.
pub fn repo_dir(git_dir: &Path, repo: &str) -> PathBuf {
    git_dir.join(format!("{repo}.git"))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<PathBuf, GenerateError> {
    std::fs::write(path, bytes).map_err(io_error(path))?;
    Ok(path.to_path_buf())
}

/// A file written through a running SHA-1 of everything written.
struct HashedFile {
    path: PathBuf,
    writer: BufWriter<File>,
    hasher: Sha1,
    written: u64,
}

impl HashedFile {
    fn create(path: PathBuf) -> Result<Self, GenerateError> {
        let file = File::create(&path).map_err(io_error(&path))?;
        Ok(HashedFile {
            writer: BufWriter::with_capacity(1 << 16, file),
            path,
            hasher: Sha1::new(),
            written: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), GenerateError> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.writer.write_all(bytes).map_err(io_error(&self.path))
    }

    /// Appends the checksum of everything written, closes the file and returns the checksum.
    fn finish(mut self) -> Result<(PathBuf, [u8; 20]), GenerateError> {
        let checksum: [u8; 20] = self.hasher.finalize_reset().into();
        self.writer
            .write_all(&checksum)
            .and_then(|()| self.writer.flush())
            .map_err(io_error(&self.path))?;
        Ok((self.path, checksum))
    }
}

/// What the index needs of one packed object.
struct IndexEntry {
    id: ObjectId,
    crc32: u32,
    offset: u64,
}

/// Packs each object it is handed.
struct PackSink {
    pack: HashedFile,
    entry: Vec<u8>,
    entries: Vec<IndexEntry>,
}

/// Adler-32 (RFC 1950), the zlib stream's trailer.
fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1_u32, 0_u32);
    // 5,552 bytes is the most that cannot overflow `b` before the modulo.
    for chunk in bytes.chunks(5_552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Appends `body` to `out` as a zlib stream of stored (uncompressed) deflate blocks.
pub(crate) fn push_zlib_stored(body: &[u8], out: &mut Vec<u8>) {
    // CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (fastest; 0x7801 is a multiple of 31).
    out.extend_from_slice(&[0x78, 0x01]);
    let mut blocks = body.chunks(usize::from(u16::MAX)).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none();
        let len = block.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(body).to_be_bytes());
}

/// The pack entry header: type in bits 4–6 of the first byte, size in 4 bits then 7 a byte.
fn push_entry_header(kind: ObjectKind, size: usize, out: &mut Vec<u8>) {
    let mut byte = ((kind as u8) << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

impl ObjectSink for PackSink {
    type Error = GenerateError;

    fn object(
        &mut self,
        kind: ObjectKind,
        id: &ObjectId,
        body: &[u8],
    ) -> Result<(), GenerateError> {
        self.entry.clear();
        push_entry_header(kind, body.len(), &mut self.entry);
        push_zlib_stored(body, &mut self.entry);
        self.entries.push(IndexEntry {
            id: *id,
            crc32: crc32fast::hash(&self.entry),
            offset: self.pack.written,
        });
        let entry = std::mem::take(&mut self.entry);
        let written = self.pack.write(&entry);
        self.entry = entry;
        written
    }
}

/// Writes the v2 index of `entries` (sorted here) for the pack whose checksum is `pack_checksum`.
fn write_index(
    path: PathBuf,
    entries: &mut [IndexEntry],
    pack_checksum: &[u8; 20],
) -> Result<PathBuf, GenerateError> {
    entries.sort_unstable_by_key(|e| e.id);
    let mut index = HashedFile::create(path)?;
    index.write(&[0xff, b't', b'O', b'c', 0, 0, 0, 2])?;
    let mut fanout = [0_u32; 256];
    for entry in entries.iter() {
        fanout[usize::from(entry.id.0[0])] += 1;
    }
    let mut cumulative = 0;
    for count in fanout {
        cumulative += count;
        index.write(&cumulative.to_be_bytes())?;
    }
    for entry in entries.iter() {
        index.write(&entry.id.0)?;
    }
    for entry in entries.iter() {
        index.write(&entry.crc32.to_be_bytes())?;
    }
    let mut large = Vec::new();
    for entry in entries.iter() {
        let small = match u32::try_from(entry.offset) {
            Ok(offset) if offset < 0x8000_0000 => offset,
            _ => {
                large.push(entry.offset);
                0x8000_0000 | (large.len() as u32 - 1)
            }
        };
        index.write(&small.to_be_bytes())?;
    }
    for offset in large {
        index.write(&offset.to_be_bytes())?;
    }
    index.write(pack_checksum)?;
    Ok(index.finish()?.0)
}

/// Writes `history` as the bare repository `git_dir/<owner>/<name>.git` (HEAD → `refs/heads/main`,
/// one pack and its index) and returns the files written.
pub fn write_repo(
    org: &Org,
    history: &RepoHistory,
    git_dir: &Path,
) -> Result<Vec<PathBuf>, GenerateError> {
    let dir = repo_dir(git_dir, &org.repos[history.repo].name);
    if dir.exists() {
        // A pack from an earlier run has another name: it would stay beside the new one.
        std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
    }
    let pack_dir = dir.join("objects/pack");
    for sub in [
        pack_dir.as_path(),
        &dir.join("objects/info"),
        &dir.join("refs/heads"),
        &dir.join("refs/tags"),
    ] {
        std::fs::create_dir_all(sub).map_err(io_error(sub))?;
    }
    let mut files = vec![
        write_file(&dir.join("HEAD"), b"ref: refs/heads/main\n")?,
        write_file(
            &dir.join("config"),
            b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
        )?,
    ];
    let Some(head) = history.git.head() else {
        // No commits: `main` is unborn, as in a new repository.
        return Ok(files);
    };

    let temporary = pack_dir.join("tmp_pack_sample");
    let mut pack = HashedFile::create(temporary.clone())?;
    let count = u32::try_from(history.git.objects).map_err(|_| GenerateError::Io {
        path: temporary.clone(),
        source: std::io::Error::other("more than 2^32 objects in one pack"),
    })?;
    pack.write(b"PACK")?;
    pack.write(&2_u32.to_be_bytes())?;
    pack.write(&count.to_be_bytes())?;
    let mut sink = PackSink {
        pack,
        entry: Vec::with_capacity(4096),
        entries: Vec::with_capacity(history.git.objects as usize),
    };
    let commits = walk(org, history, &history.git.order, &mut sink)?;
    let consistent = sink.entries.len() == count as usize
        && commits
            .iter()
            .all(|c| c.commit.to_hex() == history.changes[c.change].sha);
    if !consistent {
        // The walk is deterministic: a difference is a bug in this crate, not bad input.
        return Err(GenerateError::Io {
            path: temporary,
            source: std::io::Error::other("the history's objects differ from its assigned ids"),
        });
    }
    let PackSink {
        pack, mut entries, ..
    } = sink;
    let (_, checksum) = pack.finish()?;
    let name = format!("pack-{}", ObjectId(checksum));
    let pack_path = pack_dir.join(format!("{name}.pack"));
    std::fs::rename(&temporary, &pack_path).map_err(io_error(&pack_path))?;
    let index_path = write_index(
        pack_dir.join(format!("{name}.idx")),
        &mut entries,
        &checksum,
    )?;
    files.push(pack_path);
    files.push(index_path);
    files.push(write_file(
        &dir.join("refs/heads/main"),
        format!("{}\n", history.changes[head].sha).as_bytes(),
    )?);
    Ok(files)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod zlib_tests {
    use super::{adler32, push_zlib_stored};

    /// Reads back a stream of stored blocks: the body, or `None` if malformed.
    fn inflate_stored(stream: &[u8]) -> Option<Vec<u8>> {
        let (header, mut rest) = stream.split_at_checked(2)?;
        if header != [0x78, 0x01] {
            return None;
        }
        let mut body = Vec::new();
        loop {
            let (&[last, l0, l1, n0, n1], tail) = rest.split_first_chunk::<5>()?;
            let len = u16::from_le_bytes([l0, l1]);
            if !len != u16::from_le_bytes([n0, n1]) || last > 1 {
                return None;
            }
            let (block, tail) = tail.split_at_checked(usize::from(len))?;
            body.extend_from_slice(block);
            rest = tail;
            if last == 1 {
                break;
            }
        }
        (rest == adler32(&body).to_be_bytes()).then_some(body)
    }

    #[test]
    fn stored_zlib_streams_round_trip() {
        // The example of the Adler-32 article: "Wikipedia" → 0x11E60398.
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        for len in [0, 1, 500, 65_535, 65_536, 200_000] {
            let body: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut stream = Vec::new();
            push_zlib_stored(&body, &mut stream);
            assert_eq!(inflate_stored(&stream), Some(body), "{len} bytes");
        }
    }
}
