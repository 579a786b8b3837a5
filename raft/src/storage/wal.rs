//! The durable store as a segmented write-ahead log: one `pwrite` and one
//! `fdatasync` per [`WriteBatch`] (group commit), where redb commits
//! several scattered pages.
//!
//! # Files
//!
//! A store is a directory holding:
//! - `LOCK`: held with an advisory lock while the store is open, so a second
//!   process (or a second open in this one) is refused.
//! - `wal-<seq>.log` (seq: 20 decimal digits): the segments, replayed in
//!   order. Each starts with a 24-byte header, the magic `CONCWAL1`, the
//!   seq (u64 LE) and a random salt (u64 LE), followed by batches, followed by zeros: a segment is
//!   preallocated [`PREALLOCATE_BYTES`] at a time (see [`Preallocation`];
//!   its size is synced once when it grows, not per write), and a new batch
//!   is written over the zeros.
//! - `snap-<gen>.snap`: the latest snapshot, one record of kind
//!   `SNAPSHOT_DATA` holding the bincode [`Snapshot`]. It is written to a
//!   `snap-staged-<index>-<nonce>.tmp` file and synced — for a snapshot the
//!   node took, by [`StateStore::snapshot_stager`]'s job, beside the log's
//!   writes — then renamed and the directory synced before the WAL record
//!   naming its `gen` is written, and the older file is deleted only after
//!   that record is durable. A `.tmp` file, or a snapshot file no record
//!   names (a crash between the two), is deleted at open.
//!
//! # Records
//!
//! `len: u32 LE | crc: u32 LE | kind: u8 | payload (len bytes)`, the CRC32
//! covering the kind and the payload, and for a `BATCH` record first the
//! segment's salt: bytes a client wrote into a command can then never pass
//! for a batch when recovery looks past damage (below). Kinds: `BATCH` (payload: the batch's
//! length in bytes, u64 LE, counting this record), `CHECKPOINT`, `ENTRY`,
//! `HARD_STATE`, `TRUNCATE` (u64 LE: the first index cut), `SNAPSHOT` (a
//! reference to a snapshot file, with whether it replaced the whole log) and
//! `SEAL`. Values are bincode 2 (`bincode::serde`, `config::standard()`).
//!
//! A batch is a `BATCH` record followed by the records of one write, in the
//! order snapshot, truncation, entries, hard state; it is written with one
//! `pwrite` and applied at replay only if all of it is intact, so a write is
//! atomic. Each segment starts with a `CHECKPOINT` batch (hard state,
//! snapshot reference, last index) so that older segments can be deleted
//! once a snapshot covers them; a segment that is full (past
//! [`SEGMENT_BYTES_MAX`]) ends with a `SEAL` batch before the next is
//! created (as a `.tmp` file, synced, renamed).
//!
//! # Recovery
//!
//! Opening replays every segment. In the last segment, a bad batch that no
//! intact batch follows is a write torn by a crash: it is cut off and zeroed
//! on disk. Any other bad length, CRC or kind, a segment missing
//! its seal, a gap in the segment numbers, an out-of-order record or a
//! checkpoint that disagrees with what precedes it is
//! [`StorageError::Corrupted`]. The result is then checked like every store
//! ([`crate::storage::Storage::recover`]).

use crate::core::types::{Entry, HardState, Index, Snapshot, Term};
use crate::storage::{LogStore, SnapshotStager, StagedSnapshot, StateStore, StorageError, WriteBatch};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A segment is rotated once a batch would take it past this size (a single
/// larger batch gets a segment of its own).
pub const SEGMENT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// A segment's file grows by this many bytes at a time.
pub const PREALLOCATE_BYTES: u64 = 4 * 1024 * 1024;

/// How a segment's file is grown ahead of the writes.
///
/// Measured on the ext4 VM this was built on (256-byte `pwrite` +
/// `fdatasync`, medians of alternating rounds on a quiet disk): `set_len`
/// 87–105 µs, `fallocate` 87–98 µs, written zeros 107–122 µs, appending to a
/// growing file 136–153 µs. So the default is [`Preallocation::SetLen`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Preallocation {
    /// Extend the file with `set_len` (a hole: no data written, no space
    /// reserved, so a full disk fails a later write instead).
    #[default]
    SetLen,
    /// Write zeros over the new part.
    WrittenZeros,
}

const LOCK_FILE: &str = "LOCK";
const SEGMENT_MAGIC: &[u8; 8] = b"CONCWAL1";
const SEGMENT_HEADER_BYTES: u64 = 24;
const RECORD_HEADER_BYTES: usize = 9;
const BATCH_RECORD_BYTES: usize = RECORD_HEADER_BYTES + 8;

const KIND_BATCH: u8 = 1;
const KIND_CHECKPOINT: u8 = 2;
const KIND_ENTRY: u8 = 3;
const KIND_HARD_STATE: u8 = 4;
const KIND_TRUNCATE: u8 = 5;
const KIND_SNAPSHOT: u8 = 6;
const KIND_SEAL: u8 = 7;
const KIND_SNAPSHOT_DATA: u8 = 8;

/// Sizes of a [`WalStore`]; the defaults are the named bounds.
#[derive(Clone, Copy, Debug)]
pub struct WalOptions {
    /// Rotation bound of a segment (default [`SEGMENT_BYTES_MAX`]).
    pub segment_bytes_max: u64,
    /// Growth step of a segment's preallocation (default [`PREALLOCATE_BYTES`]).
    pub preallocate_bytes: u64,
    /// How a segment grows.
    pub preallocation: Preallocation,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_bytes_max: SEGMENT_BYTES_MAX,
            preallocate_bytes: PREALLOCATE_BYTES,
            preallocation: Preallocation::SetLen,
        }
    }
}

/// Which snapshot file is current: `gen` 0 is the default, empty snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SnapshotRef {
    gen: u64,
    index: Index,
    term: Term,
    /// The snapshot replaced the whole log (its index did not match an
    /// entry); otherwise only the entries through its index are dropped.
    clear: bool,
}

/// The state at the start of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    hard_state: HardState,
    snapshot: SnapshotRef,
    last_index: Index,
}

/// Where an entry's record is.
#[derive(Clone, Copy, Debug)]
struct Slot {
    segment: u64,
    offset: u64,
    len: u32,
    term: Term,
}

/// The log as the WAL describes it: positions of the entries after the
/// snapshot. Replay and the write path apply records to it alike.
#[derive(Debug, Default)]
struct Model {
    hard_state: HardState,
    snapshot: SnapshotRef,
    /// Entries `snapshot.index + 1 ..= missing_through` are in segments
    /// deleted before this replay started: a later snapshot must cover them.
    missing_through: Index,
    /// Entries `missing_through + 1 ..`.
    slots: VecDeque<Slot>,
}

impl Model {
    fn last_index(&self) -> Index {
        self.missing_through + self.slots.len() as u64
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint { hard_state: self.hard_state, snapshot: self.snapshot, last_index: self.last_index() }
    }

    fn term_at(&self, index: Index) -> Option<Term> {
        let offset = index.checked_sub(self.missing_through + 1)?;
        self.slots.get(usize::try_from(offset).ok()?).map(|s| s.term)
    }

    fn truncate(&mut self, from: Index) -> Result<(), String> {
        if from <= self.snapshot.index || from > self.last_index() + 1 {
            return Err(format!(
                "truncation at {from} outside the log {}..={}",
                self.snapshot.index + 1,
                self.last_index()
            ));
        }
        if from <= self.missing_through {
            self.missing_through = from - 1;
            self.slots.clear();
        } else {
            self.slots.truncate((from - self.missing_through - 1) as usize);
        }
        Ok(())
    }

    fn append(&mut self, index: Index, slot: Slot) -> Result<(), String> {
        if index != self.last_index() + 1 {
            return Err(format!("entry {index} follows entry {}", self.last_index()));
        }
        self.slots.push_back(slot);
        Ok(())
    }

