//! Who may steer the daemon over HTTP (`POST /rung`), and what they asked
//! for. Pure: the request head, the peer and the configured token in, a
//! verdict out.

use crate::http::request::{query_value, Request};
use std::net::IpAddr;

/// Whether a `POST /rung` may change the rung (pure): never for a page of
/// another origin (any web page a phone opens could otherwise send it); with
/// `token` set, only with `Authorization: Bearer <token>`; without one, only
/// from the Pi itself. Refusals carry their status code and reason.
pub fn control_allowed(
    req: &Request,
    peer: IpAddr,
    token: Option<&str>,
) -> Result<(), (u16, &'static str)> {
    if let Some(origin) = &req.origin {
        let own = req
            .host
            .as_deref()
            .is_some_and(|h| origin.eq_ignore_ascii_case(&format!("http://{h}")));
        if !own {
            return Err((403, "control from a page of another origin is refused"));
        }
    }
    match token {
        Some(token) => {
            let given = req
                .authorization
                .as_deref()
                .and_then(|a| a.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            match given {
                Some(t) if same_secret(t, token) => Ok(()),
                _ => Err((
                    401,
                    "control needs Authorization: Bearer <server.control_token>",
                )),
            }
        }
        None if peer.to_canonical().is_loopback() => Ok(()),
        None => Err((
            403,
            "control is accepted only from the Pi itself unless server.control_token is set",
        )),
    }
}

/// Compares a given secret with the configured one in time that does not
/// depend on where they differ.
fn same_secret(given: &str, secret: &str) -> bool {
    let (a, b) = (given.as_bytes(), secret.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `?set=N` or `?set=auto` of a `POST /rung`: Some(pin) or None for automatic.
pub fn rung_request(query: Option<&str>) -> Result<Option<usize>, &'static str> {
    match query_value(query, "set") {
        Some("auto") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| "use ?set=N (a rung number) or ?set=auto"),
        None => Err("use ?set=N (a rung number) or ?set=auto"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(origin: Option<&str>, auth: Option<&str>) -> Request {
        Request {
            method: "POST".into(),
            path: "/rung".into(),
            query: Some("set=1".into()),
            host: Some("192.168.4.1:8080".into()),
            origin: origin.map(str::to_string),
            authorization: auth.map(str::to_string),
        }
    }

    #[test]
    fn control_without_a_token_is_for_the_pi_itself() {
        let phone: IpAddr = "192.168.4.7".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(control_allowed(&control(None, None), local, None), Ok(()));
        assert_eq!(
            control_allowed(
                &control(None, None),
                "::ffff:127.0.0.1".parse().unwrap(),
                None
            ),
            Ok(())
        );
        assert_eq!(
            control_allowed(&control(None, None), phone, None)
                .unwrap_err()
                .0,
            403
        );
    }

    #[test]
    fn control_with_a_token_needs_the_bearer_token() {
        let phone: IpAddr = "192.168.4.7".parse().unwrap();
        let token = Some("0123456789abcdef");
        let ok = control(None, Some("Bearer 0123456789abcdef"));
        assert_eq!(control_allowed(&ok, phone, token), Ok(()));
        let lower = control(None, Some("bearer 0123456789abcdef"));
        assert_eq!(control_allowed(&lower, phone, token), Ok(()));
        for bad in [
            None,
            Some("Bearer 0123456789abcdeX"),
            Some("Basic 0123456789abcdef"),
            Some("Bearer"),
        ] {
            assert_eq!(
                control_allowed(&control(None, bad), phone, token)
                    .unwrap_err()
                    .0,
                401,
                "{bad:?}"
            );
        }
        // The token is needed from loopback too.
        assert_eq!(
            control_allowed(&control(None, None), "127.0.0.1".parse().unwrap(), token)
                .unwrap_err()
                .0,
            401
        );
    }

    #[test]
    fn control_from_another_origin_is_refused_even_with_the_token() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let auth = Some("Bearer 0123456789abcdef");
        let token = Some("0123456789abcdef");
        for origin in ["http://evil.example", "null", "http://192.168.4.1:9090"] {
            assert_eq!(
                control_allowed(&control(Some(origin), auth), local, token)
                    .unwrap_err()
                    .0,
                403,
                "{origin}"
            );
        }
        let own = control(Some("http://192.168.4.1:8080"), auth);
        assert_eq!(control_allowed(&own, local, token), Ok(()));
    }

    #[test]
    fn rung_requests_are_parsed() {
        assert_eq!(rung_request(Some("set=2")), Ok(Some(2)));
        assert_eq!(rung_request(Some("x=1&set=auto")), Ok(None));
        assert!(rung_request(Some("set=two")).is_err());
        assert!(rung_request(Some("setx=1")).is_err());
        assert!(rung_request(None).is_err());
    }
}
