//! Child processes that can never be orphaned: each runs in its own process
//! group with a parent-death signal, is restarted with capped exponential
//! backoff when it exits unexpectedly, and is stopped with TERM, a grace period
//! and KILL to its whole group. A child that is alive but silent is restarted
//! by its watchdog; its owner may also ask for a restart. Its stderr is logged
//! within a budget of lines. Knows nothing of what the child is.

use crate::clock::unix_now;
use crate::log_budget::{Allow, LogBudget};
use log::{info, warn};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Lines of a child's stderr logged per `STDERR_WINDOW`; the rest are counted.
const STDERR_BURST: u32 = 20;
const STDERR_WINDOW: Duration = Duration::from_secs(60);
/// TERM-to-KILL grace for a child the watchdog found hung.
const HUNG_GRACE: Duration = Duration::from_millis(500);
/// How often the watchdog looks.
const WATCHDOG_TICK: Duration = Duration::from_millis(250);

/// Why a child was started again, as counted in `/status` and `/metrics`.
pub const EXITED: &str = "exited";
pub const NO_OUTPUT: &str = "no output";

/// What to run and how to treat it.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Prefix for its log lines and its name in `/status`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub pipe_stdin: bool,
    pub pipe_stdout: bool,
    pub backoff: Backoff,
    pub stop_grace: Duration,
    /// Restarts the child when it is alive but makes no progress.
    pub watchdog: Option<Watchdog>,
    /// Replacements made in its stderr lines before they are logged or shown
    /// (a secret in its arguments that it prints back, as ffmpeg does URLs).
    pub redact: Vec<(String, String)>,
}

/// When the child last made progress (its owner marks it, e.g. on output).
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<Option<Instant>>>);

impl Progress {
    pub fn mark(&self) {
        *self.0.lock().unwrap() = Some(Instant::now());
    }
    fn last(&self) -> Option<Instant> {
        *self.0.lock().unwrap()
    }
}

/// A child that makes no progress for `timeout` while `expected()` holds is
/// killed and started again. A fresh child has twice the timeout for its
/// first progress.
#[derive(Clone)]
pub struct Watchdog {
    pub progress: Progress,
    pub timeout: Duration,
    pub expected: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Watchdog {
    /// Resolves when the child started at `started` has been silent too long.
    async fn silent(&self, started: Instant) {
        let mut quiet_since = started + self.timeout;
        let mut tick = tokio::time::interval(WATCHDOG_TICK);
        loop {
            tick.tick().await;
            let now = Instant::now();
            if !(self.expected)() {
                quiet_since = quiet_since.max(now);
                continue;
            }
            if let Some(p) = self.progress.last() {
                quiet_since = quiet_since.max(p);
            }
            if now.saturating_duration_since(quiet_since) >= self.timeout {
                return;
            }
        }
    }
}

/// How the owner steers a supervised child: stop it for good (cancel), or
/// start it again at once (the reason is counted; no backoff).
pub struct Control {
    pub stop: CancellationToken,
    pub restart: Option<mpsc::Receiver<&'static str>>,
}

impl From<CancellationToken> for Control {
    fn from(stop: CancellationToken) -> Self {
        Control {
            stop,
            restart: None,
        }
    }
}

/// Capped exponential restart delay; pure.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A child that ran at least this long was healthy: start again from `initial`.
    pub reset_after: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, reset_after: Duration) -> Self {
        Backoff {
            initial,
            max,
            reset_after,
            next: initial,
        }
    }

    /// The delay before the next start, given how long the last run lasted.
    pub fn delay_after(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.reset_after {
            self.next = self.initial;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

/// A child's state as shown in `/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChildInfo {
    pub name: String,
    pub pid: Option<u32>,
    pub restarts: u64,
    /// Unix time (s) of the current run's start.
    pub started_unix: Option<f64>,
    #[serde(skip)]
    pub started_at: Option<Instant>,
    pub last_exit: Option<String>,
    /// The child's last line on stderr: usually the reason it failed.
    pub last_stderr: Option<String>,
    /// Restarts by reason: "exited", "no output", or the owner's reasons.
    pub restarts_by_reason: BTreeMap<&'static str, u64>,
    /// Stderr lines not logged (over the budget).
    pub stderr_suppressed: u64,
    /// Seconds from the current run's start to its first output, once there
    /// was some (an encoder's first frame), as the owner reports it.
    pub first_output_s: Option<f64>,
}

impl ChildInfo {
    pub fn uptime(&self) -> Option<Duration> {
        self.started_at.map(|t| t.elapsed())
    }
}

pub type SharedInfo = Arc<Mutex<ChildInfo>>;

/// Pipes of a freshly started child, handed to the owner on every (re)start.
pub struct Pipes {
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
}

/// Starts one child in its own process group, dying with us.
pub fn spawn(spec: &Spec) -> std::io::Result<Child> {
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(if spec.pipe_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if spec.pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped());
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Killed when the thread that forked us (the daemon's only runtime thread) dies,
            // whether the daemon exited, crashed or was SIGKILLed.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut cmd = Command::from(cmd);
    cmd.kill_on_drop(true);
    cmd.spawn()
}

/// TERM to the child's group, wait up to `grace`, then KILL the group.
pub async fn stop(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let pid = child.id()?;
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            warn!("pid {pid} ignored SIGTERM for {grace:?}; sending SIGKILL");
            let _ = killpg(group, Signal::SIGKILL);
            child.wait().await.ok()
        }
    }
}

