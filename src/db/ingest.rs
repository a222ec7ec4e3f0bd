//! Ingest: a batch of webhook events stored with everything they cause, in one transaction — the
//! events, their alert keys, the usage thresholds that fired, the lead rows, and every delivery
//! decision, the deliveries to send already claimed by this process with a lease.
//!
//! Planning happens before the transaction, in memory, with the writer's caches (routing
//! settings, usage thresholds alerted so far). The transaction is inserts only. If an insert
//! meets a conflict the plan did not expect (Kai re-sent a webhook id that is already stored, or
//! a lead version that was already alerted), the writer rolls back, marks those events and plans
//! again: the common path never reads inside the write turn.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::QueryBuilder;

use super::Write;
use super::deliveries::{CLAIMED_COLUMNS, Claimed, ClaimedRow};
use crate::domain::delivery::{DeliveryStatus, EventState};
use crate::domain::events::{Event, Lead};
use crate::domain::planning::{self, EventPlan, Routing};
use crate::domain::routing::{Claimer, Target, hold_for_update_window};

/// A checked webhook event on its way into storage.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub business_id: String,
    pub webhook_id: String,
    pub event: Event,
    pub received_at_ms: i64,
    /// The event's data as stored, serialized by the request, not inside the write turn.
    payload: String,
}

impl NewEvent {
    pub fn new(business_id: String, webhook_id: String, event: Event, received_at_ms: i64) -> Self {
        let (_, payload) = event.to_stored();
        Self { business_id, webhook_id, event, received_at_ms, payload }
    }
}

/// One event of a batch (its webhook id appears once in the batch).
pub(super) struct Item {
    pub new: NewEvent,
    /// Stored earlier under the same webhook id: it is answered with that id and not planned.
    pub stored_as: Option<i64>,
    /// Its alert key was used by an earlier event, so it alerts nobody.
    pub alerted_before: bool,
}

/// The plan of one item that is stored now.
pub(super) struct ItemPlan {
    pub item: usize,
    pub plan: EventPlan,
    /// The key that makes this alert once-only, when the event alerts.
    pub alert_key: Option<String>,
    /// The billing period and threshold of a usage alert.
    pub usage_alert: Option<(String, u8)>,
    /// Its deliveries are claimed by this process and handed over in memory; when false (the
    /// dispatcher is behind) they are stored unclaimed and the dispatcher takes them from the
    /// database when it has room.
    pub claimed: bool,
    /// A new lead hot enough for the business's escalation policy: when its first step falls due
    /// (unix ms).
    pub escalate_at: Option<i64>,
    /// A lead update alerted at once: its lead's update window opens then (unix ms).
    pub update_anchor: Option<i64>,
}

impl ItemPlan {
    /// True when the plan has deliveries to send.
    pub fn sends(&self) -> bool {
        self.plan.decisions.iter().any(|d| d.sends())
    }
}

/// Usage thresholds already alerted, per business and billing period (`None`: none yet).
pub(super) type UsageAlerted = HashMap<(String, String), Option<u8>>;

/// Who claimed the leads of the batch's lead updates, by (business, lead id).
pub(super) type Claims = HashMap<(String, String), Claimer>;

/// When each lead's last update was alerted at once (unix ms), by (business, lead id).
pub(super) type Anchors = HashMap<(String, String), i64>;

