//! Quiet hours: when a person does not want to be woken, in their own time zone. Pure: the
//! time is always an input. Windows are civil times in a tz-database zone, so a DST change never
//! shifts or loses one; a start or end that falls in the hour a spring-forward night skips moves
//! on by the hour skipped (02:30 becomes 03:30), and one in the hour a fall-back night repeats
//! means its first occurrence ("compatible" resolution, as calendars do).
use jiff::Timestamp;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

/// Days of the week, Monday first, as the form names them.
pub const DAYS: [(&str, &str); 7] = [
    ("quiet_mon", "Mon"),
    ("quiet_tue", "Tue"),
    ("quiet_wed", "Wed"),
    ("quiet_thu", "Thu"),
    ("quiet_fri", "Fri"),
    ("quiet_sat", "Sat"),
    ("quiet_sun", "Sun"),
];

/// A time zone the tz database knows, by its name ("America/New_York").
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

/// Two zones are the same when they have the same name.
impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl Zone {
    pub fn parse(input: &str) -> Result<Self, String> {
        let name = input.trim();
        if name.is_empty() {
            return Err("Choose a time zone.".into());
        }
        match TimeZone::get(name) {
            Ok(tz) if name.contains('/') || name == "UTC" => Ok(Self { name: name.to_owned(), tz }),
            _ => Err(format!(
                "\u{201c}{name}\u{201d} is not a time zone we know: pick one from the list, such as America/New_York."
            )),
        }
    }

    /// A name stored earlier; UTC if the tz database no longer knows it.
    pub fn from_stored(name: &str) -> Self {
        Self::parse(name).unwrap_or_else(|_| Self::utc())
    }

    pub fn utc() -> Self {
        Self { name: "UTC".into(), tz: TimeZone::UTC }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// "07:00", the time of day of `ms` in this zone.
    pub fn clock(&self, ms: i64) -> String {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned(self.tz.clone()).strftime("%H:%M").to_string())
            .unwrap_or_default()
    }
}

/// Every zone name the tz database has, sorted (a form field's suggestions).
pub fn zone_names() -> Vec<&'static str> {
    static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .filter(|n| n.contains('/') && !n.starts_with("Etc/"))
            .collect();
        names.sort_unstable();
        names
    });
    NAMES.iter().map(String::as_str).collect()
}

/// The zone in force: the one `stored` (a person's or the business's), else the one the
/// business's `region` suggests.
pub fn zone_or_region(stored: Option<&str>, region: &str) -> Zone {
    stored.map_or_else(|| region_zone(region), Zone::from_stored)
}

/// The zone a business in `region` starts with (the owner can pick another): its most
/// populous one for the countries with several, UTC where we do not know better.
pub fn region_zone(region: &str) -> Zone {
    let name = match region {
        "US" => "America/New_York",
        "CA" => "America/Toronto",
        "MX" => "America/Mexico_City",
        "GB" => "Europe/London",
        "IE" => "Europe/Dublin",
        "DE" => "Europe/Berlin",
        "FR" => "Europe/Paris",
        "ES" => "Europe/Madrid",
        "IT" => "Europe/Rome",
        "NL" => "Europe/Amsterdam",
        "AU" => "Australia/Sydney",
        "NZ" => "Pacific/Auckland",
        "IN" => "Asia/Kolkata",
        _ => "UTC",
    };
    Zone::from_stored(name)
}

/// Quiet hours as one person has them: the window, their zone, and the score that gets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quiet {
    pub hours: QuietHours,
    pub zone: Zone,
    /// Leads scoring at least this are alerted at once, quiet hours or not.
    pub urgent_score: Option<u8>,
}

impl Quiet {
    /// When an alert planned at `now_ms` may go: `None` at once, or the end of the window
    /// holding it. A lead at or above the urgent score goes at once.
    pub fn hold(&self, lead_score: Option<u8>, now_ms: i64) -> Option<i64> {
        if let (Some(urgent), Some(score)) = (self.urgent_score, lead_score)
            && score >= urgent
        {
            return None;
        }
        self.hours.held_until(&self.zone, now_ms)
    }

    /// "held for quiet hours until 07:00 (Sam's time)"
    pub fn held_words(&self, name: &str, until_ms: i64) -> String {
        format!("held for quiet hours until {} ({name}\u{2019}s time)", self.zone.clock(until_ms))
    }
}

