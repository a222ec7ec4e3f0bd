//! The words of every alert: email (text and HTML), SMS (one GSM-7 segment for leads), in-app.
use super::events::{Event, Lead, PaymentFailed, Usage};

/// What a lead alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum News {
    New,
    Update,
    /// An escalation: nobody claimed the lead in this many minutes.
    Unclaimed(u32),
}

impl News {
    fn of(event: &Event) -> Option<(Self, &Lead)> {
        match event {
            Event::LeadCreated(lead) => Some((Self::New, lead)),
            Event::LeadUpdated(lead) => Some((Self::Update, lead)),
            Event::LeadEscalated(e) => Some((Self::Unclaimed(e.minutes), &e.lead)),
            _ => None,
        }
    }

    /// "New lead", "Lead update", "Not claimed after 5 min".
    fn words(self) -> String {
        match self {
            Self::New => "New lead".into(),
            Self::Update => "Lead update".into(),
            Self::Unclaimed(minutes) => format!("Not claimed after {minutes} min"),
        }
    }

    /// The first line of an email.
    fn intro(self) -> String {
        match self {
            Self::New => "New lead from Kai.".into(),
            Self::Update => "Lead update from Kai.".into(),
            Self::Unclaimed(minutes) => {
                format!("Nobody has claimed this lead in {minutes} minutes, so it comes to you.")
            }
        }
    }

    /// The start of an SMS, before the score: "New lead 82: …", "Unclaimed 5 min, lead 82: …".
    fn sms_head(self) -> String {
        match self {
            Self::Unclaimed(minutes) => format!("Unclaimed {minutes} min, lead"),
            _ => self.words(),
        }
    }
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The characters one GSM-7 SMS segment can carry without escapes.
fn is_gsm7(c: char) -> bool {
    c.is_ascii_alphanumeric() || " @£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà".contains(c)
}

/// How many SMS segments a text takes: GSM-7 carries 160 septets in one (153 in each part of a
/// longer one; `^{}[]~\|€` take two), anything else switches the whole text to UCS-2: 70 UTF-16
/// units in one, 67 in each part.
pub fn sms_segments(body: &str) -> u32 {
    let extended = |c: char| "^{}[]~\\|\u{20ac}\u{c}".contains(c);
    let (single, per_part, units) = if body.chars().all(|c| is_gsm7(c) || extended(c)) {
        (160, 153, body.chars().map(|c| if extended(c) { 2 } else { 1 }).sum::<usize>())
    } else {
        (70, 67, body.encode_utf16().count())
    };
    match units {
        0 => 1,
        n if n <= single => 1,
        n => n.div_ceil(per_part) as u32,
    }
}

/// Keeps text inside GSM-7: common punctuation is mapped, anything else becomes "?".
pub fn to_gsm7(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            '\u{2013}' | '\u{2014}' => '-',
            '\t' => ' ',
            c if is_gsm7(c) => c,
            _ => '?',
        })
        .collect()
}

/// Shortens `s` to at most `max` characters, ending with "…" when it was cut.
fn cut(s: &str, max: usize) -> String {
    cut_with(s, max, "\u{2026}")
}

/// The same for SMS: "..." is in GSM-7, "…" is not (it would switch the text to UCS-2 and
/// double the number of segments).
fn cut_sms(s: &str, max: usize) -> String {
    cut_with(s, max, "...")
}

fn cut_with(s: &str, max: usize, ellipsis: &str) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(ellipsis.chars().count())).collect();
    out.push_str(ellipsis);
    out
}

fn money(cents: u64, currency: &str) -> String {
    let symbol = match currency {
        "usd" | "cad" | "aud" => "$",
        "eur" => "\u{20ac}",
        "gbp" => "\u{a3}",
        _ => "",
    };
    let amount = format!("{}.{:02}", cents / 100, cents % 100);
    if symbol.is_empty() { format!("{amount} {}", currency.to_uppercase()) } else { format!("{symbol}{amount}") }
}

fn reason_words(reason: &str) -> String {
    reason.replace('_', " ")
}

fn day(unix: i64) -> String {
    let format = time::macros::format_description!("[month repr:short] [day padding:none]");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(format).ok()).unwrap_or_default()
}

