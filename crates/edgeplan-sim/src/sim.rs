//! The world's behaviour: the controllers that react to changes (the LB controller, NLB health
//! checks, the Edge agent) and the virtual clock that makes slow things slow without taking
//! wall time.
//!
//! Controllers react instantly (`reconcile`, run after every operation and every clock step);
//! anything that takes time schedules a [`Transition`] and happens when the clock reaches it.
//! When a transition fires its preconditions are checked again: targets only turn healthy if
//! the port, the security group and the listener are still right.

use edgeplan_edgekey::{AgentVerdict, EdgeKey, check};
use sha2::{Digest as _, Sha256};

use crate::net::Cidr;
use crate::query::{
    self, LBC_CLUSTER_TAG, LBC_PREFIX, LBC_STACK_TAG, env_value, is_edge_agent, is_lbc_service, listening_ports,
    service_endpoints, url_host,
};
use crate::world::{AgentStatus, Event, KubeEvent, Listener, LoadBalancer, Target, Transition, TransitionKind, World};

/// `run_until_settled` gives up after this much virtual time (a world that never settles is
/// a bug in a controller, not a reason to loop forever).
pub const SETTLE_LIMIT_SECONDS: u64 = 24 * 3600;

/// Log lines kept per agent (the tail `kubectl logs --tail` would show).
const MAX_LOG_LINES: usize = 20;

/// The LB controller's longest retry interval for a Service it cannot build (controller-runtime's
/// per-item exponential backoff caps at 1000 s).
const MAX_CONTROLLER_BACKOFF_SECONDS: u64 = 1000;

/// What a call to [`World::run_until_settled`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Virtual seconds that passed.
    pub elapsed: u64,
    pub events: Vec<Event>,
    /// False if [`SETTLE_LIMIT_SECONDS`] passed with transitions still pending.
    pub settled: bool,
}

