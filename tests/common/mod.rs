//! Test harness: runs the real daemon binary (and, where a test needs one, the
//! camera emulator `fake-gopro`) on free loopback ports with the real ffmpeg,
//! and talks to it over real sockets.
#![allow(dead_code)] // each test file uses a different part of it

use serde_json::Value;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_livestreamd");

/// Read timeout of a one-shot request (`http_request`, `/status` polls).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Read timeout of a connection the test keeps open (`connect`, `Viewer`).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A free loopback TCP port for a daemon to listen on.
pub fn free_tcp_port() -> u16 {
    free_port(|port| TcpListener::bind(("127.0.0.1", port)).is_ok())
}

/// A free loopback UDP port for a daemon to receive on.
pub fn free_udp_port() -> u16 {
    free_port(|port| UdpSocket::bind(("127.0.0.1", port)).is_ok())
}

/// A port nothing is bound to, below the kernel's ephemeral range. A port
/// from that range (what binding port 0 gives) may be handed, between this
/// check and the daemon's bind, to any socket that sends or connects, such
/// as an ffmpeg sending UDP in a test running beside it (the daemon then
/// failed with "Address already in use" in CI). Below it only another
/// test's allocation can collide: each process counts through the range from
/// its own offset.
fn free_port(bindable: impl Fn(u16) -> bool) -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral_low.saturating_sub(LOWEST).max(1);
    let offset = std::process::id().wrapping_mul(7919);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = LOWEST + offset.wrapping_add(n) % span;
        if let Ok(port) = u16::try_from(port) {
            if bindable(port) {
                return port;
            }
        }
    }
    panic!("no free port between {LOWEST} and {ephemeral_low}");
}

/// A fresh directory under the target dir, removed by nobody (inspect after a failure).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// Waiting. A test waits for a condition with `wait_until` (or `poll`, when it
// decides itself what a timeout means), never with a sleep of a guessed length;
// a sleep in a test is part of its scenario (the camera streams for a minute)
// and `for_period` is an observation window of fixed length.

/// How often `wait_until` looks again.
pub const WAIT_EVERY: Duration = Duration::from_millis(100);

/// Calls `f` every `every` until it returns `Some`, for up to `timeout`;
/// `None` once the time is up. `f` is called at least once, and once more
/// after the deadline has passed. `every` may be zero when `f` blocks by
/// itself (a read with a timeout).
pub fn poll<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let ControlFlow::Break(result) = look(deadline, &mut f) {
            return result;
        }
        std::thread::sleep(every);
    }
}

/// One look of `poll`: `Break` with what `f` found, or with `None` once
/// `deadline` has passed; `Continue` to look again after a pause.
fn look<T>(deadline: Instant, f: &mut impl FnMut() -> Option<T>) -> ControlFlow<Option<T>> {
    match f() {
        Some(v) => ControlFlow::Break(Some(v)),
        None if Instant::now() >= deadline => ControlFlow::Break(None),
        None => ControlFlow::Continue(()),
    }
}

/// Waits until `f` returns `Some` (looking every `WAIT_EVERY`) and returns
/// it; panics naming `what` and `timeout` when it does not come.
pub fn wait_until<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll(timeout, WAIT_EVERY, f)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// `poll` for an async test: it sleeps with tokio, so the tasks under test
/// keep running on a current-thread runtime (a blocking `poll` there would
/// stop them until it times out).
pub async fn poll_async<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let ControlFlow::Break(result) = look(deadline, &mut f) {
            return result;
        }
        tokio::time::sleep(every).await;
    }
}

/// Calls `f` over and over for `dur`, with the time elapsed since the start:
/// an observation window of fixed length (read for N seconds and count), not
/// a wait, so it never ends early. Returns the time it really took.
pub fn for_period(dur: Duration, mut f: impl FnMut(Duration)) -> Duration {
    let t0 = Instant::now();
    loop {
        let elapsed = t0.elapsed();
        if elapsed >= dur {
            return elapsed;
        }
        f(elapsed);
    }
}

/// True while something listens on the loopback TCP `port`, read from
/// /proc/net/tcp{,6} without connecting (a server that accepts one client,
/// such as `ffmpeg -listen 1`, would take a probe connection for its client).
pub fn tcp_listening(port: u16) -> bool {
    const LISTEN: &str = "0A";
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let mut f = l.split_whitespace();
                let local = f.nth(1).unwrap_or("");
                let state = f.nth(1).unwrap_or("");
                state == LISTEN
                    && local
                        .rsplit_once(':')
                        .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                        == Some(port)
            })
    })
}