/// Everything one alert says, in each channel's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertText {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sms: String,
    pub title: String,
    pub body: String,
    /// Path of the page the alert points to (`/leads`, `/billing`, a lead's claim page).
    pub link: String,
}

/// `claim`: the path of the person's claim page (`c/…`, no leading slash), when the alert goes to
/// a person who can claim the lead; the alert then points there instead of the Leads page.
fn lead_text(lead: &Lead, news: News, base_url: &str, claim: Option<&str>) -> AlertText {
    let name = lead.name.clone().unwrap_or_else(|| "Unknown caller".into());
    let score = lead.score.map(|s| format!("score {s}")).unwrap_or_else(|| "no score".into());
    let phone = lead.phone.clone().unwrap_or_default();
    let summary = lead.summary.clone().unwrap_or_default();
    let what = news.words();
    let link = format!("{base_url}{}", claim.unwrap_or("leads"));
    let (action_text, action_html) = match claim {
        Some(_) => (
            format!("Will you call them? Say so here, so nobody else does: {link}"),
            format!(
                "Will you call them? <a href=\"{}\">I\u{2019}ll call them</a> (so nobody else does).",
                html_escape(&link)
            ),
        ),
        None => (
            format!("Call them back soon. See the lead: {link}"),
            format!("Call them back soon. <a href=\"{}\">See the lead</a>.", html_escape(&link)),
        ),
    };
    let subject = format!("{what}: {name} ({score})");
    let contact =
        [lead.phone.as_deref(), lead.email.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" \u{b7} ");
    let intro = news.intro();
    let text = format!("{intro}\n\n{name} ({score})\n{contact}\n\n{summary}\n\n{action_text}\n");
    let html = format!(
        "<p>{intro}</p><p><strong>{}</strong> ({score})<br>{}</p><p>{}</p><p>{action_html}</p>",
        html_escape(&name),
        html_escape(&contact),
        html_escape(&summary),
    );
    // One SMS segment: "New lead 82: Jane Doe +15555550100 Burst pipe… http://…/leads".
    let head = to_gsm7(&format!(
        "{} {}: {} {}",
        news.sms_head(),
        lead.score.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
        cut_sms(&name, 40),
        phone
    ));
    // A claim link says what it is for; the Leads link needs no words.
    let tail = if claim.is_some() { format!(" Claim: {link}") } else { format!(" {link}") };
    let room = 160usize.saturating_sub(head.chars().count() + tail.chars().count() + 1);
    let sms = if summary.is_empty() || room < 8 {
        // The link stays whole (a cut link is useless): the head gives way.
        format!("{}{tail}", cut_sms(&head, 160usize.saturating_sub(tail.chars().count())))
    } else {
        format!("{head} {}{tail}", cut_sms(&to_gsm7(&summary), room))
    };
    AlertText {
        title: format!("{what}: {name}"),
        body: format!(
            "{} {score}. {}",
            if phone.is_empty() { String::new() } else { format!("{phone},") },
            cut(&summary, 200)
        )
        .trim()
        .to_owned(),
        subject,
        text,
        html,
        sms: cut_sms(&sms, 160),
        link: format!("/{}", claim.unwrap_or("leads")),
    }
}

pub fn usage_text(usage: &Usage, threshold: u8, base_url: &str) -> AlertText {
    let link = format!("{base_url}billing");
    let headline = format!(
        "You have used {threshold}% of your included minutes ({} of {}) this period.",
        usage.minutes_used, usage.included_minutes
    );
    let advice = if threshold >= 100 {
        "Calls keep being answered; extra minutes are billed at your plan's rate."
    } else {
        "This is a heads-up, not an error."
    };
    AlertText {
        subject: format!("Usage alert: {threshold}% of included minutes used"),
        text: format!("{headline}\n{advice}\nReview your usage in Billing: {link}\n"),
        html: format!(
            "<p>{}</p><p>{}</p><p><a href=\"{}\">Review your usage in Billing</a>.</p>",
            html_escape(&headline),
            html_escape(advice),
            html_escape(&link)
        ),
        sms: cut_sms(
            &to_gsm7(&format!(
                "KaiCalls: {threshold}% of included minutes used ({}/{}). {link}",
                usage.minutes_used, usage.included_minutes
            )),
            160,
        ),
        title: format!("{threshold}% of included minutes used"),
        body: format!("{headline} {advice}"),
        link: "/billing".into(),
    }
}

