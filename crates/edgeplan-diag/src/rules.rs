//! The rule catalog: every diagnostic edgeplan can emit, with a stable ID.
//!
//! IDs never change meaning and are never reused. `docs/rules.md` has one section per rule,
//! whose anchor is `{code}-{name}` lowercased; a test keeps the two in step.

use crate::Severity;

/// Where a rule runs. Parse findings cannot be suppressed: there is no spec to suppress them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the file: encoding, YAML syntax, types, unknown keys.
    Parse,
    /// Static rules over a well-typed spec, run by `edgeplan lint`.
    Static,
    /// Rules about the suppression comments themselves.
    Suppression,
    /// Rules over observed live state, run by `edgeplan plan` and attached to a node.
    Live,
}

/// Base of every rule's help URI (the rule's section in docs/rules.md).
pub const DOCS_BASE_URL: &str = "https://github.com/edgeplan/edgeplan/blob/main/docs/rules.md";

#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: RuleId,
    /// Short kebab-case name, accepted wherever the code is (e.g. in `edgeplan-ignore`).
    pub name: &'static str,
    pub severity: Severity,
    pub stage: Stage,
    /// One-line description, used as SARIF `shortDescription`.
    pub title: &'static str,
    /// Default help line: what to do.
    pub help: &'static str,
}

impl Rule {
    pub fn code(&self) -> &'static str {
        self.id.as_str()
    }

    pub fn help_uri(&self) -> String {
        format!("{DOCS_BASE_URL}#{}", self.anchor())
    }

    /// The GitHub anchor of the rule's `## EPnnn name` heading.
    pub fn anchor(&self) -> String {
        format!("{}-{}", self.id.as_str().to_ascii_lowercase(), self.name)
    }

    pub fn suppressible(&self) -> bool {
        self.stage == Stage::Static
    }
}

macro_rules! catalog {
    ($( $variant:ident = $code:literal, $name:literal, $sev:ident, $stage:ident, $title:literal, $help:literal; )*) => {
        /// A rule's stable ID.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RuleId { $( $variant, )* }

        impl RuleId {
            pub fn as_str(self) -> &'static str {
                match self { $( RuleId::$variant => $code, )* }
            }
        }

        /// Every rule, in ID order.
        pub static RULES: &[Rule] = &[
            $( Rule {
                id: RuleId::$variant,
                name: $name,
                severity: Severity::$sev,
                stage: Stage::$stage,
                title: $title,
                help: $help,
            }, )*
        ];
    };
}