/// A rung: (width, height, fps, bitrate in kb/s).
pub type Rung = (u32, u32, u32, u32);

/// Small, cheap rungs so tests run on two cores next to other work.
pub const SMALL_LADDER: &[Rung] = &[(320, 180, 30, 600), (160, 90, 30, 200)];

/// One cheap rung.
pub const ONE_RUNG: &[Rung] = &[(320, 180, 15, 300)];

/// The ladder of the web tests.
pub const WEB_LADDER: &[Rung] = &[(320, 180, 25, 400), (256, 144, 15, 200)];

/// `[[ladder]]` tables for `rungs`, top first.
pub fn ladder_text(rungs: &[Rung]) -> String {
    rungs
        .iter()
        .map(|(width, height, fps, kbps)| {
            format!(
                "\n[[ladder]]\nwidth = {width}\nheight = {height}\nfps = {fps}\nbitrate_kbps = {kbps}\n"
            )
        })
        .collect()
}

pub struct Ports {
    pub http: u16,
    pub source: u16,
}

impl Ports {
    pub fn new() -> Ports {
        Ports {
            http: free_tcp_port(),
            source: free_udp_port(),
        }
    }
}

/// A config file's text: the source on `ports.source`, the server on
/// `ports.http`, the ultrafast preset and a ladder (`SMALL_LADDER` unless
/// set); each table takes extra lines, and `extra` is appended verbatim.
pub struct Config {
    source_url: String,
    source: String,
    encoder: String,
    listen: String,
    server: String,
    ladder: String,
    extra: String,
}

impl Config {
    pub fn new(ports: &Ports) -> Config {
        Config {
            source_url: format!("udp://127.0.0.1:{}", ports.source),
            source: String::new(),
            encoder: String::new(),
            listen: format!("127.0.0.1:{}", ports.http),
            server: String::new(),
            ladder: ladder_text(SMALL_LADDER),
            extra: String::new(),
        }
    }

    /// Lines added to `[source]`.
    pub fn source(mut self, lines: &str) -> Config {
        self.source = lines.to_string();
        self
    }

    /// Lines added to `[encoder]`.
    pub fn encoder(mut self, lines: &str) -> Config {
        self.encoder = lines.to_string();
        self
    }

    /// The address (not the port) the server listens on.
    pub fn listen_ip(mut self, ip: &str) -> Config {
        let port = self.listen.rsplit_once(':').unwrap().1.to_string();
        self.listen = format!("{ip}:{port}");
        self
    }

    /// Lines added to `[server]`.
    pub fn server(mut self, lines: &str) -> Config {
        self.server = lines.to_string();
        self
    }

    pub fn ladder(mut self, rungs: &[Rung]) -> Config {
        self.ladder = ladder_text(rungs);
        self
    }

    /// Text after everything else (more tables).
    pub fn extra(mut self, text: &str) -> Config {
        self.extra = text.to_string();
        self
    }

    pub fn text(&self) -> String {
        let line = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{s}\n")
            }
        };
        format!(
            "[source]\nurl = \"{}\"\n{}\n[encoder]\npreset = \"ultrafast\"\n{}\n[server]\nlisten = \"{}\"\n{}{}\n{}\n",
            self.source_url,
            line(&self.source),
            line(&self.encoder),
            self.listen,
            line(&self.server),
            self.ladder,
            self.extra
        )
    }

    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.text()).unwrap();
        path.to_path_buf()
    }
}

/// A config on loopback ports with the small ladder; `extra` is appended verbatim.
pub fn write_config(dir: &Path, ports: &Ports, extra: &str) -> PathBuf {
    Config::new(ports)
        .encoder("restart_initial_s = 0.3")
        .extra(extra)
        .write(&dir.join("livestreamd.toml"))
}

/// `demo --config <config>` followed by `more` (e.g. `--size`, `--fps`, `--override`).
pub fn demo_args(config: &Path, more: &[&str]) -> Vec<String> {
    let mut args = vec![
        "demo".to_string(),
        "--config".to_string(),
        config.display().to_string(),
    ];
    args.extend(more.iter().map(|a| a.to_string()));
    args
}

