//! The supervisor with real child processes: process groups, restarts with
//! backoff, TERM-then-KILL, and the parent-death signal.

mod common;

use common::{alive, wait_gone};
use livestreamd::supervise::{self, Backoff, Spec};
use std::time::{Duration, Instant};
use tokio::sync::watch;

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
    }
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
    let (stop_tx, stop_rx) = watch::channel(false);
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
    stop_tx.send(true).unwrap();
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
    let (stop_tx, stop_rx) = watch::channel(false);
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
    tokio::time::sleep(Duration::from_millis(1800)).await;
    stop_tx.send(true).unwrap();
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
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}
