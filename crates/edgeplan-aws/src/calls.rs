//! Counting API calls: an SDK interceptor on every client, so the benchmark (and anyone
//! curious) can see how many requests a plan makes, per service and operation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Calls made so far, by `Service:Operation` (`EC2:DescribeSubnets`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallCount {
    /// Operations the code asked for.
    pub operations: u64,
    /// HTTP requests sent: operations plus the SDK's retries.
    pub attempts: u64,
}

/// Shared by every client a connector makes.
#[derive(Debug, Default, Clone)]
pub struct CallCounts {
    counts: Arc<Mutex<BTreeMap<String, CallCount>>>,
    /// When each request was sent, for seeing which calls ran one after another.
    sent: Arc<Mutex<Vec<(std::time::Instant, String)>>>,
}

impl CallCounts {
    pub fn new() -> CallCounts {
        CallCounts::default()
    }

    pub fn snapshot(&self) -> BTreeMap<String, CallCount> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn reset(&self) {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).clear();
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Every request sent, with its time since the first.
    pub fn timeline(&self) -> Vec<(std::time::Duration, String)> {
        let sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(first) = sent.first().map(|(t, _)| *t) else { return Vec::new() };
        sent.iter().map(|(t, op)| (t.duration_since(first), op.clone())).collect()
    }

    /// Operations in all.
    pub fn total_operations(&self) -> u64 {
        self.snapshot().values().map(|c| c.operations).sum()
    }

    fn bump(&self, cfg: &ConfigBag, attempt: bool) {
        let key =
            cfg.load::<Metadata>().map_or_else(|| "unknown".to_string(), |m| format!("{}:{}", m.service(), m.name()));
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key.clone()).or_default();
        if attempt {
            count.attempts += 1;
            self.sent.lock().unwrap_or_else(PoisonError::into_inner).push((std::time::Instant::now(), key));
        } else {
            count.operations += 1;
        }
    }
}

#[derive(Debug)]
pub(crate) struct Counter(pub(crate) CallCounts);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "edgeplan-call-counter"
    }

    // The operation's name is in the config bag from serialization on, not at execution start.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.bump(cfg, false);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.bump(cfg, true);
        Ok(())
    }
}