/// `RUST_LOG` for a test that reads the log at the level a user sees.
pub const INFO_LOG: (&str, &str) = ("RUST_LOG", "info");

/// A process of the built binary, its stdout and stderr in `dir/<name>.log`.
/// Dropping it stops it as systemd would: SIGTERM (so it stops its own
/// ffmpeg), SIGKILL if it is still there after 10 s. After a failed test its
/// log is printed.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

/// `RUST_LOG` for a daemon under test: `default`, or `LIVESTREAMD_TEST_LOG`
/// when set (`livestreamd=debug,livestreamd::control::viewer_link=trace`
/// logs every link sample).
pub fn log_level(default: &str) -> String {
    std::env::var("LIVESTREAMD_TEST_LOG").unwrap_or_else(|_| default.into())
}

impl Proc {
    /// Runs with `RUST_LOG=livestreamd=debug` (see `log_level`) and no
    /// systemd variables, then `envs`.
    pub fn spawn(
        dir: &Path,
        name: &str,
        args: &[impl AsRef<OsStr>],
        envs: &[(&str, &str)],
    ) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RUST_LOG", log_level("livestreamd=debug"));
        Proc::spawn_command(dir, name, cmd, envs)
            .unwrap_or_else(|e| panic!("cannot start {BIN} as {name}: {e}"))
    }

    /// Any command, the same way: no systemd variables, then `envs`; its
    /// output in `dir/<name>.log`.
    pub fn spawn_command(
        dir: &Path,
        name: &str,
        mut cmd: Command,
        envs: &[(&str, &str)],
    ) -> std::io::Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        cmd.env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        Ok(Proc {
            child: cmd.spawn()?,
            name: name.to_string(),
            log,
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        poll(timeout, Duration::from_millis(50), || {
            self.log_text().contains(needle).then_some(())
        })
        .is_some()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// The exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for exit; None on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll(timeout, Duration::from_millis(50), || self.try_wait())
    }

    /// Sends `sig`, then waits up to `within`; the exit code (None on
    /// timeout or death by a signal).
    pub fn stop(&mut self, sig: i32, within: Duration) -> Option<i32> {
        self.signal(sig);
        self.wait_exit(within).and_then(|s| s.code())
    }

    /// `stop` with SIGTERM.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        self.stop(libc::SIGTERM, within)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.signal(libc::SIGTERM);
            if self.wait_exit(Duration::from_secs(10)).is_none() {
                eprintln!("{} did not stop on SIGTERM; killing it", self.name);
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "---- {} ({}) ----\n{}",
                self.name,
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// The daemon under test, serving HTTP on `http`; stopped when dropped (see `Proc`).
pub struct Daemon {
    pub proc: Proc,
    pub http: u16,
}

impl Daemon {
    /// `livestreamd demo` with a small simulated camera.
    pub fn demo(dir: &Path, config: &Path, http: u16) -> Daemon {
        Daemon::start(dir, &demo_args(config, &["--size", "320x180"]), http)
    }

    pub fn start(dir: &Path, args: &[impl AsRef<OsStr>], http: u16) -> Daemon {
        Daemon::start_with(dir, args, &[], http)
    }

    /// With more environment (e.g. NOTIFY_SOCKET, WATCHDOG_USEC, `INFO_LOG`).
    pub fn start_with(
        dir: &Path,
        args: &[impl AsRef<OsStr>],
        envs: &[(&str, &str)],
        http: u16,
    ) -> Daemon {
        Daemon {
            proc: Proc::spawn(dir, "daemon", args, envs),
            http,
        }
    }

    /// The demo on `write_config` (the small ladder, `extra` appended) in a
    /// fresh `temp_dir(name)`, its config at `livestreamd.toml` there: the
    /// directory and the daemon, not yet waited for.
    pub fn small_demo(name: &str, extra: &str) -> (PathBuf, Daemon) {
        let dir = temp_dir(name);
        let ports = Ports::new();
        let config = write_config(&dir, &ports, extra);
        let daemon = Daemon::demo(&dir, &config, ports.http);
        (dir, daemon)
    }

    /// The demo on the web tests' config (`WEB_LADDER`, `server_extra` in
    /// `[server]`, debug log) in a fresh `temp_dir(name)`, once `/healthz` answers.
    pub fn web_demo(name: &str, server_extra: &str) -> Daemon {
        let dir = temp_dir(name);
        let ports = Ports::new();
        let config = Config::new(&ports)
            .ladder(WEB_LADDER)
            .server(server_extra)
            .extra("[log]\nlevel = \"debug\"")
            .write(&dir.join("livestreamd.toml"));
        let mut d = Daemon::start(
            &dir,
            &demo_args(&config, &["--size", "320x180", "--fps", "25"]),
            ports.http,
        );
        d.wait_healthy();
        d
    }

    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.proc.wait_for_log(needle, timeout)
    }

    pub fn signal(&self, sig: i32) {
        self.proc.signal(sig)
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.proc.wait_exit(timeout)
    }

    pub fn stop(&mut self, sig: i32, within: Duration) -> Option<i32> {
        self.proc.stop(sig, within)
    }

    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        self.proc.terminate(within)
    }

    /// GET `path` (panics if the exchange fails).
    pub fn get(&self, path: &str) -> Response {
        http_get(self.http, path).unwrap()
    }

    /// One raw request (panics if the exchange fails).
    pub fn request(&self, raw: impl AsRef<[u8]>) -> Response {
        http_request(self.http, raw).unwrap()
    }

    /// `/status`, if it answers 200 with JSON.
    pub fn status(&self) -> Option<Value> {
        let r = http_get(self.http, "/status").ok()?;
        (r.code == 200).then(|| serde_json::from_slice(&r.body).ok())?
    }

    /// Polls `/status` until `pred` holds; None after `timeout`.
    pub fn try_wait_status(
        &self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        poll(timeout, Duration::from_millis(100), || {
            self.status().filter(|s| pred(s))
        })
    }

    /// Polls `/status` until `pred` holds; panics with the last status and the log after `timeout`.
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.try_wait_status(timeout, pred).unwrap_or_else(|| {
            // The log follows from `Proc`'s drop.
            panic!(
                "timed out waiting for {what}; last /status: {:#?}",
                self.status()
            )
        })
    }

    /// Waits until the encoder produces output viewers can join.
    pub fn wait_streaming(&self) -> Value {
        self.wait_status("encoded output", Duration::from_secs(30), encoded_output)
    }

    /// Waits until `/healthz` answers 200; panics if the daemon exits first or
    /// after 30 s (its log follows from `Proc`'s drop).
    pub fn wait_healthy(&mut self) {
        let (proc, http) = (&mut self.proc, self.http);
        wait_until("livestreamd to be healthy", Duration::from_secs(30), || {
            if let Some(status) = proc.try_wait() {
                panic!("livestreamd exited early ({status})");
            }
            http_get(http, "/healthz")
                .is_ok_and(|r| r.code == 200)
                .then_some(())
        })
    }
}

