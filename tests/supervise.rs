//! The supervisor with real child processes: process groups, restarts with
//! backoff, TERM-then-KILL, and the parent-death signal.

mod common;

use common::{alive, wait_gone};
use livestreamd::supervise::{self, Backoff, Control, Progress, Spec, Watchdog};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn spec(script: &str) -> Spec {
    Spec {
        name: "test-child".into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        pipe_stdin: false,
        pipe_stdout: true,
        backoff: Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(400),
            Duration::from_secs(30),
        ),
        stop_grace: Duration::from_millis(500),
        watchdog: None,
        redact: Vec::new(),
    }
}

/// Starts `spec` under a supervisor; returns its stop switch, task and the
/// pids it prints (one line per start).
fn supervised(
    spec: Spec,
    info: &supervise::SharedInfo,
    restart: Option<mpsc::Receiver<&'static str>>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<i64>,
) {
    let stop = CancellationToken::new();
    let stop_tx = stop.clone();
    let (pid_tx, pid_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(supervise::supervise(
        spec,
        info.clone(),
        Control { stop, restart },
        move |p| {
            let tx = pid_tx.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(p.stdout.unwrap()).lines();
                if let Ok(Some(l)) = lines.next_line().await {
                    let _ = tx.send(l.trim().parse::<i64>().unwrap());
                }
            });
        },
    ));
    (stop_tx, task, pid_rx)
}

async fn next_pid(rx: &mut mpsc::UnboundedReceiver<i64>, within: Duration) -> i64 {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("a start in time")
        .unwrap()
}

fn restarts(info: &supervise::SharedInfo, reason: &str) -> u64 {
    info.lock()
        .unwrap()
        .restarts_by_reason
        .get(reason)
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "current_thread")]
async fn a_child_alive_but_silent_is_killed_and_restarted_by_its_watchdog() {
    let info = supervise::SharedInfo::default();
    let expected = Arc::new(AtomicBool::new(true));
    let e = expected.clone();
    let spec = Spec {
        watchdog: Some(Watchdog {
            progress: Progress::default(),
            timeout: Duration::from_millis(300),
            expected: Arc::new(move || e.load(Ordering::Relaxed)),
        }),
        // Alive, and silent for ever.
        ..spec("echo $$; exec sleep 1000")
    };
    let (stop, task, mut pids) = supervised(spec, &info, None);
    let first = next_pid(&mut pids, Duration::from_secs(5)).await;
    let t0 = Instant::now();
    let second = next_pid(&mut pids, Duration::from_secs(5)).await;
    // A fresh child has twice the timeout for its first output.
    println!("replaced after {:?}", t0.elapsed());
    assert_ne!(first, second);
    assert!(
        wait_gone(&[first], Duration::from_secs(2)),
        "{first} was not killed"
    );
    assert!(restarts(&info, supervise::NO_OUTPUT) >= 1);
    assert!(info
        .lock()
        .unwrap()
        .last_exit
        .as_deref()
        .unwrap()
        .contains("no output"));
    // While no output is expected (the camera is silent), the child is left alone:
    // watched for 1.5 s, five watchdog timeouts.
    expected.store(false, Ordering::Relaxed);
    let before = restarts(&info, supervise::NO_OUTPUT);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        restarts(&info, supervise::NO_OUTPUT) <= before + 1,
        "at most the run already judged"
    );
    let settled = restarts(&info, supervise::NO_OUTPUT);
    // And for one more second, with no restart at all.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(restarts(&info, supervise::NO_OUTPUT), settled);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_child_that_makes_progress_is_left_alone() {
    let info = supervise::SharedInfo::default();
    let progress = Progress::default();
    let spec = Spec {
        watchdog: Some(Watchdog {
            progress: progress.clone(),
            timeout: Duration::from_millis(300),
            expected: Arc::new(|| true),
        }),
        ..spec("echo $$; exec sleep 1000")
    };
    let (stop, task, mut pids) = supervised(spec, &info, None);
    let first = next_pid(&mut pids, Duration::from_secs(5)).await;
    // Progress every 100 ms for 2 s, well inside the 300 ms timeout.
    for _ in 0..20 {
        progress.mark();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(alive(first));
    assert_eq!(info.lock().unwrap().restarts, 0);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn an_owners_restart_is_immediate_and_counted_by_reason() {
    let info = supervise::SharedInfo::default();
    let (restart_tx, restart_rx) = mpsc::channel(1);
    let (stop, task, mut pids) =
        supervised(spec("echo $$; exec sleep 1000"), &info, Some(restart_rx));
    let first = next_pid(&mut pids, Duration::from_secs(5)).await;
    for _ in 0..3 {
        restart_tx.send("new timeline").await.unwrap();
        // No backoff: well under the 100 ms initial delay plus the stop.
        next_pid(&mut pids, Duration::from_secs(2)).await;
    }
    assert!(wait_gone(&[first], Duration::from_secs(2)));
    assert_eq!(restarts(&info, "new timeline"), 3);
    assert_eq!(restarts(&info, supervise::EXITED), 0);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn stderr_beyond_its_budget_is_counted_not_logged() {
    let info = supervise::SharedInfo::default();
    let script = "echo $$; i=0; while [ $i -lt 100 ]; do echo \"complaint $i\" >&2; i=$((i+1)); done; exec sleep 1000";
    let (stop, task, mut pids) = supervised(spec(script), &info, None);
    next_pid(&mut pids, Duration::from_secs(5)).await;
    // An async wait: the supervisor's stderr task runs on this same thread.
    let done = common::poll_async(Duration::from_secs(5), Duration::from_millis(50), || {
        let i = info.lock().unwrap();
        (i.last_stderr.as_deref() == Some("complaint 99")).then_some(i.stderr_suppressed)
    })
    .await;
    assert_eq!(
        done,
        Some(80),
        "20 lines a minute are logged, the rest counted"
    );
    stop.cancel();
    task.await.unwrap();
}

/// Reads the child's stdout, where the scripts print their own and their grandchild's pid.
async fn read_pids(stdout: tokio::process::ChildStdout) -> Vec<i64> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut pids = Vec::new();
    while pids.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await {
            Ok(Ok(Some(l))) => {
                pids.extend(l.split_whitespace().filter_map(|p| p.parse::<i64>().ok()))
            }
            _ => break,
        }
    }
    pids
}

