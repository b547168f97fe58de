//! Child processes that can never be orphaned: each runs in its own process
//! group with a parent-death signal, is restarted with capped exponential
//! backoff when it exits unexpectedly, and is stopped with TERM, a grace period
//! and KILL to its whole group. Knows nothing of what the child is.

use log::{info, warn};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;

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

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs `spec` until `stop` turns true, restarting it whenever it exits.
/// `on_start` receives the new child's pipes each time it starts.
pub async fn supervise(
    spec: Spec,
    info: SharedInfo,
    mut stop_rx: watch::Receiver<bool>,
    mut on_start: impl FnMut(Pipes) + Send,
) {
    let mut backoff = spec.backoff.clone();
    info.lock().unwrap().name = spec.name.clone();
    loop {
        if *stop_rx.borrow() {
            return;
        }
        let started = Instant::now();
        let ran_for = match spawn(&spec) {
            Ok(mut child) => {
                let pid = child.id();
                info!("{}: started pid {}", spec.name, pid.unwrap_or(0));
                {
                    let mut i = info.lock().unwrap();
                    i.pid = pid;
                    i.started_at = Some(started);
                    i.started_unix = Some(unix_now());
                }
                if let Some(stderr) = child.stderr.take() {
                    tokio::spawn(log_stderr(spec.name.clone(), stderr, info.clone()));
                }
                on_start(Pipes {
                    stdin: child.stdin.take(),
                    stdout: child.stdout.take(),
                });
                let status = tokio::select! {
                    // A stop wins over an exit it caused itself.
                    biased;
                    _ = stopped(&mut stop_rx) => {
                        let status = stop(&mut child, spec.stop_grace).await;
                        info!("{}: stopped ({})", spec.name, status.as_ref().map(describe_exit).unwrap_or_default());
                        let mut i = info.lock().unwrap();
                        i.pid = None;
                        i.started_at = None;
                        return;
                    }
                    status = child.wait() => status.ok(),
                };
                let why = status
                    .as_ref()
                    .map(describe_exit)
                    .unwrap_or_else(|| "ended".into());
                warn!(
                    "{}: pid {} {why} after {:.1} s",
                    spec.name,
                    pid.unwrap_or(0),
                    started.elapsed().as_secs_f64()
                );
                let mut i = info.lock().unwrap();
                i.pid = None;
                i.started_at = None;
                i.last_exit = Some(why);
                started.elapsed()
            }
            Err(e) => {
                warn!(
                    "{}: cannot start {}: {e}",
                    spec.name,
                    spec.program.display()
                );
                info.lock().unwrap().last_exit = Some(format!("cannot start: {e}"));
                Duration::ZERO
            }
        };
        let delay = backoff.delay_after(ran_for);
        info!("{}: restarting in {:.1} s", spec.name, delay.as_secs_f64());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut stop_rx) => return,
        }
        info.lock().unwrap().restarts += 1;
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn log_stderr(name: String, stderr: tokio::process::ChildStderr, info: SharedInfo) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        warn!("{name}: {line}");
        info.lock().unwrap().last_stderr = Some(line.chars().take(300).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