fn payment_text(p: &PaymentFailed, base_url: &str) -> AlertText {
    let link = format!("{base_url}billing");
    let retry = p.next_attempt_at.map(|t| format!(" We'll retry on {}.", day(t))).unwrap_or_default();
    let headline =
        format!("Payment of {} failed ({}).{retry}", money(p.amount_cents, &p.currency), reason_words(&p.reason));
    AlertText {
        subject: format!("Payment of {} failed", money(p.amount_cents, &p.currency)),
        text: format!("{headline} Update your payment method in Billing: {link}\n"),
        html: format!(
            "<p>{}</p><p><a href=\"{}\">Update your payment method in Billing</a>.</p>",
            html_escape(&headline),
            html_escape(&link)
        ),
        sms: cut_sms(&to_gsm7(&format!("KaiCalls: {headline} Update your payment method: {link}")), 160),
        title: "Payment failed".into(),
        body: format!("{headline} Update your payment method in Billing."),
        link: "/billing".into(),
    }
}

fn test_text(base_url: &str) -> AlertText {
    let link = format!("{base_url}settings/notifications");
    let line = "This is a test alert from KaiCalls. If you can read it, this channel works.";
    AlertText {
        subject: "Test alert from KaiCalls".into(),
        text: format!("{line}\nYour notification settings: {link}\n"),
        html: format!("<p>{line}</p><p><a href=\"{}\">Your notification settings</a></p>", html_escape(&link)),
        sms: format!("KaiCalls test alert: this channel works. {link}"),
        title: "Test alert".into(),
        body: line.into(),
        link: "/settings/notifications".into(),
    }
}

/// The text of an event's alert; usage needs the threshold that fired.
pub fn alert_text(event: &Event, usage_threshold: Option<u8>, base_url: &str) -> Option<AlertText> {
    match event {
        Event::LeadCreated(_) | Event::LeadUpdated(_) | Event::LeadEscalated(_) => {
            News::of(event).map(|(news, lead)| lead_text(lead, news, base_url, None))
        }
        Event::UsageUpdated(usage) => usage_threshold.map(|t| usage_text(usage, t, base_url)),
        Event::PaymentFailed(p) => Some(payment_text(p, base_url)),
        Event::Test { .. } => Some(test_text(base_url)),
        Event::Unknown { .. } => None,
    }
}

/// The one message that carries what quiet hours held back on one channel: leads first, highest
/// score first, then the other alerts, each in a line. `alerts`: each held event and the usage
/// threshold it alerted about. The text may take several SMS segments (a list is worth it).
pub fn summary_text(alerts: &[(&Event, Option<u8>)], base_url: &str) -> AlertText {
    let mut leads: Vec<&Lead> = alerts.iter().filter_map(|(e, _)| e.lead()).collect();
    leads.sort_by_key(|l| std::cmp::Reverse(l.score));
    let others: Vec<AlertText> = alerts
        .iter()
        .filter(|(e, _)| e.lead().is_none())
        .filter_map(|(e, threshold)| alert_text(e, *threshold, base_url))
        .collect();
    let n = alerts.len();
    let what = if others.is_empty() && n > 1 {
        format!("{n} new leads")
    } else if n == 1 {
        "1 alert".to_owned()
    } else {
        format!("{n} alerts")
    };
    let subject = format!("{what} during your quiet hours");
    let lead_line = |l: &Lead| {
        let name = l.name.clone().unwrap_or_else(|| "Unknown caller".into());
        let score = l.score.map(|s| format!(" (score {s})")).unwrap_or_default();
        let phone = l.phone.as_deref().map(|p| format!(" {p}")).unwrap_or_default();
        format!("{name}{score}{phone}")
    };
    let lines: Vec<String> = leads.iter().map(|l| lead_line(l)).chain(others.iter().map(|t| t.title.clone())).collect();
    let link = if leads.is_empty() { "billing" } else { "leads" };
    let url = format!("{base_url}{link}");
    let text = format!(
        "{subject}:\n\n{}\n\nSee them: {url}\n",
        lines.iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n")
    );
    let html = format!(
        "<p>{}:</p><ul>{}</ul><p><a href=\"{}\">See them</a></p>",
        html_escape(&subject),
        lines.iter().map(|l| format!("<li>{}</li>", html_escape(l))).collect::<String>(),
        html_escape(&url)
    );
    // A text names the first five, highest score first.
    let short: Vec<String> = leads
        .iter()
        .map(|l| {
            let name = l.name.clone().unwrap_or_else(|| "Unknown caller".into());
            match l.score {
                Some(s) => format!("{name} {s}"),
                None => name,
            }
        })
        .chain(others.iter().map(|t| t.title.clone()))
        .collect();
    let more = short.len().saturating_sub(5);
    let listed = short.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    let sms = to_gsm7(&format!("{what} while quiet: {listed}{more}. {url}"));
    AlertText {
        subject: subject.clone(),
        text,
        html,
        sms,
        title: subject,
        body: lines.join("; "),
        link: format!("/{link}"),
    }
}

