//! A private, throw-away PostgreSQL server for tests: `initdb` into a fresh directory, `pg_ctl
//! start` on a free loopback port with its socket in that directory, one database created, and
//! on drop `pg_ctl stop -m immediate` and the directory removed, so no test leaves a server
//! behind (unless the test process itself is killed).
//!
//! Include it with `#[path = "support/postgres.rs"] mod postgres;`. PostgreSQL refuses to run
//! as root, and the tests run as root in CI, so the server runs as the `postgres` OS user
//! (`runuser`), in a directory owned by that user. Binaries come from Debian's `postgresql`
//! package (`/usr/lib/postgresql/15/bin`). When they are missing the caller gets `None` after a
//! visible SKIP line, except under `CI`, where that is a failure.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support: each test crate uses a subset, and a panic is a test failure"
)]

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `postgresql` package puts the server binaries; the version the project
/// targets comes first.
const PREFERRED_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running private server. Dropping it stops the server and removes its files.
pub struct Postgres {
    bin: PathBuf,
    as_postgres_user: bool,
    port: u16,
    pid: u32,
    database: String,
    /// Last field: removed only after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

impl Postgres {
    /// Starts a server with one database, `everlock`. `None` (after a SKIP line) when
    /// PostgreSQL is not installed and `CI` is unset. It blocks for about a second: async
    /// tests call it (and drop the result) through `spawn_blocking`.
    pub fn start() -> Option<Postgres> {
        let bin = find_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("everlock-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        // We created the directory, so its owner is our effective user.
        let as_postgres_user = std::fs::metadata(dir.path()).unwrap().uid() == 0;
        if as_postgres_user {
            if !postgres_user_exists() {
                return skip("the `postgres` OS user does not exist");
            }
            run(Command::new("chown").arg("postgres:").arg(dir.path()));
        }
        let mut server = Postgres {
            bin,
            as_postgres_user,
            port: 0,
            pid: 0,
            database: "everlock".to_owned(),
            dir,
        };
        server.init();
        server.launch();
        server.create_database("everlock");
        Some(server)
    }

    /// `postgres://postgres@127.0.0.1:<port>/everlock` (trust authentication, no password).
    pub fn url(&self) -> String {
        self.url_for(&self.database)
    }

    /// The URL of another database on this server.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates another database (to isolate tests sharing one server) and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let out = self
            .tool("createdb")
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", "postgres", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "createdb {name}: {}", text(&out));
        self.url_for(name)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory holding the data directory, the Unix socket and the server log.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The server log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A command running PostgreSQL tool `name`, as the `postgres` user when we are root,
    /// inside the server's directory (the caller's may be unreadable for that user).
    fn tool(&self, name: &str) -> Command {
        let mut cmd = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(name));
            c
        } else {
            Command::new(self.bin.join(name))
        };
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    fn init(&self) {
        let out = self
            .tool("initdb")
            .arg("-D")
            .arg(self.data_dir())
            // Trust on loopback and the private socket only: the port is private to the test.
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", text(&out));
    }

    /// `pg_ctl start` on a free port, retried when another process took the port between
    /// our probe and the server's bind. PostgreSQL cannot bind port 0: the port also names
    /// its Unix socket, so the harness must choose one.
    fn launch(&mut self) {
        for attempt in 1..=START_ATTEMPTS {
            self.port = free_port();
            // Only this attempt's lines tell whether its bind failed.
            let logged_before = self.log().len();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                self.port,
                self.dir.path().display()
            );
            let out = self
                .tool("pg_ctl")
                .arg("start")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-s", "-o", &options])
                .output()
                .unwrap();
            if out.status.success() {
                self.pid = self.read_pid().expect("postmaster.pid after pg_ctl start");
                return;
            }
            let log = self.log();
            let fresh = log.get(logged_before..).unwrap_or_default();
            if !fresh.contains("could not bind") && !fresh.contains("Address already in use") {
                panic!("pg_ctl start: {}\nserver log:\n{log}", text(&out));
            }
            let _ = writeln!(
                std::io::stderr().lock(),
                "postgres: port {} was taken before the server bound it (attempt \
                 {attempt}/{START_ATTEMPTS}); retrying on a fresh port",
                self.port
            );
        }
        panic!(
            "pg_ctl start: no free port after {START_ATTEMPTS} attempts:\n{}",
            self.log()
        );
    }

    /// The postmaster's pid from its pid file, while one exists.
    fn read_pid(&self) -> Option<u32> {
        let pidfile = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pidfile.lines().next()?.trim().parse().ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A start that failed half-way (say a `pg_ctl -w` timeout) may still have a server.
        let Some(pid) = Some(self.pid)
            .filter(|p| *p != 0)
            .or_else(|| self.read_pid())
        else {
            return;
        };
        let stopped = self
            .tool("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "30", "-s"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !stopped {
            // Never leave a server behind, even when pg_ctl failed.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while is_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The TempDir field removes the directory after this body.
    }
}

/// Whether [`Postgres::start`] can run here: the binaries exist and, as root, the `postgres`
/// OS user too. Prints the SKIP line (a failure under `CI`) when not.
pub fn available() -> bool {
    if find_bin().is_none() {
        return false;
    }
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if root && !postgres_user_exists() {
        return skip::<()>("the `postgres` OS user does not exist").is_some();
    }
    true
}

/// Live (non-zombie) processes that belong to the server of `data_dir` with postmaster `pid`:
/// the postmaster itself, its children, or anything whose command line names the directory.
pub fn leftover_processes(pid: u32, data_dir: &Path) -> Vec<u32> {
    let needle = data_dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Some((state, ppid)) = stat(p) else {
            continue;
        };
        if state == 'Z' || state == 'X' {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if p == pid || ppid == pid || cmdline.contains(&needle) {
            found.push(p);
        }
    }
    found
}

/// Whether process `pid` exists and is not a zombie (a stopped postmaster whose parent, pid 1
/// in a container, does not reap it is as good as gone).
pub fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// The state letter and parent pid from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let rest = text.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The server binaries, or `None` after a SKIP line (a failure under `CI`).
fn find_bin() -> Option<PathBuf> {
    let preferred = PathBuf::from(PREFERRED_BIN);
    if preferred.join("initdb").is_file() {
        return Some(preferred);
    }
    // Another Debian major version still serves the tests outside CI.
    let mut others: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    others.sort();
    match others.pop() {
        Some((_, bin)) if std::env::var_os("CI").is_none() => Some(bin),
        _ => skip(&format!(
            "PostgreSQL is not installed ({PREFERRED_BIN}/initdb is missing; Debian package `postgresql`)"
        )),
    }
}

fn skip<T>(why: &str) -> Option<T> {
    assert!(
        std::env::var_os("CI").is_none(),
        "PostgreSQL is required in CI: {why}"
    );
    eprintln!("SKIP: {why}");
    None
}

fn postgres_user_exists() -> bool {
    Command::new("id")
        .args(["-u", "postgres"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// How many times `pg_ctl start` is tried when another process takes its port first.
const START_ATTEMPTS: u32 = 5;

/// A port that was free a moment ago (`launch` retries when it is taken by then).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
