//! Rate caps shared by every upload of a run: body bytes per second (`--bwlimit`, with
//! rclone's timetable form) and upload requests per second (`--tps-limit`).
//!
//! Both are one [`Pacer`]: each use reserves its share of the rate and waits until the
//! reservation comes due (a virtual-schedule token bucket with no burst), so the cap holds
//! over any window, however many workers share it. A timetable's rate is looked up at each
//! reservation, so a run that crosses 08:00 slows down by itself.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::BodyPace;

/// A rate that may change with the time of day: `(minute of the day, rate)` entries, the
/// last one at or before now in force (the day's last entry carries over midnight).
/// `None` is no limit.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    entries: Vec<(u32, Option<f64>)>,
}

impl Schedule {
    pub fn constant(rate: Option<f64>) -> Schedule {
        Schedule {
            entries: vec![(0, rate)],
        }
    }

    /// `--bwlimit`, as rclone writes it: `off`, `2M` (MiB/s), `512K`, `10` (KiB/s, rclone's
    /// default unit), `1.5G`, or a timetable `"08:00,512K 19:00,off"`.
    pub fn parse_bwlimit(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if !text.contains(',') {
            return Ok(Schedule::constant(parse_rate(text)?));
        }
        let mut entries = Vec::new();
        for item in text.split_whitespace() {
            let (time, rate) = item.split_once(',').ok_or_else(|| {
                format!("'{item}' is not HH:MM,RATE (e.g. --bwlimit \"08:00,512K 19:00,off\")")
            })?;
            let (h, m) = time
                .split_once(':')
                .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)))
                .filter(|(h, m)| *h < 24 && *m < 60)
                .ok_or_else(|| format!("'{time}' is not a time of day HH:MM"))?;
            entries.push((h * 60 + m, parse_rate(rate)?));
        }
        entries.sort_by_key(|(minute, _)| *minute);
        Ok(Schedule { entries })
    }

    /// The rate in force at `minute` of the day.
    pub fn rate_at(&self, minute: u32) -> Option<f64> {
        self.entries
            .iter()
            .rev()
            .find(|(m, _)| *m <= minute)
            .or(self.entries.last())
            .and_then(|(_, r)| *r)
    }

    fn rate_now(&self) -> Option<f64> {
        if self.entries.len() == 1 {
            return self.entries[0].1;
        }
        let now = jiff::Zoned::now();
        self.rate_at(now.hour() as u32 * 60 + now.minute() as u32)
    }
}

/// Bytes per second from rclone's units: binary suffixes, KiB/s without one.
fn parse_rate(text: &str) -> Result<Option<f64>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") || t.is_empty() {
        return Ok(None);
    }
    let (num, mult) = match t.chars().last() {
        Some('B' | 'b') => (&t[..t.len() - 1], 1.0),
        Some('K' | 'k') => (&t[..t.len() - 1], 1024.0),
        Some('M' | 'm') => (&t[..t.len() - 1], 1024.0 * 1024.0),
        Some('G' | 'g') => (&t[..t.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (t, 1024.0),
    };
    match num.parse::<f64>() {
        Ok(n) if n > 0.0 => Ok(Some(n * mult)),
        _ => Err(format!(
            "'{text}' is not a rate: write e.g. 2M (MiB/s), 512K, off, or a timetable \
             \"08:00,512K 19:00,off\""
        )),
    }
}

/// A shared rate cap.
#[derive(Debug)]
pub struct Pacer {
    schedule: Schedule,
    next_free: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(schedule: Schedule) -> Pacer {
        Pacer {
            schedule,
            next_free: Mutex::new(None),
        }
    }

    /// Reserves `units` (bytes, or requests); returns how long to wait before using them.
    pub fn reserve(&self, units: u64) -> Duration {
        let Some(rate) = self.schedule.rate_now() else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let Ok(mut next) = self.next_free.lock() else {
            return Duration::ZERO;
        };
        let start = next.filter(|t| *t > now).unwrap_or(now);
        *next = Some(start + Duration::from_secs_f64(units as f64 / rate));
        start - now
    }

    /// Waits until `units` may be used.
    pub async fn acquire(&self, units: u64) {
        let wait = self.reserve(units);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl BodyPace for Pacer {
    fn delay(&self, bytes: u64) -> Duration {
        self.reserve(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rclone_rates_and_timetables() {
        assert_eq!(parse_rate("2M").unwrap(), Some(2.0 * 1024.0 * 1024.0));
        assert_eq!(parse_rate("10").unwrap(), Some(10.0 * 1024.0));
        assert_eq!(parse_rate("off").unwrap(), None);
        assert!(parse_rate("fast").is_err());
        let t = Schedule::parse_bwlimit("08:00,512K 19:00,off").unwrap();
        assert_eq!(t.rate_at(8 * 60), Some(512.0 * 1024.0));
        assert_eq!(t.rate_at(12 * 60), Some(512.0 * 1024.0));
        assert_eq!(t.rate_at(19 * 60 + 1), None);
        // Before the day's first entry, the previous evening's rate holds.
        assert_eq!(t.rate_at(3 * 60), None);
        assert!(Schedule::parse_bwlimit("25:00,1M").is_err());
        assert!(Schedule::parse_bwlimit("08:00;1M 09:00,2M").is_err());
    }

    #[test]
    fn reservations_follow_the_rate() {
        let p = Pacer::new(Schedule::constant(Some(1000.0)));
        assert_eq!(p.reserve(500), Duration::ZERO);
        let second = p.reserve(500);
        assert!(
            second > Duration::from_millis(450) && second <= Duration::from_millis(500),
            "{second:?}"
        );
        let free = Pacer::new(Schedule::constant(None));
        assert_eq!(free.reserve(1 << 30), Duration::ZERO);
    }
}
