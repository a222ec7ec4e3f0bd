//! What `GET /metrics` shows (DESIGN.md §3), in the OpenMetrics text format that Prometheus
//! scrapes. One registry per process (tests run several apps in one process, each its own).
//! Counters are counted where things happen; the queue's depth and age are read at scrape time.
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::Channel;

/// One label: its name and value.
type Label<V> = [(&'static str, V); 1];
/// Two labels.
type Labels2 = [(&'static str, &'static str); 2];

/// Seconds from a lead's arrival to its alert's send (and of one provider call): 50 ms to 5 min.
const LATENCY_BUCKETS: [f64; 12] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

fn histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

pub struct Metrics {
    registry: Mutex<Registry>,
    webhook_requests: Family<Label<u16>, Counter>,
    events: Family<Label<&'static str>, Counter>,
    deliveries: Family<Labels2, Counter>,
    retries: Family<Label<&'static str>, Counter>,
    give_ups: Family<Label<&'static str>, Counter>,
    lead_to_send: Family<Label<&'static str>, Histogram, fn() -> Histogram>,
    provider: Family<Label<&'static str>, Histogram, fn() -> Histogram>,
    sign_in_failures: Counter,
    sign_in_throttled: Counter,
    queue_depth: Gauge,
    oldest_pending: Gauge,
    waiting: Gauge,
}

/// What a delivery came to, as counted.
#[derive(Debug, Clone, Copy)]
pub enum Ended {
    Sent,
    /// Carried by another message (a summary, the latest update of a lead).
    Merged,
    /// Refused for good by the provider.
    Failed,
    /// Retried until the give-up time, then given up.
    Dead,
}

impl Ended {
    fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Merged => "merged",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kai");
        let webhook_requests = Family::default();
        registry.register("webhook_requests", "Webhook requests from Kai, by HTTP status", webhook_requests.clone());
        let events = Family::default();
        registry.register("events", "Events accepted from the webhook and stored, by type", events.clone());
        let deliveries = Family::default();
        registry.register(
            "deliveries",
            "Deliveries that ended, by channel and outcome (sent, merged, failed, dead)",
            deliveries.clone(),
        );
        let retries = Family::default();
        registry.register(
            "delivery_retries",
            "Sends that failed for now and will be retried, by channel",
            retries.clone(),
        );
        let give_ups = Family::default();
        registry.register(
            "delivery_give_ups",
            "Deliveries given up after retrying until the give-up time",
            give_ups.clone(),
        );
        let lead_to_send = Family::new_with_constructor(histogram as fn() -> Histogram);
        registry.register_with_unit(
            "lead_to_send",
            "From the event's arrival to its alert's send, by channel (alerts not held back)",
            Unit::Seconds,
            lead_to_send.clone(),
        );
        let provider = Family::new_with_constructor(histogram as fn() -> Histogram);
        registry.register_with_unit(
            "provider_call",
            "One call to the mail server (email), the SMS API (sms) or the inbox (in_app)",
            Unit::Seconds,
            provider.clone(),
        );
        let sign_in_failures = Counter::default();
        registry.register(
            "sign_in_failures",
            "Sign-ins refused for a wrong email or password",
            sign_in_failures.clone(),
        );
        let sign_in_throttled = Counter::default();
        registry.register("sign_in_throttled", "Sign-ins refused for too many attempts", sign_in_throttled.clone());
        let queue_depth = Gauge::default();
        registry.register("queue_depth", "Deliveries due: to be sent now, or being sent", queue_depth.clone());
        let oldest_pending = Gauge::default();
        registry.register_with_unit(
            "oldest_pending_age",
            "How long the oldest due delivery has been due (0 when none)",
            Unit::Seconds,
            oldest_pending.clone(),
        );
        let waiting = Gauge::default();
        registry.register(
            "waiting",
            "Deliveries waiting for a later time: held back (quiet hours, daily summaries, update windows) or a retry's turn",
            waiting.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            webhook_requests,
            events,
            deliveries,
            retries,
            give_ups,
            lead_to_send,
            provider,
            sign_in_failures,
            sign_in_throttled,
            queue_depth,
            oldest_pending,
            waiting,
        }
    }

    pub fn webhook_request(&self, status: u16) {
        self.webhook_requests.get_or_create(&[("status", status)]).inc();
    }

    /// An event stored from the webhook; `type_name` is one this version knows, or "unknown".
    pub fn event(&self, type_name: &'static str) {
        self.events.get_or_create(&[("type", type_name)]).inc();
    }

    pub fn delivery(&self, channel: Channel, ended: Ended) {
        self.deliveries.get_or_create(&[("channel", channel.code()), ("outcome", ended.label())]).inc();
        if let Ended::Dead = ended {
            self.give_ups.get_or_create(&[("channel", channel.code())]).inc();
        }
    }

    pub fn retry(&self, channel: Channel) {
        self.retries.get_or_create(&[("channel", channel.code())]).inc();
    }

    /// A send that went `seconds` after its event arrived.
    pub fn lead_to_send(&self, channel: Channel, seconds: f64) {
        self.lead_to_send.get_or_create(&[("channel", channel.code())]).observe(seconds);
    }

    pub fn provider_call(&self, channel: Channel, seconds: f64) {
        self.provider.get_or_create(&[("channel", channel.code())]).observe(seconds);
    }

    pub fn sign_in_failed(&self) {
        self.sign_in_failures.inc();
    }

    pub fn sign_in_throttled(&self) {
        self.sign_in_throttled.inc();
    }

    /// The text of a scrape in the classic Prometheus text format (0.0.4), for scrapers that do
    /// not ask for OpenMetrics: counters named with their `_total`, no `# UNIT` or `# EOF`.
    pub fn render_prometheus(&self, queue: (i64, f64, i64)) -> String {
        to_prometheus_text(&self.render(queue))
    }

    /// The text of a scrape (OpenMetrics), with the queue as read now: deliveries due, how long
    /// the oldest of them has been due (seconds), and those waiting for a later time.
    pub fn render(&self, queue: (i64, f64, i64)) -> String {
        let (depth, oldest, waiting) = queue;
        self.queue_depth.set(depth);
        self.oldest_pending.set(oldest.round() as i64);
        self.waiting.set(waiting);
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &registry);
        text
    }
}