catalog! {
    // --- reading the file -------------------------------------------------------------------
    YamlSyntax = "EP001", "yaml-syntax", Error, Parse,
        "The spec is not valid YAML",
        "fix the YAML at the marked position; indent with spaces, never tabs";
    NotUtf8 = "EP002", "not-utf8", Error, Parse,
        "The spec is not UTF-8 text",
        "save the file as UTF-8";
    EmptySpec = "EP003", "empty-spec", Error, Parse,
        "The spec has no content",
        "start from specs/seed.yaml";
    ResourceLimit = "EP004", "resource-limit", Error, Parse,
        "The spec exceeds a size, depth or alias limit",
        "edgeplan specs are small and flat: remove deep nesting and alias expansion";
    DuplicateKey = "EP005", "duplicate-key", Error, Parse,
        "A mapping has the same key twice",
        "remove one of the two entries; YAML keeps only one and edgeplan will not guess which";
    UnknownKey = "EP006", "unknown-key", Error, Parse,
        "A key is not part of the spec language",
        "check the spelling against schemas/edgeplan.schema.json";
    WrongType = "EP007", "wrong-type", Error, Parse,
        "A value has the wrong type or an invalid value",
        "see schemas/edgeplan.schema.json for the expected type";
    MissingField = "EP008", "missing-field", Error, Parse,
        "A required key is missing",
        "add the key; specs/seed.yaml shows every required key";
    UnsupportedVersion = "EP009", "unsupported-api-version", Error, Parse,
        "The apiVersion or kind is not one this edgeplan understands",
        "use `apiVersion: edgeplan.dev/v1alpha1` and `kind: Topology`";

    // --- spec values --------------------------------------------------------------------------
    OneOf = "EP101", "one-of", Error, Static,
        "Exactly one of a set of alternative keys must be given",
        "keep exactly one of the alternatives";
    InvalidName = "EP102", "invalid-name", Error, Static,
        "A name is not a valid DNS-1123 label",
        "use lowercase letters, digits and '-', at most 63 characters, starting and ending with a letter or digit";
    InvalidAwsId = "EP103", "invalid-aws-id", Error, Static,
        "An AWS identifier is malformed",
        "copy the ID from the AWS console or `aws ec2 describe-*`";
    InvalidValue = "EP104", "invalid-value", Error, Static,
        "A value is outside its allowed range",
        "see schemas/edgeplan.schema.json for allowed values";
    Yaml11Boolean = "EP105", "yaml11-boolean", Warning, Static,
        "A boolean is written as yes/no/on/off, which YAML 1.2 reads as a string",
        "write true or false: other YAML tools (and the JSON Schema) read yes, no, on and off as strings";
    InvalidImageTag = "EP106", "invalid-image-tag", Error, Static,
        "The agent image tag is empty or not a valid image tag",
        "write the portainer/agent tag as published, e.g. 2.39.0: letters, digits, '_', '.' and '-', at most 128 characters";
    EmptyValue = "EP107", "empty-value", Error, Static,
        "A name or reference is empty",
        "write the value, or remove the key if it is optional";
    DerivedNameTooLong = "EP108", "derived-name-too-long", Error, Static,
        "A value edgeplan derives from a name in the spec would break a Kubernetes limit",
        "shorten the name: edgeplan labels Kubernetes objects with values built from it, and a label value has at most 63 characters";

    // --- network ------------------------------------------------------------------------------
    InvalidCidr = "EP110", "invalid-cidr", Error, Static,
        "A CIDR block is malformed or not in canonical form",
        "write an IPv4 CIDR with its host bits zero, e.g. 192.168.0.0/24";
    SubnetOutsideVpc = "EP111", "nlb-subnet-outside-vpc", Error, Static,
        "The NLB subnet CIDR is not inside the provider VPC CIDR",
        "pick a free range inside the VPC CIDR";
    SubnetTooSmall = "EP112", "nlb-subnet-too-small", Error, Static,
        "The NLB subnet has fewer than 8 usable addresses",
        "use a /28 or larger: AWS reserves 5 addresses per subnet and the LB controller drops subnets with fewer than 8 free";
    NoSharedAz = "EP113", "no-shared-az", Error, Static,
        "No consumer subnet shares an Availability Zone with the NLB subnet",
        "add a consumer subnet in the NLB subnet's AZ, or move the NLB subnet";
    AzNameAcrossAccounts = "EP114", "az-name-across-accounts", Note, Static,
        "AZ names are compared across AWS accounts",
        "AZ names map to different physical zones per account: give availabilityZoneId (e.g. euw1-az3) on both sides";
    VpcCidrOverlap = "EP115", "vpc-cidr-overlap", Note, Static,
        "Provider and consumer VPC CIDRs overlap",
        "nothing to do: PrivateLink is the right tool here, VPC peering would be impossible";
    CrossRegionConsumer = "EP116", "cross-region-consumer", Error, Static,
        "A consumer is in a different region from the endpoint service",
        "put the consumer's interface endpoint in the provider's region";
    ConsumerNotAllowed = "EP117", "consumer-not-allowed", Error, Static,
        "A consumer's AWS account is not an allowed principal of the endpoint service",
        "add arn:aws:iam::<account>:root to endpointService.allowedPrincipals, or omit the list to let edgeplan derive it";

    SubnetOutsideServiceAz = "EP118", "subnet-outside-nlb-az", Error, Static,
        "A consumer subnet is in an Availability Zone the endpoint service does not serve",
        "list only subnets in the NLB subnet's AZ: CreateVpcEndpoint refuses a subnet in any other AZ";

    // --- the tunnel Service and its annotations ---------------------------------------------------
    SchemeNotInternal = "EP120", "nlb-scheme-internal", Error, Static,
        "The tunnel NLB must be internal",
        "set service.beta.kubernetes.io/aws-load-balancer-scheme to internal, or remove it (edgeplan sets internal)";
    LbTypeExplained = "EP121", "lb-type-external-meaning", Note, Static,
        "aws-load-balancer-type: external does not mean internet-facing",
        "nothing to change: `external` hands the Service to the AWS Load Balancer Controller; the scheme annotation decides public or private";
    LbTypeNotController = "EP122", "lb-type-not-controller", Error, Static,
        "The Service's load balancer type is not `external`",
        "remove the annotation: edgeplan sets aws-load-balancer-type: external with target type ip";
    TargetTypeNotIp = "EP123", "nlb-target-type-ip", Error, Static,
        "The NLB target type must be ip",
        "set aws-load-balancer-nlb-target-type to ip, or remove it (edgeplan sets ip): the NLB subnet has no nodes";
    DeprecatedCrossZone = "EP124", "deprecated-cross-zone-annotation", Warning, Static,
        "The cross-zone annotation is deprecated since controller v2.3.0",
        "use service.beta.kubernetes.io/aws-load-balancer-attributes: load_balancing.cross_zone.enabled=true";
    ManagedAnnotation = "EP125", "managed-annotation", Warning, Static,
        "An annotation overrides a value edgeplan derives from the spec",
        "remove the annotation and set the corresponding spec field";
    BackendRulesUnmanaged = "EP126", "backend-sg-rules-unmanaged", Note, Static,
        "The LB controller will not open the Portainer pods' security group to the NLB",
        "nothing to change: edgeplan adds the cluster security group rule for the tunnel port itself";
    InvalidAnnotationKey = "EP127", "invalid-annotation-key", Error, Static,
        "An annotation key is not a valid Kubernetes qualified name",
        "write `prefix/name`: an optional DNS subdomain prefix (at most 253 characters) and a name of at most 63 letters, digits, '-', '_' and '.' that starts and ends with a letter or digit";

    // --- Portainer ----------------------------------------------------------------------------
    TunnelPortInstallMismatch = "EP130", "tunnel-port-install-mismatch", Warning, Static,
        "The tunnel port contradicts how Portainer was installed (Helm NodePort runs it on 30776)",
        "set tunnelPort: auto, so edgeplan reads --tunnel-port from the deployment";
    PortainerUrlNotHttps = "EP131", "portainer-url-not-https", Warning, Static,
        "The Portainer URL is not https",
        "use the https URL: the agent logs an insecure-connection warning and limits functionality otherwise";
    UrlCredentials = "EP132", "url-credentials", Error, Static,
        "The Portainer URL carries a user name or password",
        "remove `user:password@` from the URL: edgeplan authenticates with portainer.apiKey, and the URL is copied into every agent's EDGE_KEY";

    // --- secrets --------------------------------------------------------------------------------
    LiteralSecret = "EP140", "literal-secret", Error, Static,
        "A secret is written into the spec",
        "reference it instead: `{env: NAME}` or `{file: path}`, and rotate the exposed value";
    EdgeKeyMalformed = "EP141", "edge-key-malformed", Error, Static,
        "The referenced EDGE_KEY is not in canonical form (raw standard base64, one line, 4 fields)",
        "rewrite it with `edgeplan edge-key encode --file <path> -o <path>`";
    EdgeKeyFileUnreadable = "EP142", "edge-key-file-unreadable", Warning, Static,
        "A referenced EDGE_KEY file cannot be read",
        "check the path (it is relative to the spec file)";
    ManagedAgentEnv = "EP143", "managed-agent-env", Error, Static,
        "Extra agent env sets a variable edgeplan manages",
        "remove it from agent.env: edgeplan sets it from the spec";

    // --- PrivateLink ------------------------------------------------------------------------------
    AcceptanceNotRequired = "EP150", "acceptance-not-required", Warning, Static,
        "The endpoint service accepts connections without approval",
        "set endpointService.acceptanceRequired: true; edgeplan approves its own consumers";
    InvalidPrincipal = "EP151", "invalid-principal", Error, Static,
        "An allowed principal is not an IAM principal ARN or `*`",
        "write arn:aws:iam::<account>:root, arn:aws:iam::<account>:role/<name> or arn:aws:iam::<account>:user/<name>, without a path";

    // --- structure --------------------------------------------------------------------------------
    DuplicateName = "EP160", "duplicate-name", Error, Static,
        "Two entries would create the same resource",
        "give each consumer a unique name, environment and cluster/namespace";

    // --- IAM --------------------------------------------------------------------------------------
    PolicyDocumentUnreadable = "EP170", "policy-document-unreadable", Error, Static,
        "The LB controller policy document cannot be read as an IAM policy",
        "point lbController.policyDocument at the upstream iam_policy.json for your controller version";
    PolicyMissingActions = "EP171", "policy-missing-actions", Error, Static,
        "The LB controller policy lacks actions an internal NLB needs",
        "use the upstream iam_policy.json of controller v2.13.2 or later (specs/policies/)";
    InvalidRoleName = "EP172", "invalid-role-name", Error, Static,
        "lbController.roleName is not an IAM role name",
        "give the role's name, the part after `role/` in its ARN: at most 64 letters, digits and +=,.@_-";

    // --- suppression comments -----------------------------------------------------------------------
    UnknownRuleInIgnore = "EP180", "unknown-rule-in-ignore", Warning, Suppression,
        "An edgeplan-ignore comment names an unknown or unsuppressible rule",
        "fix the rule ID; `edgeplan lint --format json` lists codes";
    IgnoreWithoutReason = "EP181", "ignore-without-reason", Error, Suppression,
        "An edgeplan-ignore comment gives no reason",
        "write why after the rule ID: `# edgeplan-ignore: EP150 staging only, approved in #123`";
    UnusedIgnore = "EP182", "unused-ignore", Note, Suppression,
        "An edgeplan-ignore comment suppresses nothing",
        "remove the comment";

    // --- live state (plan) ---------------------------------------------------------------------
    LiveControllerPolicyMissing = "EP201", "controller-policy-missing-actions", Error, Live,
        "The LB controller role's policy lacks actions an internal NLB needs",
        "let edgeplan apply the policy document the spec names (a new default policy version)";
    LivePolicyVersionLimit = "EP202", "policy-version-limit", Note, Live,
        "The controller policy already has 5 versions",
        "nothing to do: the plan names the oldest non-default version it deletes first";
    LiveTargetPortMismatch = "EP203", "target-port-mismatch", Error, Live,
        "The tunnel Service targets a port the tunnel server does not listen on",
        "edgeplan sets targetPort from the deployment's --tunnel-port (tunnelPort: auto)";
    LiveNlbSubnetPublic = "EP204", "nlb-subnet-public", Error, Live,
        "The NLB subnet's effective route table routes to an internet gateway",
        "give the subnet its own route table without a 0.0.0.0/0 → igw- route (edgeplan does for a subnet it creates)";
    LiveNoSgPath = "EP205", "no-sg-path", Error, Live,
        "No security group rule admits the NLB to the tunnel port",
        "edgeplan adds the cluster security group rule from the NLB subnet to the tunnel port";
    LiveEdgeComputeOff = "EP206", "edge-compute-off", Warning, Live,
        "Portainer's Edge Compute features are off",
        "edgeplan turns them on and restarts Portainer, which the seed found necessary";
    LiveNlbInternetFacing = "EP207", "nlb-internet-facing", Error, Live,
        "The existing tunnel NLB is internet-facing",
        "the scheme cannot change in place: delete the Service so the controller recreates the NLB as internal";
    LiveNoSharedAzId = "EP208", "no-shared-az-id", Error, Live,
        "The endpoint's subnets share no Availability Zone ID with the NLB",
        "add a consumer subnet in one of the NLB's AZ IDs (compared by ID: names differ per account)";
    LiveConnectionPending = "EP209", "connection-pending-acceptance", Warning, Live,
        "An endpoint connection is waiting for acceptance",
        "edgeplan accepts the connections of the consumers in the spec";
    LiveAgentKeyNotCanonical = "EP210", "agent-key-not-canonical", Error, Live,
        "The agent's EDGE_KEY is not canonical (padding, whitespace or another alphabet)",
        "edgeplan rewrites the key canonically (standard alphabet, no padding) through the Kubernetes API";
    LiveAgentKeyWrongTunnel = "EP211", "agent-key-wrong-tunnel", Error, Live,
        "The agent's EDGE_KEY does not point at the VPC endpoint",
        "edgeplan rewrites field 2 of the key to <vpce-dns>:<listener port>";
    LiveEdgeIdMismatch = "EP212", "edge-id-mismatch", Error, Live,
        "The environment's EdgeID differs from the agent's EDGE_ID",
        "the tunnel credentials are encrypted with the EdgeID: edgeplan sets the agent's EDGE_ID from the environment";
    LiveUnobservable = "EP213", "unobservable", Error, Live,
        "A node's live state could not be read",
        "check credentials and access for the node's scope (AWS profile, kube context, Portainer API key)";
    LiveAdoptedMissing = "EP214", "adopted-resource-missing", Error, Live,
        "A resource the spec names by ID does not exist",
        "fix the ID in the spec, or remove it to let edgeplan create and own the resource";
    LivePortainerKeyTunnel = "EP215", "portainer-key-tunnel", Note, Live,
        "Portainer's EDGE_KEY for the environment points at its own host, not the VPC endpoint",
        "nothing to do: edgeplan writes the agent a canonical copy (raw base64, no padding) pointing at the VPC endpoint, through the Kubernetes API";
    SecretUnreadable = "EP216", "secret-unreadable", Error, Live,
        "A secret the spec references cannot be read",
        "set the environment variable, or point `file:` at a readable regular file holding the value; nothing is applied until it resolves";
    LiveLeftBehind = "EP217", "left-behind", Warning, Live,
        "Objects the stack owns in a scope the spec no longer names could not be reached",
        "restore access to that scope (its AWS profile, kube context or Portainer URL) and plan again, or delete what the message lists by hand";
    LiveTunnelPortFromDeployment = "EP218", "tunnel-port-from-deployment", Note, Live,
        "The NLB forwards the agents' port to the port Portainer's chisel server really listens on",
        "nothing to do: edgeplan reads --tunnel-port from Portainer's Deployment (tunnelPort: auto) and keeps the listener on the port in the agents' EDGE_KEY";
    LiveNlbSubnetCidrTaken = "EP219", "nlb-subnet-cidr-taken", Error, Live,
        "The NLB subnet's CIDR is outside the VPC's CIDR or overlaps a subnet already there",
        "pick a free block inside the VPC's CIDR for nlbSubnet.cidr";
    LiveUnknownAvailabilityZone = "EP220", "unknown-availability-zone", Error, Live,
        "The NLB subnet's Availability Zone does not exist in this account's region, or its name and ID disagree",
        "use a zone the message lists; give availabilityZoneId to pin the physical zone";
    LiveConsumerVpcMismatch = "EP221", "consumer-vpc-mismatch", Error, Live,
        "A consumer's vpc.id is not the VPC of its subnets",
        "set the consumer's vpc.id to its subnets' VPC, or list subnets of that VPC";
    LiveEndpointAdmitsNothing = "EP222", "endpoint-admits-nothing", Error, Live,
        "The VPC endpoint's security group would admit no source",
        "list the agents' CIDRs (usually the consumer VPC's CIDR) in endpointSecurityGroup.create.allowedCidrs";
    LiveEndpointSubnetsShareAz = "EP223", "endpoint-subnets-share-az", Error, Live,
        "Two of a consumer's subnets are in the same Availability Zone",
        "list at most one subnet per Availability Zone: CreateVpcEndpoint refuses two in one zone";
    LiveAdoptedImmutable = "EP224", "adopted-immutable-differs", Error, Live,
        "A resource the spec adopts by ID differs in a field that cannot change in place",
        "fix the spec to match the resource, or name another resource; edgeplan never replaces what it adopts";
    LivePortainerDeploymentUnusable = "EP225", "portainer-deployment-unusable", Error, Live,
        "Portainer's Deployment does not exist, runs no pod or has an unreadable --tunnel-port",
        "point portainer.namespace and portainer.deployment at the running Portainer Deployment";
    LiveTunnelServiceNamespace = "EP226", "tunnel-service-namespace", Error, Live,
        "The tunnel Service is not in Portainer's namespace, so it selects none of Portainer's pods",
        "remove tunnelService.namespace, or set it to portainer.namespace";
    LiveEnvironmentNotCreatable = "EP227", "environment-not-creatable", Error, Live,
        "The Portainer environment does not exist and cannot be created as the spec asks",
        "create the environment in Portainer, or let edgeplan create it (environment.create, a URL agents can reach)";
    LiveEnvironmentUntrusted = "EP228", "environment-untrusted", Error, Live,
        "The Portainer environment is not trusted, so Portainer rejects its agent",
        "trust the environment in Portainer (its UserTrusted is false; Portainer opens no tunnel to an untrusted environment), then plan again";
    LiveNlbSubnetFewIps = "EP229", "nlb-subnet-few-ips", Error, Live,
        "The NLB subnet has fewer than 8 free addresses",
        "free addresses in the subnet, or name a larger one: the LB controller drops subnets with fewer than 8 free";
    LiveNlbInOtherEndpointService = "EP230", "nlb-in-other-endpoint-service", Error, Live,
        "The tunnel NLB is already behind another VPC endpoint service",
        "delete that endpoint service (or adopt its consumers by hand): an NLB can be behind one endpoint service only";
    LiveReplacementInterruptsTunnels = "EP231", "replacement-interrupts-tunnels", Warning, Live,
        "A replacement in this plan recreates the tunnel's path, and agents lose their tunnel until apply finishes",
        "apply in a maintenance window, or keep the field as it is; edgeplan deletes the old path first (dependents before what they depend on) and builds the new one";
    LiveEndpointSubnetZoneUnsupported = "EP232", "endpoint-subnet-zone-unsupported", Error, Live,
        "A consumer subnet is in an Availability Zone where the endpoint service has no node",
        "remove that subnet from the consumer's subnets, or enable its zone on the NLB: CreateVpcEndpoint refuses every subnet of a zone the service does not support";
}