/// Plans every item not stored before, in order. Two events of the batch with the same alert
/// key alert once; usage thresholds count the ones planned earlier in the batch.
pub(super) fn plan(
    items: &[Item],
    routing: &HashMap<String, Arc<Routing>>,
    usage: &UsageAlerted,
    claims: &Claims,
    anchors: &Anchors,
) -> Vec<ItemPlan> {
    let mut used_keys: HashSet<(&str, String)> = HashSet::new();
    // Updates alerted at once earlier in this batch open their lead's window too.
    let mut opened: HashMap<(&str, &str), i64> = HashMap::new();
    let mut fired: HashMap<(&str, &str), u8> = HashMap::new();
    let mut plans = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate().filter(|(_, i)| i.stored_as.is_none()) {
        let business = item.new.business_id.as_str();
        let event = &item.new.event;
        let key = event.dedupe_key();
        let already = item.alerted_before || key.as_ref().is_some_and(|k| used_keys.contains(&(business, k.clone())));
        let highest = match event {
            Event::UsageUpdated(u) => fired
                .get(&(business, u.period_start.as_str()))
                .copied()
                .or_else(|| usage.get(&(business.to_owned(), u.period_start.clone())).copied().flatten()),
            _ => None,
        };
        let settings = routing.get(business).map(Arc::as_ref).unwrap_or(&NO_SETTINGS);
        let claimed = match event {
            Event::LeadUpdated(_) | Event::LeadEscalated(_) => {
                event.lead().and_then(|lead| claims.get(&(business.to_owned(), lead.lead_id.clone())))
            }
            _ => None,
        };
        let mut plan = planning::plan_event(event, settings, highest, already, claimed, item.new.received_at_ms);
        // Lead updates close together: the first goes at once and opens a window; the ones in
        // it wait for its end, when only the latest goes (the dispatcher merges them).
        let mut update_anchor = None;
        if let (Event::LeadUpdated(lead), true) = (event, settings.update_window_ms > 0) {
            let now = item.new.received_at_ms;
            let anchor = opened
                .get(&(business, lead.lead_id.as_str()))
                .copied()
                .or_else(|| anchors.get(&(business.to_owned(), lead.lead_id.clone())).copied());
            match anchor.map(|a| a + settings.update_window_ms).filter(|end| now < *end) {
                Some(end) => hold_for_update_window(&mut plan.decisions, &settings.people, &settings.zone, end),
                None if plan.decisions.iter().any(|d| d.sends()) => {
                    opened.insert((business, lead.lead_id.as_str()), now);
                    update_anchor = Some(now);
                }
                None => {}
            }
        }
        let alerts = plan.state == EventState::Planned;
        let alert_key = key.filter(|_| alerts && !already);
        if let Some(k) = &alert_key {
            used_keys.insert((business, k.clone()));
        }
        let usage_alert = match (event, plan.usage_threshold) {
            (Event::UsageUpdated(u), Some(t)) => {
                fired.insert((business, u.period_start.as_str()), t);
                Some((u.period_start.clone(), t))
            }
            _ => None,
        };
        let escalate_at = match (event, &settings.escalation) {
            (Event::LeadCreated(lead), Some(policy)) if alerts && !already => {
                policy.first_due(lead.score, item.new.received_at_ms)
            }
            _ => None,
        };
        plans.push(ItemPlan { item: index, plan, alert_key, usage_alert, claimed: false, escalate_at, update_anchor });
    }
    plans
}

/// A business whose settings could not be found alerts nobody (every kind off).
static NO_SETTINGS: std::sync::LazyLock<Routing> = std::sync::LazyLock::new(|| {
    Routing::for_defaults(crate::domain::BusinessDefaults {
        kinds: crate::domain::KindSet::from_checked(|_| false),
        channels: crate::domain::ChannelSet { email: false, sms: false, in_app: false },
        notification_email: None,
        notification_phone: None,
        claimed_updates_only: false,
    })
});