impl World {
    /// A fresh deterministic hex string: the same world and the same operations give the same
    /// IDs, so plans and snapshots are stable.
    pub(crate) fn next_hex(&mut self, salt: &str, len: usize) -> String {
        self.serial = self.serial.saturating_add(1);
        let digest = Sha256::digest(format!("{salt}/{}", self.serial).as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        hex[..len.min(hex.len())].to_string()
    }

    /// Schedule `kind` for `subject`, unless one is already pending (a rollout restarts its
    /// clock instead: a second restart replaces the first).
    pub(crate) fn schedule(&mut self, kind: TransitionKind, subject: &str) {
        let at = self.now.saturating_add(kind.duration());
        if let Some(existing) = self.pending.iter_mut().find(|t| t.kind == kind && t.subject == subject) {
            if kind == TransitionKind::RolloutComplete {
                existing.at = at;
                existing.since = self.now;
            }
            return;
        }
        self.pending.push(Transition { at, since: self.now, kind, subject: subject.to_string() });
    }

    pub(crate) fn is_pending(&self, kind: TransitionKind, subject: &str) -> bool {
        self.pending.iter().any(|t| t.kind == kind && t.subject == subject)
    }

    pub(crate) fn record(&mut self, subject: &str, message: impl Into<String>, waited: Option<u64>) -> Event {
        let event = Event { at: self.now, subject: subject.to_string(), message: message.into(), waited };
        self.history.push(event.clone());
        event
    }

    /// The earliest pending transition, if any.
    pub fn next_transition(&self) -> Option<&Transition> {
        self.pending.iter().min_by_key(|t| (t.at, t.kind, t.subject.clone()))
    }

    /// Let `seconds` of virtual time pass: every transition due by then fires, in order, with
    /// the controllers reacting after each.
    pub fn advance(&mut self, seconds: u64) -> Vec<Event> {
        let target = self.now.saturating_add(seconds);
        let mut events = self.reconcile();
        while let Some(next) = self.next_transition().map(|t| t.at).filter(|at| *at <= target) {
            self.now = self.now.max(next);
            events.extend(self.fire_due());
            events.extend(self.reconcile());
        }
        self.now = target;
        events.extend(self.reconcile());
        events
    }

    /// Jump to the next pending transition and fire it. `None` when nothing is pending.
    pub fn step(&mut self) -> Option<Vec<Event>> {
        let next = self.next_transition()?.at;
        let wait = next.saturating_sub(self.now);
        Some(self.advance(wait))
    }

    /// Advance until nothing is pending: every NLB active, every rollout done, every health
    /// check and endpoint settled.
    pub fn run_until_settled(&mut self) -> Settled {
        let start = self.now;
        let mut events = self.reconcile();
        while self.next_transition().is_some() {
            if self.now.saturating_sub(start) > SETTLE_LIMIT_SECONDS {
                return Settled { elapsed: self.now - start, events, settled: false };
            }
            events.extend(self.step().unwrap_or_default());
        }
        Settled { elapsed: self.now - start, events, settled: true }
    }

    fn fire_due(&mut self) -> Vec<Event> {
        let now = self.now;
        let (due, rest): (Vec<Transition>, Vec<Transition>) =
            std::mem::take(&mut self.pending).into_iter().partition(|t| t.at <= now);
        self.pending = rest;
        let mut events = Vec::new();
        for transition in due {
            let waited = Some(now.saturating_sub(transition.since));
            let fired = match transition.kind {
                TransitionKind::NlbActive => self.nlb_active(&transition.subject),
                TransitionKind::TargetsHealthy => self.targets_healthy(&transition.subject),
                TransitionKind::VpceAvailable => self.vpce_available(&transition.subject),
                TransitionKind::RolloutComplete => self.rollout_complete(&transition.subject),
                // The retry itself is the controller's next reconcile, right after this.
                TransitionKind::ControllerRetry => None,
            };
            if let Some(message) = fired {
                events.push(self.record(&transition.subject, message, waited));
            }
        }
        events
    }

    fn load_balancer_mut(&mut self, arn: &str) -> Option<&mut LoadBalancer> {
        self.aws
            .iter_mut()
            .flat_map(|a| a.regions.iter_mut())
            .flat_map(|r| r.load_balancers.iter_mut())
            .find(|lb| lb.arn == arn)
    }

    fn nlb_active(&mut self, arn: &str) -> Option<String> {
        let lb = self.load_balancer_mut(arn)?;
        (lb.state == "provisioning").then(|| {
            lb.state = "active".to_string();
            format!("load balancer {} is active", lb.name)
        })
    }

    fn targets_healthy(&mut self, arn: &str) -> Option<String> {
        let lb = self.load_balancer_mut(arn)?;
        let mut turned = 0;
        for target in lb.targets.iter_mut().filter(|t| t.health == "initial" && t.reason == "Elb.InitialHealthChecking")
        {
            target.health = "healthy".to_string();
            target.reason.clear();
            target.description.clear();
            turned += 1;
        }
        (turned > 0).then(|| format!("{turned} target(s) of {} passed health checks", lb.name))
    }

    fn vpce_available(&mut self, id: &str) -> Option<String> {
        let endpoint = self
            .aws
            .iter_mut()
            .flat_map(|a| a.regions.iter_mut())
            .flat_map(|r| r.vpc_endpoints.iter_mut())
            .find(|e| e.id == id)?;
        (endpoint.state == "pending").then(|| {
            endpoint.state = "available".to_string();
            format!("VPC endpoint {id} is available")
        })
    }

    fn rollout_complete(&mut self, subject: &str) -> Option<String> {
        let mut parts = subject.splitn(3, '/');
        let (context, namespace, name) = (parts.next()?, parts.next()?, parts.next()?);
        let cluster = self.cluster_mut(context)?;
        let deployment = cluster.deployments.iter_mut().find(|d| d.namespace == namespace && d.name == name)?;
        deployment.ready_generation = deployment.generation;
        // A restarted Portainer reads its settings again: pending settings take effect.
        if let Some(server) = self.portainer.iter_mut().find(|p| {
            p.deployment.context == context && p.deployment.namespace == namespace && p.deployment.name == name
        }) {
            server.effective.enable_edge_compute = server.settings.enable_edge_compute;
            for env in &mut server.environments {
                env.tunnel_connected = false;
            }
        }
        Some(format!("rollout of {namespace}/{name} complete"))
    }

    /// Let every controller react to the current state, until nothing changes (bounded).
    pub fn reconcile(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        for _ in 0..4 {
            let before = events.len();
            events.extend(self.lb_controller());
            events.extend(self.health_checks());
            events.extend(self.edge_agents());
            if events.len() == before {
                break;
            }
        }
        events
    }

    // ----- the AWS Load Balancer Controller ------------------------------------------------

    fn lb_controller(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        for ci in 0..self.kubernetes.len() {
            let cluster = &self.kubernetes[ci];
            let (Some(_), Some(aws)) = (&cluster.lb_controller, cluster.aws.clone()) else { continue };
            let context = cluster.context.clone();
            let services: Vec<usize> =
                (0..cluster.services.len()).filter(|&i| is_lbc_service(&cluster.services[i])).collect();
            for si in services {
                let cluster = &self.kubernetes[ci];
                let service = &cluster.services[si];
                let object = format!("Service/{}", service.name);
                let namespace = service.namespace.clone();
                let retry = format!("{context}/{namespace}/{object}");
                if let Some(lb) = self.nlb_for_service(cluster, service) {
                    let listeners = listeners_for(service);
                    let (arn, dns) = (lb.arn.clone(), lb.dns_name.clone());
                    let changed = lb.listeners != listeners;
                    if let Some(lb) = self.load_balancer_mut(&arn)
                        && changed
                    {
                        lb.listeners = listeners;
                    }
                    let service = &mut self.kubernetes[ci].services[si];
                    if service.status_hostname.as_deref() != Some(&dns) {
                        service.status_hostname = Some(dns);
                    }
                    continue;
                }
                // A Service that failed waits for its retry: the controller watches Services, not
                // IAM, so a policy fixed meanwhile is seen at the next retry (or Service change).
                if self.is_pending(TransitionKind::ControllerRetry, &retry) {
                    continue;
                }
                match build_model(self, ci, si) {
                    Err(message) => {
                        if self.kube_event(ci, &namespace, &object, "Warning", "FailedBuildModel", &message) {
                            events.push(self.record(&retry, message.clone(), None));
                        }
                        self.schedule_retry(ci, &namespace, &object, &retry);
                    }
                    Ok(model) => {
                        let arn = self.create_nlb(ci, si, &aws.account, &aws.region, model);
                        self.schedule(TransitionKind::NlbActive, &arn);
                        let message = format!("Successfully reconciled: load balancer {arn} provisioning");
                        self.kube_event(ci, &namespace, &object, "Normal", "SuccessfullyReconciled", &message);
                        events.push(self.record(&format!("{context}/{namespace}/{object}"), message, None));
                    }
                }
            }
            events.extend(self.delete_orphan_nlbs(ci));
        }
        events
    }

    /// Retry a failed Service after as long as it has been failing (1 s, 2 s, 4 s, … up to
    /// [`MAX_CONTROLLER_BACKOFF_SECONDS`]): exponential backoff. The failure began at the
    /// object's last event, which repeats are not recorded over.
    fn schedule_retry(&mut self, ci: usize, namespace: &str, object: &str, subject: &str) {
        let since = self.kubernetes[ci]
            .events
            .iter()
            .rev()
            .find(|e| e.namespace == namespace && e.object == object)
            .map_or(self.now, |e| e.at.min(self.now));
        let backoff = self
            .now
            .saturating_sub(since)
            .clamp(TransitionKind::ControllerRetry.duration(), MAX_CONTROLLER_BACKOFF_SECONDS);
        self.pending.push(Transition {
            at: self.now.saturating_add(backoff),
            since,
            kind: TransitionKind::ControllerRetry,
            subject: subject.to_string(),
        });
    }

    /// A Service was written: the controller's watch sees it at once, whatever its backoff.
    pub(crate) fn service_changed(&mut self, context: &str, namespace: &str, name: &str) {
        let subject = format!("{context}/{namespace}/Service/{name}");
        self.pending.retain(|t| !(t.kind == TransitionKind::ControllerRetry && t.subject == subject));
    }

    /// Record a Kubernetes event unless the object's last event already says the same.
    /// Returns whether it was new.
    fn kube_event(
        &mut self,
        ci: usize,
        namespace: &str,
        object: &str,
        kind: &str,
        reason: &str,
        message: &str,
    ) -> bool {
        let now = self.now;
        let cluster = &mut self.kubernetes[ci];
        let last = cluster.events.iter().rev().find(|e| e.namespace == namespace && e.object == object);
        if last.is_some_and(|e| e.reason == reason && e.message == message) {
            return false;
        }
        cluster.events.push(KubeEvent {
            at: now,
            namespace: namespace.to_string(),
            object: object.to_string(),
            event_type: kind.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
        });
        true
    }

    fn create_nlb(&mut self, ci: usize, si: usize, account: &str, region: &str, model: NlbModel) -> String {
        let cluster = &self.kubernetes[ci];
        let service = &cluster.services[si];
        let (namespace, name, cluster_name) =
            (service.namespace.clone(), service.name.clone(), cluster.cluster_name.clone());
        let listeners = listeners_for(service);
        let hash = hex_of(&format!("{cluster_name}/{namespace}/{name}/{}", model.scheme), 10);
        let lb_name = format!("k8s-{}-{}-{hash}", short(&namespace), short(&name));
        let id = self.next_hex("elbv2", 16);
        let arn = format!("arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/net/{lb_name}/{id}");
        let dns_name = format!("{lb_name}-{id}.elb.{region}.amazonaws.com");
        let mut tags = crate::world::Tags::new();
        tags.insert(LBC_CLUSTER_TAG.to_string(), cluster_name);
        tags.insert(LBC_STACK_TAG.to_string(), format!("{namespace}/{name}"));
        tags.insert("service.k8s.aws/resource".to_string(), "LoadBalancer".to_string());
        let lb = LoadBalancer {
            arn: arn.clone(),
            name: lb_name,
            dns_name: dns_name.clone(),
            scheme: model.scheme,
            state: "provisioning".to_string(),
            vpc_id: model.vpc_id,
            subnet_ids: model.subnet_ids,
            availability_zone_ids: model.az_ids,
            security_groups: Vec::new(),
            tags,
            listeners,
            targets: Vec::new(),
            created_at: self.now,
        };
        if let Some(region) = self.region_mut(account, region) {
            region.load_balancers.push(lb);
        }
        // The hostname appears at once; `active` comes later (aws.md §1d).
        self.kubernetes[ci].services[si].status_hostname = Some(dns_name);
        arn
    }

    fn delete_orphan_nlbs(&mut self, ci: usize) -> Vec<Event> {
        let cluster = &self.kubernetes[ci];
        let Some(aws) = cluster.aws.clone() else { return Vec::new() };
        let Some(region) = self.region(&aws.account, &aws.region) else { return Vec::new() };
        let live: Vec<String> = cluster
            .services
            .iter()
            .filter(|s| is_lbc_service(s))
            .map(|s| format!("{}/{}", s.namespace, s.name))
            .collect();
        let orphans: Vec<String> = region
            .load_balancers
            .iter()
            .filter(|lb| lb.tags.get(LBC_CLUSTER_TAG) == Some(&cluster.cluster_name))
            .filter(|lb| lb.tags.get(LBC_STACK_TAG).is_some_and(|s| !live.contains(s)))
            // An NLB behind an endpoint service cannot be deleted (ResourceInUse): it stays.
            .filter(|lb| !region.endpoint_services.iter().any(|s| s.network_load_balancer_arns.contains(&lb.arn)))
            .map(|lb| lb.arn.clone())
            .collect();
        let mut events = Vec::new();
        for arn in orphans {
            if let Some(region) = self.region_mut(&aws.account, &aws.region) {
                region.load_balancers.retain(|lb| lb.arn != arn);
            }
            self.pending.retain(|t| t.subject != arn);
            events.push(self.record(&arn, "load balancer deleted (its Service is gone)", None));
        }
        events
    }

    // ----- NLB health checks ---------------------------------------------------------------

    fn health_checks(&mut self) -> Vec<Event> {
        let mut updates: Vec<(String, Vec<Target>, bool)> = Vec::new();
        for cluster in &self.kubernetes {
            let Some(controller) = &cluster.lb_controller else { continue };
            let Some(region) = self.cluster_region(cluster) else { continue };
            for service in cluster.services.iter().filter(|s| is_lbc_service(s)) {
                let Some(lb) = self.nlb_for_service(cluster, service) else { continue };
                let nlb_cidrs: Vec<String> = lb
                    .subnet_ids
                    .iter()
                    .filter_map(|id| region.subnets.iter().find(|s| &s.id == id))
                    .map(|s| s.cidr.clone())
                    .collect();
                let pod_groups = region.cluster_security_groups(&cluster.cluster_name, Some(&lb.vpc_id));
                let mut targets = Vec::new();
                let mut want_timer = false;
                for deployment in service_endpoints(cluster, service) {
                    let ports = listening_ports(self, &cluster.context, deployment);
                    for listener in &lb.listeners {
                        let port = listener.target_port;
                        let id = format!("{}/{}", deployment.namespace, deployment.name);
                        let previous = lb.targets.iter().find(|t| t.id == id && t.port == port);
                        let admitted = controller.manage_backend_security_group_rules
                            || pod_groups.iter().any(|g| query::sg_admits(g, port, &nlb_cidrs));
                        let (health, reason, description) = if lb.state != "active" {
                            ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
                        } else if !admitted {
                            ("unhealthy", "Target.Timeout", "Request timed out")
                        } else if !ports.contains(&port) {
                            ("unhealthy", "Target.FailedHealthChecks", "Health checks failed")
                        } else if previous.is_some_and(|t| t.health == "healthy") {
                            ("healthy", "", "")
                        } else {
                            want_timer = true;
                            ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
                        };
                        targets.push(Target {
                            id,
                            port,
                            health: health.to_string(),
                            reason: reason.to_string(),
                            description: description.to_string(),
                        });
                    }
                }
                if targets != lb.targets || want_timer {
                    updates.push((lb.arn.clone(), targets, want_timer));
                }
            }
        }
        let mut events = Vec::new();
        for (arn, targets, want_timer) in updates {
            if want_timer {
                self.schedule(TransitionKind::TargetsHealthy, &arn);
            } else {
                self.pending.retain(|t| !(t.kind == TransitionKind::TargetsHealthy && t.subject == arn));
            }
            if let Some(lb) = self.load_balancer_mut(&arn)
                && lb.targets != targets
            {
                let summary: Vec<String> = targets
                    .iter()
                    .map(|t| match t.reason.as_str() {
                        "" => format!("{}:{} {}", t.id, t.port, t.health),
                        reason => format!("{}:{} {} ({reason})", t.id, t.port, t.health),
                    })
                    .collect();
                lb.targets = targets;
                let name = lb.name.clone();
                if !summary.is_empty() {
                    events.push(self.record(&arn, format!("{name} targets: {}", summary.join(", ")), None));
                }
            }
        }
        events
    }

    // ----- the Edge agent ------------------------------------------------------------------

    fn edge_agents(&mut self) -> Vec<Event> {
        let mut verdicts = Vec::new();
        for (ci, cluster) in self.kubernetes.iter().enumerate() {
            for (di, deployment) in cluster.deployments.iter().enumerate() {
                if is_edge_agent(cluster, deployment) {
                    verdicts.push((ci, di, agent_verdict(self, ci, di)));
                }
            }
        }
        let mut events = Vec::new();
        let now = self.now;
        // Portainer holds a tunnel for an environment only while an agent that polls it holds
        // one: an agent that crashed, was refused or lost its path leaves none behind.
        let held: Vec<(usize, usize)> = verdicts
            .iter()
            .filter(|(_, _, v)| v.state == "connected")
            .filter_map(|(_, _, v)| v.poll.as_ref().map(|p| (p.server, p.environment)))
            .collect();
        for (si, server) in self.portainer.iter_mut().enumerate() {
            for (ei, env) in server.environments.iter_mut().enumerate() {
                env.tunnel_connected = held.contains(&(si, ei));
            }
        }
        for (ci, di, verdict) in verdicts {
            if let Some(poll) = &verdict.poll
                && let Some(env) =
                    self.portainer.get_mut(poll.server).and_then(|s| s.environments.get_mut(poll.environment))
            {
                if env.edge_id.is_empty() {
                    env.edge_id = poll.edge_id.clone();
                }
                // The agent reports its platform on every poll: Kubernetes makes it type 7.
                env.env_type = 7;
                env.last_check_in = now;
            }
            let cluster = &mut self.kubernetes[ci];
            let subject =
                format!("{}/{}/{}", cluster.context, cluster.deployments[di].namespace, cluster.deployments[di].name);
            let deployment = &mut cluster.deployments[di];
            let changed = deployment
                .agent_status
                .as_ref()
                .is_none_or(|s| s.state != verdict.state || s.message != verdict.message);
            if changed {
                let was_connected = deployment.agent_status.as_ref().is_some_and(|s| s.state == "connected");
                deployment.agent_status = Some(AgentStatus {
                    state: verdict.state.to_string(),
                    message: verdict.message.clone(),
                    since: now,
                });
                // What `kubectl logs` shows: a new pod starts with empty logs.
                match verdict.state {
                    "starting" | "scaled_down" => deployment.logs.clear(),
                    _ => {
                        if deployment.logs.is_empty() {
                            deployment.logs.push("agent running on Kubernetes platform".to_string());
                        }
                        // chisel's words when a live tunnel goes (portainer.md §6); what it
                        // meets when it dials again follows.
                        if was_connected {
                            deployment.logs.push("client: Disconnected".to_string());
                        }
                        let line = match verdict.state {
                            "connected" => "client: Connected (Latency 1.2ms)".to_string(),
                            _ => verdict.message.clone(),
                        };
                        if !line.is_empty() {
                            deployment.logs.push(line);
                        }
                        let excess = deployment.logs.len().saturating_sub(MAX_LOG_LINES);
                        deployment.logs.drain(..excess);
                    }
                }
                let message = match verdict.message.as_str() {
                    "" => format!("edge agent {}", verdict.state),
                    text => format!("edge agent {}: {text}", verdict.state),
                };
                events.push(self.record(&subject, message, None));
            }
        }
        events
    }
}

struct NlbModel {
    scheme: String,
    vpc_id: String,
    subnet_ids: Vec<String>,
    az_ids: Vec<String>,
}

/// What the controller builds for a Service, or the FailedBuildModel message.
fn build_model(world: &World, ci: usize, si: usize) -> Result<NlbModel, String> {
    let cluster = &world.kubernetes[ci];
    let service = &cluster.services[si];
    let (Some(controller), Some(aws)) = (&cluster.lb_controller, &cluster.aws) else {
        return Err("no load balancer controller".to_string());
    };
    let account = world.account(&aws.account).ok_or_else(|| format!("no AWS account {}", aws.account))?;
    let region = world.cluster_region(cluster).ok_or_else(|| format!("no AWS region {}", aws.region))?;
    let denied = crate::iam::first_denied_call(account, &controller.role_name)
        .map_err(|e| format!("Failed build model due to {e}"))?;
    if let Some(first) = denied {
        let user =
            format!("arn:aws:sts::{}:assumed-role/{}/aws-load-balancer-controller", aws.account, controller.role_name);
        return Err(if first == "ec2:DescribeRouteTables" {
            format!(
                "Failed build model due to couldn't auto-discover subnets: failed to list subnets by reachability: \
                 operation error EC2: DescribeRouteTables, https response error StatusCode: 403, api error \
                 UnauthorizedOperation: You are not authorized to perform this operation. User: {user} is not \
                 authorized to perform: ec2:DescribeRouteTables"
            )
        } else {
            format!(
                "Failed build model due to api error UnauthorizedOperation: You are not authorized to perform this \
                 operation. User: {user} is not authorized to perform: {first}"
            )
        });
    }
    let annotation = |key: &str| service.annotations.get(&format!("{LBC_PREFIX}{key}")).map(String::as_str);
    let scheme = match (annotation("aws-load-balancer-scheme"), annotation("aws-load-balancer-internal")) {
        (Some(scheme), _) => scheme.to_string(),
        (None, Some("true")) | (None, None) => "internal".to_string(),
        (None, Some(_)) => "internet-facing".to_string(),
    };
    if scheme != "internal" && scheme != "internet-facing" {
        return Err(format!("Failed build model due to unknown scheme: {scheme}"));
    }
    let internal = scheme == "internal";
    let role_tag = if internal { "kubernetes.io/role/internal-elb" } else { "kubernetes.io/role/elb" };
    let in_vpc = || region.subnets.iter().filter(|s| s.vpc_id == aws.vpc_id);
    let mut candidates: Vec<&crate::world::Subnet> = match annotation("aws-load-balancer-subnets") {
        Some(list) => {
            let mut found = Vec::new();
            for wanted in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let subnet = in_vpc()
                    .find(|s| s.id == wanted || s.tags.get("Name").is_some_and(|n| n == wanted))
                    .ok_or_else(|| format!("Failed build model due to couldn't find all subnets, want: {wanted}"))?;
                found.push(subnet);
            }
            found
        }
        None => {
            let tagged: Vec<_> =
                in_vpc().filter(|s| s.tags.get(role_tag).is_some_and(|v| v.is_empty() || v == "1")).collect();
            if tagged.is_empty() {
                in_vpc().filter(|s| region.igw_route(&s.id).is_some() != internal).collect()
            } else {
                tagged
            }
        }
    };
    let this_cluster = format!("kubernetes.io/cluster/{}", cluster.cluster_name);
    let for_other_cluster =
        |s: &crate::world::Subnet| s.tags.keys().any(|k| k.starts_with("kubernetes.io/cluster/") && *k != this_cluster);
    let evaluated = candidates.len();
    let (mut other, mut small) = (0, 0);
    candidates.retain(|s| {
        let keep_cluster = !for_other_cluster(s) || s.tags.contains_key(&this_cluster);
        let keep_ips = s.available_ips >= 8;
        other += usize::from(!keep_cluster);
        small += usize::from(keep_cluster && !keep_ips);
        keep_cluster && keep_ips
    });
    if candidates.is_empty() {
        return Err(format!(
            "Failed build model due to unable to resolve at least one subnet. Evaluated {evaluated} subnets: \
             {other} are tagged for other clusters, and {small} have insufficient available IP addresses"
        ));
    }
    // What the controller checks for an internal NLB (issue 3 item 6): private and tagged.
    if internal {
        for subnet in &candidates {
            if let Some(route) = region.igw_route(&subnet.id) {
                return Err(format!(
                    "Failed build model due to subnet {} is public: its route table routes {} to {}; an internal \
                     load balancer needs private subnets",
                    subnet.id, route.destination, route.target
                ));
            }
            if !subnet.tags.get(role_tag).is_some_and(|v| v.is_empty() || v == "1") {
                return Err(format!("Failed build model due to subnet {} is not tagged {role_tag}=1", subnet.id));
            }
        }
    }
    // One subnet per AZ: prefer this cluster's, then the lowest ID.
    candidates.sort_by(|a, b| {
        (!a.tags.contains_key(&this_cluster), &a.id).cmp(&(!b.tags.contains_key(&this_cluster), &b.id))
    });
    let mut chosen: Vec<&crate::world::Subnet> = Vec::new();
    for subnet in candidates {
        if !chosen.iter().any(|c| c.availability_zone_id == subnet.availability_zone_id) {
            chosen.push(subnet);
        }
    }
    let subnet_ids: Vec<String> = chosen.iter().map(|s| s.id.clone()).collect();
    Ok(NlbModel { scheme, vpc_id: aws.vpc_id.clone(), az_ids: region.az_ids_of(&subnet_ids), subnet_ids })
}