/// The start rung's encoder runs (a passthrough rung has no process) and the
/// hub holds output a viewer can join.
pub fn encoded_output(s: &Value) -> bool {
    s["hub"]["buffered_chunks"].as_u64().unwrap_or(0) > 10
        && (s["encoder"]["pid"].is_u64() || s["encoder"]["passthrough"] == true)
}

/// The encoder runs and input reached the hub within the last 2 s.
pub fn input_flowing(s: &Value) -> bool {
    s["encoder"]["pid"].is_number()
        && s["hub"]["last_input_age_ms"]
            .as_u64()
            .is_some_and(|a| a < 2000)
}

/// The pids of the encoder and the demo camera in a `/status` document (those present).
pub fn child_pids(status: &Value) -> Vec<i64> {
    [&status["encoder"]["pid"], &status["demo_source"]["pid"]]
        .into_iter()
        .filter_map(|p| p.as_i64())
        .collect()
}

/// The ports the camera emulator serves on.
pub struct CameraPorts {
    pub http: u16,
    pub keepalive: u16,
}

impl CameraPorts {
    pub fn new() -> CameraPorts {
        CameraPorts {
            http: free_tcp_port(),
            keepalive: free_udp_port(),
        }
    }
}

/// `livestreamd fake-gopro --model MODEL`, streaming 320x180@15 to the daemon's
/// source port and recording what it was asked in `dir/camera.jsonl`;
/// `start` returns once it listens.
pub struct FakeGopro {
    pub proc: Proc,
    pub record: PathBuf,
}

impl FakeGopro {
    pub fn start(dir: &Path, model: &str, ports: &Ports, cam: &CameraPorts) -> FakeGopro {
        FakeGopro::start_with(dir, model, ports, cam, &[])
    }

