//! The image, built and run for real: `deploy/image/build-local.sh` makes it with
//! mmdebstrap and buildah (no daemon, no registry) from the binary under test, and each
//! role is started inside it with `buildah run --isolation chroot` against the test
//! Redis and Postgres.

use crate::helpers::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The most the image may weigh (README, "Run on Kubernetes").
const SIZE_BUDGET_MB: f64 = 200.0;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A working container of the image, removed on drop.
struct Container(String);

impl Container {
    fn of(image: &str) -> Self {
        let out = run(Command::new("buildah").args(["from", "--quiet", image]));
        Self(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `buildah run` with `env`, as the image's user.
    fn command(&self, env: &[(String, String)], args: &[&str]) -> Command {
        let mut cmd = Command::new("buildah");
        cmd.args(["run", "--isolation", "chroot"]);
        for (k, v) in env {
            cmd.args(["--env", &format!("{k}={v}")]);
        }
        cmd.arg(&self.0).arg("--").args(args);
        cmd
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("buildah").args(["rm", &self.0]).output();
    }
}

/// A role running in the image; killed with its `buildah run` on drop.
struct Role(Child);

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The parent pid of `pid`, from /proc.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

/// The `cep` process a `buildah run` started: a descendant of it running the image's
/// binary (chroot isolation shares the host's process table).
fn cep_under(ancestor: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        if !cmdline.starts_with(b"/usr/local/bin/cep\0") {
            return None;
        }
        let mut p = pid;
        while let Some(up) = parent(p) {
            if up == ancestor {
                return Some(pid);
            }
            if up <= 1 {
                break;
            }
            p = up;
        }
        None
    })
}

fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    Some((status, out.split_once("\r\n\r\n")?.1.to_owned()))
}

/// "160 MB" in megabytes.
fn megabytes(size: &str) -> f64 {
    let (n, unit) = size.trim().split_once(' ').expect("a size and its unit");
    let n: f64 = n.parse().unwrap();
    match unit {
        "kB" | "KB" => n / 1000.0,
        "MB" => n,
        "GB" => n * 1000.0,
        other => panic!("unknown size unit {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_builds_without_a_registry_and_runs_every_role_as_its_user() {
    let started = Instant::now();
    let tag = format!("localhost/{}:test", unique("cep").to_lowercase());
    let out = run(
        Command::new(root().join("deploy/image/build-local.sh")).args([
            "--binary",
            env!("CARGO_BIN_EXE_cep"),
            "--tag",
            &tag,
        ]),
    );
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let size = printed
        .strip_prefix(&format!("{tag} "))
        .unwrap_or_else(|| panic!("the script prints the image and its size: {printed}"));
    let mb = megabytes(size);
    eprintln!("image {tag}: {mb} MB, built in {:?}", started.elapsed());
    assert!(
        mb <= SIZE_BUDGET_MB,
        "the image is {mb} MB, over {SIZE_BUDGET_MB}"
    );
    let ctr = Container::of(&tag);

    // No compiler, no shell history, no secret in its environment.
    let look = ctr
        .command(
            &[],
            &[
                "sh",
                "-c",
                "for t in cc gcc rustc cargo ld; do command -v $t; done; \
                 ls -a /root /var/lib/cep 2>/dev/null | grep -i history; env",
            ],
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&look.stdout);
    for forbidden in [
        "/cc",
        "gcc",
        "rustc",
        "cargo",
        "/ld",
        "history",
        "KEY=",
        "TOKEN=",
        "SECRET=",
        "PASSWORD=",
    ] {
        assert!(
            !text.contains(forbidden),
            "the image holds `{forbidden}`:\n{text}"
        );
    }

    let version = run(&mut ctr.command(&[], &["cep", "--version"]));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("cep "));

    // An empty database of its own: `cep migrate` from the image migrates it.
    let database_url = empty_postgres_url().await;
    let env = |extra: &[(&str, String)]| {
        let mut e = vec![
            ("DATABASE_URL".to_string(), database_url.clone()),
            ("REDIS_URL".to_string(), redis_url()),
            ("CEP__QUEUE__KEY_PREFIX".to_string(), unique("img")),
        ];
        e.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        e
    };
    let config = run(&mut ctr.command(&env(&[]), &["cep", "config"]));
    assert!(!String::from_utf8_lossy(&config.stdout).is_empty());
    let migrated = run(&mut ctr.command(&env(&[]), &["cep", "migrate"]));
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("migrations applied"));

    let drain = cep_shared::Settings::default()
        .worker
        .shutdown_deadline_seconds;
    for role in [
        &["serve"][..],
        &["worker", "--layers", "all"],
        &["scheduler"],
    ] {
        let (public, metrics) = (free_port(), free_port());
        let e = env(&[
            ("CEP__SERVER__BIND", format!("127.0.0.1:{public}")),
            ("CEP__SERVER__METRICS_BIND", format!("127.0.0.1:{metrics}")),
        ]);
        let mut args = vec!["cep"];
        args.extend_from_slice(role);
        let child = ctr
            .command(&e, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut running = Role(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(metrics, "/readyz").map(|r| r.0) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "{role:?}: /readyz never answered 200"
            );
            assert!(running.0.try_wait().unwrap().is_none(), "{role:?} exited");
            std::thread::sleep(Duration::from_millis(200));
        }
        let (status, body) = http_get(metrics, "/metrics").unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("cep_jobs_total"), "{role:?}: no cep_ metrics");
        let pid = cep_under(running.0.id()).expect("the role's process");
        assert_eq!(uid_of(pid), 10001, "{role:?} runs as the image's user");

        // SIGTERM to the role: a clean exit within the drain deadline.
        let stopping = Instant::now();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
        let status = loop {
            if let Some(s) = running.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                stopping.elapsed() < Duration::from_secs(drain + 5),
                "{role:?} did not stop within the drain deadline"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "{role:?} exited with {status}");
    }
    drop(ctr);
    let _ = Command::new("buildah").args(["rmi", &tag]).output();
    eprintln!("image test: {:?} in all", started.elapsed());
}