fn listeners_for(service: &crate::world::Service) -> Vec<Listener> {
    service
        .ports
        .iter()
        .map(|p| Listener { port: p.port, protocol: p.protocol.to_ascii_uppercase(), target_port: p.target_port })
        .collect()
}

/// The LB controller's name fragments: at most 8 lowercase alphanumerics.
fn short(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).take(8).collect()
}

pub(crate) fn hex_of(text: &str, len: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..len.min(hex.len())].to_string()
}

struct AgentVerdictOutcome {
    state: &'static str,
    message: String,
    poll: Option<Poll>,
}

struct Poll {
    server: usize,
    environment: usize,
    edge_id: String,
}

fn outcome(state: &'static str, message: impl Into<String>) -> AgentVerdictOutcome {
    AgentVerdictOutcome { state, message: message.into(), poll: None }
}

/// What an Edge agent does with its configuration: crash on a bad key, poll Portainer, and
/// dial the tunnel address in field 2 (portainer.md §1, §2, §6).
fn agent_verdict(world: &World, ci: usize, di: usize) -> AgentVerdictOutcome {
    let cluster = &world.kubernetes[ci];
    let deployment = &cluster.deployments[di];
    if deployment.replicas == 0 {
        return outcome("scaled_down", "");
    }
    let subject = format!("{}/{}/{}", cluster.context, deployment.namespace, deployment.name);
    if deployment.ready_generation < deployment.generation
        && world.is_pending(TransitionKind::RolloutComplete, &subject)
    {
        return outcome("starting", "new pods are rolling out");
    }
    let Some(raw_key) = env_value(cluster, deployment, "EDGE_KEY") else {
        return outcome("crash_loop", "EDGE_KEY is not set: the agent waits for a key it will never get");
    };
    let report = check(raw_key.as_bytes());
    if report.agent_verdict() != AgentVerdict::Accepts {
        let error = report.agent_verdict().agent_error().unwrap_or_default();
        return outcome("crash_loop", format!("unable to associate Edge key | error=\"{error}\""));
    }
    let Ok(key) = EdgeKey::parse(raw_key.as_bytes()) else {
        return outcome("crash_loop", "unable to associate Edge key | error=\"invalid key format\"");
    };
    let Some(edge_id) = env_value(cluster, deployment, "EDGE_ID").filter(|id| !id.is_empty()) else {
        return outcome("crash_loop", "EDGE_ID is not set");
    };
    let Some(server) = world.portainer.iter().position(|p| query::same_url(&p.url, key.portainer_url())) else {
        return outcome(
            "poll_failing",
            format!(
                "an error occured during short poll | error=\"dial tcp: lookup {}: no such host\"",
                url_host(key.portainer_url())
            ),
        );
    };
    let portainer = &world.portainer[server];
    let Some(environment) = portainer.environments.iter().position(|e| e.id == key.endpoint_id()) else {
        return outcome(
            "poll_rejected",
            "an error occured during short poll | error=\"Unable to find an environment with the specified identifier \
             inside the database\"",
        );
    };
    let env = &portainer.environments[environment];
    if !env.edge_id.is_empty() && env.edge_id != edge_id {
        return outcome(
            "poll_rejected",
            "an error occured during short poll | error=\"Permission denied to access environment: invalid Edge \
             identifier\"",
        );
    }
    if !env.user_trusted {
        return outcome(
            "poll_rejected",
            "an error occured during short poll | error=\"The device has not been trusted yet\"",
        );
    }
    let poll = Some(Poll { server, environment, edge_id });
    let tunnel = key.tunnel_addr();
    let polling = |message: String| AgentVerdictOutcome { state: "polling", message, poll: None };
    let verdict = match tunnel_reachable(world, ci, tunnel) {
        Err(cause) => polling(format!("client: Connection error: dial tcp {tunnel}: i/o timeout ({cause})")),
        Ok(()) if key.server_fingerprint() != portainer.server_fingerprint => {
            polling(format!("client: Invalid fingerprint ({})", portainer.server_fingerprint))
        }
        Ok(()) if !portainer.tunnel_listening() => {
            polling("client: Connection error: the tunnel server does not accept connections".to_string())
        }
        Ok(()) => AgentVerdictOutcome { state: "connected", message: "client: Connected".to_string(), poll: None },
    };
    AgentVerdictOutcome { poll, ..verdict }
}

