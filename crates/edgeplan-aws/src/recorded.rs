//! AWS behaviour moto does not show, on responses shaped as AWS sends them (the error and
//! result XML of EC2's and IAM's query protocols): URL-encoded policy documents, access denials
//! that name the action and the principal, `DeleteConflict`, the camelCase endpoint states the
//! SDK's enum does not know. The SDK parses them as it would AWS's; the backend is the real one.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use edgeplan_model::attr;
use edgeplan_model::{
    Action, Address, Backend, BackendError, Expr, Identity, Node, NodeKind, Observed, Operation, Ownership, Request,
    Scope, Value,
};

use crate::backend::AwsBackend;

const ACCOUNT: &str = "123456789012";
const PRINCIPAL: &str = "arn:aws:sts::123456789012:assumed-role/ci/session";

/// `(Action, status, body)`: what "AWS" answers each action with.
type Answers = Vec<(&'static str, u16, String)>;

fn answer(answers: &Answers, body: &str) -> (u16, String) {
    let action = body.split('&').find_map(|p| p.strip_prefix("Action=")).unwrap_or_default();
    answers.iter().find(|(a, _, _)| *a == action).map(|(_, status, body)| (*status, body.clone())).unwrap_or((
        400,
        format!(
            "<Response><Errors><Error><Code>Unexpected</Code><Message>{action}</Message></Error></Errors></Response>"
        ),
    ))
}

/// An HTTP client that answers from `Answers`, in process (our own: the SDK's test utilities
/// would switch serde_json's `preserve_order` on for the whole workspace's test build).
#[derive(Debug, Clone)]
struct Recorded(Arc<Answers>);

impl HttpConnector for Recorded {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body = request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        let (status, text) = answer(&self.0, &body);
        let status = StatusCode::try_from(status).expect("a status code");
        HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(text))))
    }
}

impl HttpClient for Recorded {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

fn backend(answers: Answers) -> AwsBackend {
    let http = SharedHttpClient::new(Recorded(Arc::new(answers)));
    let credentials = aws_credential_types::Credentials::for_tests();
    let region = aws_types::region::Region::new("eu-west-1");
    let behavior = aws_config::BehaviorVersion::latest();
    let ec2 = aws_sdk_ec2::Config::builder()
        .behavior_version(behavior)
        .region(region.clone())
        .credentials_provider(credentials.clone())
        .http_client(http.clone())
        .build();
    let elb = aws_sdk_elasticloadbalancingv2::Config::builder()
        .behavior_version(behavior)
        .region(region.clone())
        .credentials_provider(credentials.clone())
        .http_client(http.clone())
        .build();
    let iam = aws_sdk_iam::Config::builder()
        .behavior_version(behavior)
        .region(region.clone())
        .credentials_provider(credentials.clone())
        .http_client(http.clone())
        .build();
    let sts = aws_sdk_sts::Config::builder()
        .behavior_version(behavior)
        .region(region)
        .credentials_provider(credentials)
        .http_client(http)
        .build();
    AwsBackend {
        scope: Scope::Aws { account: ACCOUNT.to_string(), region: "eu-west-1".to_string(), profile: None },
        account: ACCOUNT.to_string(),
        region: "eu-west-1".to_string(),
        profile: None,
        signed_in: tokio::sync::OnceCell::new(),
        principal: std::sync::OnceLock::new(),
        sts: aws_sdk_sts::Client::from_conf(sts),
        ec2: aws_sdk_ec2::Client::from_conf(ec2),
        elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb),
        iam: aws_sdk_iam::Client::from_conf(iam),
    }
}

