//! The AWS backend: the seam's AWS-scope [`edgeplan_model::Backend`] over aws-sdk-rust (EC2,
//! ELBv2, IAM), one client set per (profile, region). The only crate that depends on the AWS
//! SDK, so nothing else pays for building it.
//!
//! - [`AwsConnector`] opens a scope from aws-config's default chain (the spec's profile,
//!   `AWS_ENDPOINT_URL` and a profile's `endpoint_url` honoured), checks the credentials are
//!   for the spec's account, and counts every call ([`CallCounts`]).
//! - `observe` reads every node of a kind with one call per API (filters, ID lists,
//!   paginators), every kind at once; `execute` translates one operation; `list_owned` finds
//!   everything tagged with the stack, one tag-filtered call per kind.
//!
//! Nothing here decides: the engine diffs, judges and orders. AWS's quirks that a faithful
//! translation must absorb are handled where they arise: URL-encoded policy documents
//! (`iam`), camelCase endpoint states the SDK enum does not know (`observe::camel`),
//! per-item failures in `Unsuccessful` lists (`execute`), duplicates on retried creates.

mod backend;
mod calls;
mod connect;
mod convert;
mod error;
mod execute;
mod iam;
mod observe;
mod owned;
#[cfg(test)]
mod recorded;

pub use backend::AwsBackend;
pub use calls::{CallCount, CallCounts};
pub use connect::{AwsConnector, AwsSettings, ProfilePaths};
