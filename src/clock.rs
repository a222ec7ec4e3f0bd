/// Seconds since the Unix epoch, UTC: how every timestamp is stored.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// "Nov 28, 2026 14:05 UTC" for pages and emails.
pub fn format_utc(unix: i64) -> String {
    let format = time::macros::format_description!("[month repr:short] [day padding:none], [year] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| "unknown time".into())
}

/// Milliseconds since the Unix epoch, UTC: for scheduling and measuring deliveries.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::format_utc(1_795_860_000), "Nov 28, 2026 10:00 UTC");
    }
}