/// A time of day, in minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// "07:00" or "7:00" (a time field's value).
    pub fn parse(input: &str) -> Result<Self, String> {
        let bad = || format!("\u{201c}{}\u{201d} is not a time of day: use 24-hour time such as 07:00.", input.trim());
        let (h, m) = input.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(Self(h * 60 + m))
    }

    pub fn from_minutes(minutes: i64) -> Option<Self> {
        u16::try_from(minutes).ok().filter(|m| *m < 24 * 60).map(Self)
    }

    pub fn minutes(self) -> i64 {
        i64::from(self.0)
    }

    fn on(self, date: Date) -> jiff::civil::DateTime {
        date.at((self.0 / 60) as i8, (self.0 % 60) as i8, 0, 0)
    }
}

impl std::fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// Quiet hours: on the days ticked, from `from` to `to` (the next day when `to` is not after
/// `from`: 22:00 to 07:00 is one night). A window belongs to the day it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub days: [bool; 7],
    pub from: TimeOfDay,
    pub to: TimeOfDay,
}

/// What is wrong with a quiet-hours form, field by field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuietErrors {
    pub days: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl QuietHours {
    /// As stored: a bit per day (Monday = 1), from and to in minutes. `None` when off.
    pub fn from_stored(days: i64, from: Option<i64>, to: Option<i64>) -> Option<Self> {
        let days: [bool; 7] = std::array::from_fn(|i| days & (1 << i) != 0);
        let (from, to) = (TimeOfDay::from_minutes(from?)?, TimeOfDay::from_minutes(to?)?);
        (days.iter().any(|d| *d) && from != to).then_some(Self { days, from, to })
    }

    pub fn days_bits(&self) -> i64 {
        self.days.iter().enumerate().filter(|(_, on)| **on).map(|(i, _)| 1 << i).sum()
    }

    /// Checks the form: at least one day, two valid times, not the same (that would be no time at
    /// all, or all day: neither is quiet hours).
    pub fn check(days: [bool; 7], from: &str, to: &str) -> Result<Self, QuietErrors> {
        let mut errors = QuietErrors::default();
        if !days.iter().any(|d| *d) {
            errors.days = Some("Tick at least one day.".into());
        }
        let from = TimeOfDay::parse(from).map_err(|e| errors.from = Some(e)).ok();
        let to = TimeOfDay::parse(to).map_err(|e| errors.to = Some(e)).ok();
        if let (Some(f), Some(t)) = (from, to)
            && f == t
        {
            errors.to = Some(
                "The end must differ from the start: the same time would mean no quiet hours at all, or all day."
                    .into(),
            );
        }
        match (from, to) {
            (Some(from), Some(to)) if errors == QuietErrors::default() => Ok(Self { days, from, to }),
            _ => Err(errors),
        }
    }

    /// The window that holds `now_ms`, if one does: its end (unix ms). `zone` is the person's.
    pub fn held_until(&self, zone: &Zone, now_ms: i64) -> Option<i64> {
        let now = Timestamp::from_millisecond(now_ms).ok()?;
        let today = now.to_zoned(zone.tz.clone()).date();
        // A window that crosses midnight may have started yesterday.
        for start_day in [today.yesterday().ok()?, today] {
            if !self.days[day_index(start_day.weekday())] {
                continue;
            }
            let end_day = if self.to.0 <= self.from.0 { start_day.tomorrow().ok()? } else { start_day };
            let start = instant(zone, self.from.on(start_day))?;
            let end = instant(zone, self.to.on(end_day))?;
            if start <= now && now < end {
                return Some(end.as_millisecond());
            }
        }
        None
    }

    /// "Mon–Fri 22:00 to 07:00", "Sat, Sun 13:00 to 15:00", "Every day 22:00 to 07:00".
    pub fn describe(&self) -> String {
        let days = if self.days.iter().all(|d| *d) {
            "Every day".to_owned()
        } else if self.days == [true, true, true, true, true, false, false] {
            "Mon\u{2013}Fri".to_owned()
        } else {
            DAYS.iter()
                .zip(self.days)
                .filter(|(_, on)| *on)
                .map(|((_, label), _)| *label)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let next = if self.to.0 <= self.from.0 { " the next morning" } else { "" };
        format!("{days} {} to {}{next}", self.from, self.to)
    }
}

impl QuietHours {
    /// Every window that overlaps `from_ms..to_ms`, in order, as (start, end) in unix ms: what a
    /// look back over many alerts checks them against.
    pub fn windows(&self, zone: &Zone, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        let (Ok(from), Ok(to)) = (Timestamp::from_millisecond(from_ms), Timestamp::from_millisecond(to_ms)) else {
            return Vec::new();
        };
        let (Ok(mut day), last) =
            (from.to_zoned(zone.tz.clone()).date().yesterday(), to.to_zoned(zone.tz.clone()).date())
        else {
            return Vec::new();
        };
        let mut windows = Vec::new();
        while day <= last {
            if self.days[day_index(day.weekday())] {
                let end_day = if self.to.0 <= self.from.0 { day.tomorrow().ok() } else { Some(day) };
                let start = instant(zone, self.from.on(day));
                let end = end_day.and_then(|d| instant(zone, self.to.on(d)));
                if let (Some(start), Some(end)) = (start, end) {
                    let (start, end) = (start.as_millisecond(), end.as_millisecond());
                    if end > from_ms && start < to_ms {
                        windows.push((start, end));
                    }
                }
            }
            let Ok(next) = day.tomorrow() else { break };
            day = next;
        }
        windows
    }
}

/// Whether `at_ms` falls inside one of `windows` (sorted, as [`QuietHours::windows`] gives them).
pub fn inside(windows: &[(i64, i64)], at_ms: i64) -> bool {
    let after = windows.partition_point(|(start, _)| *start <= at_ms);
    after > 0 && at_ms < windows[after - 1].1
}

/// A daily summary, by email, of the new leads below a person's threshold: at `at` in their zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub at: TimeOfDay,
    pub zone: Zone,
}