/// The rule with this ID. Every `RuleId` has exactly one catalog entry (tested).
pub fn rule(id: RuleId) -> &'static Rule {
    RULES.iter().find(|r| r.id == id).unwrap_or(&RULES[0])
}

/// Look a rule up by code (`EP120`) or name (`nlb-scheme-internal`), case-insensitively.
pub fn find_rule(code_or_name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code().eq_ignore_ascii_case(code_or_name) || r.name.eq_ignore_ascii_case(code_or_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_well_formed() {
        let mut codes: Vec<_> = RULES.iter().map(|r| r.code()).collect();
        let mut names: Vec<_> = RULES.iter().map(|r| r.name).collect();
        codes.sort_unstable();
        names.sort_unstable();
        let n = RULES.len();
        codes.dedup();
        names.dedup();
        assert_eq!(codes.len(), n, "duplicate code");
        assert_eq!(names.len(), n, "duplicate name");
        for r in RULES {
            assert!(r.code().starts_with("EP") && r.code().len() == 5, "{}", r.code());
            assert!(r.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{}", r.name);
            assert!(!r.title.ends_with('.') && !r.help.ends_with('.'), "{}: no trailing period", r.code());
            assert_eq!(rule(r.id), r);
        }
    }

    #[test]
    fn rules_are_listed_in_code_order() {
        assert!(RULES.windows(2).all(|w| w[0].code() < w[1].code()));
    }

    #[test]
    fn find_rule_accepts_code_or_name() {
        assert_eq!(find_rule("ep120").map(|r| r.name), Some("nlb-scheme-internal"));
        assert_eq!(find_rule("nlb-scheme-internal").map(|r| r.code()), Some("EP120"));
        assert!(find_rule("EP999").is_none());
    }

    #[test]
    fn help_uri_points_at_the_rule_section() {
        let uri = rule(RuleId::SchemeNotInternal).help_uri();
        assert!(uri.ends_with("docs/rules.md#ep120-nlb-scheme-internal"), "{uri}");
    }
}
