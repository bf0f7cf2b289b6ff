//! Apply's progress display: plain lines (logs, CI, no TTY), one live line per in-flight node
//! (a terminal), or nothing. All read the executor's events; none decide anything.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use edgeplan_engine::{Event, Progress, clock};
use edgeplan_model::{Action, Address};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A plain line is printed for a wait when what it observes changes, or after this long.
const WAIT_LINE_EVERY: Duration = Duration::from_secs(60);

pub(crate) fn verb(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("creating", "created"),
        Action::Update => ("updating", "updated"),
        Action::Replace => ("replacing", "replaced"),
        Action::Delete => ("deleting", "deleted"),
        Action::Read => ("reading", "read"),
        Action::NoOp => ("checking", "unchanged"),
    }
}

fn stamp(at: Duration) -> String {
    format!("[{:>6}]", clock(at))
}

/// One line per event on stdout.
#[derive(Default)]
pub(crate) struct Plain {
    /// Per node: the last wait line printed and when.
    last_wait: RefCell<BTreeMap<Address, (String, Duration)>>,
}

impl Plain {
    fn line(&self, text: String) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }
}

impl Progress for Plain {
    fn event(&self, at: Duration, event: Event) {
        match event {
            Event::Started { address, action } => {
                if action != Action::NoOp {
                    self.line(format!("{} {} {address}: {}", stamp(at), action.symbol().trim(), verb(action).0));
                }
            }
            Event::Waiting { address, wait, waited, observed } => {
                let mut last = self.last_wait.borrow_mut();
                let text = format!("waiting for {}: {observed}", wait.describe());
                let due = match last.get(&address) {
                    Some((previous, when)) => previous != &text || at.saturating_sub(*when) >= WAIT_LINE_EVERY,
                    None => true,
                };
                if due {
                    self.line(format!("{} {address}: {text} ({} so far)", stamp(at), clock(waited)));
                    last.insert(address, (text, at));
                }
            }
            Event::Succeeded { address, action, took } => {
                let waited = self.last_wait.borrow_mut().remove(&address).is_some();
                if action != Action::NoOp || waited {
                    self.line(format!("{} ✓ {address}: {} after {}", stamp(at), verb(action).1, clock(took)));
                }
            }
            Event::Failed { address, error } => {
                self.line(format!("{} ✗ {address}: {}", stamp(at), error.to_string().replace('\n', "\n         ")));
            }
            Event::Skipped { address, root } => {
                self.line(format!("{} - {address}: skipped, {root} failed", stamp(at)));
            }
        }
    }
}

/// One spinner line per node in flight, finished lines printed above them.
pub(crate) struct Fancy {
    bars: MultiProgress,
    active: RefCell<BTreeMap<Address, ProgressBar>>,
}

impl Fancy {
    pub(crate) fn new() -> Fancy {
        Fancy { bars: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()), active: RefCell::default() }
    }

    fn print(&self, text: String) {
        let _ = self.bars.println(text);
    }
}

impl Progress for Fancy {
    fn event(&self, at: Duration, event: Event) {
        match event {
            Event::Started { address, action } => {
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!("{address}: {}", verb(action).0));
                bar.enable_steady_tick(Duration::from_millis(120));
                self.active.borrow_mut().insert(address, bar);
            }
            Event::Waiting { address, wait, waited, observed } => {
                if let Some(bar) = self.active.borrow().get(&address) {
                    bar.set_message(format!(
                        "{address}: waiting for {} ({}): {observed}",
                        wait.describe(),
                        clock(waited)
                    ));
                }
            }
            Event::Succeeded { address, action, took } => {
                if let Some(bar) = self.active.borrow_mut().remove(&address) {
                    bar.finish_and_clear();
                }
                if action != Action::NoOp {
                    self.print(format!("{} ✓ {address}: {} after {}", stamp(at), verb(action).1, clock(took)));
                }
            }
            Event::Failed { address, error } => {
                if let Some(bar) = self.active.borrow_mut().remove(&address) {
                    bar.finish_and_clear();
                }
                self.print(format!("{} ✗ {address}: {error}", stamp(at)));
            }
            Event::Skipped { address, root } => {
                self.print(format!("{} - {address}: skipped, {root} failed", stamp(at)));
            }
        }
    }
}