impl Digest {
    /// The next summary strictly after `now_ms`. A time in the hour a spring-forward night skips
    /// moves on by that hour; one in a repeated hour is its first occurrence.
    pub fn next(&self, now_ms: i64) -> Option<i64> {
        let now = Timestamp::from_millisecond(now_ms).ok()?;
        let today = now.to_zoned(self.zone.tz.clone()).date();
        [today, today.tomorrow().ok()?, today.tomorrow().ok()?.tomorrow().ok()?]
            .into_iter()
            .filter_map(|day| instant(&self.zone, self.at.on(day)))
            .find(|t| *t > now)
            .map(|t| t.as_millisecond())
    }

    /// "in today's 18:00 digest", "in tomorrow's 08:00 digest": where a lead planned at `now_ms`
    /// goes, for the summary at `at_ms`.
    pub fn words(&self, now_ms: i64, at_ms: i64) -> String {
        let day = |ms: i64| Timestamp::from_millisecond(ms).ok().map(|t| t.to_zoned(self.zone.tz.clone()).date());
        let when = if day(now_ms) == day(at_ms) { "today" } else { "tomorrow" };
        format!("in {when}\u{2019}s {} digest", self.zone.clock(at_ms))
    }
}

fn day_index(day: Weekday) -> usize {
    day.to_monday_zero_offset() as usize
}

