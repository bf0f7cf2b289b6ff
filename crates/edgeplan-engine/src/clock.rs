//! Time and the engine's driver. Every wait in the engine sleeps on the [`Clock`] its backends'
//! world keeps: the wall clock (tokio timers) for real systems, the simulated world's virtual
//! clock for `--world`. [`drive`] runs the engine's top-level future and, when everything it
//! runs is waiting, lets a virtual clock jump to the next deadline, so modelled minutes pass
//! in microseconds with no test-only runtime feature in the release binary.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use edgeplan_model::{BoxFuture, Clock};

/// Real time: tokio's timers on the running runtime.
#[derive(Debug)]
pub struct WallClock {
    start: tokio::time::Instant,
}

impl WallClock {
    pub fn new() -> WallClock {
        WallClock { start: tokio::time::Instant::now() }
    }
}

impl Default for WallClock {
    fn default() -> WallClock {
        WallClock::new()
    }
}

impl Clock for WallClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Run `future` to completion on the current task, advancing a virtual clock whenever the
/// future is waiting on nothing but it.
pub async fn drive<F: Future>(clock: Arc<dyn Clock>, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(move |cx: &mut Context<'_>| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(output),
        Poll::Pending => {
            // Everything is asleep: a virtual clock moves to the next deadline and wakes its
            // sleepers; poll again at once.
            if clock.idle() {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    })
    .await
}

pub use edgeplan_model::join::{both, join_all};
