//! Where a GoPro can be, for `kind = "auto"`: the configured address (then only there); else the
//! peer of each USB network link, then the camera's own Wi-Fi access point, 10.5.5.9.
//!
//! A USB link is found from the kernel: an interface in `/sys/class/net` whose `device` resolves
//! under a USB bus (`…/usbN/…`, whatever its driver: cdc_ncm, cdc_ether, rndis_host). Its peer is
//! the link's DHCP server, which an Open GoPro camera is: systemd-networkd writes it into
//! `/run/systemd/netif/leases/IFINDEX` as `SERVER_ADDRESS=`. Without a lease file (another DHCP
//! client, a static address), an interface address of the camera's wired form 172.2X.1YZ.N
//! gives the camera at 172.2X.1YZ.51 (Open GoPro: "the camera's IP is 172.2X.1YZ.51").
//! The kernel is asked each round, so a camera plugged in later is found without a restart.

use crate::camera::models::{is_wired_address, Transport};
use crate::config::{Camera as CameraConfig, GOPRO_ADDRESS};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// An address worth asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub ip: IpAddr,
    pub transport: Transport,
    /// How it was found, for `/status`.
    pub found_by: String,
}

/// Where the kernel's and networkd's views are read (other roots in tests).
#[derive(Debug, Clone)]
pub struct Host {
    pub sys_class_net: PathBuf,
    pub networkd_leases: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            sys_class_net: PathBuf::from("/sys/class/net"),
            networkd_leases: PathBuf::from("/run/systemd/netif/leases"),
        }
    }
}

/// One USB network interface and what says where its camera is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbLink {
    pub name: String,
    pub addrs: Vec<Ipv4Addr>,
    /// The DHCP server networkd's lease names.
    pub dhcp_server: Option<Ipv4Addr>,
}

/// Whether `iface` sits on a USB bus: its `device` resolves through a `usbN` directory.
fn on_usb(sys_class_net: &Path, iface: &str) -> bool {
    std::fs::canonicalize(sys_class_net.join(iface).join("device")).is_ok_and(|p| {
        p.components().any(|c| {
            c.as_os_str().to_str().is_some_and(|s| {
                s.strip_prefix("usb")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
    })
}

/// `SERVER_ADDRESS=` of a networkd lease file.
fn lease_server(text: &str) -> Option<Ipv4Addr> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("SERVER_ADDRESS="))
        .and_then(|v| v.trim().parse().ok())
}

/// The USB network links, given every interface's IPv4 addresses.
pub fn usb_links(host: &Host, addrs: &BTreeMap<String, Vec<Ipv4Addr>>) -> Vec<UsbLink> {
    let Ok(dir) = std::fs::read_dir(&host.sys_class_net) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| on_usb(&host.sys_class_net, n))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let ifindex = std::fs::read_to_string(host.sys_class_net.join(&name).join("ifindex"))
                .unwrap_or_default();
            let dhcp_server = std::fs::read_to_string(host.networkd_leases.join(ifindex.trim()))
                .ok()
                .filter(|_| !ifindex.trim().is_empty())
                .and_then(|t| lease_server(&t));
            UsbLink {
                addrs: addrs.get(&name).cloned().unwrap_or_default(),
                name,
                dhcp_server,
            }
        })
        .collect()
}

/// The candidates of a USB link: its DHCP server, and the wired-form peer of its addresses.
fn link_candidates(link: &UsbLink) -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(server) = link.dhcp_server {
        out.push(Candidate {
            ip: IpAddr::V4(server),
            transport: Transport::Usb,
            found_by: format!("USB link {}: its DHCP server (networkd lease)", link.name),
        });
    }
    for a in &link.addrs {
        let [x, y, z, _] = a.octets();
        let camera = Ipv4Addr::new(x, y, z, 51);
        if *a != camera && is_wired_address(IpAddr::V4(camera)) {
            out.push(Candidate {
                ip: IpAddr::V4(camera),
                transport: Transport::Usb,
                found_by: format!(
                    "USB link {}: 172.2X.1YZ.51 beside its address {a}",
                    link.name
                ),
            });
        }
    }
    out
}

/// Every address to ask, in order, without repeats.
pub fn candidates(cfg: &CameraConfig, links: &[UsbLink]) -> Vec<Candidate> {
    if let Some(ip) = cfg.address {
        return vec![Candidate {
            ip,
            transport: Transport::of_address(ip),
            found_by: "the configured address".to_string(),
        }];
    }
    let mut out: Vec<Candidate> = Vec::new();
    let wifi = Candidate {
        ip: GOPRO_ADDRESS,
        transport: Transport::Wifi,
        found_by: "the camera's Wi-Fi (10.5.5.9)".to_string(),
    };
    for c in links.iter().flat_map(link_candidates).chain([wifi]) {
        if !out.iter().any(|o| o.ip == c.ip) {
            out.push(c);
        }
    }
    out
}

