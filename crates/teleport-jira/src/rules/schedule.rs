//! Rule schedules: a request matches a schedule when its creation time, in the schedule's time
//! zone, falls inside one of its shifts (weekday by name, `HH:MM` to `HH:MM`, both ends included,
//! to the minute), as Teleport's own evaluation decides. A schedule without shifts never matches.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;

use teleport_proto::teleport::accessmonitoringrules::v1::TimeSchedule;

/// A schedule that cannot be read: the rule it belongs to is skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

/// One schedule of a rule, read once when the rule arrives.
#[derive(Clone, Debug)]
pub struct Schedule {
    zone: TimeZone,
    shifts: Vec<Shift>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Shift {
    weekday: Weekday,
    /// Minutes after midnight, both ends included.
    start: u16,
    end: u16,
}

impl Schedule {
    pub fn from_proto(schedule: &TimeSchedule) -> Result<Self, ScheduleError> {
        let zone = match schedule.timezone.as_str() {
            "" => TimeZone::UTC,
            name => TimeZone::get(name)
                .map_err(|_| ScheduleError(format!("unknown time zone {name:?}")))?,
        };
        let shifts = schedule
            .shifts
            .iter()
            .map(|shift| {
                Ok(Shift {
                    weekday: weekday(&shift.weekday)?,
                    start: minutes(&shift.start)?,
                    end: minutes(&shift.end)?,
                })
            })
            .collect::<Result<_, ScheduleError>>()?;
        Ok(Self { zone, shifts })
    }

    /// Whether `time` falls inside one of the shifts.
    pub fn contains(&self, time: Timestamp) -> bool {
        let local = time.to_zoned(self.zone.clone());
        let minute = u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute()))
            .unwrap_or(u16::MAX);
        self.shifts.iter().any(|shift| {
            shift.weekday == local.weekday() && shift.start <= minute && minute <= shift.end
        })
    }
}

fn weekday(name: &str) -> Result<Weekday, ScheduleError> {
    Ok(match name {
        "Monday" => Weekday::Monday,
        "Tuesday" => Weekday::Tuesday,
        "Wednesday" => Weekday::Wednesday,
        "Thursday" => Weekday::Thursday,
        "Friday" => Weekday::Friday,
        "Saturday" => Weekday::Saturday,
        "Sunday" => Weekday::Sunday,
        other => return Err(ScheduleError(format!("unknown weekday {other:?}"))),
    })
}

/// `HH:MM` (24-hour) as minutes after midnight.
fn minutes(clock: &str) -> Result<u16, ScheduleError> {
    let bad = || ScheduleError(format!("{clock:?} is not a time of day as HH:MM"));
    let (hours, mins) = clock.split_once(':').ok_or_else(bad)?;
    if hours.len() != 2 || mins.len() != 2 {
        return Err(bad());
    }
    let hours: u16 = hours.parse().map_err(|_| bad())?;
    let mins: u16 = mins.parse().map_err(|_| bad())?;
    if hours > 23 || mins > 59 {
        return Err(bad());
    }
    Ok(hours * 60 + mins)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use teleport_proto::teleport::accessmonitoringrules::v1::time_schedule::Shift as ProtoShift;

    use super::*;

    fn schedule(zone: &str, shifts: &[(&str, &str, &str)]) -> Result<Schedule, ScheduleError> {
        Schedule::from_proto(&TimeSchedule {
            shifts: shifts
                .iter()
                .map(|(weekday, start, end)| ProtoShift {
                    weekday: (*weekday).into(),
                    start: (*start).into(),
                    end: (*end).into(),
                })
                .collect(),
            timezone: zone.into(),
        })
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn shifts_are_read_in_the_schedules_time_zone_with_both_ends_included() {
        let business = schedule("America/Los_Angeles", &[("Monday", "09:00", "17:00")]).unwrap();
        // 2026-12-07 is a Monday; Los Angeles is UTC-8 in December.
        assert!(business.contains(at("2026-12-07T17:00:00Z")), "09:00 local");
        assert!(
            business.contains(at("2026-12-08T01:00:59Z")),
            "17:00 local, within the minute"
        );
        assert!(
            !business.contains(at("2026-12-08T01:01:00Z")),
            "17:01 local"
        );
        assert!(
            !business.contains(at("2026-12-07T16:59:00Z")),
            "08:59 local"
        );
        assert!(
            !business.contains(at("2026-12-07T12:00:00Z")),
            "04:00 local"
        );
        assert!(!business.contains(at("2026-12-08T18:00:00Z")), "Tuesday");
    }

    #[test]
    fn an_empty_time_zone_is_utc_and_no_shifts_never_match() {
        let utc = schedule("", &[("Sunday", "00:00", "23:59")]).unwrap();
        assert!(utc.contains(at("2026-12-06T23:59:30Z")));
        assert!(!utc.contains(at("2026-12-07T00:00:00Z")));
        let empty = schedule("", &[]).unwrap();
        assert!(!empty.contains(at("2026-12-06T12:00:00Z")));
    }

    #[test]
    fn unreadable_schedules_are_errors() {
        for (zone, shift) in [
            ("Mars/Olympus", ("Monday", "09:00", "17:00")),
            ("", ("monday", "09:00", "17:00")),
            ("", ("Monday", "9:00", "17:00")),
            ("", ("Monday", "09:00", "24:00")),
            ("", ("Monday", "09:60", "17:00")),
        ] {
            assert!(schedule(zone, &[shift]).is_err(), "{zone:?} {shift:?}");
        }
    }
}
