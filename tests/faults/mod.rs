//! The fault suite: real processes on real services, broken on purpose, and the queue
//! left to recover on its own. Each test starts the service it breaks (a Redis server of
//! its own on a free port), never the shared one.

mod chaos;
mod lease;
mod liveness;
mod reaper;
mod settle;
mod store;

use cep_shared::queue::Leased;
use cep_workers::runtime::Probe;
use futures::future::BoxFuture;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A Redis server of the test's own, appending to its file every second (as a fleet's
/// would), so it can be stopped and started again with what it held.
pub struct OwnRedis {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start(dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut r = OwnRedis {
            port,
            dir: dir.to_owned(),
            child: None,
        };
        r.up();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) and waits until it answers.
    pub fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the fault suite needs redis-server on the PATH");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL: its file keeps what it had written by the last
    /// second's sync, no more.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server as an outage would: its file keeps what it last wrote.
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "SHUTDOWN", "NOSAVE"])
                .output();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A PostgreSQL server of the test's own (Debian's binaries, run as the `postgres`
/// user), so it can be stopped and started while the shared one serves other tests.
pub struct OwnPostgres {
    pub port: u16,
    data: std::path::PathBuf,
    bin: std::path::PathBuf,
    up: bool,
}

impl OwnPostgres {
    pub fn start(dir: &Path) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("the fault suite needs Debian's PostgreSQL under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let data = dir.join("pgdata");
        std::fs::create_dir_all(&data).unwrap();
        let owned = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(owned.success(), "cannot give {} to postgres", dir.display());
        let init = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["-U", "postgres", "-A", "trust", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb");
        assert!(init.success(), "initdb failed");
        let mut pg = OwnPostgres {
            port,
            data,
            bin,
            up: false,
        };
        pg.up();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn ctl(&self, args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn up(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.data.display()
        );
        assert!(
            self.ctl(&["-w", "-t", "60", "-o", &options, "start"]),
            "postgres did not start"
        );
        self.up = true;
    }

    /// Stops the server at once, as an outage would.
    pub fn down(&mut self) {
        if self.up {
            self.ctl(&["-w", "-m", "immediate", "stop"]);
            self.up = false;
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.down();
    }
}

/// A job body that only counts the jobs it ran.
#[derive(Default)]
pub struct Count(pub AtomicUsize);

impl Count {
    pub fn ran(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Probe for Count {
    fn run<'a>(&'a self, _job: &'a Leased) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.0.fetch_add(1, Ordering::SeqCst);
        })
    }
}
