//! Time and the engine's driver. Every wait in the engine sleeps on the [`Clock`] its backends'
//! world keeps: the wall clock (tokio timers) for real systems, the simulated world's virtual
//! clock for `--world`. [`drive`] runs the engine's top-level future and, when everything it
//! runs is waiting, lets a virtual clock jump to the next deadline, so modelled minutes pass
//! in microseconds with no test-only runtime feature in the release binary.

use std::future::Future;
use std::pin::Pin;
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

type Task<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Poll every future together on the current task (no spawn); results in input order.
pub async fn join_all<'a, T: Send + 'a>(futures: Vec<Task<'a, T>>) -> Vec<T> {
    let mut slots: Vec<(Task<'a, T>, Option<T>)> = futures.into_iter().map(|f| (f, None)).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in slots.iter_mut() {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *slot = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    slots.into_iter().filter_map(|(_, value)| value).collect()
}

/// Poll two futures together on the current task (no spawn).
pub async fn both<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut left, mut right) = (None, None);
    std::future::poll_fn(|cx| {
        if left.is_none()
            && let Poll::Ready(value) = a.as_mut().poll(cx)
        {
            left = Some(value);
        }
        if right.is_none()
            && let Poll::Ready(value) = b.as_mut().poll(cx)
        {
            right = Some(value);
        }
        if left.is_some() && right.is_some() { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    match (left, right) {
        (Some(left), Some(right)) => (left, right),
        _ => unreachable!("both futures completed"),
    }
}
