//! The machine's floor for one replicated put: the shape of a one-client put
//! on a 3-node cluster with nothing of Concord in it, so that
//! `concord load puts --clients 1` can be read against what the machine
//! itself allows (its TCP hops, thread wake-ups and `fdatasync`s).
//!
//! Four processes on loopback, each with blocking sockets and a thread per
//! socket:
//! - a client puts in a closed loop (this process);
//! - a "leader" sends each request to two "followers", hands it to its own
//!   disk thread (`pwrite` + `fdatasync`), and answers once two of the three
//!   writes are durable;
//! - each "follower" writes what it receives (`pwrite` + `fdatasync`) and
//!   acknowledges.
//!
//! Files are preallocated with `set_len`, as the write-ahead log's segments
//! are. Message sizes are those of a Concord put of a 256-byte value (the
//! request, the append, the acknowledgement and the answer, read off
//! `bench/breakdown.sh`'s trace). There is no HTTP parsing, no Raft, no
//! encoding and no event loop, so the gap between this figure and Concord's
//! is Concord's own.
//!
//! ```sh
//! cargo bench -p concord-runtime --bench floor -- [--seconds S] [--fsync on|off] [--dir D]
//! ```
//! prints one JSON line in the shape of `concord load puts`
//! (`"system": "floor"`); `bench/compare.sh` runs it beside both clusters.

use std::error::Error;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// An HTTP PUT of a 256-byte value, as `concord load` writes it.
const REQUEST_BYTES: usize = 376;
/// One entry's append frame, leader to follower.
const APPEND_BYTES: usize = 313;
/// A follower's acknowledgement frame.
const ACK_BYTES: usize = 25;
/// The put's HTTP answer (`{"revision":N,"succeeded":true}` and headers).
const ANSWER_BYTES: usize = 140;
/// Each file's preallocated size; writes wrap around past it.
const FILE_BYTES: u64 = 64 << 20;
/// Puts before measuring starts.
const WARMUP: Duration = Duration::from_millis(500);
/// Bound on the latencies kept (one per put).
const PUTS_MAX: usize = 10_000_000;
/// Default measuring time.
const SECONDS_DEFAULT: u64 = 5;

fn main() -> Result<()> {
    // `cargo bench` adds `--bench`; anything else unknown is an error.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut seconds = SECONDS_DEFAULT;
    let mut fsync = true;
    let mut dir: Option<PathBuf> = None;
    let mut role: Option<String> = None;
    let mut file: Option<PathBuf> = None;
    let mut followers: Vec<u16> = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => seconds = value()?.parse()?,
            "--fsync" => {
                fsync = match value()?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--fsync on|off, not {other}").into()),
                }
            }
            "--dir" => dir = Some(value()?.into()),
            "--role" => role = Some(value()?.clone()),
            "--file" => file = Some(value()?.into()),
            "--followers" => {
                followers = value()?.split(',').map(str::parse).collect::<std::result::Result<_, _>>()?
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    match role.as_deref() {
        None => client(seconds, fsync, dir),
        Some("follower") => follower(&file.ok_or("--file")?, fsync),
        Some("leader") => leader(&file.ok_or("--file")?, fsync, &followers),
        Some(other) => Err(format!("unknown role {other}").into()),
    }
}

/// A child process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this program in `role`; returns it and the port it listens on.
fn spawn(role: &str, file: &Path, fsync: bool, extra: &[String]) -> Result<(Process, u16)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--role", role, "--file"])
        .arg(file)
        .args(["--fsync", if fsync { "on" } else { "off" }])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let process = Process(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port = line.trim().strip_prefix("port ").ok_or_else(|| format!("{role} said {line:?}"))?.parse()?;
    Ok((process, port))
}

/// Binds a loopback port and tells the parent which.
fn listen() -> Result<TcpListener> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    println!("port {}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    Ok(listener)
}