    fn install(&mut self, snapshot: SnapshotRef) -> Result<(), String> {
        if snapshot.gen <= self.snapshot.gen {
            return Err(format!("snapshot {} follows snapshot {}", snapshot.gen, self.snapshot.gen));
        }
        if snapshot.clear || snapshot.index >= self.last_index() {
            self.slots.clear();
            self.missing_through = snapshot.index;
        } else if snapshot.index > self.missing_through {
            self.slots.drain(..(snapshot.index - self.missing_through) as usize);
            self.missing_through = snapshot.index;
        } else {
            self.missing_through = self.missing_through.max(snapshot.index);
        }
        self.snapshot = snapshot;
        Ok(())
    }
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Random, chosen when the segment is created: mixed into the CRC of
    /// its `BATCH` records (see [`batch_crc_salt`]).
    salt: u64,
    file: File,
    /// Bytes of the file that are preallocated (zeros past the data).
    allocated: u64,
    /// The highest index this segment's records mention: once a snapshot
    /// covers it, the segment is not needed.
    covers: Index,
    /// Where the batches after the segment's checkpoint start.
    data_start: u64,
}

/// A record read back.
struct Record<'a> {
    kind: u8,
    payload: &'a [u8],
}

/// Why a record could not be read.
enum BadRecord {
    /// All zeros: the end of the written data.
    Zero,
    /// Damaged, with the reason.
    Bad(String),
}

/// The CRC of a record: over the salt (only a `BATCH` record has one, its
/// segment's), the kind and the payload.
fn record_crc(salt: Option<u64>, kind: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    if let Some(salt) = salt {
        hasher.update(&salt.to_le_bytes());
    }
    hasher.update(&[kind]);
    hasher.update(payload);
    hasher.finalize()
}

/// The salt of a record of `kind` in a segment salted `segment_salt`: a
/// `BATCH` record's CRC covers the segment's secret salt, so bytes a client
/// put in a command can never pass for a batch (the torn-tail check at open
/// looks for intact batches after damage).
fn batch_crc_salt(kind: u8, segment_salt: u64) -> Option<u64> {
    (kind == KIND_BATCH).then_some(segment_salt)
}

/// Reads the record at `at` in `bytes`: its kind, payload and total length.
/// `salt`: the segment's, checked if the record is a `BATCH`.
fn read_record(bytes: &[u8], at: usize, salt: u64) -> Result<(Record<'_>, usize), BadRecord> {
    let Some(header) = bytes.get(at..at + RECORD_HEADER_BYTES) else {
        return if bytes[at.min(bytes.len())..].iter().all(|b| *b == 0) {
            Err(BadRecord::Zero)
        } else {
            Err(BadRecord::Bad("a record header runs past the end of the file".into()))
        };
    };
    if header.iter().all(|b| *b == 0) {
        return Err(BadRecord::Zero);
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let kind = header[8];
    let start = at + RECORD_HEADER_BYTES;
    let Some(payload) = start.checked_add(len).and_then(|end| bytes.get(start..end)) else {
        return Err(BadRecord::Bad(format!("a record of {len} bytes runs past the end of the file")));
    };
    if record_crc(batch_crc_salt(kind, salt), kind, payload) != crc {
        return Err(BadRecord::Bad(format!("CRC mismatch in a record of kind {kind} and {len} bytes")));
    }
    Ok((Record { kind, payload }, RECORD_HEADER_BYTES + len))
}

/// Appends a record to `out` (`salt`: the segment's, used if `kind` is
/// `BATCH`).
fn push_salted_record(out: &mut Vec<u8>, kind: u8, payload: &[u8], salt: u64) -> Result<(), StorageError> {
    let len = u32::try_from(payload.len())
        .map_err(|_| StorageError::Engine(format!("a record of {} bytes is too large", payload.len())))?;
    out.extend_from_slice(&record_header(len, record_crc(batch_crc_salt(kind, salt), kind, payload), kind));
    out.extend_from_slice(payload);
    Ok(())
}

/// A record's header: its payload's length and CRC, then its kind (read
/// back by [`read_record`]).
fn record_header(len: u32, crc: u32, kind: u8) -> [u8; RECORD_HEADER_BYTES] {
    let mut header = [0; RECORD_HEADER_BYTES];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&crc.to_le_bytes());
    header[8] = kind;
    header
}

/// Appends a record that is not a `BATCH` (its CRC has no salt) to `out`.
fn push_record(out: &mut Vec<u8>, kind: u8, payload: &[u8]) -> Result<(), StorageError> {
    push_salted_record(out, kind, payload, 0)
}

/// Appends a record of `kind` (not a `BATCH`) whose payload is `value`
/// encoded as [`encode`] would, straight into `out`: the same bytes as
/// `push_record(out, kind, &encode(value)?)`, without the payload's own
/// buffer and copy.
fn push_encoded_record<T: Serialize>(out: &mut Vec<u8>, kind: u8, value: &T) -> Result<(), StorageError> {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    let encoded = bincode::serde::encode_into_std_write(value, out, bincode::config::standard());
    let payload = start + RECORD_HEADER_BYTES;
    let len = match encoded.map(|_| u32::try_from(out.len() - payload)) {
        Ok(Ok(len)) => len,
        Ok(Err(_)) => {
            let size = out.len() - payload;
            out.truncate(start);
            return Err(StorageError::Engine(format!("a record of {size} bytes is too large")));
        }
        Err(e) => {
            out.truncate(start);
            return Err(StorageError::Engine(format!("encode: {e}")));
        }
    };
    let crc = record_crc(None, kind, &out[payload..]);
    out[start..payload].copy_from_slice(&record_header(len, crc, kind));
    Ok(())
}

fn io_error(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> StorageError {
    move |e| StorageError::Engine(format!("{what}: {e}"))
}

/// Encodes with bincode's standard configuration (the transport's), into a
/// buffer of exactly the record's size.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    concord_transport::codec::encode_value(value).map_err(|e| StorageError::Engine(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, String> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| format!("{what}: {e}"))?;
    if read != bytes.len() {
        return Err(format!("{what}: {} trailing bytes", bytes.len() - read));
    }
    Ok(value)
}

fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, String> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| format!("{what}: {} bytes, not 8", bytes.len()))?;
    Ok(u64::from_le_bytes(array))
}

fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

fn snapshot_name(gen: u64) -> String {
    format!("snap-{gen:020}.snap")
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(format!("sync {}", dir.display())))
}

/// Writes `bytes` to `dir/name` atomically, the file extended to `len`
/// bytes: a temporary file, synced, renamed, and the directory synced.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8], len: u64) -> Result<File, StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let file = write_synced(&tmp, &[bytes], len)?;
    std::fs::rename(&tmp, dir.join(name)).map_err(io_error(format!("rename {}", tmp.display())))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Writes `parts`, one after the other, to a new file at `path`, extended
/// to `len` bytes, and syncs it (not its directory).
fn write_synced(path: &Path, parts: &[&[u8]], len: u64) -> Result<File, StorageError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_error(format!("create {}", path.display())))?;
    let mut at = 0;
    for part in parts {
        file.write_all_at(part, at).map_err(io_error(format!("write {}", path.display())))?;
        at += part.len() as u64;
    }
    if len > at {
        file.set_len(len).map_err(io_error(format!("extend {}", path.display())))?;
    }
    file.sync_all().map_err(io_error(format!("sync {}", path.display())))?;
    Ok(file)
}

/// A staged snapshot's file name (see [`StateStore::snapshot_stager`]): a
/// temporary name, so that opening the store deletes a file never recorded.
fn staged_snapshot_name(index: Index) -> String {
    format!("snap-staged-{index:020}-{:016x}.tmp", rand::random::<u64>())
}

