//! The field network as the image set it up: `/run/livestream/network.json`,
//! written by the images' `livestream-net` (the phones' access point, which
//! Wi-Fi chip carries it and why, its name and password, the Pi's address,
//! short name and page, the camera's link; docs/IMAGES.md lists the fields).
//! The daemon only reads it: `/status` shows it as `network`, and the
//! captive-portal answers send phones to its `page`.
//!
//! The file is re-read only when it changed (inode, size or modification
//! time), and never beyond `MAX_BYTES`: whatever is in it, the daemon's memory
//! stays bounded. No file (not an image, or not written yet), an oversized
//! one or one that is not a JSON object is `None`, with one log line per
//! change of the file, never one per request.

use log::warn;
use serde_json::Value;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where the images write it.
pub const DEFAULT_PATH: &str = "/run/livestream/network.json";
/// Another path (tests, a development machine).
pub const PATH_ENV: &str = "LIVESTREAMD_NETWORK_FILE";
/// A larger file is not read at all (the images write about 1 KiB).
pub const MAX_BYTES: u64 = 16 * 1024;
/// The longest `page` URL used in a redirect.
const MAX_PAGE: usize = 200;

/// The status file and what was last read from it.
#[derive(Debug)]
pub struct NetworkFile {
    path: PathBuf,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    /// Inode, size and modification time (ns) of what `value` came from.
    stamp: Option<(u64, u64, i128)>,
    value: Option<Arc<Value>>,
}

impl NetworkFile {
    pub fn new(path: impl Into<PathBuf>) -> NetworkFile {
        NetworkFile {
            path: path.into(),
            cache: Mutex::default(),
        }
    }

    /// `$LIVESTREAMD_NETWORK_FILE`, or the images' path.
    pub fn from_env() -> NetworkFile {
        let path = std::env::var_os(PATH_ENV)
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_PATH), PathBuf::from);
        NetworkFile::new(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's JSON object as it is now, if there is a valid one.
    pub fn read(&self) -> Option<Value> {
        self.shared().map(|v| (*v).clone())
    }

    /// `read` without a copy.
    fn shared(&self) -> Option<Arc<Value>> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) if m.is_file() => m,
            _ => {
                *self.cache.lock().unwrap() = Cache::default();
                return None;
            }
        };
        let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let stamp = (meta.ino(), meta.len(), mtime);
        let mut cache = self.cache.lock().unwrap();
        if cache.stamp == Some(stamp) {
            return cache.value.clone();
        }
        let value = load(&self.path, meta.len()).map(Arc::new);
        *cache = Cache {
            stamp: Some(stamp),
            value: value.clone(),
        };
        value
    }

    /// The phones' page (`page`), when the file names a plain `http://` URL
    /// that is safe to put in a `Location` header and an HTML attribute.
    pub fn page(&self) -> Option<String> {
        let network = self.shared()?;
        let page = network.get("page")?.as_str()?;
        safe_page(page).then(|| page.to_string())
    }
}

/// Reads and parses the file; `None` (logged) when it is too large, unreadable
/// or not a JSON object.
fn load(path: &Path, len: u64) -> Option<Value> {
    let shown = path.display();
    if len > MAX_BYTES {
        warn!("network status {shown}: {len} bytes, more than {MAX_BYTES}; not read");
        return None;
    }
    let mut text = Vec::with_capacity(len as usize);
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut text))
        .map_err(|e| e.to_string());
    match read {
        Ok(n) if n as u64 > MAX_BYTES => {
            warn!("network status {shown}: grew beyond {MAX_BYTES} bytes while read; not used");
            None
        }
        Ok(_) => match serde_json::from_slice::<Value>(&text) {
            Ok(v) if v.is_object() => Some(v),
            Ok(_) => {
                warn!("network status {shown}: not a JSON object; not used");
                None
            }
            Err(e) => {
                warn!("network status {shown}: not valid JSON ({e}); not used");
                None
            }
        },
        Err(e) => {
            warn!("network status {shown}: cannot read it: {e}");
            None
        }
    }
}

/// `http://` and then only the characters of a host, port and path: nothing
/// that could end a header line or an HTML attribute, or carry a script.
pub fn safe_page(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    url.len() <= MAX_PAGE
        && !rest.is_empty()
        && !rest.starts_with('/')
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lsd-network-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Writes like the images do: a new file renamed over the old one.
    fn replace(path: &Path, text: &[u8]) {
        let tmp = path.with_extension("tmp");
        std::fs::File::create(&tmp)
            .unwrap()
            .write_all(text)
            .unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn absent_is_none_and_a_new_file_is_seen() {
        let d = dir("absent");
        let f = NetworkFile::new(d.join("network.json"));
        assert!(f.read().is_none());
        replace(
            f.path(),
            br#"{"ssid": "one", "page": "http://livestream.lan/"}"#,
        );
        assert_eq!(f.read().unwrap()["ssid"], "one");
        assert_eq!(f.page().as_deref(), Some("http://livestream.lan/"));
        replace(f.path(), br#"{"ssid": "two"}"#);
        assert_eq!(f.read().unwrap()["ssid"], "two");
        assert_eq!(f.page(), None);
        std::fs::remove_file(f.path()).unwrap();
        assert!(f.read().is_none());
    }

    #[test]
    fn bad_and_oversized_files_are_none() {
        let d = dir("bad");
        let f = NetworkFile::new(d.join("network.json"));
        for bad in [&b"[1, 2]"[..], b"{\"a\": ", b"\xff\xfe", b""] {
            replace(f.path(), bad);
            assert!(f.read().is_none(), "{bad:?}");
        }
        let mut big = b"{\"pad\": \"".to_vec();
        big.resize(MAX_BYTES as usize + 10, b'x');
        big.extend_from_slice(b"\"}");
        replace(f.path(), &big);
        assert!(f.read().is_none());
        // a directory in its place
        std::fs::remove_file(f.path()).unwrap();
        std::fs::create_dir(f.path()).unwrap();
        assert!(f.read().is_none());
    }

    #[test]
    fn only_plain_http_pages_are_used() {
        assert!(safe_page("http://livestream.lan/"));
        assert!(safe_page("http://192.168.4.1:8080/"));
        assert!(safe_page("http://[fd00::1]:8080/live"));
        for bad in [
            "https://livestream.lan/",
            "javascript:alert(1)",
            "http://",
            "http:///etc",
            "http://a.lan/\r\nSet-Cookie: x=1",
            "http://a.lan/\"><script>",
            "http://a.lan/ x",
            "//evil.example/",
        ] {
            assert!(!safe_page(bad), "{bad}");
        }
        assert!(!safe_page(&format!("http://{}/", "a".repeat(MAX_PAGE))));
    }
}