/// Leads a daily summary lists by name; the rest are counted and are on the Leads page.
const DIGEST_LISTED: usize = 100;

/// A person's daily summary of the new leads below their threshold: one email, highest score
/// first, each with its score and phone, and a link to Leads. `leads`: the held lead alerts.
pub fn digest_text(alerts: &[(&Event, Option<u8>)], base_url: &str) -> AlertText {
    let mut leads: Vec<&Lead> = alerts.iter().filter_map(|(e, _)| e.lead()).collect();
    leads.sort_by_key(|l| std::cmp::Reverse(l.score));
    let n = leads.len();
    let subject = format!("Daily summary: {n} new lead{} below your threshold", if n == 1 { "" } else { "s" });
    let mut lines: Vec<String> = leads
        .iter()
        .take(DIGEST_LISTED)
        .map(|l| {
            let name = l.name.clone().unwrap_or_else(|| "Unknown caller".into());
            let score = l.score.map_or(" (no score)".to_owned(), |s| format!(" (score {s})"));
            let phone = l.phone.as_deref().map(|p| format!(" {p}")).unwrap_or_default();
            format!("{name}{score}{phone}")
        })
        .collect();
    if n > DIGEST_LISTED {
        lines.push(format!("and {} more", n - DIGEST_LISTED));
    }
    let url = format!("{base_url}leads");
    let text = format!(
        "{subject}:\n\n{}\n\nSee them on Leads: {url}\n\nThese scored below the threshold you set, so they sent no alert of their own.\n",
        lines.iter().map(|l| format!("- {l}")).collect::<Vec<_>>().join("\n")
    );
    let html = format!(
        "<p>{}:</p><ul>{}</ul><p><a href=\"{}\">See them on Leads</a></p><p>These scored below the threshold you set, so they sent no alert of their own.</p>",
        html_escape(&subject),
        lines.iter().map(|l| format!("<li>{}</li>", html_escape(l))).collect::<String>(),
        html_escape(&url)
    );
    AlertText {
        sms: to_gsm7(&format!("{subject}. {url}")),
        subject: subject.clone(),
        text,
        html,
        title: subject,
        body: lines.join("; "),
        link: "/leads".into(),
    }
}

/// A lead alert for a person who can claim the lead: it points at their claim page (`claim`,
/// such as `c/16.ngx4a.AbCd…`). `None` for alerts that are not about a lead.
pub fn claimable_text(event: &Event, base_url: &str, claim: &str) -> Option<AlertText> {
    News::of(event).map(|(news, lead)| lead_text(lead, news, base_url, Some(claim)))
}