/// Why a batch could not be written as planned.
pub(super) enum Conflict {
    /// These items' webhook ids were stored before.
    Webhooks(Vec<usize>),
    /// These items' alert keys were used before.
    AlertKeys(Vec<usize>),
    /// Usage thresholds alerted before, per business and billing period.
    Usage(Vec<(String, String)>),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Conflict {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

/// What the batch stored: each planned item's event id, and the deliveries claimed to send.
pub(super) struct Written {
    pub event_ids: HashMap<usize, i64>,
    pub claimed: Vec<(usize, Claimed)>,
}

/// Rows per multi-row statement (SQLite allows 32766 bound values per statement).
const ROWS: usize = 1000;

/// Writes the planned items inside the writer's open transaction.
pub(super) async fn write(
    w: &mut Write,
    items: &[Item],
    plans: &[ItemPlan],
    now_ms: i64,
    lease_ms: i64,
) -> Result<Written, Conflict> {
    let event_ids = insert_events(w, items, plans, now_ms).await?;
    let missing: Vec<usize> = plans.iter().map(|p| p.item).filter(|i| !event_ids.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(Conflict::Webhooks(missing));
    }
    let taken = insert_alert_keys(w, items, plans, &event_ids).await?;
    if !taken.is_empty() {
        return Err(Conflict::AlertKeys(taken));
    }
    let taken = insert_usage_alerts(w, items, plans, &event_ids).await?;
    if !taken.is_empty() {
        return Err(Conflict::Usage(taken));
    }
    upsert_leads(w, items, plans, &event_ids, now_ms / 1000).await?;
    for p in plans {
        if let (Some(at_ms), Event::LeadUpdated(lead)) = (p.update_anchor, &items[p.item].new.event) {
            super::leads::set_update_anchor(w, &items[p.item].new.business_id, &lead.lead_id, at_ms).await?;
        }
    }
    schedule_escalations(w, items, plans, now_ms).await?;
    let claimed = insert_deliveries(w, items, plans, &event_ids, now_ms, lease_ms).await?;
    Ok(Written { event_ids, claimed })
}

async fn insert_events(
    w: &mut Write,
    items: &[Item],
    plans: &[ItemPlan],
    now_ms: i64,
) -> sqlx::Result<HashMap<usize, i64>> {
    let mut by_webhook: HashMap<(&str, &str), usize> = HashMap::new();
    for p in plans {
        let new = &items[p.item].new;
        by_webhook.insert((new.business_id.as_str(), new.webhook_id.as_str()), p.item);
    }
    let mut ids = HashMap::with_capacity(plans.len());
    for chunk in plans.chunks(ROWS) {
        let rows: Vec<(i64, String, String)> = on!(w, |cx| {
            let mut q = QueryBuilder::new(
                "INSERT INTO events (business_id, webhook_id, type, payload, received_at_ms, state, note, usage_threshold,
                     planned_at_ms, lead_id) ",
            );
            q.push_values(chunk, |mut row, p| {
                let new = &items[p.item].new;
                row.push_bind(&new.business_id)
                    .push_bind(&new.webhook_id)
                    .push_bind(new.event.type_name())
                    .push_bind(&new.payload)
                    .push_bind(new.received_at_ms)
                    .push_bind(p.plan.state.code())
                    .push_bind(&p.plan.note)
                    .push_bind(p.plan.usage_threshold.map(i64::from))
                    .push_bind(now_ms)
                    .push_bind(new.event.lead().map(|l| &l.lead_id));
            });
            q.push(" ON CONFLICT (business_id, webhook_id) DO NOTHING RETURNING id, business_id, webhook_id");
            q.build_query_as().fetch_all(cx).await
        })?;
        for (id, business, webhook) in rows {
            if let Some(item) = by_webhook.get(&(business.as_str(), webhook.as_str())) {
                ids.insert(*item, id);
            }
        }
    }
    Ok(ids)
}

/// Inserts the alert keys; answers the items whose key was already taken.
async fn insert_alert_keys(
    w: &mut Write,
    items: &[Item],
    plans: &[ItemPlan],
    event_ids: &HashMap<usize, i64>,
) -> sqlx::Result<Vec<usize>> {
    let keyed: Vec<(&ItemPlan, &str)> = plans.iter().filter_map(|p| p.alert_key.as_deref().map(|k| (p, k))).collect();
    let mut inserted: HashSet<(String, String)> = HashSet::new();
    for chunk in keyed.chunks(ROWS) {
        let rows: Vec<(String, String)> = on!(w, |cx| {
            let mut q = QueryBuilder::new("INSERT INTO alert_keys (business_id, key, event_id) ");
            q.push_values(chunk, |mut row, (p, key)| {
                row.push_bind(&items[p.item].new.business_id).push_bind(*key).push_bind(event_ids[&p.item]);
            });
            q.push(" ON CONFLICT (business_id, key) DO NOTHING RETURNING business_id, key");
            q.build_query_as().fetch_all(cx).await
        })?;
        inserted.extend(rows);
    }
    Ok(keyed
        .iter()
        .filter(|(p, key)| !inserted.contains(&(items[p.item].new.business_id.clone(), (*key).to_owned())))
        .map(|(p, _)| p.item)
        .collect())
}

/// Inserts the usage thresholds that fired; answers the (business, period) of those already
/// alerted (by another instance) that the plan did not know of.
async fn insert_usage_alerts(
    w: &mut Write,
    items: &[Item],
    plans: &[ItemPlan],
    event_ids: &HashMap<usize, i64>,
) -> sqlx::Result<Vec<(String, String)>> {
    let fired: Vec<(&ItemPlan, &str, u8)> =
        plans.iter().filter_map(|p| p.usage_alert.as_ref().map(|(period, t)| (p, period.as_str(), *t))).collect();
    let mut inserted: HashSet<(String, String, i64)> = HashSet::new();
    for chunk in fired.chunks(ROWS) {
        let rows: Vec<(String, String, i64)> = on!(w, |cx| {
            let mut q = QueryBuilder::new("INSERT INTO usage_alerts (business_id, period_start, threshold, event_id) ");
            q.push_values(chunk, |mut row, (p, period, threshold)| {
                row.push_bind(&items[p.item].new.business_id)
                    .push_bind(*period)
                    .push_bind(i64::from(*threshold))
                    .push_bind(event_ids[&p.item]);
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING business_id, period_start, threshold");
            q.build_query_as().fetch_all(cx).await
        })?;
        inserted.extend(rows);
    }
    let mut taken: Vec<(String, String)> = fired
        .iter()
        .map(|(p, period, t)| (items[p.item].new.business_id.clone(), (*period).to_owned(), i64::from(*t)))
        .filter(|key| !inserted.contains(key))
        .map(|(business, period, _)| (business, period))
        .collect();
    taken.dedup();
    Ok(taken)
}

async fn upsert_leads(
    w: &mut Write,
    items: &[Item],
    plans: &[ItemPlan],
    event_ids: &HashMap<usize, i64>,
    now: i64,
) -> sqlx::Result<()> {
    let mut merged: Vec<((&str, &str), Lead, i64)> = Vec::new();
    for p in plans.iter().filter(|p| p.plan.state == EventState::Planned) {
        let new = &items[p.item].new;
        // An escalation carries the lead as stored; it changes nothing about it.
        let (Event::LeadCreated(lead) | Event::LeadUpdated(lead)) = &new.event else { continue };
        let key = (new.business_id.as_str(), lead.lead_id.as_str());
        match merged.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, earlier, event_id)) => {
                *earlier = Lead {
                    name: lead.name.clone().or(earlier.name.take()),
                    phone: lead.phone.clone().or(earlier.phone.take()),
                    email: lead.email.clone().or(earlier.email.take()),
                    score: lead.score.or(earlier.score),
                    summary: lead.summary.clone().or(earlier.summary.take()),
                    ..lead.clone()
                };
                *event_id = event_ids[&p.item];
            }
            None => merged.push((key, lead.clone(), event_ids[&p.item])),
        }
    }
    for chunk in merged.chunks(ROWS) {
        on!(w, |cx| {
            let mut q = QueryBuilder::new(
                "INSERT INTO leads (business_id, lead_id, name, phone, email, score, summary, first_seen_at, updated_at,
                     last_event_id) ",
            );
            q.push_values(chunk, |mut row, ((business, lead_id), lead, event_id)| {
                row.push_bind(*business)
                    .push_bind(*lead_id)
                    .push_bind(&lead.name)
                    .push_bind(&lead.phone)
                    .push_bind(&lead.email)
                    .push_bind(lead.score.map(i64::from))
                    .push_bind(&lead.summary)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(*event_id);
            });
            q.push(
                " ON CONFLICT (business_id, lead_id) DO UPDATE SET
                     name = coalesce(excluded.name, leads.name), phone = coalesce(excluded.phone, leads.phone),
                     email = coalesce(excluded.email, leads.email), score = coalesce(excluded.score, leads.score),
                     summary = coalesce(excluded.summary, leads.summary), updated_at = excluded.updated_at,
                     last_event_id = excluded.last_event_id",
            );
            q.build().execute(cx).await.map(|done| done.rows_affected())
        })?;
    }
    Ok(())
}

