//! Every request gets an id: in each of its log lines (the `request` span's field) and in its
//! response's `X-Request-Id` header. A trusted proxy's own id is kept, so one id follows a
//! request from the load balancer's log to ours.
use std::net::IpAddr;

use actix_web::dev::ServiceRequest;

pub const HEADER: &str = "x-request-id";

/// An id a proxy may hand us: 1 to 64 letters, digits, `-`, `_` or `.` (nothing that could
/// forge a log line).
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The request's id: its trusted proxy's, or a new random one (16 hex digits).
pub fn of(req: &ServiceRequest, trusted_proxies: &[IpAddr]) -> String {
    let from_proxy = req.peer_addr().is_some_and(|peer| trusted_proxies.contains(&peer.ip()));
    let given = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).filter(|id| from_proxy && acceptable(id));
    match given {
        Some(id) => id.to_owned(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_kept() {
        assert!(acceptable("lb-3f2a.9_x"));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("id\nforged=1"));
        assert!(!acceptable(&"x".repeat(65)));
    }
}