fn instant(zone: &Zone, civil: jiff::civil::DateTime) -> Option<Timestamp> {
    zone.tz.to_ambiguous_zoned(civil).compatible().ok().map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(iso_utc: &str) -> i64 {
        iso_utc.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn nights(from: &str, to: &str) -> QuietHours {
        QuietHours::check([true; 7], from, to).unwrap()
    }

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    #[test]
    fn a_window_that_crosses_midnight_holds_until_the_morning() {
        let ny = zone("America/New_York");
        let q = nights("22:00", "07:00");
        // 2026-06-10 23:30 EDT = 03:30 UTC on the 11th.
        assert_eq!(q.held_until(&ny, ms("2026-06-11T03:30:00Z")), Some(ms("2026-06-11T11:00:00Z")));
        // 06:59 EDT: still held; 07:00: free; 21:59: free; 22:00: held again until tomorrow 07:00.
        assert_eq!(q.held_until(&ny, ms("2026-06-11T10:59:00Z")), Some(ms("2026-06-11T11:00:00Z")));
        assert_eq!(q.held_until(&ny, ms("2026-06-11T11:00:00Z")), None);
        assert_eq!(q.held_until(&ny, ms("2026-06-12T01:59:00Z")), None);
        assert_eq!(q.held_until(&ny, ms("2026-06-12T02:00:00Z")), Some(ms("2026-06-12T11:00:00Z")));
    }

    #[test]
    fn a_window_within_one_day() {
        let london = zone("Europe/London");
        let lunch = nights("12:00", "13:30");
        assert_eq!(lunch.held_until(&london, ms("2026-01-15T12:10:00Z")), Some(ms("2026-01-15T13:30:00Z")));
        assert_eq!(lunch.held_until(&london, ms("2026-01-15T13:30:00Z")), None);
        assert_eq!(lunch.held_until(&london, ms("2026-01-15T11:59:00Z")), None);
    }

    #[test]
    fn a_window_belongs_to_the_day_it_starts_on_across_the_week_boundary() {
        let ny = zone("America/New_York");
        // Sunday nights only: Sun 22:00 to Mon 07:00.
        let mut days = [false; 7];
        days[6] = true;
        let q = QuietHours::check(days, "22:00", "07:00").unwrap();
        // Monday 2026-06-15 03:00 EDT (07:00 UTC): the window began on Sunday.
        assert_eq!(q.held_until(&ny, ms("2026-06-15T07:00:00Z")), Some(ms("2026-06-15T11:00:00Z")));
        // Monday 23:00 EDT: Monday is not ticked.
        assert_eq!(q.held_until(&ny, ms("2026-06-16T03:00:00Z")), None);
        // Saturday 23:00 EDT: not ticked either.
        assert_eq!(q.held_until(&ny, ms("2026-06-14T03:00:00Z")), None);
    }

    #[test]
    fn dst_nights_in_new_york() {
        let ny = zone("America/New_York");
        let q = nights("22:00", "07:00");
        // Spring forward (2026-03-08, 02:00 EST → 03:00 EDT): the night is an hour shorter and
        // still ends at 07:00 on the wall clock (11:00 UTC, not 12:00).
        assert_eq!(q.held_until(&ny, ms("2026-03-08T05:00:00Z")), Some(ms("2026-03-08T11:00:00Z")));
        // Fall back (2026-11-01, 02:00 EDT → 01:00 EST): an hour longer, 07:00 EST = 12:00 UTC.
        assert_eq!(q.held_until(&ny, ms("2026-11-01T05:00:00Z")), Some(ms("2026-11-01T12:00:00Z")));
        // An end in the skipped hour moves on by the hour skipped: 02:30 → 03:30 EDT (07:30 UTC).
        let early = nights("01:00", "02:30");
        assert_eq!(early.held_until(&ny, ms("2026-03-08T06:30:00Z")), Some(ms("2026-03-08T07:30:00Z")));
        // A start in the repeated hour is its first occurrence: 01:30 EDT (05:30 UTC).
        let repeated = nights("01:30", "06:00");
        assert_eq!(repeated.held_until(&ny, ms("2026-11-01T05:29:00Z")), None);
        assert_eq!(repeated.held_until(&ny, ms("2026-11-01T05:30:00Z")), Some(ms("2026-11-01T11:00:00Z")));
    }

    #[test]
    fn dst_nights_in_london() {
        let london = zone("Europe/London");
        let q = nights("22:00", "07:00");
        // Clocks go forward 2026-03-29 01:00 GMT → 02:00 BST: 07:00 BST is 06:00 UTC.
        assert_eq!(q.held_until(&london, ms("2026-03-29T00:30:00Z")), Some(ms("2026-03-29T06:00:00Z")));
        // Clocks go back 2026-10-25 02:00 BST → 01:00 GMT: 07:00 GMT is 07:00 UTC.
        assert_eq!(q.held_until(&london, ms("2026-10-25T01:30:00Z")), Some(ms("2026-10-25T07:00:00Z")));
    }

    #[test]
    fn the_form_names_what_is_wrong() {
        let e = QuietHours::check([false; 7], "25:00", "7").unwrap_err();
        assert_eq!(e.days.as_deref(), Some("Tick at least one day."));
        assert!(e.from.unwrap().contains("is not a time of day"));
        assert!(e.to.unwrap().contains("is not a time of day"));
        let same = QuietHours::check([true; 7], "07:00", "7:00").unwrap_err();
        assert!(same.to.unwrap().contains("must differ from the start"), "zero length and 24 h are both refused");
        assert!(Zone::parse("Mars/Olympus_Mons").unwrap_err().contains("not a time zone we know"));
        assert!(Zone::parse("").is_err());
        assert_eq!(Zone::parse(" Europe/London ").unwrap().name(), "Europe/London");
    }

    #[test]
    fn stored_and_read_back() {
        let q = QuietHours::check([true, false, true, false, false, false, true], "22:15", "06:45").unwrap();
        assert_eq!(q.days_bits(), 1 + 4 + 64);
        assert_eq!(QuietHours::from_stored(q.days_bits(), Some(q.from.minutes()), Some(q.to.minutes())), Some(q));
        assert_eq!(QuietHours::from_stored(0, Some(60), Some(120)), None, "no day: off");
    }

    #[test]
    fn an_urgent_lead_gets_through() {
        let quiet = Quiet { hours: nights("22:00", "07:00"), zone: zone("America/New_York"), urgent_score: Some(90) };
        let night = ms("2026-06-11T03:30:00Z");
        assert_eq!(quiet.hold(Some(95), night), None);
        assert_eq!(quiet.hold(Some(90), night), None);
        assert_eq!(quiet.hold(Some(89), night), Some(ms("2026-06-11T11:00:00Z")));
        assert_eq!(quiet.hold(None, night), Some(ms("2026-06-11T11:00:00Z")), "usage and billing wait too");
        assert_eq!(region_zone("US").name(), "America/New_York");
        assert_eq!(region_zone("ZZ").name(), "UTC");
    }

    #[test]
    fn described_in_words() {
        assert_eq!(nights("22:00", "07:00").describe(), "Every day 22:00 to 07:00 the next morning");
        let weekdays = QuietHours::check([true, true, true, true, true, false, false], "12:00", "13:00").unwrap();
        assert_eq!(weekdays.describe(), "Mon\u{2013}Fri 12:00 to 13:00");
        assert_eq!(zone("America/New_York").clock(ms("2026-06-11T11:00:00Z")), "07:00");
    }

    #[test]
    fn the_digest_goes_at_its_time_every_day_daylight_saving_included() {
        let d = Digest { at: TimeOfDay::parse("08:00").unwrap(), zone: zone("America/New_York") };
        // 07:00 EDT: today's 08:00 (12:00 UTC); at 08:00 itself: tomorrow's.
        assert_eq!(d.next(ms("2026-06-11T11:00:00Z")), Some(ms("2026-06-11T12:00:00Z")));
        assert_eq!(d.next(ms("2026-06-11T12:00:00Z")), Some(ms("2026-06-12T12:00:00Z")));
        assert_eq!(d.words(ms("2026-06-11T11:00:00Z"), ms("2026-06-11T12:00:00Z")), "in today\u{2019}s 08:00 digest");
        assert_eq!(
            d.words(ms("2026-06-11T12:00:00Z"), ms("2026-06-12T12:00:00Z")),
            "in tomorrow\u{2019}s 08:00 digest"
        );
        // Across spring forward the wall clock stays at 08:00: 13:00 UTC before, 12:00 after.
        assert_eq!(d.next(ms("2026-03-07T14:00:00Z")), Some(ms("2026-03-08T12:00:00Z")));
        // 02:30 does not exist on 2026-03-08 in New York: it moves on to 03:30 EDT (07:30 UTC).
        let night = Digest { at: TimeOfDay::parse("02:30").unwrap(), zone: zone("America/New_York") };
        assert_eq!(night.next(ms("2026-03-08T05:00:00Z")), Some(ms("2026-03-08T07:30:00Z")));
        // 01:30 happens twice on 2026-11-01: the first (EDT, 05:30 UTC), once.
        let repeated = Digest { at: TimeOfDay::parse("01:30").unwrap(), zone: zone("America/New_York") };
        assert_eq!(repeated.next(ms("2026-11-01T04:00:00Z")), Some(ms("2026-11-01T05:30:00Z")));
        assert_eq!(repeated.next(ms("2026-11-01T05:30:00Z")), Some(ms("2026-11-02T06:30:00Z")));
    }

    #[test]
    fn windows_over_a_month_say_which_moments_were_quiet() {
        let ny = zone("America/New_York");
        let q = QuietHours::check([true, true, true, true, true, false, false], "22:00", "07:00").unwrap();
        // Mon 2026-06-08 00:00 UTC to Mon 2026-06-15 00:00 UTC.
        let w = q.windows(&ny, ms("2026-06-08T00:00:00Z"), ms("2026-06-15T00:00:00Z"));
        // Fri 06-05's night is over by then; Sun 06-07's night (not ticked) is no window; Mon to
        // Fri nights are; Sun 06-14 is not.
        assert_eq!(w.len(), 5, "{w:?}");
        assert_eq!(w[0], (ms("2026-06-09T02:00:00Z"), ms("2026-06-09T11:00:00Z")));
        assert!(inside(&w, ms("2026-06-09T03:30:00Z")), "Mon 23:30 EDT");
        assert!(!inside(&w, ms("2026-06-09T11:00:00Z")), "Tue 07:00 EDT: over");
        assert!(!inside(&w, ms("2026-06-08T03:30:00Z")), "Sun 23:30 EDT: not a quiet night");
        assert!(inside(&w, ms("2026-06-13T10:00:00Z")), "Sat 06:00 EDT: Friday's night");
        for (i, at) in
            [ms("2026-06-09T03:30:00Z"), ms("2026-06-10T16:00:00Z"), ms("2026-06-13T10:00:00Z")].iter().enumerate()
        {
            assert_eq!(inside(&w, *at), q.held_until(&ny, *at).is_some(), "case {i}: the same as one by one");
        }
    }
}
