//! Working hours: days of the week and a time-of-day range in the hospital's time zone.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// `days` (empty = every day) and `from..to` minutes after midnight (`to < from` wraps past
/// midnight: a night shift).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeWindow {
    pub days: Vec<Weekday>,
    pub from: u16,
    pub to: u16,
}

impl TimeWindow {
    /// Parse `HH:MM-HH:MM` and day names (`mon`…`sun`).
    pub fn parse(hours: &str, days: &[String]) -> Result<Self, String> {
        let (a, b) = hours
            .split_once('-')
            .ok_or_else(|| format!("`{hours}` is not HH:MM-HH:MM"))?;
        let minutes = |s: &str| -> Result<u16, String> {
            let (h, m) = s
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("`{s}` is not HH:MM"))?;
            let (h, m): (u16, u16) = (
                h.parse().map_err(|_| format!("`{s}` is not HH:MM"))?,
                m.parse().map_err(|_| format!("`{s}` is not HH:MM"))?,
            );
            if h > 24 || m > 59 || (h == 24 && m > 0) {
                return Err(format!("`{s}` is not a time of day"));
            }
            Ok(h * 60 + m)
        };
        let (from, to) = (minutes(a)?, minutes(b)?);
        if from == to {
            return Err(format!("`{hours}` is an empty range"));
        }
        let days = days
            .iter()
            .map(|d| match d.to_ascii_lowercase().as_str() {
                "mon" | "monday" => Ok(Weekday::Monday),
                "tue" | "tuesday" => Ok(Weekday::Tuesday),
                "wed" | "wednesday" => Ok(Weekday::Wednesday),
                "thu" | "thursday" => Ok(Weekday::Thursday),
                "fri" | "friday" => Ok(Weekday::Friday),
                "sat" | "saturday" => Ok(Weekday::Saturday),
                "sun" | "sunday" => Ok(Weekday::Sunday),
                _ => Err(format!("`{d}` is not a day (mon, tue, … sun)")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { days, from, to })
    }

    /// Whether unix time `now` falls inside, in `zone`.
    pub fn contains(&self, now: u64, zone: &TimeZone) -> bool {
        let Ok(ts) = Timestamp::from_second(now as i64) else {
            return false;
        };
        let local = ts.to_zoned(zone.clone());
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        let (in_range, day) = if self.from < self.to {
            (minute >= self.from && minute < self.to, local.weekday())
        } else if minute >= self.from {
            (true, local.weekday())
        } else {
            // After midnight in a night window: the shift started the day before.
            (minute < self.to, local.weekday().previous())
        };
        in_range && (self.days.is_empty() || self.days.contains(&day))
    }
}

#[cfg(test)]
mod tests;
