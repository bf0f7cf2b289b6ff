//! The world's virtual clock, as the engine's [`Clock`]: a sleep is a deadline, and when the
//! engine is waiting on nothing else ([`Clock::idle`]) time jumps to the earliest deadline. The
//! world catches up with it on every backend call, so modelled minutes pass instantly and are
//! reported as they would pass.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use edgeplan_model::{BoxFuture, Clock};

#[derive(Debug, Default)]
struct State {
    now: Duration,
    /// `(deadline, id, waker)` of every pending sleep.
    sleepers: Vec<(Duration, u64, Waker)>,
    next_id: u64,
}

/// Virtual time since the clock was made.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    state: Arc<Mutex<State>>,
}

impl VirtualClock {
    pub fn new() -> VirtualClock {
        VirtualClock::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Sleep {
    state: Arc<Mutex<State>>,
    deadline: Duration,
    id: Option<u64>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let state = Arc::clone(&self.state);
        let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.now >= self.deadline {
            if let Some(id) = self.id.take() {
                state.sleepers.retain(|(_, other, _)| *other != id);
            }
            return Poll::Ready(());
        }
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = state.next_id;
                state.next_id += 1;
                self.id = Some(id);
                id
            }
        };
        state.sleepers.retain(|(_, other, _)| *other != id);
        let deadline = self.deadline;
        state.sleepers.push((deadline, id, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            state.sleepers.retain(|(_, other, _)| *other != id);
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Duration {
        self.lock().now
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let deadline = self.lock().now.saturating_add(duration);
        Box::pin(Sleep { state: Arc::clone(&self.state), deadline, id: None })
    }

    fn idle(&self) -> bool {
        let wakers: Vec<Waker> = {
            let mut state = self.lock();
            let Some(next) = state.sleepers.iter().map(|(deadline, _, _)| *deadline).min() else { return false };
            state.now = state.now.max(next);
            let now = state.now;
            state.sleepers.iter().filter(|(deadline, _, _)| *deadline <= now).map(|(_, _, w)| w.clone()).collect()
        };
        for waker in wakers {
            waker.wake();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_jumps_to_the_earliest_deadline_and_wakes_only_those_due() {
        let clock = VirtualClock::new();
        let mut short = clock.sleep(Duration::from_secs(5));
        let mut long = clock.sleep(Duration::from_secs(90));
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(short.as_mut().poll(&mut cx).is_pending());
        assert!(long.as_mut().poll(&mut cx).is_pending());
        assert!(clock.idle());
        assert_eq!(clock.now(), Duration::from_secs(5));
        assert!(short.as_mut().poll(&mut cx).is_ready());
        assert!(long.as_mut().poll(&mut cx).is_pending());
        assert!(clock.idle());
        assert_eq!(clock.now(), Duration::from_secs(90));
        assert!(long.as_mut().poll(&mut cx).is_ready());
        assert!(!clock.idle(), "nothing left to wait for");
    }
}
