//! The emulator's time: the wall clock plus however far a test has moved it forward.
//!
//! Ingestion progress, token expiry and export progress all read this clock, so a test
//! waits for them with [`crate::RunningEmulator::advance`] instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Clock {
    ahead_ms: AtomicI64,
}

impl Clock {
    /// Milliseconds since the Unix epoch, as the emulator sees them.
    pub fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        wall + self.ahead_ms.load(Ordering::SeqCst)
    }

    /// A monotonic instant, moved forward as the clock was.
    pub fn instant(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.ahead_ms.load(Ordering::SeqCst).max(0) as u64)
    }

    pub fn advance(&self, by: Duration) {
        self.ahead_ms
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_both_clocks_forward() {
        let clock = Clock::default();
        let (wall, mono) = (clock.now_ms(), clock.instant());
        clock.advance(Duration::from_secs(3));
        assert!(clock.now_ms() >= wall + 3000);
        assert!(clock.instant() >= mono + Duration::from_secs(3));
    }
}
