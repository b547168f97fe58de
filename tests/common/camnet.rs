//! A camera on its own network, as in the field: a namespace for the camera and one for the Pi,
//! joined by a veth pair, each side with the addresses a real link gives it (the camera's Wi-Fi
//! 10.5.5.9 and the Pi at 10.5.5.100; on USB the camera at 172.2X.1YZ.51 and the Pi beside it).
//! The emulator, the daemon (with the shipped config's fixed ports) and GoPro's own client code
//! run inside, so nothing collides with other tests or with the host. Everything is removed
//! when it is dropped; namespaces of test processes that died are swept on the next create.

use super::netns::Netns;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(1);

pub struct CamNet {
    pub cam: Netns,
    pub pi: Netns,
    /// The Pi side's interface name (inside `pi`).
    pub pi_if: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn sh(line: &str) {
    let args: Vec<&str> = line.split_whitespace().collect();
    run(&args).unwrap_or_else(|e| panic!("building the camera network: {e}"));
}

/// Removes the namespaces of test processes that are gone.
fn sweep() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let ns = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = ns
            .strip_prefix("lsd-cam-")
            .or_else(|| ns.strip_prefix("lsd-pi-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing namespace {ns}, left behind by process {pid}");
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

impl CamNet {
    /// The camera at `cam_ip`, the Pi at `pi_ip` (both /24 on one link); the Pi's interface is
    /// called `pi_if` (`usb0` for a camera on USB, `wlan0` on Wi-Fi).
    pub fn create(cam_ip: &str, pi_ip: &str, pi_if: &str) -> CamNet {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(sweep);
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let cam = format!("lsd-cam-{pid}-{n}");
        let pi = format!("lsd-pi-{pid}-{n}");
        let (cam_if, tmp_if) = (
            format!("lsdc{}x{n}", pid % 100_000),
            format!("lsdq{}x{n}", pid % 100_000),
        );
        sh(&format!("ip netns add {cam}"));
        sh(&format!("ip netns add {pi}"));
        let net = CamNet {
            cam: Netns(cam.clone()),
            pi: Netns(pi.clone()),
            pi_if: pi_if.to_string(),
        };
        sh(&format!(
            "ip link add {cam_if} netns {cam} type veth peer name {tmp_if} netns {pi}"
        ));
        sh(&format!("ip -n {pi} link set {tmp_if} name {pi_if}"));
        sh(&format!("ip -n {cam} addr add {cam_ip}/24 dev {cam_if}"));
        sh(&format!("ip -n {pi} addr add {pi_ip}/24 dev {pi_if}"));
        for (ns, dev) in [(&cam, cam_if.as_str()), (&pi, pi_if)] {
            sh(&format!("ip -n {ns} link set lo up"));
            sh(&format!("ip -n {ns} link set {dev} up"));
        }
        net
    }

    /// `program args…` inside the camera's namespace.
    pub fn in_cam(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.cam.0, program]);
        c
    }

    /// `program args…` inside the Pi's namespace.
    pub fn in_pi(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.pi.0, program]);
        c
    }
}

impl Drop for CamNet {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the other.
        let _ = run(&["ip", "netns", "del", &self.cam.0]);
        let _ = run(&["ip", "netns", "del", &self.pi.0]);
    }
}