/// Starts the escalation timer of each new lead that needs one: its first step, pending.
async fn schedule_escalations(w: &mut Write, items: &[Item], plans: &[ItemPlan], now_ms: i64) -> sqlx::Result<()> {
    let due: Vec<(&str, &str, i64)> = plans
        .iter()
        .filter_map(|p| {
            let new = &items[p.item].new;
            Some((new.business_id.as_str(), new.event.lead()?.lead_id.as_str(), p.escalate_at?))
        })
        .collect();
    for chunk in due.chunks(ROWS) {
        on!(w, |cx| {
            let mut q =
                QueryBuilder::new("INSERT INTO escalations (business_id, lead_id, step, due_ms, state, updated_ms) ");
            q.push_values(chunk, |mut row, (business, lead_id, due_ms)| {
                row.push_bind(*business)
                    .push_bind(*lead_id)
                    .push_bind(1i64)
                    .push_bind(*due_ms)
                    .push_bind("pending")
                    .push_bind(now_ms);
            });
            q.push(" ON CONFLICT (business_id, lead_id, step) DO NOTHING");
            q.build().execute(cx).await.map(|done| done.rows_affected())
        })?;
    }
    Ok(())
}

/// One decision as a row: who, which channel, where, and either pending (claimed by us, with a
/// lease) or skipped with its reason in words.
#[derive(sqlx::FromRow)]
struct Returned {
    #[sqlx(flatten)]
    row: ClaimedRow,
    status: String,
    claimed: bool,
}

