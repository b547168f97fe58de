//! A minimal HTTP/1.1 client: one GET, `Connection: close`, bounded in time
//! and size. The camera control loop talks to the GoPro with it.

use crate::VERSION;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most of an answer that is read.
const MAX_REPLY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Parses a complete or partial answer; `None` while the head is incomplete.
/// Returns the status, the head's length and the Content-Length if given.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, Option<usize>)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let length = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| v.trim().parse().ok());
            Ok(Some((resp.code.unwrap_or(0), len, length)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("bad HTTP answer: {e}")),
    }
}

/// `GET target` from `addr`; any status is a `Reply`, only transport failures are errors.
pub async fn http_get(addr: SocketAddr, target: &str, timeout: Duration) -> Result<Reply, String> {
    let exchange = async {
        let mut sock = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: livestreamd/{VERSION}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        sock.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send to {addr}: {e}"))?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading from {addr}: {e}"))?;
            buf.extend_from_slice(&chunk[..n]);
            let head = parse_head(&buf)?;
            let done = match head {
                Some((_, len, Some(body))) => buf.len() >= len + body,
                _ => n == 0 || buf.len() >= MAX_REPLY,
            };
            if done {
                return match head {
                    Some((status, len, body)) => {
                        let end = body.map_or(buf.len(), |b| (len + b).min(buf.len()));
                        Ok(Reply {
                            status,
                            body: String::from_utf8_lossy(&buf[len..end]).trim().to_string(),
                        })
                    }
                    None => Err(format!("{addr} closed the connection without an answer")),
                };
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer from {addr} within {:.1} s",
                timeout.as_secs_f64()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_heads_are_parsed() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_head(full).unwrap(), Some((200, 38, Some(2))));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-").unwrap(), None);
        assert_eq!(
            parse_head(b"HTTP/1.0 404 Not Found\r\n\r\n").unwrap(),
            Some((404, 26, None))
        );
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn client_reads_a_reply_and_times_out_on_silence() {
        use tokio::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // First connection: a proper answer. Second: accept and say nothing.
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 500 Internal\r\nContent-Length: 13\r\n\r\n{\"error\":\"x\"}\n")
                .await
                .unwrap();
            let (_silent, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            req
        });
        let r = http_get(addr, "/gopro/camera/keep_alive", Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(r.body, "{\"error\":\"x\"}");
        let e = http_get(addr, "/x", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("no answer"), "{e}");
        let req = server.await.unwrap();
        assert!(
            req.starts_with("GET /gopro/camera/keep_alive HTTP/1.1\r\n"),
            "{req}"
        );
        assert!(req.contains(&format!("Host: {addr}\r\n")), "{req}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn client_reports_a_refused_connection_at_once() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = http_get(addr, "/", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(e.contains("cannot connect"), "{e}");
    }
}
