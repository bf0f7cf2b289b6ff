//! Opening a scope: one SDK client set per (profile, region), from aws-config's default chain,
//! and a check that the credentials are for the account the spec names.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_types::region::Region;
use edgeplan_model::{Backend, BackendError, BoxFuture, Clock, Connector, Scope};
use tokio::sync::OnceCell;

use crate::backend::AwsBackend;
use crate::calls::{CallCounts, Counter};
use crate::error::from_sdk;

/// How clients are made. The defaults are what a user's machine needs: the default credential
/// chain, `AWS_ENDPOINT_URL` and a profile's `endpoint_url` honoured by aws-config itself.
#[derive(Clone)]
pub struct AwsSettings {
    /// Profile files to read instead of `~/.aws/config` and `~/.aws/credentials` (tests).
    pub profile_files: Option<ProfilePaths>,
    /// An endpoint for every service (tests); `None` leaves it to aws-config.
    pub endpoint_url: Option<String>,
    /// The SDK's standard retry mode: attempts per call, and the first backoff.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    /// A scope that does not answer is a diagnostic, never a hang.
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    /// Every call every client makes is counted here.
    pub counts: CallCounts,
    /// The engine's clock for this connector's backends (the wall clock for real AWS).
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, Clone)]
pub struct ProfilePaths {
    pub config: PathBuf,
    pub credentials: PathBuf,
}

impl AwsSettings {
    pub fn new(clock: Arc<dyn Clock>) -> AwsSettings {
        AwsSettings {
            profile_files: None,
            endpoint_url: None,
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
            counts: CallCounts::new(),
            clock,
        }
    }
}

/// A scope's backend, opened once.
type Opening = OnceCell<Result<Arc<AwsBackend>, BackendError>>;

/// Opens AWS scopes; one client set per (profile, region), kept for the connector's life.
pub struct AwsConnector {
    settings: AwsSettings,
    /// One cell per scope: concurrent first uses of a scope open it once.
    open: Mutex<HashMap<Scope, Arc<Opening>>>,
}

impl AwsConnector {
    pub fn new(settings: AwsSettings) -> AwsConnector {
        AwsConnector { settings, open: Mutex::new(HashMap::new()) }
    }

    pub fn counts(&self) -> &CallCounts {
        &self.settings.counts
    }

    /// The backend of an AWS scope, opened on first use.
    pub async fn backend(&self, scope: &Scope) -> Result<Arc<AwsBackend>, BackendError> {
        let cell =
            Arc::clone(self.open.lock().unwrap_or_else(PoisonError::into_inner).entry(scope.clone()).or_default());
        cell.get_or_init(|| async { open(&self.settings, scope).await.map(Arc::new) }).await.clone()
    }
}

impl Connector for AwsConnector {
    fn connect<'a>(&'a self, scope: &'a Scope) -> BoxFuture<'a, Result<Arc<dyn Backend>, BackendError>> {
        Box::pin(async move { self.backend(scope).await.map(|b| b as Arc<dyn Backend>) })
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.settings.clock)
    }
}

async fn open(settings: &AwsSettings, scope: &Scope) -> Result<AwsBackend, BackendError> {
    let Scope::Aws { account, region, profile } = scope else {
        return Err(BackendError::unsupported(format!("{scope} is not an AWS scope")));
    };
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let retry = RetryConfig::standard()
        .with_max_attempts(settings.max_attempts.max(1))
        .with_initial_backoff(settings.initial_backoff);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .operation_attempt_timeout(settings.attempt_timeout)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .http_client(http)
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(paths) = &settings.profile_files {
        let files = EnvConfigFiles::builder()
            .with_file(EnvConfigFileKind::Config, &paths.config)
            .with_file(EnvConfigFileKind::Credentials, &paths.credentials)
            .build();
        loader = loader.profile_files(files);
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    let counter = || Counter(settings.counts.clone());
    let sts =
        aws_sdk_sts::Client::from_conf(aws_sdk_sts::config::Builder::from(&config).interceptor(counter()).build());
    let ec2 =
        aws_sdk_ec2::Client::from_conf(aws_sdk_ec2::config::Builder::from(&config).interceptor(counter()).build());
    let elb = aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(&config).interceptor(counter()).build(),
    );
    let iam =
        aws_sdk_iam::Client::from_conf(aws_sdk_iam::config::Builder::from(&config).interceptor(counter()).build());
    Ok(AwsBackend {
        scope: scope.clone(),
        account: account.clone(),
        region: region.clone(),
        profile: profile.clone(),
        signed_in: OnceCell::new(),
        principal: std::sync::OnceLock::new(),
        sts,
        ec2,
        elb,
        iam,
    })
}

/// Whose credentials these are: a profile for the wrong account would read (and then change)
/// the wrong account, so nothing is written before this passes. It runs alongside the first
/// reads, not before them: a plan does not wait a round trip for it.
pub(crate) async fn check_account(backend: &AwsBackend) -> Result<(), BackendError> {
    let identity = backend
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| signed_in(&backend.scope, from_sdk("sts:GetCallerIdentity", e)))?;
    let principal = identity.arn().unwrap_or("unknown principal").to_string();
    let _ = backend.principal.set(principal.clone());
    let signed_in_account = identity.account().unwrap_or_default();
    if signed_in_account != backend.account {
        let via = backend
            .profile
            .as_deref()
            .map_or_else(|| "the default credentials".to_string(), |p| format!("profile `{p}`"));
        return Err(BackendError::Transport {
            message: format!(
                "{via} signs in to account {signed_in_account} ({principal}), but the spec names account {}: use a profile for {}",
                backend.account, backend.account
            ),
            retryable: false,
        });
    }
    Ok(())
}

/// A failure to sign in says which scope and what to do.
fn signed_in(scope: &Scope, error: BackendError) -> BackendError {
    match error {
        BackendError::Transport { message, retryable } => BackendError::Transport {
            message: format!("cannot sign in to {scope}: {message} (check the profile, or run `aws sso login`)"),
            retryable,
        },
        other => other,
    }
}
