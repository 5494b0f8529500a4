//! Dates and times as a clinician reads them: in the hospital's time zone
//! (`policy.time_zone`), day first in French (`01/12/2026 à 17:05`), spelled out in English
//! (`1 December 2026 at 17:05`), never ISO or UTC.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::Lang;

fn zoned(t: u64, zone: &TimeZone) -> Option<jiff::Zoned> {
    let t = i64::try_from(t).ok()?;
    Some(Timestamp::from_second(t).ok()?.to_zoned(zone.clone()))
}

/// A day: `01/12/2026`, `1 December 2026`.
pub fn date(lang: Lang, zone: &TimeZone, t: u64) -> String {
    let Some(z) = zoned(t, zone) else {
        return String::new();
    };
    match lang {
        Lang::Fr => z.strftime("%d/%m/%Y").to_string(),
        Lang::En => z.strftime("%-d %B %Y").to_string(),
    }
}

/// A day and a time to the minute, with the zone's abbreviation when it is not the only one
/// a reader could assume (`01/12/2026 à 17:05`, `1 December 2026 at 17:05`).
pub fn date_time(lang: Lang, zone: &TimeZone, t: u64) -> String {
    let Some(z) = zoned(t, zone) else {
        return String::new();
    };
    let time = z.strftime("%H:%M").to_string();
    match lang {
        Lang::Fr => format!("{} à {time}", date(lang, zone, t)),
        Lang::En => format!("{} at {time}", date(lang, zone, t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_local_and_day_first() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // 2026-11-30 23:30 UTC is already 1 December in Paris.
        let t = 1_796_081_400;
        assert_eq!(date(Lang::Fr, &paris, t), "01/12/2026");
        assert_eq!(date(Lang::En, &paris, t), "1 December 2026");
        assert_eq!(date(Lang::Fr, &TimeZone::UTC, t), "30/11/2026");
        assert_eq!(date_time(Lang::Fr, &paris, t), "01/12/2026 à 00:30");
        assert_eq!(date_time(Lang::En, &paris, t), "1 December 2026 at 00:30");
    }
}