/// Writes `snapshot` as a snapshot file's one record at `path`, synced.
/// The data is written from where it is, not copied into the record: its
/// encoding is the metadata's, then the data's length, then its bytes, so
/// the record's head is encoded alone. (Each copy of a 480 MB state took
/// 0.4–0.7 s of fresh pages on the VM this was built on.)
fn write_snapshot_data(path: &Path, snapshot: &Snapshot) -> Result<(), StorageError> {
    let (head, data) = snapshot_record(snapshot)?;
    write_synced(path, &[&head, data], 0).map(drop)
}

/// A snapshot file's record as its head (record header, encoded metadata
/// and data length) and the data that follows it.
fn snapshot_record(snapshot: &Snapshot) -> Result<(Vec<u8>, &[u8]), StorageError> {
    let data = &snapshot.data[..];
    // Encoded as `Snapshot` is: its fields in order, the bytes length-prefixed.
    let encoded_head = encode(&(&snapshot.meta, data.len() as u64))?;
    let payload_len = encoded_head.len() + data.len();
    let len = u32::try_from(payload_len)
        .map_err(|_| StorageError::Engine(format!("a snapshot of {payload_len} bytes is too large")))?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[KIND_SNAPSHOT_DATA]);
    hasher.update(&encoded_head);
    hasher.update(data);
    let mut head = Vec::with_capacity(RECORD_HEADER_BYTES + encoded_head.len());
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(&hasher.finalize().to_le_bytes());
    head.push(KIND_SNAPSHOT_DATA);
    head.extend_from_slice(&encoded_head);
    Ok((head, data))
}

/// Grows `file` from `from` to `to` bytes as `how` says.
fn preallocate(file: &File, how: Preallocation, from: u64, to: u64) -> io::Result<()> {
    match how {
        Preallocation::SetLen => file.set_len(to),
        Preallocation::WrittenZeros => write_zeros(file, from, to),
    }
}

/// Writes zeros into `file` over `from..to`.
fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    const CHUNK: usize = 256 * 1024;
    let zeros = vec![0u8; CHUNK];
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// A durable store in a directory of WAL segments (see the module doc).
#[derive(Debug)]
pub struct WalStore {
    dir: PathBuf,
    options: WalOptions,
    /// Held (locked) while the store is open.
    _lock: File,
    /// Oldest first; the last is written to.
    segments: Vec<Segment>,
    /// Where the next batch goes in the last segment.
    write_offset: u64,
    model: Model,
    /// A write failed half-way: memory and disk may disagree, so refuse more.
    poisoned: bool,
    /// Reused encoding buffer.
    buffer: Vec<u8>,
}

impl WalStore {
    /// Opens (or creates) the store in directory `dir` with the default
    /// sizes, replaying and checking every segment. A damaged log is an
    /// error; a write torn by a crash at its end is cut off.
    pub fn open(dir: impl AsRef<Path>) -> Result<WalStore, StorageError> {
        WalStore::open_with(dir, WalOptions::default())
    }