/// The text with its first letter in upper case ("sms is off" → "Sms is off"; "score 40…" →
/// "Score 40…").
pub fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daily_summary_lists_each_lead_below_the_threshold_with_its_score() {
        let lead = |id: &str, name: &str, score: Option<u8>| {
            Event::LeadCreated(Lead {
                lead_id: id.into(),
                name: Some(name.into()),
                phone: Some("+15555550123".into()),
                email: None,
                score,
                summary: None,
                occurred_at: 0,
            })
        };
        let (a, b, c) = (lead("1", "Ann", Some(20)), lead("2", "Bob", Some(55)), lead("3", "Cy", None));
        let t = digest_text(&[(&a, None), (&b, None), (&c, None)], "https://k.test/");
        assert_eq!(t.subject, "Daily summary: 3 new leads below your threshold");
        assert!(
            t.text.contains("- Bob (score 55) +15555550123\n- Ann (score 20) +15555550123\n- Cy (no score)"),
            "{}",
            t.text
        );
        assert!(t.text.contains("See them on Leads: https://k.test/leads"));
        assert!(t.html.contains("<li>Bob (score 55) +15555550123</li>"));
        let many: Vec<Event> = (0..103).map(|i| lead(&i.to_string(), "X", Some(1))).collect();
        let many: Vec<(&Event, Option<u8>)> = many.iter().map(|e| (e, None)).collect();
        assert!(digest_text(&many, "https://k.test/").text.contains("- and 3 more"));
    }

    #[test]
    fn a_quiet_hours_summary_lists_the_hottest_lead_first() {
        let lead = |id: &str, name: &str, score: u8| {
            Event::LeadCreated(Lead {
                lead_id: id.into(),
                name: Some(name.into()),
                phone: Some("+15555550123".into()),
                email: None,
                score: Some(score),
                summary: None,
                occurred_at: 0,
            })
        };
        let (a, b, c) = (lead("1", "Ann", 60), lead("2", "Bob", 90), lead("3", "Cy", 75));
        let t = summary_text(&[(&a, None), (&b, None), (&c, None)], "https://k.test/");
        assert_eq!(t.subject, "3 new leads during your quiet hours");
        assert_eq!(t.sms, "3 new leads while quiet: Bob 90, Cy 75, Ann 60. https://k.test/leads");
        assert!(t.text.contains("- Bob (score 90) +15555550123\n- Cy (score 75)"), "{}", t.text);
        assert!(t.html.contains("<li>Bob (score 90) +15555550123</li>"));
    }

    #[test]
    fn segments_follow_the_encoding() {
        assert_eq!(sms_segments(""), 1);
        assert_eq!(sms_segments(&"a".repeat(160)), 1);
        assert_eq!(sms_segments(&"a".repeat(161)), 2);
        assert_eq!(sms_segments(&"a".repeat(306)), 2);
        assert_eq!(sms_segments(&"a".repeat(307)), 3);
        assert_eq!(sms_segments(&"{".repeat(80)), 1, "extended characters take two septets");
        assert_eq!(sms_segments(&"{".repeat(81)), 2);
        assert_eq!(sms_segments(&format!("{}\u{2026}", "a".repeat(69))), 1, "one character outside GSM-7: UCS-2");
        assert_eq!(sms_segments(&format!("{}\u{2026}", "a".repeat(70))), 2);
    }

    #[test]
    fn a_claimable_text_keeps_its_link_whole_in_one_segment() {
        let lead = Lead {
            lead_id: "L".into(),
            name: Some("Bartholomew Featherstonehaugh-Worthington the Third".into()),
            phone: Some("+15555550123".into()),
            email: None,
            score: Some(88),
            summary: Some("Water everywhere in the basement after the storm, needs someone today".into()),
            occurred_at: 0,
        };
        let base = "https://alerts.a-rather-long-company-domain.example.com/";
        let claim = "c/2n9c.ngx4a.AbCdEfGhIjKl";
        let text = claimable_text(&Event::LeadCreated(lead.clone()), base, claim).unwrap();
        assert!(text.sms.chars().count() <= 160, "{} chars: {}", text.sms.chars().count(), text.sms);
        assert!(text.sms.ends_with(&format!(" Claim: {base}{claim}")), "{}", text.sms);
        assert!(text.sms.chars().all(is_gsm7), "{}", text.sms);
        assert!(text.text.contains(&format!("Will you call them? Say so here, so nobody else does: {base}{claim}")));
        assert!(text.html.contains(&format!("<a href=\"{base}{claim}\">I\u{2019}ll call them</a>")));
        assert_eq!(text.link, format!("/{claim}"));
        // Without a claim (the business's own phone), the Leads page.
        let shared = alert_text(&Event::LeadCreated(lead), None, base).unwrap();
        assert!(shared.sms.ends_with(&format!(" {base}leads")) && shared.link == "/leads", "{}", shared.sms);
    }

    fn lead(summary: &str) -> Lead {
        Lead {
            lead_id: "L-1".into(),
            name: Some("Jane Doe".into()),
            phone: Some("+15555550100".into()),
            email: None,
            score: Some(82),
            summary: Some(summary.into()),
            occurred_at: 0,
        }
    }

    #[test]
    fn a_lead_sms_is_one_gsm7_segment_with_name_score_phone_summary_and_link() {
        let t =
            alert_text(&Event::LeadCreated(lead("Burst pipe, wants a quote today")), None, "http://127.0.0.1:8080/")
                .unwrap();
        assert_eq!(
            t.sms,
            "New lead 82: Jane Doe +15555550100 Burst pipe, wants a quote today http://127.0.0.1:8080/leads"
        );
        let long = alert_text(
            &Event::LeadCreated(lead(&"Water everywhere \u{1f30a} ".repeat(20))),
            None,
            "https://app.kaicalls.example/",
        )
        .unwrap();
        assert!(long.sms.chars().count() <= 160, "{}", long.sms.chars().count());
        assert!(long.sms.ends_with(" https://app.kaicalls.example/leads"));
        assert!(long.sms.chars().all(is_gsm7), "every character is GSM-7, the cut included: {}", long.sms);
        assert!(long.sms.contains("..."), "{}", long.sms);
    }

    #[test]
    fn an_escalation_says_why_it_comes_and_keeps_its_claim_link_in_one_segment() {
        let escalated = Event::LeadEscalated(crate::domain::events::Escalated {
            lead: lead(&"Water everywhere in the basement ".repeat(5)),
            step: 1,
            minutes: 5,
            people: vec![(2, "Sam".into())],
            channels: crate::domain::ChannelSet::default(),
        });
        let base = "https://app.kaicalls.example/";
        let t = claimable_text(&escalated, base, "c/2n9c.ngx4a.AbCdEfGhIjKl").unwrap();
        assert!(t.sms.starts_with("Unclaimed 5 min, lead 82: Jane Doe +15555550100 Water"), "{}", t.sms);
        assert!(t.sms.ends_with(" Claim: https://app.kaicalls.example/c/2n9c.ngx4a.AbCdEfGhIjKl"), "{}", t.sms);
        assert!(t.sms.chars().count() <= 160 && t.sms.chars().all(is_gsm7), "{}", t.sms);
        assert_eq!(t.subject, "Not claimed after 5 min: Jane Doe (score 82)");
        assert!(t.text.starts_with("Nobody has claimed this lead in 5 minutes, so it comes to you."));
        assert_eq!(t.title, "Not claimed after 5 min: Jane Doe");
    }

    #[test]
    fn payment_failures_say_what_happened_and_what_to_do() {
        let p = PaymentFailed {
            invoice_id: "in_1".into(),
            amount_cents: 6900,
            currency: "usd".into(),
            reason: "card_declined".into(),
            next_attempt_at: Some(1_796_083_200),
        };
        let t = alert_text(&Event::PaymentFailed(p), None, "http://x/").unwrap();
        assert_eq!(
            t.body,
            "Payment of $69.00 failed (card declined). We'll retry on Dec 1. Update your payment method in Billing."
        );
    }

    #[test]
    fn email_html_escapes_what_callers_said() {
        let mut l = lead("<script>alert(1)</script>");
        l.name = Some("Bob & <Co>".into());
        let t = alert_text(&Event::LeadCreated(l), None, "http://x/").unwrap();
        assert!(t.html.contains("Bob &amp; &lt;Co&gt;") && !t.html.contains("<script>"));
    }

    #[test]
    fn usage_alerts_are_a_heads_up() {
        let u = Usage {
            minutes_used: 460,
            included_minutes: 500,
            period_start: "2026-11-01".into(),
            period_end: "2026-11-30".into(),
        };
        let t = usage_text(&u, 90, "http://x/");
        assert_eq!(t.title, "90% of included minutes used");
        assert!(t.body.contains("heads-up, not an error"));
    }
}
