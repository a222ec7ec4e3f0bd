use tracing_subscriber::EnvFilter;

use crate::config::ConfigError;

pub const DEFAULT_FILTER: &str = "info,sqlx=warn,actix_http::h1::dispatcher=off";

/// Logs to stderr; `RUST_LOG` chooses what (default: info, quieter for sqlx and client errors),
/// `KAI_LOG_FORMAT` how: `text` (the default, for people) or `json` (one object per line, for
/// a log store). Each line carries the ids of its request or delivery (their spans' fields).
pub fn init() -> Result<(), ConfigError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v).map_err(|e| ConfigError {
            var: "RUST_LOG",
            problem: format!("\u{201c}{v}\u{201d} is not a log filter such as info or kaicalls_notify=debug ({e})"),
        })?,
        // actix logs a client's malformed HTTP at ERROR ("stream error: request parse error"):
        // anyone could fill the log that way, and nothing on our side is wrong.
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let json = match std::env::var("KAI_LOG_FORMAT").map(|v| v.trim().to_lowercase()) {
        Err(_) => false,
        Ok(v) if v.is_empty() || v == "text" => false,
        Ok(v) if v == "json" => true,
        Ok(v) => {
            return Err(ConfigError {
                var: "KAI_LOG_FORMAT",
                problem: format!("\u{201c}{v}\u{201d} is not a log format: use text or json"),
            });
        }
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match json {
        true => logs.json().flatten_event(true).with_current_span(false).with_span_list(true).init(),
        false => logs.init(),
    }
    Ok(())
}