    /// [`WalStore::open`] with chosen sizes.
    pub fn open_with(dir: impl AsRef<Path>, options: WalOptions) -> Result<WalStore, StorageError> {
        let dir = dir.as_ref().to_path_buf();
        if options.segment_bytes_max <= SEGMENT_HEADER_BYTES || options.preallocate_bytes == 0 {
            return Err(StorageError::Engine(format!("unusable WAL sizes {options:?}")));
        }
        std::fs::create_dir_all(&dir).map_err(io_error(format!("create {}", dir.display())))?;
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io_error("open the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StorageError::Engine(format!(
                    "{} is in use by another open store",
                    dir.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error("lock the store")(e)),
        }
        let mut store = WalStore {
            dir,
            options,
            _lock: lock,
            segments: Vec::new(),
            write_offset: 0,
            model: Model::default(),
            poisoned: false,
            buffer: Vec::new(),
        };
        let sealed = store.replay()?;
        store.remove_unreferenced_snapshots()?;
        if store.segments.is_empty() || sealed {
            store.start_segment()?;
        }
        // Decode and check everything once: refuse now rather than serve garbage later.
        crate::storage::Storage::recover(&store)?;
        Ok(store)
    }

    /// The segment numbers in the directory, in order, after removing
    /// temporary files a crash left.
    fn list(&self) -> Result<(Vec<u64>, Vec<u64>), StorageError> {
        let mut segments = Vec::new();
        let mut snapshots = Vec::new();
        let entries =
            std::fs::read_dir(&self.dir).map_err(io_error(format!("list {}", self.dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_error(format!("list {}", self.dir.display())))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                std::fs::remove_file(entry.path()).map_err(io_error(format!("remove {name}")))?;
            } else if let Some(seq) = name.strip_prefix("wal-").and_then(|n| n.strip_suffix(".log")) {
                segments.push(
                    seq.parse().map_err(|_| {
                        StorageError::Corrupted(format!("unexpected segment file name {name}"))
                    })?,
                );
            } else if let Some(gen) = name.strip_prefix("snap-").and_then(|n| n.strip_suffix(".snap")) {
                snapshots.push(
                    gen.parse().map_err(|_| {
                        StorageError::Corrupted(format!("unexpected snapshot file name {name}"))
                    })?,
                );
            }
        }
        segments.sort_unstable();
        snapshots.sort_unstable();
        Ok((segments, snapshots))
    }

    /// Replays every segment into the model; returns whether the last one
    /// is sealed.
    fn replay(&mut self) -> Result<bool, StorageError> {
        let (seqs, snapshots) = self.list()?;
        if seqs.is_empty() && !snapshots.is_empty() {
            // The first segment is created before any snapshot can be.
            return Err(StorageError::Corrupted(format!(
                "{} holds snapshot files and no log segment",
                self.dir.display()
            )));
        }
        for pair in seqs.windows(2) {
            if pair[1] != pair[0] + 1 {
                return Err(StorageError::Corrupted(format!(
                    "segments {} to {} are missing",
                    pair[0] + 1,
                    pair[1] - 1
                )));
            }
        }
        let mut sealed = false;
        for (i, &seq) in seqs.iter().enumerate() {
            let last = i + 1 == seqs.len();
            sealed = self.replay_segment(seq, i == 0, last)?;
            if !last && !sealed {
                return Err(StorageError::Corrupted(format!(
                    "segment {} ends without its seal (truncated?)",
                    segment_name(seq)
                )));
            }
        }
        if self.model.missing_through != self.model.snapshot.index {
            return Err(StorageError::Corrupted(format!(
                "entries {}..={} were in deleted segments and no snapshot covers them",
                self.model.snapshot.index + 1,
                self.model.missing_through
            )));
        }
        Ok(sealed)
    }

    fn replay_segment(&mut self, seq: u64, first: bool, last: bool) -> Result<bool, StorageError> {
        let name = segment_name(seq);
        let path = self.dir.join(&name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_error(format!("open {name}")))?;
        let bytes = std::fs::read(&path).map_err(io_error(format!("read {name}")))?;
        let corrupted =
            |at: usize, why: &str| StorageError::Corrupted(format!("{name} at offset {at}: {why}"));
        if bytes.len() < SEGMENT_HEADER_BYTES as usize
            || &bytes[..8] != SEGMENT_MAGIC
            || bytes[8..16] != seq.to_le_bytes()
        {
            return Err(corrupted(0, "not a segment header for this file"));
        }
        let salt = decode_u64(&bytes[16..24], "segment salt").map_err(|why| corrupted(16, &why))?;
        let mut segment =
            Segment { seq, salt, file, allocated: bytes.len() as u64, covers: 0, data_start: 0 };
        let mut at = SEGMENT_HEADER_BYTES as usize;
        let mut batches = 0u64;
        let mut sealed = false;
        let mut items = Vec::new();
        loop {
            let why = match self.read_batch(&bytes, at, seq, salt, &mut items) {
                Ok(Some(len)) => {
                    if sealed {
                        return Err(corrupted(at, "data after the segment's seal"));
                    }
                    if batches == 0 && !matches!(items.first(), Some(Item::Checkpoint(_))) {
                        return Err(corrupted(at, "the segment does not start with a checkpoint"));
                    }
                    for item in items.drain(..) {
                        sealed |= matches!(item, Item::Seal);
                        self.apply(item, first && batches == 0, &mut segment)
                            .map_err(|why| corrupted(at, &why))?;
                    }
                    batches += 1;
                    at += len;
                    if batches == 1 {
                        segment.data_start = at as u64;
                    }
                    continue;
                }
                Ok(None) if bytes[at..].iter().all(|b| *b == 0) => break,
                Ok(None) => "zeros where a batch starts, data after them".to_string(),
                Err(why) => why,
            };
            // Damage: a write torn by a crash if it is in the last segment
            // and no intact batch follows it.
            if !last || batches == 0 {
                return Err(corrupted(at, &why));
            }
            if let Some(next) = self.intact_batch_after(&bytes, at, seq, salt) {
                return Err(corrupted(at, &format!("{why}, and an intact batch follows at {next}")));
            }
            tracing::warn!(segment = %name, offset = at, reason = %why, "cutting a torn write off the WAL");
            let end = bytes.iter().rposition(|b| *b != 0).map_or(at, |last| last + 1);
            write_zeros(&segment.file, at as u64, end as u64)
                .and_then(|()| segment.file.sync_data())
                .map_err(io_error(format!("cut the torn tail of {name}")))?;
            break;
        }
        if batches == 0 {
            return Err(corrupted(at, "the segment holds no checkpoint"));
        }
        self.write_offset = at as u64;
        self.segments.push(segment);
        Ok(sealed)
    }

    /// Reads the batch at `at` into `items`: its length, `None` at the end
    /// of the data, or why it is bad.
    fn read_batch(
        &self,
        bytes: &[u8],
        at: usize,
        seq: u64,
        salt: u64,
        items: &mut Vec<Item>,
    ) -> Result<Option<usize>, String> {
        items.clear();
        let (record, len) = match read_record(bytes, at, salt) {
            Ok(read) => read,
            Err(BadRecord::Zero) => return Ok(None),
            Err(BadRecord::Bad(why)) => return Err(why),
        };
        if record.kind != KIND_BATCH {
            return Err(format!("a record of kind {} where a batch starts", record.kind));
        }
        let batch_len = decode_u64(record.payload, "batch length")?;
        let batch_len = usize::try_from(batch_len).unwrap_or(usize::MAX);
        let Some(end) = at.checked_add(batch_len).filter(|end| *end <= bytes.len() && batch_len >= len)
        else {
            return Err(format!("a batch of {batch_len} bytes does not fit the file"));
        };
        let mut pos = at + len;
        while pos < end {
            let (record, len) = match read_record(&bytes[..end], pos, salt) {
                Ok(read) => read,
                Err(BadRecord::Zero) => return Err("a batch ends early".into()),
                Err(BadRecord::Bad(why)) => return Err(why),
            };
            let item = Item::decode(&record, seq, pos as u64, len)?;
            items.push(item);
            pos += len;
        }
        Ok(Some(batch_len))
    }

    /// Where an intact batch starts after damage at `at`, if anywhere: then
    /// the damage is not a torn last write.
    fn intact_batch_after(&self, bytes: &[u8], at: usize, seq: u64, salt: u64) -> Option<usize> {
        let end = bytes.iter().rposition(|b| *b != 0)?;
        let mut items = Vec::new();
        (at + 1..end.saturating_sub(RECORD_HEADER_BYTES))
            .filter(|p| bytes[p + 8] == KIND_BATCH)
            .find(|p| matches!(self.read_batch(bytes, *p, seq, salt, &mut items), Ok(Some(_))))
    }

    /// Applies one replayed record to the model.
    fn apply(&mut self, item: Item, initial: bool, segment: &mut Segment) -> Result<(), String> {
        match item {
            Item::Checkpoint(checkpoint) if initial => {
                self.model = Model {
                    hard_state: checkpoint.hard_state,
                    snapshot: checkpoint.snapshot,
                    missing_through: checkpoint.last_index.max(checkpoint.snapshot.index),
                    slots: VecDeque::new(),
                };
                segment.covers = segment.covers.max(checkpoint.last_index);
            }
            Item::Checkpoint(checkpoint) => {
                if checkpoint != self.model.checkpoint() {
                    return Err(format!(
                        "checkpoint {checkpoint:?} disagrees with the log before it {:?}",
                        self.model.checkpoint()
                    ));
                }
                segment.covers = segment.covers.max(checkpoint.last_index);
            }
            Item::Snapshot(snapshot) => {
                self.model.install(snapshot)?;
                segment.covers = segment.covers.max(snapshot.index);
            }
            Item::Truncate(from) => self.model.truncate(from)?,
            Item::Entry(index, slot) => {
                if index <= self.model.snapshot.index {
                    return Err(format!(
                        "entry {index} is covered by the snapshot at {}",
                        self.model.snapshot.index
                    ));
                }
                self.model.append(index, slot)?;
                segment.covers = segment.covers.max(index);
            }
            Item::HardState(hard_state) => self.model.hard_state = hard_state,
            Item::Seal => {}
        }
        Ok(())
    }

    /// Deletes snapshot files the log does not name: older ones, and newer
    /// ones whose record a crash prevented.
    fn remove_unreferenced_snapshots(&self) -> Result<(), StorageError> {
        let (_, gens) = self.list()?;
        for gen in gens {
            if gen != self.model.snapshot.gen {
                let name = snapshot_name(gen);
                std::fs::remove_file(self.dir.join(&name)).map_err(io_error(format!("remove {name}")))?;
            }
        }
        if self.model.snapshot.gen > 0 && !self.dir.join(snapshot_name(self.model.snapshot.gen)).exists() {
            return Err(StorageError::Corrupted(format!(
                "the log names snapshot file {} and it is missing",
                snapshot_name(self.model.snapshot.gen)
            )));
        }
        Ok(())
    }

    /// Starts a new segment (the first, or after sealing the current one)
    /// beginning with a checkpoint of the current state.
    fn start_segment(&mut self) -> Result<(), StorageError> {
        let seq = self.segments.last().map_or(0, |s| s.seq + 1);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(SEGMENT_MAGIC);
        bytes.extend_from_slice(&seq.to_le_bytes());
        let salt: u64 = rand::random();
        bytes.extend_from_slice(&salt.to_le_bytes());
        let checkpoint = self.model.checkpoint();
        let mut records = Vec::new();
        push_record(&mut records, KIND_CHECKPOINT, &encode(&checkpoint)?)?;
        push_batch(&mut bytes, &records, salt)?;
        let data_end = bytes.len() as u64;
        let allocated =
            data_end.next_multiple_of(self.options.preallocate_bytes).max(self.options.preallocate_bytes);
        if self.options.preallocation == Preallocation::WrittenZeros {
            bytes.resize(allocated as usize, 0);
        }
        let file = write_atomically(&self.dir, &segment_name(seq), &bytes, allocated)?;
        self.segments.push(Segment {
            seq,
            salt,
            file,
            allocated,
            covers: checkpoint.last_index,
            data_start: data_end,
        });
        self.write_offset = data_end;
        Ok(())
    }

    /// Appends one batch of `records` (already framed) with one write and
    /// one `fdatasync`, rotating and preallocating first as needed. Returns
    /// the offset of the records in the (possibly new) last segment.
    fn append(&mut self, records: &[u8]) -> Result<u64, StorageError> {
        let len = (BATCH_RECORD_BYTES + records.len()) as u64;
        let current_has_data = self.segments.last().is_some_and(|s| self.write_offset > s.data_start);
        if self.write_offset + len > self.options.segment_bytes_max && current_has_data {
            self.rotate()?;
        }
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        let salt = self.segments.last().map_or(0, |s| s.salt);
        push_batch(&mut buffer, records, salt)?;
        let result = self.write_at_end(&buffer);
        self.buffer = buffer;
        result.map(|at| at + BATCH_RECORD_BYTES as u64)
    }

    /// Writes `bytes` at the write offset of the last segment and syncs.
    fn write_at_end(&mut self, bytes: &[u8]) -> Result<u64, StorageError> {
        let at = self.write_offset;
        let end = at + bytes.len() as u64;
        let (step, how) = (self.options.preallocate_bytes, self.options.preallocation);
        let Some(segment) = self.segments.last_mut() else {
            return Err(StorageError::Engine("no segment to write to".into()));
        };
        // Every batch comes here: the error's text is built only on failure.
        let seq = segment.seq;
        let failed =
            |what: &str, e: io::Error| StorageError::Engine(format!("{what} {}: {e}", segment_name(seq)));
        if end > segment.allocated {
            // Grow and sync the new size once, so that each write's
            // fdatasync carries no size change.
            let allocated = end.next_multiple_of(step);
            preallocate(&segment.file, how, segment.allocated, allocated)
                .and_then(|()| segment.file.sync_all())
                .map_err(|e| failed("preallocate", e))?;
            segment.allocated = allocated;
        }
        segment.file.write_all_at(bytes, at).map_err(|e| failed("write", e))?;
        segment.file.sync_data().map_err(|e| failed("sync", e))?;
        self.write_offset = end;
        Ok(at)
    }

    /// Seals the last segment and starts the next.
    fn rotate(&mut self) -> Result<(), StorageError> {
        let mut records = Vec::new();
        push_record(&mut records, KIND_SEAL, &[])?;
        let mut batch = Vec::new();
        let salt = self.segments.last().map_or(0, |s| s.salt);
        push_batch(&mut batch, &records, salt)?;
        self.write_at_end(&batch)?;
        self.start_segment()
    }

    /// Deletes the oldest segments a snapshot covers entirely (never the last).
    fn remove_covered_segments(&mut self) -> Result<(), StorageError> {
        let covered = self
            .segments
            .iter()
            .take(self.segments.len().saturating_sub(1))
            .take_while(|s| s.covers <= self.model.snapshot.index)
            .count();
        if covered == 0 {
            return Ok(());
        }
        for segment in self.segments.drain(..covered) {
            let name = segment_name(segment.seq);
            std::fs::remove_file(self.dir.join(&name)).map_err(io_error(format!("remove {name}")))?;
        }
        sync_dir(&self.dir)
    }

    /// Writes a snapshot file as the next generation, before any record names it.
    fn write_snapshot_file(&self, snapshot: &Snapshot) -> Result<u64, StorageError> {
        let path = self.dir.join(staged_snapshot_name(snapshot.meta.index));
        write_snapshot_data(&path, snapshot)?;
        self.name_snapshot_file(&path)
    }

    /// Renames a written snapshot file as the next generation, before any
    /// record names it.
    fn name_snapshot_file(&self, path: &Path) -> Result<u64, StorageError> {
        let gen = self.model.snapshot.gen + 1;
        std::fs::rename(path, self.dir.join(snapshot_name(gen)))
            .map_err(io_error(format!("rename {}", path.display())))?;
        sync_dir(&self.dir)?;
        Ok(gen)
    }

    /// Writes a batch of records and applies them to the model; on failure
    /// the store refuses further writes.
    fn commit(
        &mut self,
        snapshot: Option<SnapshotRef>,
        truncate: Option<Index>,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) -> Result<(), StorageError> {
        // Sized for the usual batch, so that appending does not reallocate.
        let capacity = entries.iter().map(|e| e.size_bytes() + RECORD_HEADER_BYTES + 32).sum::<usize>();
        let mut records = Vec::with_capacity(capacity + 64);
        let mut entry_records = Vec::with_capacity(entries.len());
        if let Some(snapshot) = &snapshot {
            push_record(&mut records, KIND_SNAPSHOT, &encode(snapshot)?)?;
        }
        if let Some(from) = truncate {
            push_record(&mut records, KIND_TRUNCATE, &from.to_le_bytes())?;
        }
        for entry in entries {
            let start = records.len();
            push_encoded_record(&mut records, KIND_ENTRY, entry)?;
            entry_records.push((start as u64, (records.len() - start) as u32));
        }
        if let Some(hard_state) = &hard_state {
            push_encoded_record(&mut records, KIND_HARD_STATE, hard_state)?;
        }
        let at = match self.append(&records) {
            Ok(at) => at,
            Err(e) => {
                self.poisoned = true;
                return Err(e);
            }
        };
        let old_gen = self.model.snapshot.gen;
        let applied = self.apply_written(snapshot, truncate, entries, &entry_records, hard_state, at);
        if let Err(why) = applied {
            self.poisoned = true;
            return Err(StorageError::Engine(format!("the written batch does not apply: {why}")));
        }
        if snapshot.is_some() {
            let name = snapshot_name(old_gen);
            if old_gen > 0 {
                std::fs::remove_file(self.dir.join(&name)).map_err(io_error(format!("remove {name}")))?;
            }
            self.remove_covered_segments()?;
        }
        Ok(())
    }

    fn apply_written(
        &mut self,
        snapshot: Option<SnapshotRef>,
        truncate: Option<Index>,
        entries: &[Entry],
        entry_records: &[(u64, u32)],
        hard_state: Option<HardState>,
        at: u64,
    ) -> Result<(), String> {
        let Some(segment) = self.segments.last_mut() else { return Err("no segment".into()) };
        let seq = segment.seq;
        if let Some(snapshot) = snapshot {
            self.model.install(snapshot)?;
            segment.covers = segment.covers.max(snapshot.index);
        }
        if let Some(from) = truncate {
            self.model.truncate(from)?;
        }
        for (entry, (offset, len)) in entries.iter().zip(entry_records) {
            let slot = Slot { segment: seq, offset: at + offset, len: *len, term: entry.term };
            self.model.append(entry.index, slot)?;
            segment.covers = segment.covers.max(entry.index);
        }
        if let Some(hard_state) = hard_state {
            self.model.hard_state = hard_state;
        }
        Ok(())
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Engine("an earlier write failed; reopen the store".into()));
        }
        Ok(())
    }

    fn segment(&self, seq: u64) -> Result<&Segment, StorageError> {
        let first = self.segments.first().map_or(0, |s| s.seq);
        seq.checked_sub(first)
            .and_then(|i| self.segments.get(i as usize))
            .filter(|s| s.seq == seq)
            .ok_or_else(|| StorageError::Corrupted(format!("segment {seq} is not open")))
    }
}