struct DeliveryRow<'a> {
    claimed: bool,
    event_id: i64,
    business_id: &'a str,
    seq: i64,
    user_id: Option<i64>,
    person_name: Option<&'a str>,
    channel: Option<&'static str>,
    address: Option<&'a str>,
    reason: Option<String>,
    skip: Option<&'static str>,
    claim_user_id: Option<i64>,
    /// Held for quiet hours until then: pending, not handed over, due at the window's end.
    held_until_ms: Option<i64>,
    held_for: Option<&'static str>,
    held_at: Option<&'a str>,
}

async fn insert_deliveries(
    w: &mut Write,
    items: &[Item],
    plans: &[ItemPlan],
    event_ids: &HashMap<usize, i64>,
    now_ms: i64,
    lease_ms: i64,
) -> sqlx::Result<Vec<(usize, Claimed)>> {
    let mut rows = Vec::new();
    for p in plans {
        for (seq, d) in p.plan.decisions.iter().enumerate() {
            let (user_id, name) = match &d.target {
                Target::Business => (None, None),
                Target::Person { user_id, name } => (Some(*user_id), Some(name.as_str())),
            };
            rows.push(DeliveryRow {
                claimed: p.claimed,
                event_id: event_ids[&p.item],
                business_id: &items[p.item].new.business_id,
                seq: seq as i64,
                user_id,
                person_name: name,
                channel: d.channel.map(|c| c.code()),
                address: d.address.as_deref(),
                reason: d
                    .skip
                    .as_ref()
                    .map(|s| s.reason(name.unwrap_or("the business")))
                    .or_else(|| d.hold.as_ref().map(|h| h.reason.clone())),
                skip: d.skip.as_ref().map(|s| s.code().code()),
                claim_user_id: d.on_behalf_of,
                held_until_ms: d.hold.as_ref().map(|h| h.until_ms),
                held_for: d.hold.as_ref().map(|h| h.kind.code()),
                held_at: d.hold.as_ref().map(|h| h.at.as_str()),
            });
        }
    }
    let item_of_event: HashMap<i64, usize> = event_ids.iter().map(|(item, id)| (*id, *item)).collect();
    let mut claimed = Vec::new();
    for chunk in rows.chunks(ROWS) {
        let returned: Vec<Returned> = on!(w, |cx| {
            let mut q = QueryBuilder::new(
                "INSERT INTO deliveries (event_id, business_id, seq, user_id, person_name, channel, address, status, reason,
                     skip, attempts, next_attempt_ms, lease_until_ms, created_at_ms, claim_user_id, held_until_ms, held_for,
                     held_at) ",
            );
            q.push_values(chunk, |mut row, d| {
                let pending = d.skip.is_none();
                let claimed = pending && d.claimed && d.held_until_ms.is_none();
                let status = if pending { DeliveryStatus::Pending } else { DeliveryStatus::Skipped };
                row.push_bind(d.event_id)
                    .push_bind(d.business_id)
                    .push_bind(d.seq)
                    .push_bind(d.user_id)
                    .push_bind(d.person_name)
                    .push_bind(d.channel)
                    .push_bind(d.address)
                    .push_bind(status.code())
                    .push_bind(&d.reason)
                    .push_bind(d.skip)
                    .push_bind(i64::from(claimed))
                    .push_bind(pending.then_some(d.held_until_ms.unwrap_or(now_ms)))
                    .push_bind(claimed.then_some(now_ms + lease_ms))
                    .push_bind(now_ms)
                    .push_bind(d.claim_user_id)
                    .push_bind(d.held_until_ms)
                    .push_bind(d.held_for)
                    .push_bind(d.held_at);
            });
            q.push(format!(" RETURNING {CLAIMED_COLUMNS}, status, lease_until_ms IS NOT NULL AS claimed"));
            q.build_query_as().fetch_all(cx).await
        })?;
        for r in returned.into_iter().filter(|r| r.claimed && r.status == DeliveryStatus::Pending.code()) {
            let item = item_of_event.get(&r.row.event_id).copied();
            if let (Some(item), Some(c)) = (item, r.row.into_claimed()) {
                claimed.push((item, c));
            }
        }
    }
    Ok(claimed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::Usage;
    use crate::domain::{BusinessDefaults, EmailAddress};

    fn item(webhook: &str, event: Event) -> Item {
        Item { new: NewEvent::new("b".into(), webhook.into(), event, 0), stored_as: None, alerted_before: false }
    }

    fn lead(id: &str) -> Event {
        Event::LeadCreated(Lead {
            lead_id: id.into(),
            name: None,
            phone: None,
            email: None,
            score: Some(50),
            summary: None,
            occurred_at: 0,
        })
    }

    fn usage(used: u64) -> Event {
        Event::UsageUpdated(Usage {
            minutes_used: used,
            included_minutes: 100,
            period_start: "2026-11-01".into(),
            period_end: "2026-11-30".into(),
        })
    }

    fn routing() -> HashMap<String, Arc<Routing>> {
        let defaults = BusinessDefaults::for_new_business(EmailAddress::parse("o@b.test").unwrap());
        HashMap::from([("b".to_owned(), Arc::new(Routing::for_defaults(defaults)))])
    }

    #[test]
    fn the_same_lead_twice_in_one_batch_alerts_once() {
        let items = [item("1", lead("L")), item("2", lead("L")), item("3", lead("M"))];
        let plans = plan(&items, &routing(), &HashMap::new(), &HashMap::new(), &HashMap::new());
        let states: Vec<EventState> = plans.iter().map(|p| p.plan.state).collect();
        assert_eq!(states, vec![EventState::Planned, EventState::Duplicate, EventState::Planned]);
        assert_eq!(plans[1].alert_key, None);
    }

    #[test]
    fn usage_in_one_batch_counts_the_thresholds_planned_before_it() {
        let items = [item("1", usage(80)), item("2", usage(85)), item("3", usage(95))];
        let alerted = HashMap::from([(("b".to_owned(), "2026-11-01".to_owned()), None)]);
        let fired: Vec<Option<u8>> = plan(&items, &routing(), &alerted, &HashMap::new(), &HashMap::new())
            .iter()
            .map(|p| p.plan.usage_threshold)
            .collect();
        assert_eq!(fired, vec![Some(75), None, Some(90)]);
    }

    #[test]
    fn items_stored_before_are_not_planned_and_known_keys_are_duplicates() {
        let mut items = [item("1", lead("L")), item("2", lead("M"))];
        items[0].stored_as = Some(7);
        items[1].alerted_before = true;
        let plans = plan(&items, &routing(), &HashMap::new(), &HashMap::new(), &HashMap::new());
        assert_eq!(plans.len(), 1);
        assert_eq!((plans[0].item, plans[0].plan.state), (1, EventState::Duplicate));
    }
}