    /// With more arguments (faults, transport).
    pub fn start_with(
        dir: &Path,
        model: &str,
        ports: &Ports,
        cam: &CameraPorts,
        extra: &[&str],
    ) -> FakeGopro {
        let record = dir.join("camera.jsonl");
        let mut args = vec![
            "fake-gopro".to_string(),
            "--model".to_string(),
            model.to_string(),
            "--http".to_string(),
            format!("127.0.0.1:{}", cam.http),
            "--keepalive-port".to_string(),
            cam.keepalive.to_string(),
            "--udp-port".to_string(),
            ports.source.to_string(),
            "--record".to_string(),
            record.display().to_string(),
            "--size".to_string(),
            "320x180".to_string(),
            "--fps".to_string(),
            "15".to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let proc = Proc::spawn(dir, "camera", &args, &[INFO_LOG]);
        // It names its address once it listens: a daemon started next finds it there.
        assert!(
            proc.wait_for_log("camera on http://", Duration::from_secs(10)),
            "fake-gopro did not start:\n{}",
            proc.log_text()
        );
        FakeGopro { proc, record }
    }
}

/// True while `pid` is a live (non-zombie) process.
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// Waits until none of `pids` is alive.
pub fn wait_gone(pids: &[i64], timeout: Duration) -> bool {
    poll(timeout, Duration::from_millis(50), || {
        pids.iter().all(|p| !alive(*p)).then_some(())
    })
    .is_some()
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A whole HTTP response (status 0 if there was no status line).
pub struct Response {
    pub code: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The status code of a response head (0 if it has none).
fn status_code(head: &str) -> u16 {
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A TCP connection to the loopback `port`, reads timing out after `READ_TIMEOUT`.
pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

/// One raw request, read to the end (`Connection: close` responses only).
pub fn http_request(port: u16, raw: impl AsRef<[u8]>) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    s.write_all(raw.as_ref())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&buf[..head_end])
        .trim_end()
        .to_string();
    Ok(Response {
        code: status_code(&head),
        head,
        body: buf[head_end..].to_vec(),
    })
}

/// `method target` with no body.
pub fn http_method(port: u16, method: &str, target: &str) -> std::io::Result<Response> {
    http_request(
        port,
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    )
}

pub fn http_get(port: u16, path: &str) -> std::io::Result<Response> {
    http_method(port, "GET", path)
}

/// Reads a response head off `s`, byte by byte so nothing after it is taken;
/// returns the status code and the head. Panics if the connection ends first.
pub fn read_head(s: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read the response head");
        assert!(
            n > 0,
            "closed before a response head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    (status_code(&head), head)
}

/// An open long response (`/stream.ts`, `/events`) whose body the test reads
/// at will: `code` and `head` are read, the rest stays on `sock` and what the
/// read methods take is kept in `received`.
pub struct Viewer {
    pub sock: TcpStream,
    pub code: u16,
    pub head: String,
    pub received: Vec<u8>,
}

impl Viewer {
    /// A viewer of `/stream.ts` that must be admitted (200).
    pub fn connect(port: u16) -> Viewer {
        Viewer::connect_with_rcvbuf(port, None)
    }

    /// `rcvbuf`: a small receive buffer makes a non-reading viewer stall quickly.
    pub fn connect_with_rcvbuf(port: u16, rcvbuf: Option<i32>) -> Viewer {
        let sock = connect(port);
        if let Some(size) = rcvbuf {
            use std::os::fd::AsRawFd;
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    &size as *const i32 as *const libc::c_void,
                    4,
                )
            };
        }
        let v = Viewer::send(sock, b"GET /stream.ts HTTP/1.1\r\nHost: test\r\n\r\n");
        assert!(v.head.starts_with("HTTP/1.1 200"), "{}", v.head);
        v
    }

    /// GET `target`, whatever the answer.
    pub fn open(port: u16, target: &str) -> Viewer {
        Viewer::request(
            port,
            format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
        )
    }

    /// GET `target` from the loopback address `from` (127.0.0.0/8: another
    /// "device" on the same machine), whatever the answer.
    pub fn open_from(from: std::net::Ipv4Addr, port: u16, target: &str) -> Viewer {
        let sock = connect_from(from, std::net::Ipv4Addr::LOCALHOST, port).unwrap();
        Viewer::send(
            sock,
            format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
        )
    }

    /// Sends `raw`, then reads the response head.
    pub fn request(port: u16, raw: &[u8]) -> Viewer {
        Viewer::send(connect(port), raw)
    }

    fn send(mut sock: TcpStream, raw: &[u8]) -> Viewer {
        sock.write_all(raw).unwrap();
        let (code, head) = read_head(&mut sock);
        Viewer {
            sock,
            code,
            head,
            received: Vec::new(),
        }
    }

    /// Reads for `dur` (to its end, even once the stream has ended); returns
    /// the bytes read in that time.
    pub fn read_for(&mut self, dur: Duration) -> usize {
        let mut total = 0;
        let mut ended = false;
        let mut buf = vec![0u8; 65536];
        for_period(dur, |elapsed| {
            if ended {
                std::thread::sleep(dur - elapsed);
                return;
            }
            let left = dur.saturating_sub(elapsed).max(Duration::from_millis(10));
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.read(&mut buf) {
                Ok(0) => ended = true,
                Ok(n) => {
                    self.received.extend_from_slice(&buf[..n]);
                    total += n;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("viewer read failed: {e}"),
            }
        });
        total
    }

    /// Reads until `n` more bytes came, the stream ended or a read waited
    /// `READ_TIMEOUT`; returns how many came.
    pub fn read_at_least(&mut self, n: usize) -> usize {
        self.sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut got = 0;
        let mut buf = [0u8; 16384];
        while got < n {
            match self.sock.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => {
                    self.received.extend_from_slice(&buf[..k]);
                    got += k;
                }
            }
        }
        got
    }
}

/// One viewer of `/stream.ts` keeping one connection, read on a thread for as
/// long as the test runs: the body (MPEG-TS) is collected, and whether the
/// connection ended (EOF or error) is noted.
pub struct BackgroundViewer {
    bytes: Arc<Mutex<Vec<u8>>>,
    ended: Arc<AtomicBool>,
}

impl BackgroundViewer {
    pub fn connect(port: u16) -> BackgroundViewer {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET /stream.ts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(AtomicBool::new(false));
        let (b, e) = (bytes.clone(), ended.clone());
        std::thread::spawn(move || {
            // The response head is kept apart; only the body is collected.
            let mut head: Vec<u8> = Vec::new();
            let mut in_body = false;
            let mut buf = [0u8; 16384];
            loop {
                let n = match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if in_body {
                    b.lock().unwrap().extend_from_slice(&buf[..n]);
                    continue;
                }
                head.extend_from_slice(&buf[..n]);
                if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    b.lock().unwrap().extend_from_slice(&head[i + 4..]);
                    in_body = true;
                }
            }
            e.store(true, Ordering::SeqCst);
        });
        BackgroundViewer { bytes, ended }
    }