/// Frames `records` as one batch into `out`, for a segment salted `salt`.
fn push_batch(out: &mut Vec<u8>, records: &[u8], salt: u64) -> Result<(), StorageError> {
    let len = (BATCH_RECORD_BYTES + records.len()) as u64;
    push_salted_record(out, KIND_BATCH, &len.to_le_bytes(), salt)?;
    out.extend_from_slice(records);
    Ok(())
}

/// A decoded record of a batch.
enum Item {
    Checkpoint(Checkpoint),
    Snapshot(SnapshotRef),
    Truncate(Index),
    Entry(Index, Slot),
    HardState(HardState),
    Seal,
}

impl Item {
    fn decode(record: &Record<'_>, seq: u64, offset: u64, len: usize) -> Result<Item, String> {
        Ok(match record.kind {
            KIND_CHECKPOINT => Item::Checkpoint(decode(record.payload, "checkpoint")?),
            KIND_SNAPSHOT => Item::Snapshot(decode(record.payload, "snapshot reference")?),
            KIND_TRUNCATE => Item::Truncate(decode_u64(record.payload, "truncation")?),
            KIND_ENTRY => {
                let entry: Entry = decode(record.payload, "entry")?;
                let len = u32::try_from(len).map_err(|_| format!("an entry record of {len} bytes"))?;
                Item::Entry(entry.index, Slot { segment: seq, offset, len, term: entry.term })
            }
            KIND_HARD_STATE => Item::HardState(decode(record.payload, "hard state")?),
            KIND_SEAL if record.payload.is_empty() => Item::Seal,
            kind => return Err(format!("a record of unknown kind {kind} inside a batch")),
        })
    }
}

