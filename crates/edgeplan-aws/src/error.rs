//! AWS errors as the seam's typed [`BackendError`]: the error code decides the variant, so the
//! engine can retry what is worth retrying and say what to do about the rest.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use edgeplan_model::BackendError;

/// Map one failed call. `action` is the IAM action the call needs (`ec2:DescribeSubnets`): an
/// access denial names it even when the message does not.
pub(crate) fn from_sdk<E, R>(action: &str, error: SdkError<E, R>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            from_code(action, err.code().unwrap_or("Unknown"), err.message().unwrap_or(""))
        }
        SdkError::TimeoutError(_) => {
            BackendError::Transport { message: format!("{action}: the request timed out"), retryable: true }
        }
        SdkError::DispatchFailure(failure) => {
            let retryable = failure.is_timeout() || failure.is_io();
            let detail = describe_chain(&error);
            BackendError::Transport { message: format!("{action}: {detail}"), retryable }
        }
        SdkError::ResponseError(_) => {
            BackendError::Transport { message: format!("{action}: {}", describe_chain(&error)), retryable: true }
        }
        SdkError::ConstructionFailure(_) => {
            BackendError::invalid("RequestConstruction", format!("{action}: {}", describe_chain(&error)))
        }
        _ => BackendError::Transport { message: format!("{action}: {}", describe_chain(&error)), retryable: false },
    }
}

/// The error's whole `source()` chain: the SDK's top-level Display says only "dispatch failure".
fn describe_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(next) = source {
        let text = next.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = next.source();
    }
    parts.join(": ")
}

/// Map an AWS error code (EC2, ELBv2 and IAM spell them differently) to the seam's variants.
pub(crate) fn from_code(action: &str, code: &str, message: &str) -> BackendError {
    let text = if message.is_empty() { code.to_string() } else { format!("{code}: {message}") };
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "Unavailable"
        | "ServiceUnavailable"
        | "InternalError"
        | "InternalFailure" => BackendError::Throttled { message: text },
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException" | "AuthFailure" => {
            BackendError::AccessDenied {
                action: Some(denied_action(message).unwrap_or(action).to_string()),
                message: text,
            }
        }
        "InvalidClientTokenId" | "ExpiredToken" | "ExpiredTokenException" | "SignatureDoesNotMatch" => {
            BackendError::Transport {
                message: format!("{text} (refresh the profile's credentials, e.g. `aws sso login`)"),
                retryable: false,
            }
        }
        "NoSuchEntity" | "LoadBalancerNotFound" | "TargetGroupNotFound" | "ListenerNotFound" => {
            BackendError::NotFound { message: text }
        }
        // `InvalidVpcID.NotFound`, `InvalidVpcEndpointServiceId.NotFound`, `LoadBalancerNotFound`…
        _ if code.ends_with("NotFound") => BackendError::NotFound { message: text },
        "DependencyViolation"
        | "EntityAlreadyExists"
        | "DeleteConflict"
        | "ResourceInUse"
        | "DuplicateLoadBalancerName"
        | "InvalidGroup.Duplicate"
        | "InvalidPermission.Duplicate"
        | "InvalidSubnet.Conflict"
        | "Resource.AlreadyAssociated"
        | "RouteAlreadyExists"
        | "IncorrectState"
        | "InvalidState"
        | "ConcurrentModification" => BackendError::conflict(text),
        _ => BackendError::invalid(code, message),
    }
}

/// `... is not authorized to perform: ec2:DescribeRouteTables on resource ...`: the action the
/// principal lacks, as AWS names it.
fn denied_action(message: &str) -> Option<&str> {
    let rest = message.split("to perform: ").nth(1)?;
    let action = rest.split(|c: char| c.is_whitespace() || c == ',').next()?;
    action.contains(':').then_some(action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_seam_variants() {
        assert!(matches!(
            from_code("ec2:X", "RequestLimitExceeded", "Request limit exceeded."),
            BackendError::Throttled { .. }
        ));
        assert!(matches!(from_code("iam:X", "Throttling", "Rate exceeded"), BackendError::Throttled { .. }));
        assert!(matches!(from_code("ec2:X", "InvalidVpcID.NotFound", "no"), BackendError::NotFound { .. }));
        assert!(matches!(from_code("iam:X", "NoSuchEntity", "no"), BackendError::NotFound { .. }));
        assert!(matches!(from_code("ec2:X", "InvalidPermission.Duplicate", "dup"), BackendError::Conflict { .. }));
        assert!(matches!(from_code("iam:X", "DeleteConflict", "attached"), BackendError::Conflict { .. }));
        assert_eq!(from_code("ec2:X", "InvalidParameterValue", "bad").code(), "InvalidParameterValue");
    }

    #[test]
    fn an_access_denial_names_the_action_and_the_principal() {
        let message = "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/ci/session is not authorized to perform: ec2:DescribeRouteTables because no identity-based policy allows the ec2:DescribeRouteTables action";
        let error = from_code("ec2:DescribeSubnets", "UnauthorizedOperation", message);
        let BackendError::AccessDenied { action, message } = &error else { panic!("{error:?}") };
        assert_eq!(action.as_deref(), Some("ec2:DescribeRouteTables"));
        assert!(message.contains("assumed-role/ci/session"), "{message}");
        // No action in the message: the call's own.
        let error = from_code("iam:ListAttachedRolePolicies", "AccessDenied", "Access denied");
        assert!(
            matches!(error, BackendError::AccessDenied { action: Some(a), .. } if a == "iam:ListAttachedRolePolicies")
        );
    }
}