fn accept(listener: &TcpListener) -> Result<TcpStream> {
    let (stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn connect(port: u16) -> Result<TcpStream> {
    let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A log file written the way the WAL writes its segments.
struct Log {
    file: File,
    offset: u64,
    fsync: bool,
}

impl Log {
    fn create(path: &Path, fsync: bool) -> Result<Log> {
        let file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path)?;
        file.set_len(FILE_BYTES)?;
        file.sync_all()?;
        Ok(Log { file, offset: 0, fsync })
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if self.offset + bytes.len() as u64 > FILE_BYTES {
            self.offset = 0;
        }
        self.file.write_all_at(bytes, self.offset)?;
        self.offset += bytes.len() as u64;
        if self.fsync {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

fn follower(path: &Path, fsync: bool) -> Result<()> {
    let mut log = Log::create(path, fsync)?;
    let listener = listen()?;
    let mut leader = accept(&listener)?;
    let mut append = [0u8; APPEND_BYTES];
    let ack = [1u8; ACK_BYTES];
    // Ends when the leader closes its connection.
    while leader.read_exact(&mut append).is_ok() {
        log.append(&append)?;
        leader.write_all(&ack)?;
    }
    Ok(())
}

/// The leader's shared state: the last request and how far each of the
/// three copies is durable.
#[derive(Default)]
struct Progress {
    /// Sequence number of the latest request.
    latest: u64,
    /// Durable sequence numbers: the leader's own file, then each follower.
    durable: [u64; 3],
    /// The connection to the client closed.
    closed: bool,
}

impl Progress {
    fn committed(&self, sequence: u64) -> bool {
        self.durable.iter().filter(|&&d| d >= sequence).count() >= 2
    }
}

fn leader(path: &Path, fsync: bool, followers: &[u16]) -> Result<()> {
    let [first, second] = followers else { return Err("--followers needs two ports".into()) };
    let mut log = Log::create(path, fsync)?;
    let mut links = [connect(*first)?, connect(*second)?];
    let state = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
    for (slot, link) in links.iter().enumerate() {
        let (state, mut link) = (state.clone(), link.try_clone()?);
        std::thread::spawn(move || {
            let mut ack = [0u8; ACK_BYTES];
            while link.read_exact(&mut ack).is_ok() {
                let (lock, changed) = &*state;
                let Ok(mut progress) = lock.lock() else { return };
                progress.durable[slot + 1] += 1;
                changed.notify_all();
            }
        });
    }
    let disk = {
        let state = state.clone();
        std::thread::spawn(move || -> Result<()> {
            let append = [2u8; APPEND_BYTES];
            let (lock, changed) = &*state;
            let mut written = 0;
            loop {
                let mut progress = lock.lock().map_err(|_| "poisoned")?;
                while progress.latest == written && !progress.closed {
                    progress = changed.wait(progress).map_err(|_| "poisoned")?;
                }
                if progress.closed {
                    return Ok(());
                }
                let sequence = progress.latest;
                drop(progress);
                log.append(&append)?;
                written = sequence;
                lock.lock().map_err(|_| "poisoned")?.durable[0] = sequence;
                changed.notify_all();
            }
        })
    };
    let listener = listen()?;
    let mut client = accept(&listener)?;
    let (mut request, append, answer) = ([0u8; REQUEST_BYTES], [3u8; APPEND_BYTES], [4u8; ANSWER_BYTES]);
    let (lock, changed) = &*state;
    while client.read_exact(&mut request).is_ok() {
        let sequence = {
            let mut progress = lock.lock().map_err(|_| "poisoned")?;
            progress.latest += 1;
            progress.latest
        };
        for link in &mut links {
            link.write_all(&append)?;
        }
        changed.notify_all();
        let mut progress = lock.lock().map_err(|_| "poisoned")?;
        while !progress.committed(sequence) {
            progress = changed.wait(progress).map_err(|_| "poisoned")?;
        }
        drop(progress);
        client.write_all(&answer)?;
    }
    lock.lock().map_err(|_| "poisoned")?.closed = true;
    changed.notify_all();
    disk.join().map_err(|_| "the disk thread panicked")?
}

fn client(seconds: u64, fsync: bool, dir: Option<PathBuf>) -> Result<()> {
    let scratch = match dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let (_first, first) = spawn("follower", &scratch.path().join("follower1.log"), fsync, &[])?;
    let (_second, second) = spawn("follower", &scratch.path().join("follower2.log"), fsync, &[])?;
    let followers = vec!["--followers".to_string(), format!("{first},{second}")];
    let (_leader, port) = spawn("leader", &scratch.path().join("leader.log"), fsync, &followers)?;
    let mut leader = connect(port)?;
    let (request, mut answer) = ([5u8; REQUEST_BYTES], [0u8; ANSWER_BYTES]);
    let mut put = || -> Result<Duration> {
        let start = Instant::now();
        leader.write_all(&request)?;
        leader.read_exact(&mut answer)?;
        Ok(start.elapsed())
    };
    let warm = Instant::now();
    while warm.elapsed() < WARMUP {
        put()?;
    }
    let mut latencies = Vec::new();
    let started = Instant::now();
    let length = Duration::from_secs(seconds.max(1));
    while started.elapsed() < length && latencies.len() < PUTS_MAX {
        latencies.push(put()?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    if latencies.is_empty() {
        return Err("no put finished".into());
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{{\"system\":\"floor\",\"clients\":1,\"fsync\":{fsync},\"puts\":{},\"puts_per_s\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        at(0.5),
        at(0.99),
    );
    Ok(())
}
