//! Writing an HTTP/1.1 answer and closing: one reason table and one head
//! writer for the server and the camera emulator, and the linger that keeps
//! an answer from being destroyed by a reset.

use crate::status::Counters;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A whole non-stream answer (the largest is the player script) must be written within this.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long, and how much, to read after answering an unfinished request.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;

/// The reason phrase of a status code.
pub fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// The head of an answer with `Connection: close`. `extra` headers replace
/// the default `Content-Length` (of `body_len`) and `Cache-Control: no-store`
/// when they name them.
pub fn head(code: u16, content_type: &str, body_len: usize, extra: &[(&str, &str)]) -> String {
    let has = |name: &str| extra.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\n",
        reason(code)
    );
    if !has("Content-Length") {
        head.push_str(&format!("Content-Length: {body_len}\r\n"));
    }
    if !has("Cache-Control") {
        head.push_str("Cache-Control: no-store\r\n");
    }
    head.push_str("Connection: close\r\n");
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Writes a whole answer and shuts the connection down, within a time bound.
pub async fn write(
    sock: &mut (impl AsyncWrite + Unpin),
    code: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    let head = head(code, content_type, body.len(), extra);
    let write = async {
        sock.write_all(head.as_bytes()).await?;
        sock.write_all(body).await?;
        sock.shutdown().await
    };
    tokio::time::timeout(RESPONSE_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// `write`, counted by status code.
pub async fn respond(
    counters: &Counters,
    sock: &mut (impl AsyncWrite + Unpin),
    code: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> std::io::Result<()> {
    counters.response(code);
    write(sock, code, content_type, body, extra).await
}

/// A 405 naming the methods the route takes.
pub async fn method_not_allowed(
    counters: &Counters,
    sock: &mut (impl AsyncWrite + Unpin),
    allow: &str,
) -> std::io::Result<()> {
    respond(
        counters,
        sock,
        405,
        "text/plain",
        b"method not allowed\n",
        &[("Allow", allow)],
    )
    .await
}

/// After an answer to a request we did not read in full: keep reading (and
/// dropping) what the client still sends for a moment, so that closing does not
/// reset the connection and destroy the answer before the client has read it.
pub async fn linger(sock: &mut (impl AsyncRead + Unpin)) {
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_length_cache_and_close_unless_replaced() {
        let h = head(404, "text/plain", 10, &[]);
        assert_eq!(
            h,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        );
        let h = head(200, "text/css", 3, &[("Cache-Control", "max-age=60")]);
        assert!(h.contains("Cache-Control: max-age=60\r\n") && !h.contains("no-store"));
        assert_eq!(reason(401), "Unauthorized");
    }
}