/// The user plus system CPU seconds process `pid` has used so far (Linux
/// `/proc/PID/stat`), None when it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) / ticks as f64)
}

pub fn describe_exit(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (_, Some(sig)) => {
            let name = Signal::try_from(sig)
                .map(|s| s.as_str())
                .unwrap_or("unknown signal");
            format!("killed by signal {sig} ({name})")
        }
        _ => "ended".to_string(),
    }
}

/// How one run of a child ended.
enum Ended {
    Exited(Option<ExitStatus>),
    Silent,
    Restart(&'static str),
}

/// Resolves with the owner's next restart request (never, without a channel).
async fn restart_requested(rx: &mut Option<mpsc::Receiver<&'static str>>) -> &'static str {
    match rx {
        Some(rx) => match rx.recv().await {
            Some(reason) => reason,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Resolves when the watchdog fires (never, without one).
async fn silent(watchdog: &Option<Watchdog>, started: Instant) {
    match watchdog {
        Some(w) => w.silent(started).await,
        None => std::future::pending().await,
    }
}

/// Runs `spec` until told to stop, restarting it whenever it exits, hangs
/// (see `Watchdog`) or the owner asks. `on_start` receives the new child's
/// pipes each time it starts.
pub async fn supervise(
    spec: Spec,
    info: SharedInfo,
    control: impl Into<Control>,
    mut on_start: impl FnMut(Pipes) + Send,
) {
    let Control {
        stop: stop_token,
        restart: mut restart_rx,
    } = control.into();
    let mut backoff = spec.backoff.clone();
    let stderr_budget = Arc::new(Mutex::new(LogBudget::new(STDERR_BURST, STDERR_WINDOW)));
    info.lock().unwrap().name = spec.name.clone();
    loop {
        if stop_token.is_cancelled() {
            return;
        }
        let started = Instant::now();
        let (ran_for, reason) = match spawn(&spec) {
            Ok(mut child) => {
                let pid = child.id();
                info!("{}: started pid {}", spec.name, pid.unwrap_or(0));
                {
                    let mut i = info.lock().unwrap();
                    i.pid = pid;
                    i.started_at = Some(started);
                    i.started_unix = Some(unix_now());
                    i.first_output_s = None;
                }
                if let Some(stderr) = child.stderr.take() {
                    tokio::spawn(log_stderr(
                        spec.name.clone(),
                        spec.redact.clone(),
                        stderr,
                        info.clone(),
                        stderr_budget.clone(),
                    ));
                }
                on_start(Pipes {
                    stdin: child.stdin.take(),
                    stdout: child.stdout.take(),
                });
                let ended = tokio::select! {
                    // A stop wins over an exit it caused itself.
                    biased;
                    _ = stop_token.cancelled() => {
                        let status = stop(&mut child, spec.stop_grace).await;
                        info!("{}: stopped ({})", spec.name, status.as_ref().map(describe_exit).unwrap_or_default());
                        let mut i = info.lock().unwrap();
                        i.pid = None;
                        i.started_at = None;
                        return;
                    }
                    reason = restart_requested(&mut restart_rx) => Ended::Restart(reason),
                    _ = silent(&spec.watchdog, started) => Ended::Silent,
                    status = child.wait() => Ended::Exited(status.ok()),
                };
                let pid = pid.unwrap_or(0);
                let (why, reason) = match ended {
                    Ended::Exited(status) => {
                        let why = status
                            .as_ref()
                            .map(describe_exit)
                            .unwrap_or_else(|| "ended".into());
                        warn!(
                            "{}: pid {pid} {why} after {:.1} s",
                            spec.name,
                            started.elapsed().as_secs_f64()
                        );
                        (why, EXITED)
                    }
                    Ended::Silent => {
                        let timeout = spec
                            .watchdog
                            .as_ref()
                            .map_or(0.0, |w| w.timeout.as_secs_f64());
                        let why = format!("gave no output for {timeout:.1} s; killed");
                        warn!("{}: pid {pid} {why}", spec.name);
                        // A hung child seldom honours TERM (a stopped one cannot): short grace.
                        stop(&mut child, spec.stop_grace.min(HUNG_GRACE)).await;
                        (why, NO_OUTPUT)
                    }
                    Ended::Restart(reason) => {
                        info!("{}: restarting pid {pid}: {reason}", spec.name);
                        stop(&mut child, spec.stop_grace).await;
                        (format!("restarted: {reason}"), reason)
                    }
                };
                let mut i = info.lock().unwrap();
                i.pid = None;
                i.started_at = None;
                i.last_exit = Some(why);
                (started.elapsed(), reason)
            }
            Err(e) => {
                warn!(
                    "{}: cannot start {}: {e}",
                    spec.name,
                    spec.program.display()
                );
                info.lock().unwrap().last_exit = Some(format!("cannot start: {e}"));
                (Duration::ZERO, EXITED)
            }
        };
        // The owner's restarts are deliberate: at once, and not a failure.
        let delay = match reason {
            EXITED | NO_OUTPUT => backoff.delay_after(ran_for),
            _ => Duration::ZERO,
        };
        if !delay.is_zero() {
            info!("{}: restarting in {:.1} s", spec.name, delay.as_secs_f64());
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop_token.cancelled() => return,
        }
        let mut i = info.lock().unwrap();
        i.restarts += 1;
        *i.restarts_by_reason.entry(reason).or_default() += 1;
    }
}

/// Logs a child's stderr within `budget`, with a summary of what was not logged.
async fn log_stderr(
    name: String,
    redact: Vec<(String, String)>,
    stderr: tokio::process::ChildStderr,
    info: SharedInfo,
    budget: Arc<Mutex<LogBudget>>,
) {
    let mut lines = BufReader::new(stderr).lines();
    let summary = |budget: &Mutex<LogBudget>, now: Instant| {
        if let Some(n) = budget.lock().unwrap().take_summary(now) {
            warn!(
                "{name}: {n} more stderr line(s) not logged in the last {} s",
                STDERR_WINDOW.as_secs()
            );
        }
    };
    loop {
        let window_end = budget.lock().unwrap().window_end();
        let due = window_end.filter(|_| budget.lock().unwrap().suppressed() > 0);
        let line = tokio::select! {
            line = lines.next_line() => line,
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => {
                summary(&budget, Instant::now());
                continue;
            }
        };
        let Ok(Some(mut line)) = line else { break };
        for (secret, shown) in &redact {
            line = line.replace(secret, shown);
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let allow = budget.lock().unwrap().allow(Instant::now());
        let mut i = info.lock().unwrap();
        i.last_stderr = Some(line.chars().take(300).collect());
        match allow {
            Allow::Log { suppressed } => {
                if suppressed > 0 {
                    warn!("{name}: {suppressed} stderr line(s) not logged before this one");
                }
                warn!("{name}: {line}");
            }
            Allow::Drop => i.stderr_suppressed += 1,
        }
    }
    summary(&budget, Instant::now() + STDERR_WINDOW);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        feature = "qemu-user",
        ignore = "qemu-user answers a process's own /proc/PID/stat itself, with its CPU times zero"
    )]
    fn cpu_seconds_of_this_process_grow_and_a_gone_one_has_none() {
        let me = std::process::id();
        let before = cpu_seconds(me).unwrap();
        let mut x = 0u64;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(cpu_seconds(me).unwrap() > before);
        assert_eq!(cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let s = Duration::from_secs_f64;
        let mut b = Backoff::new(s(0.5), s(10.0), s(30.0));
        let delays: Vec<f64> = (0..7)
            .map(|_| b.delay_after(s(1.0)).as_secs_f64())
            .collect();
        assert_eq!(delays, vec![0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]);
        assert_eq!(
            b.delay_after(s(30.0)),
            s(0.5),
            "a healthy run resets the delay"
        );
        assert_eq!(b.delay_after(s(0.1)), s(1.0));
    }
}
