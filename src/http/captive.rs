//! Captive-portal answers. A phone that joins a Wi-Fi network asks a
//! well-known URL whether it reaches the internet (Android `generate_204`,
//! Apple `hotspot-detect.html`, Windows `connecttest.txt`, Firefox
//! `canonical.html`, ...). On the Pi's access point the images' DNS answers
//! every name with the Pi and port 80 is turned into the daemon's port, so
//! those probes arrive here; each is answered with a redirect to the live
//! page, which makes the phone offer "sign in to the network": one tap opens
//! the picture (docs/IMAGES.md: what each phone OS does).
//!
//! The hotspot is not trusted: the target is never taken from the request
//! (no open redirect), only from the image's network status file or, without
//! one, from the address the probe reached; the answer is small and constant.

use crate::http::response::respond;
use crate::http::Context;
use crate::network::safe_page;
use std::net::SocketAddr;
use tokio::io::AsyncWrite;

/// The probe paths of the phone and desktop systems that look for a portal:
/// Android and ChromeOS (`generate_204`, `gen_204`), Apple (`hotspot-detect.html`,
/// the older `library/test/success.html`), Windows (`connecttest.txt`, `ncsi.txt`,
/// and `redirect`, which it opens in the browser), Firefox (`canonical.html`,
/// `success.txt`) and Kindle (`kindle-wifi/wifistub.html`).
const PROBES: [&str; 10] = [
    "/generate_204",
    "/gen_204",
    "/hotspot-detect.html",
    "/library/test/success.html",
    "/connecttest.txt",
    "/ncsi.txt",
    "/redirect",
    "/canonical.html",
    "/success.txt",
    "/kindle-wifi/wifistub.html",
];

/// Whether `path` is one of the probes.
pub fn is_probe(path: &str) -> bool {
    PROBES.contains(&path)
}

/// Where a probe is sent: the image's page when it names a safe one, else
/// the address and port this connection reached (never the Host header).
pub fn target(page: Option<String>, local: SocketAddr) -> String {
    match page {
        Some(p) if safe_page(&p) => p,
        _ => format!("http://{local}/"),
    }
}

/// The body that goes with the redirect, for a client that does not follow it.
pub fn body(target: &str) -> String {
    // `target` passed safe_page or is an address: no character to escape.
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0; url={target}\">\
         <title>livestream</title></head>\
         <body><a href=\"{target}\">Open the live picture</a></body></html>\n"
    )
}

/// Answers one probe: 302 to the page, with a link for the rest.
pub async fn serve(
    sock: &mut (impl AsyncWrite + Unpin),
    ctx: &Context,
    local: SocketAddr,
    head: bool,
) -> std::io::Result<()> {
    let to = target(ctx.network.page(), local);
    let body = body(&to);
    let length = body.len().to_string();
    let sent = if head { "" } else { body.as_str() };
    let extra = [
        ("Location", to.as_str()),
        ("Content-Length", length.as_str()),
    ];
    respond(
        &ctx.counters,
        sock,
        302,
        "text/html; charset=utf-8",
        sent.as_bytes(),
        &extra,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_known_paths_only() {
        assert!(is_probe("/generate_204"));
        assert!(is_probe("/hotspot-detect.html"));
        assert!(!is_probe("/"));
        assert!(!is_probe("/generate_204/x"));
        assert!(!is_probe("/stream.ts"));
    }

    #[test]
    fn the_target_is_the_page_or_the_local_address() {
        let local: SocketAddr = "192.168.4.1:8080".parse().unwrap();
        let page = Some("http://livestream.lan/".to_string());
        assert_eq!(target(page, local), "http://livestream.lan/");
        assert_eq!(target(None, local), "http://192.168.4.1:8080/");
        let evil = Some("http://x/\r\nSet-Cookie: a=b".to_string());
        assert_eq!(target(evil, local), "http://192.168.4.1:8080/");
        let v6: SocketAddr = "[fd00::1]:8080".parse().unwrap();
        assert_eq!(target(None, v6), "http://[fd00::1]:8080/");
        assert!(body("http://livestream.lan/").contains("url=http://livestream.lan/\""));
    }
}
