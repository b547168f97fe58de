//! An emulated phone on a bad Wi-Fi link: a network namespace joined to the
//! host by a veth pair. Capacity is limited with `tc … tbf` on the host side
//! (the direction video flows) and packets are dropped at random with
//! `nft … numgen random` inside the phone's namespace (netem is not available).
//! Everything is removed when the link is dropped.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(1);

pub struct PhoneLink {
    pub ns: String,
    host_if: String,
    pub host_ip: String,
    pub phone_ip: String,
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

/// Fails the test, saying why, when network namespaces cannot be made here.
/// The tests that call it are ignored unless the `netns-tests` feature asks
/// for them (`scripts/test.sh` does, as root).
pub fn require() {
    if let Some(why) = unavailable() {
        panic!("this test needs network namespaces but cannot have them here: {why}");
    }
}

/// Why these tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root to create network namespaces".into());
    }
    for tool in ["ip", "tc", "nft"] {
        if Command::new(tool).arg("-V").output().is_err()
            && Command::new(tool).arg("--version").output().is_err()
        {
            return Some(format!("needs `{tool}`"));
        }
    }
    None
}

impl PhoneLink {
    /// A new link; several can exist at once, in one process or in several
    /// (each gets its own namespace, veth pair and /30 subnet).
    pub fn create() -> PhoneLink {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(sweep_dead_links);
        let pid = std::process::id();
        let id = pid % 10_000;
        // Addresses already on this machine (another process's phones): a /30
        // that collides with one of them would route the wrong way.
        let taken = Command::new("ip")
            .args(["-4", "-o", "addr", "show"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let (mut n, mut a, mut b);
        loop {
            n = NEXT.fetch_add(1, Ordering::Relaxed);
            (a, b) = ((id % 200) + 20, n * 4);
            let host = format!(" 10.{a}.{}.{}/", b / 256, b % 256 + 1);
            if !taken.contains(&host) || n > 4000 {
                break;
            }
        }
        // The namespace carries the whole pid (see sweep_dead_links); an
        // interface name has room for only 15 characters.
        let ns = format!("lsd-phone-{pid}-{n}");
        let host_if = format!("lsdh{id}x{n}");
        let phone_if = format!("lsdp{id}x{n}");
        let host_ip = format!("10.{a}.{}.{}", b / 256, b % 256 + 1);
        let phone_ip = format!("10.{a}.{}.{}", b / 256, b % 256 + 2);
        let link = PhoneLink {
            ns: ns.clone(),
            host_if: host_if.clone(),
            host_ip: host_ip.clone(),
            phone_ip: phone_ip.clone(),
        };
        let steps = [
            format!("ip netns add {ns}"),
            format!("ip link add {host_if} type veth peer name {phone_if} netns {ns}"),
            format!("ip addr add {host_ip}/30 dev {host_if}"),
            format!("ip link set {host_if} up"),
            format!("ip -n {ns} addr add {phone_ip}/30 dev {phone_if}"),
            format!("ip -n {ns} link set {phone_if} up"),
            format!("ip -n {ns} link set lo up"),
        ];
        for step in steps {
            let args: Vec<&str> = step.split_whitespace().collect();
            run(&args).unwrap_or_else(|e| panic!("building the phone link: {e}"));
        }
        link
    }

    /// Limits the Pi → phone direction to `kbit` kbit/s, with a queue of about 300 ms.
    pub fn set_rate(&self, kbit: u32) {
        let rate = format!("{kbit}kbit");
        run(&[
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.host_if,
            "root",
            "tbf",
            "rate",
            &rate,
            "burst",
            "16kb",
            "latency",
            "300ms",
        ])
        .unwrap();
    }

    /// Replaces the host's route to the phone's /30 with the same route
    /// carrying `metrics` (`ip route` words, e.g. `rto_min 10ms quickack 1`;
    /// empty: none): what an image sets on its access point's subnet route.
    pub fn set_route_metrics(&self, metrics: &str) {
        let last: u32 = self.host_ip.rsplit('.').next().unwrap().parse().unwrap();
        let prefix = self.host_ip.rsplit_once('.').unwrap().0;
        let net = format!("{prefix}.{}/30", last & !3);
        let mut args = vec![
            "ip",
            "route",
            "replace",
            &net,
            "dev",
            &self.host_if,
            "proto",
            "kernel",
            "scope",
            "link",
            "src",
            &self.host_ip,
        ];
        args.extend(metrics.split_whitespace());
        run(&args).unwrap_or_else(|e| panic!("route metrics `{metrics}`: {e}"));
    }

    /// Back to the full speed of the veth pair.
    pub fn clear_rate(&self) {
        let _ = run(&["tc", "qdisc", "del", "dev", &self.host_if, "root"]);
    }

    /// Drops `pct` percent of the packets reaching the phone, at random.
    pub fn set_loss(&self, pct: u32) {
        self.clear_loss();
        let rules = format!(
            "table inet lsd_impair {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    numgen random mod 100 < {pct} drop\n  }}\n}}\n"
        );
        let file = std::env::temp_dir().join(format!("{}.nft", self.ns));
        std::fs::write(&file, rules).unwrap();
        run(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            "nft",
            "-f",
            file.to_str().unwrap(),
        ])
        .unwrap();
        let _ = std::fs::remove_file(file);
    }

    pub fn clear_loss(&self) {
        let _ = run(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            "nft",
            "delete",
            "table",
            "inet",
            "lsd_impair",
        ]);
    }

    /// A handle on the phone's namespace that other threads can keep.
    pub fn netns(&self) -> Netns {
        Netns(self.ns.clone())
    }

    /// A TCP connection made from inside the phone's namespace.
    pub fn connect(
        &self,
        to: std::net::SocketAddr,
        timeout: std::time::Duration,
    ) -> std::io::Result<std::net::TcpStream> {
        self.netns().connect(to, timeout)
    }

    /// A command that runs inside the phone's namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }
}

/// A network namespace by name (it is not removed when this is dropped).
#[derive(Debug, Clone)]
pub struct Netns(pub String);

impl Netns {
    /// A TCP connection made from inside the namespace (the socket stays
    /// there): a thread enters the namespace, connects and ends.
    pub fn connect(
        &self,
        to: std::net::SocketAddr,
        timeout: std::time::Duration,
    ) -> std::io::Result<std::net::TcpStream> {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path)?;
                // SAFETY: setns(2) on an open namespace file; it changes only
                // this short-lived thread's network namespace.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                std::net::TcpStream::connect_timeout(&to, timeout)
            })
            .join()
            .expect("the connecting thread")
        })
    }
}

/// Removes the phone links of test processes that died without dropping
/// theirs (killed, or aborted): their namespaces and host-side interfaces.
fn sweep_dead_links() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let ns = line.split_whitespace().next().unwrap_or("");
        let Some((pid, n)) = ns
            .strip_prefix("lsd-phone-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| Some((pid.parse::<u32>().ok()?, n.parse::<u32>().ok()?)))
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("removing phone link {ns}, left behind by process {pid}");
        let _ = run(&["ip", "netns", "del", ns]);
        let _ = run(&["ip", "link", "del", &format!("lsdh{}x{n}", pid % 10_000)]);
    }
}

impl Drop for PhoneLink {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair and the nft table with it.
        let _ = run(&["ip", "netns", "del", &self.ns]);
        let _ = run(&["ip", "link", "del", &self.host_if]);
    }
}
