//! An HTTP/1.1 request head: read, parsed (with httparse) and bounded in
//! size. Shared by the server and the camera emulator.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest request head accepted (431 beyond).
pub const MAX_REQUEST: usize = 8192;

/// A parsed request head: its line and the few headers a route needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub authorization: Option<String>,
}

/// The origin form (`/path?query`) of a request target; the absolute form
/// (`http://host/path?query`, RFC 9112 section 3.2.2) is accepted too.
pub fn origin_form(target: &str) -> String {
    let scheme = ["http://", "https://"]
        .into_iter()
        .find(|s| target.len() >= s.len() && target[..s.len()].eq_ignore_ascii_case(s));
    let Some(scheme) = scheme else {
        return target.to_string();
    };
    let rest = &target[scheme.len()..];
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].to_string(),
        Some(i) => format!("/{}", &rest[i..]),
        None => "/".to_string(),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    Incomplete,
    TooLarge,
    Bad(String),
}

/// Parses a request head; pure, for unit tests.
pub fn parse_request(buf: &[u8]) -> Result<Request, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let target = origin_form(req.path.unwrap_or("/"));
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (target, None),
            };
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .map(|v| v.trim().to_string())
            };
            Ok(Request {
                method: req.method.unwrap_or("").to_string(),
                path,
                query,
                host: header("host"),
                origin: header("origin"),
                authorization: header("authorization"),
            })
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST => Err(ParseError::TooLarge),
        Ok(httparse::Status::Partial) => Err(ParseError::Incomplete),
        Err(httparse::Error::TooManyHeaders) => Err(ParseError::TooLarge),
        Err(e) => Err(ParseError::Bad(e.to_string())),
    }
}

/// The value of `key` in a query string (`a=1&b=2`), undecoded.
pub fn query_value<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Reads one request head from `sock`; bounded by `MAX_REQUEST` bytes.
pub async fn read_request(sock: &mut (impl AsyncRead + Unpin)) -> Result<Request, ParseError> {
    let mut buf = Vec::with_capacity(1024);
    let mut tmp = [0u8; 1024];
    loop {
        let n = sock
            .read(&mut tmp)
            .await
            .map_err(|e| ParseError::Bad(e.to_string()))?;
        if n == 0 {
            return Err(ParseError::Bad(
                "connection closed before a full request".into(),
            ));
        }
        buf.extend_from_slice(&tmp[..n]);
        match parse_request(&buf) {
            Err(ParseError::Incomplete) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_player_request() {
        let r =
            parse_request(b"GET /stream.ts?x=1 HTTP/1.1\r\nHost: pi\r\nUser-Agent: VLC\r\n\r\n")
                .unwrap();
        assert_eq!(
            r,
            Request {
                method: "GET".into(),
                path: "/stream.ts".into(),
                query: Some("x=1".into()),
                host: Some("pi".into()),
                ..Request::default()
            }
        );
    }

    #[test]
    fn absolute_form_targets_are_accepted() {
        for (target, path, query) in [
            ("http://192.168.4.1:8080/stream.ts", "/stream.ts", None),
            ("HTTP://pi/rung?set=1", "/rung", Some("set=1")),
            ("http://pi", "/", None),
            ("http://pi?x=1", "/", Some("x=1")),
            ("https://pi/status", "/status", None),
            ("/plain", "/plain", None),
        ] {
            let r = parse_request(format!("GET {target} HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
            assert_eq!(
                (r.path.as_str(), r.query.as_deref()),
                (path, query),
                "{target}"
            );
        }
    }

    #[test]
    fn incomplete_bad_and_oversized_requests() {
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost"),
            Err(ParseError::Incomplete)
        );
        assert!(matches!(
            parse_request(b"\x00\x01 nonsense\r\n\r\n"),
            Err(ParseError::Bad(_))
        ));
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_REQUEST + 10, b'a');
        assert_eq!(parse_request(&huge), Err(ParseError::TooLarge));
    }

    #[test]
    fn query_values_are_found_by_key() {
        assert_eq!(query_value(Some("a=1&client=xy"), "client"), Some("xy"));
        assert_eq!(query_value(Some("xclient=1"), "client"), None);
        assert_eq!(query_value(None, "client"), None);
    }
}
