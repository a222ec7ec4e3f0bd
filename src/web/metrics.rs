//! `GET /metrics`: how alerts flow, for Prometheus. Readable from this machine (loopback), or
//! from anywhere with `Authorization: Bearer {KAI_METRICS_TOKEN}`; nobody else.
use std::net::IpAddr;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, get, web};
use subtle::ConstantTimeEq;

use super::AppState;
use super::throttle::client_address;
use crate::clock::unix_now_ms;
use crate::db;

/// Why a scrape is refused: the status and what to do about it.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub u16, pub &'static str);

/// Whether `client` (the address behind any trusted proxy) may read the metrics, with the bearer
/// token it sent and the one configured. A wrong token is refused even from loopback.
pub fn allowed(client: IpAddr, sent: Option<&str>, configured: Option<&str>) -> Result<(), Refused> {
    match (sent, configured) {
        (Some(sent), Some(token)) if bool::from(sent.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
        (Some(_), _) => Err(Refused(401, "the bearer token is not KAI_METRICS_TOKEN")),
        (None, _) if client.is_loopback() => Ok(()),
        (None, Some(_)) => Err(Refused(401, "send Authorization: Bearer with KAI_METRICS_TOKEN")),
        (None, None) => Err(Refused(403, "only from this machine; set KAI_METRICS_TOKEN to scrape from elsewhere")),
    }
}

#[get("/metrics")]
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let peer = req.peer_addr().map(|a| a.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = client_address(peer, forwarded, &state.config.trusted_proxies);
    let sent = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or("").trim());
    if let Err(Refused(status, why)) = allowed(client, sent, state.config.ops.metrics_token.as_deref()) {
        let status = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
        let mut response = HttpResponse::build(status);
        if status.as_u16() == 401 {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        return response.content_type("text/plain; charset=utf-8").body(format!("metrics: {why}\n"));
    }
    let now = unix_now_ms();
    let queue = match state.db.read().await {
        Ok(mut conn) => db::deliveries::queue(&mut conn, now).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let queue = match queue {
        Ok((due, oldest, held)) => (due, oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0), held),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the queue could not be read");
            return HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "5"))
                .content_type("text/plain; charset=utf-8")
                .body("metrics: the database did not answer; try again shortly\n");
        }
    };
    // Prometheus asks for OpenMetrics; anything else (curl, older scrapers) gets the classic format.
    let openmetrics = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    match openmetrics {
        true => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(state.metrics.render(queue)),
        false => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(state.metrics.render_prometheus(queue)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_or_the_token_and_nobody_else() {
        let (local, far) = (IpAddr::from([127, 0, 0, 1]), IpAddr::from([192, 0, 2, 7]));
        let token = Some("s3cret-token-0123456789");
        assert_eq!(allowed(local, None, None), Ok(()));
        assert_eq!(allowed(IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]), None, token), Ok(()));
        assert_eq!(allowed(far, None, None).unwrap_err().0, 403);
        assert_eq!(allowed(far, None, token).unwrap_err().0, 401);
        assert_eq!(allowed(far, Some("s3cret-token-0123456789"), token), Ok(()));
        assert_eq!(allowed(far, Some("wrong"), token).unwrap_err().0, 401);
        assert_eq!(allowed(local, Some("wrong"), token).unwrap_err().0, 401, "a wrong token is wrong anywhere");
        assert_eq!(allowed(far, Some("anything"), None).unwrap_err().0, 401, "no token set: none is right");
    }
}