impl LogStore for WalStore {
    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        self.check_usable()?;
        // Validate against the log as the snapshot would leave it, before writing anything.
        let mut snapshot_index = self.model.snapshot.index;
        let mut last = self.model.last_index();
        let mut clear = false;
        if let Some(snapshot) = batch.snapshot {
            clear = self.model.term_at(snapshot.meta.index) != Some(snapshot.meta.term);
            snapshot_index = snapshot.meta.index;
            last = if clear { snapshot_index } else { last.max(snapshot_index) };
        }
        let mut truncate = None;
        if let Some(first) = batch.entries.first() {
            if first.index <= snapshot_index || first.index > last + 1 {
                return Err(StorageError::Unavailable(first.index));
            }
            if let Some((i, e)) =
                batch.entries.iter().enumerate().find(|(i, e)| e.index != first.index + *i as u64)
            {
                return Err(StorageError::Engine(format!(
                    "entry {} at position {i} of a batch from {}",
                    e.index, first.index
                )));
            }
            if first.index <= last {
                truncate = Some(first.index);
            }
        }
        let snapshot = match batch.snapshot {
            Some(snapshot) => {
                let gen = self.write_snapshot_file(snapshot)?;
                Some(SnapshotRef { gen, index: snapshot.meta.index, term: snapshot.meta.term, clear })
            }
            None => None,
        };
        if snapshot.is_none() && truncate.is_none() && batch.entries.is_empty() && batch.hard_state.is_none()
        {
            return Ok(());
        }
        self.commit(snapshot, truncate, batch.entries, batch.hard_state)
    }

    fn entries(&self, from: Index, to: Index) -> Result<Vec<Entry>, StorageError> {
        if from > to {
            return Ok(Vec::new());
        }
        if from <= self.model.snapshot.index {
            return Err(StorageError::Unavailable(from));
        }
        if to > self.model.last_index() {
            return Err(StorageError::Unavailable(to));
        }
        let base = self.model.missing_through + 1;
        let slot = |index: Index| {
            index
                .checked_sub(base)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| self.model.slots.get(i))
                .copied()
                .ok_or(StorageError::Unavailable(index))
        };
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        let mut index = from;
        let mut buffer = Vec::new();
        while index <= to {
            // One read for a run of entries in the same segment.
            let start = slot(index)?;
            let mut run_end = index;
            let mut end_offset = start.offset + start.len as u64;
            while run_end < to {
                let next = slot(run_end + 1)?;
                if next.segment != start.segment || next.offset < start.offset {
                    break;
                }
                run_end += 1;
                end_offset = end_offset.max(next.offset + next.len as u64);
            }
            let segment = self.segment(start.segment)?;
            buffer.resize((end_offset - start.offset) as usize, 0);
            segment
                .file
                .read_exact_at(&mut buffer, start.offset)
                .map_err(io_error(format!("read {}", segment_name(segment.seq))))?;
            for i in index..=run_end {
                let slot = slot(i)?;
                let at = (slot.offset - start.offset) as usize;
                let corrupted = |why: String| {
                    StorageError::Corrupted(format!(
                        "{} at offset {}: entry {i}: {why}",
                        segment_name(segment.seq),
                        slot.offset
                    ))
                };
                let (record, len) = read_record(&buffer, at, 0).map_err(|bad| match bad {
                    BadRecord::Zero => corrupted("zeros".into()),
                    BadRecord::Bad(why) => corrupted(why),
                })?;
                if record.kind != KIND_ENTRY || len != slot.len as usize {
                    return Err(corrupted(format!("a record of kind {} and {len} bytes", record.kind)));
                }
                let entry: Entry = decode(record.payload, "entry").map_err(corrupted)?;
                if entry.index != i {
                    return Err(corrupted(format!("holds entry {}", entry.index)));
                }
                out.push(entry);
            }
            index = run_end + 1;
        }
        Ok(out)
    }

    fn last_index(&self) -> Result<Index, StorageError> {
        Ok(self.model.last_index())
    }
}

impl StateStore for WalStore {
    fn hard_state(&self) -> Result<HardState, StorageError> {
        Ok(self.model.hard_state)
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        let gen = self.model.snapshot.gen;
        if gen == 0 {
            return Ok(Snapshot::default());
        }
        let name = snapshot_name(gen);
        let bytes = std::fs::read(self.dir.join(&name)).map_err(io_error(format!("read {name}")))?;
        let corrupted = |why: String| StorageError::Corrupted(format!("{name}: {why}"));
        let (record, len) = read_record(&bytes, 0, 0).map_err(|bad| match bad {
            BadRecord::Zero => corrupted("empty".into()),
            BadRecord::Bad(why) => corrupted(why),
        })?;
        if record.kind != KIND_SNAPSHOT_DATA || len != bytes.len() {
            return Err(corrupted(format!(
                "a record of kind {} and {len} of {} bytes",
                record.kind,
                bytes.len()
            )));
        }
        let snapshot: Snapshot = decode(record.payload, "snapshot").map_err(corrupted)?;
        if snapshot.meta.index != self.model.snapshot.index || snapshot.meta.term != self.model.snapshot.term
        {
            return Err(corrupted(format!(
                "holds the snapshot at {}/{}, the log names {}/{}",
                snapshot.meta.index, snapshot.meta.term, self.model.snapshot.index, self.model.snapshot.term
            )));
        }
        Ok(snapshot)
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.check_usable()?;
        if snapshot.meta.index <= self.model.snapshot.index {
            return Ok(());
        }
        let gen = self.write_snapshot_file(snapshot)?;
        let reference =
            SnapshotRef { gen, index: snapshot.meta.index, term: snapshot.meta.term, clear: false };
        self.commit(Some(reference), None, &[], None)
    }

    /// Writes the snapshot file under a temporary name in the store's
    /// directory; [`WalStore::save_staged_snapshot`] renames it and writes
    /// the record naming it (one small batch).
    fn snapshot_stager(&self) -> Option<SnapshotStager> {
        let dir = self.dir.clone();
        Some(Box::new(move |snapshot: &Snapshot| {
            let path = dir.join(staged_snapshot_name(snapshot.meta.index));
            write_snapshot_data(&path, snapshot)?;
            Ok(StagedSnapshot { meta: snapshot.meta.clone(), path })
        }))
    }

