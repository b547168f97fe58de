//! The vendored scripts (the player, the QR encoder) are embedded
//! gzip-compressed (a smaller binary) and served as such; each compressed copy
//! must be the vendored file.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

const VENDORED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/web/vendor/mpegts.js/mpegts.js"
);
const QR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/web/vendor/qrcode-generator/qrcode.js"
);

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "valid gzip");
    out.stdout
}

#[test]
fn the_compressed_scripts_are_the_vendored_files() {
    for file in [VENDORED, QR] {
        let gz = std::fs::read(format!("{file}.gz")).unwrap();
        assert!(
            gunzip(&gz) == std::fs::read(file).unwrap(),
            "regenerate with: gzip -9n -c {file} > {file}.gz"
        );
    }
}

#[test]
fn the_player_is_served_gzip_encoded() {
    let (_dir, daemon) = Daemon::small_demo("web-assets", "");
    let r = wait_until(
        "the daemon to answer",
        std::time::Duration::from_secs(5),
        || http_get(daemon.http, "/vendor/mpegts-1.8.2.js").ok(),
    );
    assert_eq!(r.code, 200);
    assert_eq!(r.header("Content-Encoding"), Some("gzip"));
    assert!(gunzip(&r.body) == std::fs::read(VENDORED).unwrap());
    let r = http_get(daemon.http, "/vendor/qrcode-generator-2.0.4.js").unwrap();
    assert_eq!((r.code, r.header("Content-Encoding")), (200, Some("gzip")));
    assert!(gunzip(&r.body) == std::fs::read(QR).unwrap());
    for path in ["/diag.js", "/vendor/LICENSE.qrcode-generator.txt"] {
        assert_eq!(http_get(daemon.http, path).unwrap().code, 200, "{path}");
    }
}