    /// Body bytes so far.
    pub fn len(&self) -> usize {
        self.bytes.lock().unwrap().len()
    }

    /// A copy of the body from byte `from` on.
    pub fn bytes_from(&self, from: usize) -> Vec<u8> {
        self.bytes.lock().unwrap()[from..].to_vec()
    }

    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Waits until `at_least` body bytes came; panics if the connection ends
    /// or after `within`.
    pub fn wait_bytes(&self, at_least: usize, within: Duration) {
        poll(within, WAIT_EVERY, || {
            if self.len() >= at_least {
                return Some(());
            }
            assert!(!self.ended(), "viewer connection ended");
            None
        })
        .unwrap_or_else(|| {
            panic!(
                "viewer got only {} bytes in {within:?} (wanted {at_least})",
                self.len()
            )
        })
    }
}

/// Writes `bytes` to `dir/name` and returns ffprobe's CSV lines for the first
/// video stream with `entries` (e.g. `stream=width,height`), empty lines dropped.
pub fn ffprobe(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    entries: &str,
    count_frames: bool,
) -> Vec<String> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "quiet", "-select_streams", "v:0"]);
    if count_frames {
        cmd.arg("-count_frames");
    }
    let out = cmd
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .expect("run ffprobe");
    // A stream shows up once for its program and once by itself: the first is enough.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// ffprobe's view of the first video stream in `bytes`: (codec, width, height).