/// Every interface's IPv4 addresses, from the kernel.
pub fn interface_addrs() -> BTreeMap<String, Vec<Ipv4Addr>> {
    let mut map: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if let Some(v4) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                map.entry(a.interface_name.clone())
                    .or_default()
                    .push(v4.ip());
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A sysfs-like tree: `usb0` on a USB bus, `eth0` on PCI, with a networkd lease for usb0.
    fn fake_host(name: &str) -> Host {
        let root = std::env::temp_dir().join(format!("lsd-discover-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let devices = root.join("devices");
        let usb_dev = devices.join("platform/soc/usb1/1-1/1-1:1.0");
        let pci_dev = devices.join("pci0000:00/0000:00:03.0/virtio2");
        let net = root.join("class/net");
        let leases = root.join("leases");
        for d in [&usb_dev, &pci_dev, &net, &leases] {
            std::fs::create_dir_all(d).unwrap();
        }
        for (iface, dev, index) in [("usb0", &usb_dev, "7"), ("eth0", &pci_dev, "2")] {
            let dir = net.join(iface);
            std::fs::create_dir_all(&dir).unwrap();
            symlink(dev, dir.join("device")).unwrap();
            std::fs::write(dir.join("ifindex"), format!("{index}\n")).unwrap();
        }
        std::fs::create_dir_all(net.join("lo")).unwrap();
        std::fs::write(
            leases.join("7"),
            "# This is private data. Do not parse.\nADDRESS=172.21.145.50\nSERVER_ADDRESS=172.21.145.51\nROUTER=172.21.145.51\n",
        )
        .unwrap();
        Host {
            sys_class_net: net,
            networkd_leases: leases,
        }
    }

    fn addrs(list: &[(&str, &str)]) -> BTreeMap<String, Vec<Ipv4Addr>> {
        let mut m: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
        for (i, a) in list {
            m.entry(i.to_string()).or_default().push(a.parse().unwrap());
        }
        m
    }

    #[test]
    fn usb_links_are_found_from_the_kernel_and_their_leases() {
        let host = fake_host("links");
        let links = usb_links(
            &host,
            &addrs(&[("usb0", "172.21.145.50"), ("eth0", "10.5.5.100")]),
        );
        assert_eq!(
            links,
            vec![UsbLink {
                name: "usb0".into(),
                addrs: vec!["172.21.145.50".parse().unwrap()],
                dhcp_server: Some("172.21.145.51".parse().unwrap()),
            }]
        );
        let c = candidates(&CameraConfig::default(), &links);
        let ips: Vec<String> = c.iter().map(|c| c.ip.to_string()).collect();
        assert_eq!(
            ips,
            ["172.21.145.51", "10.5.5.9"],
            "one per address, USB first"
        );
        assert!(c[0].found_by.contains("DHCP server"), "{c:?}");
        assert_eq!(c[0].transport, Transport::Usb);
        assert_eq!(c[1].transport, Transport::Wifi);
        // No lease file: the wired form of the link's address.
        std::fs::remove_file(host.networkd_leases.join("7")).unwrap();
        let links = usb_links(&host, &addrs(&[("usb0", "172.28.123.66")]));
        let c = candidates(&CameraConfig::default(), &links);
        assert_eq!(c[0].ip.to_string(), "172.28.123.51");
        assert!(c[0].found_by.contains("beside its address 172.28.123.66"));
        // A USB link of another kind of device (a phone's tethering): only its DHCP server.
        let links = usb_links(&host, &addrs(&[("usb0", "192.168.42.129")]));
        let c = candidates(&CameraConfig::default(), &links);
        assert_eq!(c.len(), 1, "{c:?}");
        let _ = std::fs::remove_dir_all(host.sys_class_net.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn a_configured_address_is_the_only_candidate() {
        let cfg = CameraConfig {
            address: Some("172.20.100.51".parse().unwrap()),
            ..CameraConfig::default()
        };
        let c = candidates(&cfg, &[]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].transport, Transport::Usb);
        assert_eq!(c[0].found_by, "the configured address");
        let c = candidates(&CameraConfig::default(), &[]);
        assert_eq!(c[0].ip, GOPRO_ADDRESS);
    }

    #[test]
    fn lease_files_name_their_server() {
        assert_eq!(
            lease_server("ADDRESS=1.2.3.4\nSERVER_ADDRESS=172.22.111.51\n"),
            Some("172.22.111.51".parse().unwrap())
        );
        assert_eq!(lease_server("ADDRESS=1.2.3.4\n"), None);
        assert_eq!(lease_server("SERVER_ADDRESS=nonsense\n"), None);
    }

    #[test]
    fn the_kernel_lists_loopback() {
        assert!(interface_addrs()
            .values()
            .flatten()
            .any(|a| a.is_loopback()));
    }
}