    fn save_staged_snapshot(&mut self, staged: StagedSnapshot) -> Result<(), StorageError> {
        self.check_usable()?;
        let staged_here = staged.path.parent() == Some(self.dir.as_path())
            && staged
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap-staged-"));
        if !staged_here {
            return Err(StorageError::Engine(format!(
                "{} is not a snapshot staged by the store in {}",
                staged.path.display(),
                self.dir.display()
            )));
        }
        if staged.meta.index <= self.model.snapshot.index {
            return std::fs::remove_file(&staged.path)
                .map_err(io_error(format!("remove {}", staged.path.display())));
        }
        let gen = self.name_snapshot_file(&staged.path)?;
        let reference = SnapshotRef { gen, index: staged.meta.index, term: staged.meta.term, clear: false };
        self.commit(Some(reference), None, &[], None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance::{self, entries, snapshot};
    use crate::storage::Storage;
    use concord_transport::NodeId;

    /// Small segments, so that a few batches rotate.
    const SMALL: WalOptions =
        WalOptions { segment_bytes_max: 2048, preallocate_bytes: 1024, preallocation: Preallocation::SetLen };

    const SMALL_ZEROS: WalOptions = WalOptions { preallocation: Preallocation::WrittenZeros, ..SMALL };

    fn hard_state(commit: Index) -> HardState {
        HardState { term: 3, vote: Some(NodeId(2)), commit }
    }

    /// Writes batches of ten entries `1..=10 * batches`, each with a hard state.
    fn fill(store: &mut WalStore, batches: u64) {
        for batch in 0..batches {
            let written = entries(batch * 10 + 1, batch * 10 + 10, 3);
            let hard_state = Some(hard_state(batch * 10 + 10));
            store.write(WriteBatch { entries: &written, hard_state, snapshot: None }).unwrap();
        }
    }

    #[test]
    fn a_record_encoded_in_place_is_the_one_pushed_from_its_encoding() {
        let mut in_place = b"earlier".to_vec();
        let mut pushed = in_place.clone();
        for entry in entries(1, 3, 3) {
            push_encoded_record(&mut in_place, KIND_ENTRY, &entry).unwrap();
            push_record(&mut pushed, KIND_ENTRY, &encode(&entry).unwrap()).unwrap();
        }
        push_encoded_record(&mut in_place, KIND_HARD_STATE, &hard_state(3)).unwrap();
        push_record(&mut pushed, KIND_HARD_STATE, &encode(&hard_state(3)).unwrap()).unwrap();
        assert_eq!(in_place, pushed);
        let Ok((record, len)) = read_record(&in_place, 7, 0) else {
            panic!("the first record does not read back")
        };
        assert_eq!(
            (record.kind, len),
            (KIND_ENTRY, RECORD_HEADER_BYTES + encode(&entries(1, 1, 3)[0]).unwrap().len())
        );
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        files
    }

    fn refused(dir: &Path) -> String {
        match WalStore::open_with(dir, SMALL) {
            Ok(store) => panic!("a damaged log opened: last index {}", store.model.last_index()),
            Err(StorageError::Corrupted(why)) => why,
            Err(e) => panic!("expected corruption, got {e}"),
        }
    }

    #[test]
    fn wal_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        conformance::run_all(&mut || {
            n += 1;
            WalStore::open(dir.path().join(n.to_string())).unwrap()
        });
        conformance::run_all(&mut || {
            n += 1;
            WalStore::open_with(dir.path().join(n.to_string()), SMALL).unwrap()
        });
        conformance::run_all(&mut || {
            n += 1;
            WalStore::open_with(dir.path().join(n.to_string()), SMALL_ZEROS).unwrap()
        });
    }

    #[test]
    fn everything_written_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = WalStore::open(dir.path()).unwrap();
            fill(&mut store, 10);
            store.save_snapshot(&snapshot(20, 3)).unwrap();
            // A cut and rewrite of the tail, then a vote alone.
            let replacement = entries(95, 96, 4);
            let hard_state = HardState { term: 4, vote: None, commit: 90 };
            store
                .write(WriteBatch { entries: &replacement, hard_state: Some(hard_state), snapshot: None })
                .unwrap();
            let vote = HardState { term: 5, vote: Some(NodeId(1)), commit: 90 };
            store.write(WriteBatch { hard_state: Some(vote), ..WriteBatch::default() }).unwrap();
        }
        let store = WalStore::open(dir.path()).unwrap();
        let recovered = store.recover().unwrap();
        assert_eq!(recovered.hard_state, HardState { term: 5, vote: Some(NodeId(1)), commit: 90 });
        assert_eq!(recovered.snapshot, snapshot(20, 3));
        let mut expected = entries(21, 94, 3);
        expected.extend(entries(95, 96, 4));
        assert_eq!(recovered.entries, expected);
    }

    #[test]
    fn a_received_snapshot_that_replaces_the_log_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = WalStore::open(dir.path()).unwrap();
            fill(&mut store, 3);
            let conflicting = snapshot(25, 7);
            let after = entries(26, 27, 7);
            let hard_state = HardState { term: 7, vote: None, commit: 25 };
            store
                .write(WriteBatch {
                    snapshot: Some(&conflicting),
                    entries: &after,
                    hard_state: Some(hard_state),
                })
                .unwrap();
        }
        let store = WalStore::open(dir.path()).unwrap();
        let recovered = store.recover().unwrap();
        assert_eq!(recovered.snapshot, snapshot(25, 7));
        assert_eq!(recovered.entries, entries(26, 27, 7));
        let snapshots = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".snap"))
            .count();
        assert_eq!(snapshots, 1, "only the current snapshot file is kept");
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = WalStore::open(dir.path()).unwrap();
        let second = WalStore::open(dir.path());
        assert!(matches!(second, Err(StorageError::Engine(_))), "{second:?}");
        drop(store);
        WalStore::open(dir.path()).expect("open once the first is closed");
    }

    #[test]
    fn rotation_spreads_the_log_over_several_segments() {
        rotation_with(SMALL);
        rotation_with(SMALL_ZEROS);
    }

    fn rotation_with(options: WalOptions) {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = WalStore::open_with(dir.path(), options).unwrap();
            fill(&mut store, 40);
            assert_eq!(store.entries(1, 400).unwrap(), entries(1, 400, 3));
        }
        assert!(segment_files(dir.path()).len() >= 4, "{:?}", segment_files(dir.path()));
        let mut store = WalStore::open_with(dir.path(), options).unwrap();
        assert_eq!(store.recover().unwrap().entries, entries(1, 400, 3));
        // Writes go on in the reopened last segment, across more rotations.
        let more = entries(401, 500, 3);
        store.write(WriteBatch { entries: &more, ..WriteBatch::default() }).unwrap();
        drop(store);
        let store = WalStore::open_with(dir.path(), options).unwrap();
        assert_eq!(store.entries(390, 500).unwrap(), entries(390, 500, 3));
        assert_eq!(store.hard_state().unwrap(), hard_state(400));
    }

    #[test]
    fn a_snapshot_deletes_the_segments_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = WalStore::open_with(dir.path(), SMALL).unwrap();
        fill(&mut store, 40);
        let before = segment_files(dir.path());
        store.save_snapshot(&snapshot(350, 3)).unwrap();
        let after = segment_files(dir.path());
        assert!(after.len() < before.len() - 2, "{} segments before, {} after", before.len(), after.len());
        assert_eq!(after.last(), before.last(), "the segment written to is kept");
        assert!(matches!(store.entries(350, 351), Err(StorageError::Unavailable(350))));
        assert_eq!(store.entries(351, 400).unwrap(), entries(351, 400, 3));
        // A second snapshot replaces the first file.
        fill_from(&mut store, 401, 20);
        store.save_snapshot(&snapshot(500, 3)).unwrap();
        drop(store);
        let store = WalStore::open_with(dir.path(), SMALL).unwrap();
        let recovered = store.recover().unwrap();
        assert_eq!(recovered.snapshot, snapshot(500, 3));
        assert_eq!(recovered.entries, entries(501, 600, 3));
        assert_eq!(recovered.hard_state, hard_state(600));
    }

    fn fill_from(store: &mut WalStore, from: Index, batches: u64) {
        for batch in 0..batches {
            let first = from + batch * 10;
            let written = entries(first, first + 9, 3);
            store
                .write(WriteBatch {
                    entries: &written,
                    hard_state: Some(hard_state(first + 9)),
                    snapshot: None,
                })
                .unwrap();
        }
    }

    /// Writes 10 batches, returns where the last one starts and ends.
    fn ten_batches(dir: &Path) -> (PathBuf, u64, u64) {
        let mut store = WalStore::open(dir).unwrap();
        fill(&mut store, 9);
        let start = store.write_offset;
        fill_from(&mut store, 91, 1);
        let path = dir.join(segment_name(store.segments.last().unwrap().seq));
        (path, start, store.write_offset)
    }

    fn edit(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = std::fs::read(path).unwrap();
        edit(&mut bytes);
        std::fs::write(path, &bytes).unwrap();
    }

    #[test]
    fn a_torn_last_write_is_cut_off_and_the_log_goes_on() {
        for tear in ["second half lost", "header damaged", "payload damaged"] {
            let dir = tempfile::tempdir().unwrap();
            let (path, start, end) = ten_batches(dir.path());
            edit(&path, |bytes| match tear {
                "second half lost" => bytes[(start + end) as usize / 2..end as usize].fill(0),
                "header damaged" => bytes[start as usize + 5] ^= 0x40,
                _ => bytes[end as usize - 3] ^= 0x01,
            });
            let mut store = WalStore::open(dir.path()).unwrap_or_else(|e| panic!("{tear}: {e}"));
            assert_eq!(store.last_index().unwrap(), 90, "{tear}");
            assert_eq!(store.hard_state().unwrap(), hard_state(90), "{tear}");
            fill_from(&mut store, 91, 2);
            drop(store);
            let store = WalStore::open(dir.path()).unwrap();
            assert_eq!(store.recover().unwrap().entries, entries(1, 110, 3), "{tear}");
        }
    }

    #[test]
    fn a_command_that_looks_like_a_batch_does_not_stop_a_torn_write_being_cut() {
        // What a client could put in a command: a well-formed batch of one
        // entry, its CRCs computed without the segment's secret salt.
        let mut inner = Vec::new();
        push_record(&mut inner, KIND_ENTRY, &encode(&conformance::entry(92, 3)).unwrap()).unwrap();
        let len = ((BATCH_RECORD_BYTES + inner.len()) as u64).to_le_bytes();
        let mut forged = Vec::new();
        forged.extend_from_slice(&8u32.to_le_bytes());
        forged.extend_from_slice(&record_crc(None, KIND_BATCH, &len).to_le_bytes());
        forged.push(KIND_BATCH);
        forged.extend_from_slice(&len);
        forged.extend_from_slice(&inner);

        let dir = tempfile::tempdir().unwrap();
        let mut store = WalStore::open(dir.path()).unwrap();
        fill(&mut store, 9);
        let data = bytes::Bytes::from(forged);
        let command = Entry {
            index: 91,
            term: 3,
            payload: crate::core::types::Payload::Command { client: None, data },
        };
        let write = WriteBatch { entries: &[command], hard_state: Some(hard_state(91)), snapshot: None };
        store.write(write).unwrap();
        let end = store.write_offset;
        let path = dir.path().join(segment_name(store.segments.last().unwrap().seq));
        drop(store);
        // A crash tears the end of that write; the forged batch inside it is whole.
        edit(&path, |bytes| bytes[end as usize - 3] ^= 0x01);
        let store = WalStore::open(dir.path()).unwrap_or_else(|e| panic!("a torn write was refused: {e}"));
        assert_eq!(store.last_index().unwrap(), 90);
        assert_eq!(store.hard_state().unwrap(), hard_state(90));
    }

    #[test]
    fn damage_before_the_last_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, start, _) = ten_batches(dir.path());
        edit(&path, |bytes| bytes[start as usize / 2] ^= 0x01);
        let why = refused(dir.path());
        assert!(why.contains("wal-"), "the message names the segment: {why}");
    }

    #[test]
    fn a_damaged_length_before_the_last_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, _) = ten_batches(dir.path());
        // The first batch after the checkpoint: its length field.
        let mut store_bytes = std::fs::read(&path).unwrap();
        let salt = decode_u64(&store_bytes[16..24], "salt").unwrap();
        let (_, checkpoint_len) =
            read_record(&store_bytes, SEGMENT_HEADER_BYTES as usize, salt).ok().unwrap();
        let checkpoint_batch = decode_u64(
            read_record(&store_bytes, SEGMENT_HEADER_BYTES as usize, salt).ok().unwrap().0.payload,
            "length",
        )
        .unwrap();
        assert_eq!(checkpoint_len, BATCH_RECORD_BYTES);
        let at = SEGMENT_HEADER_BYTES as usize + checkpoint_batch as usize;
        store_bytes[at + 1] ^= 0x10;
        std::fs::write(&path, &store_bytes).unwrap();
        refused(dir.path());
    }

    #[test]
    fn a_damaged_or_missing_segment_in_the_middle_is_refused() {
        let build = || {
            let dir = tempfile::tempdir().unwrap();
            fill(&mut WalStore::open_with(dir.path(), SMALL).unwrap(), 40);
            let segments = segment_files(dir.path());
            assert!(segments.len() >= 4);
            (dir, segments)
        };
        let (dir, segments) = build();
        edit(&segments[1], |bytes| bytes.truncate(bytes.len() / 3));
        let why = refused(dir.path());
        assert!(why.contains(&segments[1].file_name().unwrap().to_string_lossy().to_string()), "{why}");

        let (dir, segments) = build();
        std::fs::remove_file(&segments[2]).unwrap();
        assert!(refused(dir.path()).contains("missing"));

        let (dir, segments) = build();
        edit(&segments[1], |bytes| bytes[200] ^= 0x04);
        refused(dir.path());
    }

    #[test]
    fn snapshot_files_without_their_log_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = WalStore::open(dir.path()).unwrap();
            fill(&mut store, 2);
            store.save_snapshot(&snapshot(10, 3)).unwrap();
        }
        for segment in segment_files(dir.path()) {
            std::fs::remove_file(segment).unwrap();
        }
        assert!(refused(dir.path()).contains("no log segment"));
    }

    #[test]
    fn a_snapshot_file_no_record_names_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = WalStore::open(dir.path()).unwrap();
            fill(&mut store, 2);
            store.save_snapshot(&snapshot(10, 3)).unwrap();
            // As if a crash came between the file and its record.
            store.write_snapshot_file(&snapshot(20, 3)).unwrap();
        }
        let store = WalStore::open(dir.path()).unwrap();
        assert_eq!(store.snapshot().unwrap(), snapshot(10, 3));
        assert!(dir.path().join(snapshot_name(1)).exists());
        assert!(!dir.path().join(snapshot_name(2)).exists());
    }

    #[test]
    fn a_snapshot_record_written_in_parts_is_the_record_of_the_encoded_snapshot() {
        for data_len in [0, 1, 250, 251, 70_000] {
            let mut written = snapshot(9, 2);
            written.data = bytes::Bytes::from(vec![3u8; data_len]);
            let (head, data) = snapshot_record(&written).unwrap();
            let mut whole = Vec::new();
            push_record(&mut whole, KIND_SNAPSHOT_DATA, &encode(&written).unwrap()).unwrap();
            assert_eq!([head.as_slice(), data].concat(), whole, "{data_len} bytes of data");
        }
    }

    /// Everything in the directory but the lock file, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name != LOCK_FILE)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_staged_snapshot_is_renamed_when_saved_and_removed_at_open_if_never_saved() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = WalStore::open(dir.path()).unwrap();
            fill(&mut store, 2);
            let staged = store.snapshot_stager().unwrap()(&snapshot(10, 3)).unwrap();
            store.save_staged_snapshot(staged).unwrap();
            assert_eq!(files(dir.path()), [snapshot_name(1), segment_name(0)]);
            // As if a crash came between the staged file and its record.
            let staged = store.snapshot_stager().unwrap()(&snapshot(20, 3)).unwrap();
            assert!(staged.path.exists());
        }
        let mut store = WalStore::open(dir.path()).unwrap();
        assert_eq!(store.snapshot().unwrap(), snapshot(10, 3));
        assert_eq!(files(dir.path()), [snapshot_name(1), segment_name(0)], "the staged file is gone");
        // A stager's file is not taken from anywhere else.
        let elsewhere = tempfile::tempdir().unwrap();
        let foreign = WalStore::open(elsewhere.path()).unwrap().snapshot_stager().unwrap()(&snapshot(20, 3));
        let result = store.save_staged_snapshot(foreign.unwrap());
        assert!(matches!(&result, Err(StorageError::Engine(why)) if why.contains("not a snapshot staged")));
        assert_eq!(store.snapshot().unwrap(), snapshot(10, 3));
    }
}