#[tokio::test(flavor = "current_thread")]
async fn stop_kills_the_whole_group_even_a_child_that_ignores_term() {
    // The shell ignores TERM; its background grandchild sleeps.
    let stop_tx = CancellationToken::new();
    let stop_rx = stop_tx.clone();
    let (pipes_tx, mut pipes_rx) = tokio::sync::mpsc::unbounded_channel();
    let info = supervise::SharedInfo::default();
    let task = tokio::spawn(supervise::supervise(
        spec("trap '' TERM; sleep 1000 & echo $$ $!; while :; do sleep 1; done"),
        info.clone(),
        stop_rx,
        move |p| {
            let _ = pipes_tx.send(p);
        },
    ));
    let pipes = pipes_rx.recv().await.unwrap();
    let pids = read_pids(pipes.stdout.unwrap()).await;
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|p| alive(*p)));
    let t0 = Instant::now();
    stop_tx.cancel();
    task.await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(450),
        "TERM was ignored, so KILL came after the grace period"
    );
    assert!(
        wait_gone(&pids, Duration::from_secs(2)),
        "group members left: {pids:?}"
    );
    assert_eq!(info.lock().unwrap().pid, None);
}

#[tokio::test(flavor = "current_thread")]
async fn an_exiting_child_is_restarted_with_growing_delays() {
    let stop_tx = CancellationToken::new();
    let stop_rx = stop_tx.clone();
    let info = supervise::SharedInfo::default();
    let starts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = starts.clone();
    let task = tokio::spawn(supervise::supervise(
        spec("exit 3"),
        info.clone(),
        stop_rx,
        move |_| {
            s2.lock().unwrap().push(Instant::now());
        },
    ));
    // Restarting for 1.8 s: room for 100 + 200 + 400 + 400 ms of delays.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    stop_tx.cancel();
    task.await.unwrap();
    let starts = starts.lock().unwrap();
    let gaps: Vec<u128> = starts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    println!("start gaps (ms): {gaps:?}");
    assert!(starts.len() >= 4, "restarted: {gaps:?}");
    // 100, 200, 400, 400 ms (capped), plus the time to run `sh`.
    assert!(
        gaps[0] >= 100 && gaps[1] >= 200 && gaps[2] >= 400,
        "{gaps:?}"
    );
    assert!(gaps.iter().all(|g| *g < 1000), "capped at 400 ms: {gaps:?}");
    let i = info.lock().unwrap();
    assert_eq!(i.last_exit.as_deref(), Some("exited with status 3"));
    assert!(i.restarts >= 3);
}

#[test]
fn a_child_dies_with_its_parent() {
    // A helper process spawns a supervised child and is then SIGKILLed; the
    // parent-death signal must take the child down too.
    let child = supervise_in_subprocess();
    assert!(
        wait_gone(&[child], Duration::from_secs(3)),
        "pid {child} outlived its parent"
    );
}

/// Runs this test binary's `helper_spawn_and_wait` in a subprocess, kills it, returns the grandchild pid.
fn supervise_in_subprocess() -> i64 {
    let exe = std::env::current_exe().unwrap();
    let mut helper = std::process::Command::new(exe)
        .args([
            "--exact",
            "helper_spawn_and_wait",
            "--nocapture",
            "--ignored",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(helper.stdout.take().unwrap()).lines();
    let pid = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("CHILD ")
                .and_then(|p| p.trim().parse::<i64>().ok())
        })
        .expect("helper reports its child");
    assert!(alive(pid));
    helper.kill().unwrap();
    helper.wait().unwrap();
    pid
}

#[test]
#[ignore = "helper for a_child_dies_with_its_parent"]
fn helper_spawn_and_wait() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let child = supervise::spawn(&spec("sleep 1000")).unwrap();
        println!("CHILD {}", child.id().unwrap());
        std::mem::forget(child); // no kill-on-drop: only the parent-death signal may end it
                                 // Until the test kills this helper (a minute at the most).
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}