pub fn probe(dir: &Path, name: &str, bytes: &[u8]) -> (String, u32, u32) {
    let lines = ffprobe(dir, name, bytes, "stream=codec_name,width,height", false);
    let mut f = lines.first().map_or("", String::as_str).split(',');
    let codec = f.next().unwrap_or("").to_string();
    let w = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let h = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (codec, w, h)
}

/// Number of decoded video frames in `bytes`, by ffprobe.
pub fn count_frames(dir: &Path, name: &str, bytes: &[u8]) -> usize {
    let lines = ffprobe(dir, name, bytes, "stream=nb_read_frames", true);
    lines.first().and_then(|l| l.parse().ok()).unwrap_or(0)
}

/// Per-frame (pts seconds, width) of a capture.
pub fn frames(dir: &Path, name: &str, bytes: &[u8]) -> Vec<(f64, u32)> {
    ffprobe(dir, name, bytes, "frame=pts_time,width", false)
        .iter()
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

/// Video packet timestamps (s) of a capture; it need not start at a keyframe.
pub fn packet_pts(dir: &Path, name: &str, bytes: &[u8]) -> Vec<f64> {
    ffprobe(dir, name, bytes, "packet=pts_time", false)
        .iter()
        .filter_map(|l| l.trim_end_matches(',').parse().ok())
        .collect()
}

/// The date and time in UTC, for benchmark reports.
pub fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Prints a benchmark report and appends it to benches/RESULTS.md.
pub fn record_bench(report: &str) {
    print!("{report}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/RESULTS.md");
    let mut text = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Benchmark results\n\nNewest last. Each section names the command that produced it.\n"
            .into()
    });
    text.push_str(report);
    std::fs::write(path, text).expect("write benches/RESULTS.md");
    eprintln!("written to {path}");
}

/// A camera stand-in: ffmpeg sending H.264 in MPEG-TS over UDP, 7 packets a
/// datagram, from `from` (any 127.x address is local) to `port` on
/// 127.0.0.1. `picture` is a lavfi source (`testsrc`, `color=c=blue`, ...).
/// Killed when dropped.
pub struct CameraSender {
    child: Child,
}

impl CameraSender {
    /// A keyframe every second (15 frames).
    pub fn start(from: &str, port: u16, picture: &str) -> CameraSender {
        CameraSender::with_gop(from, port, picture, 15)
    }

    /// A keyframe every `gop` frames (15 a second).
    pub fn with_gop(from: &str, port: u16, picture: &str, gop: u32) -> CameraSender {
        let gop = gop.to_string();
        let sep = if picture.contains('=') { ':' } else { '=' };
        let source = format!("{picture}{sep}size=320x180:rate=15");
        let url = format!("udp://127.0.0.1:{port}?pkt_size=1316&localaddr={from}");
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", &source])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
            ])
            .args([
                "-pix_fmt", "yuv420p", "-g", &gop, "-b:v", "500k", "-f", "mpegts", &url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start ffmpeg as a camera");
        CameraSender { child }
    }
}

impl Drop for CameraSender {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection to `127.0.0.1:port` from the local address `from`
/// (127.0.0.2 looks like another phone to the daemon).
pub fn connect_from(
    from: std::net::Ipv4Addr,
    to: std::net::Ipv4Addr,
    port: u16,
) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let addr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, plain bind and connect with valid sockaddr_in
    // structs; the fd is owned by the TcpStream (or closed) afterwards.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let local = addr(from, 0);
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = addr(to, port);
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// An IPv4 address of this machine that is not loopback (a peer connecting
/// from it is not "the Pi itself"), from `ip -4 addr`.
pub fn non_loopback_ipv4() -> Option<std::net::Ipv4Addr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let cidr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
        cidr.split('/').next()?.parse().ok()
    })
}

/// Mean chroma (U, V) of every decoded frame in `bytes`, by ffmpeg's
/// signalstats: blue is high U, red high V.
pub fn frame_chroma(dir: &Path, name: &str, bytes: &[u8]) -> Vec<(f64, f64)> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "quiet", "-f", "lavfi", "-i"])
        .arg(format!("movie={},signalstats", path.display()))
        .args([
            "-show_entries",
            "frame_tags=lavfi.signalstats.UAVG,lavfi.signalstats.VAVG",
            "-of",
            "csv=p=0",
        ])
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

pub mod baseline;
pub mod camnet;
pub mod netns;
pub mod peers;
pub mod phone;
pub mod scenario;