/// Whether `host:port` leads from the agent's VPC to a healthy Portainer tunnel target: a VPC
/// endpoint there, available, admitted by its security groups, to an available endpoint service
/// whose active NLB listens on that port with a healthy target.
fn tunnel_reachable(world: &World, ci: usize, host_port: &str) -> Result<(), String> {
    let cluster = &world.kubernetes[ci];
    let Some((host, port)) = host_port.rsplit_once(':') else { return Err("no port".to_string()) };
    let port: u16 = port.parse().map_err(|_| "no port".to_string())?;
    let Some(aws) = &cluster.aws else { return Err("the cluster has no VPC in this world".to_string()) };
    let Some(region) = world.region(&aws.account, &aws.region) else { return Err("no such region".to_string()) };
    let Some(endpoint) =
        region.vpc_endpoints.iter().find(|e| e.vpc_id == aws.vpc_id && e.dns_entries.iter().any(|d| d == host))
    else {
        return Err(format!("{host} is not a VPC endpoint of {}", aws.vpc_id));
    };
    if endpoint.state != "available" {
        return Err(format!("VPC endpoint {} is {}", endpoint.id, endpoint.state));
    }
    let vpc_cidr = region.vpcs.iter().find(|v| v.id == aws.vpc_id).map(|v| v.cidr.clone()).unwrap_or_default();
    let admitted = endpoint.security_group_ids.is_empty()
        || endpoint.security_group_ids.iter().any(|id| {
            region.security_groups.iter().find(|g| &g.id == id).is_some_and(|g| {
                g.ingress.iter().any(|rule| {
                    (rule.protocol == "-1"
                        || (rule.protocol == "tcp" && rule.from_port <= port && port <= rule.to_port))
                        && rule
                            .cidr
                            .as_deref()
                            .and_then(Cidr::parse)
                            .zip(Cidr::parse(&vpc_cidr))
                            .is_some_and(|(r, v)| r.overlaps(v))
                })
            })
        });
    if !admitted {
        return Err(format!("the endpoint's security groups do not admit TCP {port} from {vpc_cidr}"));
    }
    let Some((_, service_region)) =
        world.regions().find(|(_, r)| r.endpoint_services.iter().any(|s| s.service_name == endpoint.service_name))
    else {
        return Err(format!("endpoint service {} no longer exists", endpoint.service_name));
    };
    let Some(service) = service_region.endpoint_services.iter().find(|s| s.service_name == endpoint.service_name)
    else {
        return Err("no endpoint service".to_string());
    };
    if service.state != "Available" {
        return Err(format!("endpoint service {} is {}", service.service_id, service.state));
    }
    let lbs: Vec<&LoadBalancer> = service_region
        .load_balancers
        .iter()
        .filter(|lb| service.network_load_balancer_arns.contains(&lb.arn))
        .collect();
    let Some(lb) = lbs.iter().find(|lb| lb.listeners.iter().any(|l| l.port == port)) else {
        return Err(format!("no load balancer of {} listens on {port}", service.service_id));
    };
    if lb.state != "active" {
        return Err(format!("load balancer {} is {}", lb.name, lb.state));
    }
    let target_port = lb.listeners.iter().find(|l| l.port == port).map_or(port, |l| l.target_port);
    if !lb.targets.iter().any(|t| t.port == target_port && t.health == "healthy") {
        return Err(format!("load balancer {} has no healthy target on port {target_port}", lb.name));
    }
    Ok(())
}
