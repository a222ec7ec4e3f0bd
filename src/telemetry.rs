use tracing_subscriber::EnvFilter;

use crate::config::ConfigError;

pub const DEFAULT_FILTER: &str = "info,sqlx=warn,actix_http::h1::dispatcher=off";

/// Logs to stderr; `RUST_LOG` chooses what (default: info, quieter for sqlx and client errors).
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
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    Ok(())
}