/// OpenMetrics text as the classic Prometheus text format: a counter family `x` is `x_total`
/// in its `# HELP` and `# TYPE` lines, as its samples are; `# UNIT` and `# EOF` go.
fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(&name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        text.push_str(renamed.as_deref().unwrap_or(line));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_names_each_count_with_its_labels() {
        let m = Metrics::new();
        m.webhook_request(202);
        m.webhook_request(202);
        m.event("lead.created");
        m.delivery(Channel::Sms, Ended::Dead);
        m.lead_to_send(Channel::Email, 0.3);
        let text = m.render((3, 12.4, 1));
        assert!(text.contains("kai_webhook_requests_total{status=\"202\"} 2"), "{text}");
        assert!(text.contains("kai_deliveries_total{channel=\"sms\",outcome=\"dead\"} 1"), "{text}");
        assert!(text.contains("kai_delivery_give_ups_total{channel=\"sms\"} 1"), "{text}");
        assert!(text.contains("kai_lead_to_send_seconds_count{channel=\"email\"} 1"), "{text}");
        assert!(text.contains("kai_queue_depth 3"), "{text}");
        assert!(text.contains("kai_oldest_pending_age_seconds 12"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        let classic = to_prometheus_text(&text);
        assert!(classic.contains("# TYPE kai_webhook_requests_total counter\n"), "{classic}");
        assert!(classic.contains("# HELP kai_webhook_requests_total Webhook requests"), "{classic}");
        assert!(classic.contains("# TYPE kai_queue_depth gauge\n"), "{classic}");
        assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"), "{classic}");
    }
}
