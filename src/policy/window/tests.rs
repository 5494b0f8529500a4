use super::*;

fn at(s: &str) -> u64 {
    s.parse::<Timestamp>().unwrap().as_second() as u64
}

#[test]
fn day_and_night_windows_in_paris() {
    let paris = TimeZone::get("Europe/Paris").unwrap();
    let office = TimeWindow::parse("07:00-20:00", &["mon".into(), "fri".into()]).unwrap();
    // Monday 2026-11-23 07:30 in Paris is 06:30 UTC (winter time).
    assert!(office.contains(at("2026-11-23T06:30:00Z"), &paris));
    assert!(
        !office.contains(at("2026-11-23T05:59:00Z"), &paris),
        "06:59 local"
    );
    assert!(
        !office.contains(at("2026-11-24T10:00:00Z"), &paris),
        "Tuesday"
    );
    // Summer time: 07:30 in Paris is 05:30 UTC.
    assert!(office.contains(at("2026-06-29T05:30:00Z"), &paris));
    let night = TimeWindow::parse("20:00-07:00", &["fri".into()]).unwrap();
    assert!(
        night.contains(at("2026-11-27T22:00:00Z"), &paris),
        "Friday 23:00"
    );
    assert!(
        night.contains(at("2026-11-28T04:00:00Z"), &paris),
        "Saturday 05:00, Friday's shift"
    );
    assert!(
        !night.contains(at("2026-11-28T22:00:00Z"), &paris),
        "Saturday 23:00"
    );
    for bad in [
        "7-20",
        "07:00",
        "25:00-26:00",
        "08:00-08:00",
        "20:00-24:30",
        "07:60-08:00",
    ] {
        assert!(TimeWindow::parse(bad, &[]).is_err(), "{bad}");
    }
    // Midnight at the end of the day is a time of day, and so is any minute up to 59.
    for good in ["20:00-24:00", "06:59-23:59"] {
        assert!(TimeWindow::parse(good, &[]).is_ok(), "{good}");
    }
    assert!(TimeWindow::parse("07:00-20:00", &["funday".into()]).is_err());
}

#[test]
fn minutes_and_every_day_name_count() {
    let paris = TimeZone::get("Europe/Paris").unwrap();
    // Saturday 2026-11-28 and Sunday 29, winter time (UTC+1).
    let weekend = TimeWindow::parse("07:30-19:45", &["sat".into(), "Sunday".into()]).unwrap();
    assert!(
        !weekend.contains(at("2026-11-28T06:15:00Z"), &paris),
        "07:15"
    );
    assert!(
        weekend.contains(at("2026-11-28T06:45:00Z"), &paris),
        "07:45"
    );
    assert!(
        weekend.contains(at("2026-11-29T18:30:00Z"), &paris),
        "Sunday 19:30"
    );
    assert!(
        !weekend.contains(at("2026-11-29T18:50:00Z"), &paris),
        "19:50"
    );
    // The end minute is outside, in a day window as in a night one.
    assert!(
        !weekend.contains(at("2026-11-29T18:45:00Z"), &paris),
        "19:45"
    );
    let night = TimeWindow::parse("20:00-07:00", &[]).unwrap();
    assert!(night.contains(at("2026-11-28T05:59:00Z"), &paris), "06:59");
    assert!(!night.contains(at("2026-11-28T06:00:00Z"), &paris), "07:00");
    assert!(
        !weekend.contains(at("2026-11-30T10:00:00Z"), &paris),
        "Monday"
    );
    let names = ["mon", "tuesday", "Wed", "THU", "fri", "saturday", "sun"];
    let every = TimeWindow::parse("00:00-24:00", &names.map(String::from)).unwrap();
    assert_eq!(every.days.len(), 7);
}