fn caller_identity() -> (&'static str, u16, String) {
    (
        "GetCallerIdentity",
        200,
        format!(
            r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>{PRINCIPAL}</Arn><UserId>AROAEXAMPLE:session</UserId><Account>{ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#
        ),
    )
}

fn iam(action: &'static str, result: &str) -> (&'static str, u16, String) {
    (
        action,
        200,
        format!(
            r#"<{action}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></{action}Response>"#
        ),
    )
}

fn policy_answers(document: &str) -> Answers {
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/AWSLoadBalancerControllerIAMPolicy");
    vec![
        caller_identity(),
        iam(
            "ListAttachedRolePolicies",
            &format!(
                "<IsTruncated>false</IsTruncated><AttachedPolicies><member><PolicyName>AWSLoadBalancerControllerIAMPolicy</PolicyName><PolicyArn>{arn}</PolicyArn></member></AttachedPolicies>"
            ),
        ),
        iam(
            "GetPolicy",
            &format!(
                "<Policy><PolicyName>AWSLoadBalancerControllerIAMPolicy</PolicyName><Arn>{arn}</Arn><DefaultVersionId>v2</DefaultVersionId><AttachmentCount>1</AttachmentCount></Policy>"
            ),
        ),
        iam(
            "ListPolicyVersions",
            "<IsTruncated>false</IsTruncated><Versions><member><VersionId>v2</VersionId><IsDefaultVersion>true</IsDefaultVersion></member><member><VersionId>v1</VersionId><IsDefaultVersion>false</IsDefaultVersion></member></Versions>",
        ),
        iam(
            "GetPolicyVersion",
            &format!(
                "<PolicyVersion><Document>{document}</Document><VersionId>v2</VersionId><IsDefaultVersion>true</IsDefaultVersion></PolicyVersion>"
            ),
        ),
    ]
}

fn node(address: Address, kind: NodeKind, identity: Identity, literals: &[(edgeplan_model::Attr, Value)]) -> Node {
    let desired = literals.iter().map(|(a, v)| (*a, Expr::Lit(v.clone()))).collect();
    Node {
        address,
        kind,
        scope: Scope::Aws { account: ACCOUNT.into(), region: "eu-west-1".into(), profile: None },
        identity,
        desired,
    }
}

fn observe_one(backend: &AwsBackend, node: &Node) -> Result<Observed, BackendError> {
    let attributes: BTreeMap<_, _> = node
        .desired
        .iter()
        .filter_map(|(a, e)| match e {
            Expr::Lit(v) => Some((*a, v.clone())),
            Expr::Ref(_) => None,
        })
        .collect();
    let request = Request { node, attributes, objects: Vec::new() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let requests = [request];
    runtime.block_on(backend.observe("s", &requests)).pop().expect("one result")
}

fn policy_node() -> Node {
    node(
        Address::provider("lb_controller_policy"),
        NodeKind::LbControllerPolicy,
        Identity::Named { name: "alb-ingress-controller".into() },
        &[(attr::ROLE_NAME, Value::str("alb-ingress-controller"))],
    )
}

#[test]
fn an_encoded_policy_document_from_aws_is_read_as_its_json() {
    // GetPolicyVersion as AWS answers it: RFC 3986-encoded (moto answers raw JSON).
    let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22ec2%3ADescribeRouteTables%22%5D%2C%22Resource%22%3A%22%2A%22%2C%22Condition%22%3A%7B%22StringLike%22%3A%7B%22aws%3AuserId%22%3A%22a%2Bb%22%7D%7D%7D%5D%7D";
    let backend = backend(policy_answers(encoded));
    let Ok(Observed::Present(live)) = observe_one(&backend, &policy_node()) else { panic!("the policy is there") };
    let document: serde_json::Value =
        serde_json::from_str(live.text(attr::POLICY_DOCUMENT).expect("a document")).expect("JSON");
    assert_eq!(document["Statement"][0]["Action"][0], "ec2:DescribeRouteTables");
    assert_eq!(document["Statement"][0]["Condition"]["StringLike"]["aws:userId"], "a+b");
    assert_eq!(live.text(attr::DEFAULT_VERSION), Some("v2"));
    assert_eq!(live.get(attr::VERSIONS).map(Value::strings), Some(vec!["v1".to_string(), "v2".to_string()]));
}

#[test]
fn deleting_the_default_version_is_a_typed_conflict() {
    // The plan named v1 to delete; meanwhile someone made it the default: AWS refuses with
    // DeleteConflict (409).
    let mut answers = policy_answers("%7B%7D");
    answers.push((
        "DeletePolicyVersion",
        409,
        r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>DeleteConflict</Code><Message>Cannot delete the default version of the policy.</Message></Error><RequestId>1</RequestId></ErrorResponse>"#.to_string(),
    ));
    let backend = backend(answers);
    let address = Address::provider("lb_controller_policy");
    let mut attributes = BTreeMap::new();
    attributes.insert(attr::ROLE_NAME, Value::str("alb-ingress-controller"));
    attributes.insert(attr::POLICY_DOCUMENT, Value::str(r#"{"Version":"2012-10-17","Statement":[]}"#));
    attributes.insert(attr::DELETE_VERSION, Value::str("v1"));
    let op = Operation {
        address: address.clone(),
        kind: NodeKind::LbControllerPolicy,
        identity: Identity::Named { name: "alb-ingress-controller".into() },
        action: Action::Update,
        attributes,
        manifests: Vec::new(),
        ownership: Ownership::new("s", &address),
        client_token: String::new(),
        live: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let error = runtime.block_on(backend.execute(&op)).expect_err("AWS refused");
    assert!(
        matches!(&error, BackendError::Conflict { message, .. } if message.starts_with("DeleteConflict")),
        "{error:?}"
    );
}

#[test]
fn an_access_denial_names_the_missing_action_and_who_was_denied() {
    let denied = format!(
        "You are not authorized to perform this operation. User: {PRINCIPAL} is not authorized to perform: ec2:DescribeRouteTables because no identity-based policy allows the ec2:DescribeRouteTables action"
    );
    let answers = vec![
        caller_identity(),
        (
            "DescribeSubnets",
            200,
            r#"<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId><subnetSet><item><subnetId>subnet-1</subnetId><vpcId>vpc-1</vpcId><cidrBlock>192.168.0.0/24</cidrBlock><availabilityZone>eu-west-1b</availabilityZone><availabilityZoneId>euw1-az3</availabilityZoneId><availableIpAddressCount>251</availableIpAddressCount><tagSet><item><key>edgeplan.dev/stack</key><value>s</value></item><item><key>edgeplan.dev/address</key><value>provider.nlb_subnet</value></item></tagSet></item></subnetSet></DescribeSubnetsResponse>"#.to_string(),
        ),
        (
            "DescribeRouteTables",
            403,
            format!("<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>{denied}</Message></Error></Errors><RequestID>1</RequestID></Response>"),
        ),
    ];
    let backend = backend(answers);
    let subnet = node(
        Address::provider("nlb_subnet"),
        NodeKind::NlbSubnet,
        Identity::Owned,
        &[(attr::VPC_ID, Value::str("vpc-1"))],
    );
    let error = observe_one(&backend, &subnet).expect_err("denied");
    let BackendError::AccessDenied { action, message } = &error else { panic!("{error:?}") };
    assert_eq!(action.as_deref(), Some("ec2:DescribeRouteTables"));
    assert!(message.contains(PRINCIPAL), "{message}");
}

#[test]
fn an_endpoint_state_in_the_wires_camel_case_is_read_as_sent() {
    let answers = vec![
        caller_identity(),
        (
            "DescribeVpcEndpoints",
            200,
            r#"<DescribeVpcEndpointsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId><vpcEndpointSet><item><vpcEndpointId>vpce-1</vpcEndpointId><vpcEndpointType>Interface</vpcEndpointType><vpcId>vpc-2</vpcId><serviceName>com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0</serviceName><state>pendingAcceptance</state><subnetIdSet><item>subnet-2</item></subnetIdSet><groupSet><item><groupId>sg-1</groupId><groupName>g</groupName></item></groupSet><dnsEntrySet><item><dnsName>vpce-1-abc.vpce-svc-0123456789abcdef0.eu-west-1.vpce.amazonaws.com</dnsName><hostedZoneId>Z7HUB22UULQXV</hostedZoneId></item></dnsEntrySet><tagSet><item><key>edgeplan.dev/stack</key><value>s</value></item><item><key>edgeplan.dev/address</key><value>consumer.prod.vpce</value></item></tagSet></item></vpcEndpointSet></DescribeVpcEndpointsResponse>"#.to_string(),
        ),
    ];
    let backend = backend(answers);
    let vpce = node(Address::consumer("prod", "vpce"), NodeKind::Vpce, Identity::Owned, &[]);
    let Ok(Observed::Present(live)) = observe_one(&backend, &vpce) else { panic!("the endpoint is there") };
    assert_eq!(live.text(attr::STATE), Some("pendingAcceptance"));
    assert_eq!(live.text(attr::VPC_ENDPOINT_TYPE), Some("Interface"));
    assert_eq!(live.text(attr::DNS_NAME), Some("vpce-1-abc.vpce-svc-0123456789abcdef0.eu-west-1.vpce.amazonaws.com"));
    assert_eq!(live.text(attr::SECURITY_GROUP_ID), Some("sg-1"));
}
