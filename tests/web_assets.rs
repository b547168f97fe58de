//! The vendored player is embedded gzip-compressed (a smaller binary) and
//! served as such; the compressed copy must be the vendored file.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

const VENDORED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/web/vendor/mpegts.js/mpegts.js"
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
fn the_compressed_player_is_the_vendored_file() {
    let gz = std::fs::read(format!("{VENDORED}.gz")).unwrap();
    assert!(
        gunzip(&gz) == std::fs::read(VENDORED).unwrap(),
        "regenerate with: gzip -9n -c {VENDORED} > {VENDORED}.gz"
    );
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
}
