//! The LB controller's part, played by the test: once the tunnel Service is applied (in the
//! simulated cluster), build the internal NLB, its target group and listener in moto, tagged
//! as the controller tags them, and report the NLB's DNS name in the Service's
//! `status.loadBalancer`; once the Service is deleted, delete the NLB.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_elasticloadbalancingv2::types::{
    Action as LbAction, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum, Tag,
    TargetDescription, TargetTypeEnum,
};
use edgeplan_model::{Action, Identity, NodeKind, Observed, Operation, Scope, attr};
use edgeplan_sim::SimWorld;
use edgeplan_testkit::mixed::AfterExecute;

use super::Clients;

pub struct Controller {
    clients: Clients,
    world: Arc<SimWorld>,
    /// `context/namespace/name` → the NLB's ARN.
    built: Mutex<BTreeMap<String, String>>,
}

impl Controller {
    pub fn new(clients: Clients, world: Arc<SimWorld>) -> Controller {
        Controller { clients, world, built: Mutex::new(BTreeMap::new()) }
    }

    pub fn hook(this: &Arc<Controller>) -> AfterExecute {
        let this = Arc::clone(this);
        Arc::new(move |scope: &Scope, op: &Operation, _observed: &Observed| {
            let this = Arc::clone(&this);
            let (scope, op) = (scope.clone(), op.clone());
            Box::pin(async move { this.reconcile(&scope, &op).await })
        })
    }

    pub fn built(&self) -> usize {
        self.built.lock().map(|b| b.len()).unwrap_or(0)
    }

    async fn reconcile(&self, scope: &Scope, op: &Operation) -> Result<(), String> {
        if op.kind != NodeKind::TunnelService {
            return Ok(());
        }
        let Scope::Kubernetes { context } = scope else { return Ok(()) };
        let namespace = op.text(attr::NAMESPACE).unwrap_or("default").to_string();
        let name = match &op.identity {
            Identity::Named { name } => name.clone(),
            _ => return Ok(()),
        };
        let key = format!("{context}/{namespace}/{name}");
        if op.action == Action::Delete {
            let arn = self.built.lock().map_err(|e| e.to_string())?.remove(&key);
            if let Some(arn) = arn {
                self.delete(&arn).await?;
            }
            return Ok(());
        }
        if self.built.lock().map_err(|e| e.to_string())?.contains_key(&key) {
            return Ok(());
        }
        let subnet = op.text(attr::SUBNET_ID).ok_or("the Service names no NLB subnet")?.to_string();
        let port = op.get(attr::PORT).and_then(|v| v.as_int()).ok_or("no listener port")? as i32;
        let target_port = op.get(attr::TARGET_PORT).and_then(|v| v.as_int()).ok_or("no target port")? as i32;
        let (arn, dns) = self.build(context, &namespace, &name, &subnet, port, target_port).await?;
        self.built.lock().map_err(|e| e.to_string())?.insert(key, arn);
        self.world.edit(|w| {
            if let Some(service) = w
                .kubernetes
                .iter_mut()
                .find(|c| &c.context == context)
                .and_then(|c| c.services.iter_mut().find(|s| s.namespace == namespace && s.name == name))
            {
                service.status_hostname = Some(dns);
            }
        });
        Ok(())
    }

    async fn build(
        &self,
        context: &str,
        namespace: &str,
        name: &str,
        subnet: &str,
        port: i32,
        target_port: i32,
    ) -> Result<(String, String), String> {
        let short = |s: &str| s.chars().take(8).collect::<String>();
        let lb_name = format!("k8s-{}-{}-{}", short(namespace), short(name), "0a1b2c3d4e");
        let tags = [
            ("elbv2.k8s.aws/cluster", context.to_string()),
            ("service.k8s.aws/stack", format!("{namespace}/{name}")),
            ("service.k8s.aws/resource", "LoadBalancer".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Vec<_>>();
        let elb = &self.clients.elb;
        let created = elb
            .create_load_balancer()
            .name(&lb_name)
            .r#type(LoadBalancerTypeEnum::Network)
            .scheme(LoadBalancerSchemeEnum::Internal)
            .subnets(subnet)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| format!("CreateLoadBalancer: {e:?}"))?;
        let lb = created.load_balancers().first().ok_or("no load balancer created")?;
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        let dns = lb.dns_name().unwrap_or_default().to_string();
        let vpc = lb.vpc_id().unwrap_or_default().to_string();
        let group = elb
            .create_target_group()
            .name(format!("k8s-{}-{}", short(name), target_port))
            .protocol(ProtocolEnum::Tcp)
            .port(target_port)
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .map_err(|e| format!("CreateTargetGroup: {e:?}"))?;
        let group_arn =
            group.target_groups().first().and_then(|g| g.target_group_arn()).unwrap_or_default().to_string();
        // The Portainer pod's IP, as the controller registers ip targets.
        elb.register_targets()
            .target_group_arn(&group_arn)
            .targets(TargetDescription::builder().id("192.168.32.10").port(target_port).build())
            .send()
            .await
            .map_err(|e| format!("RegisterTargets: {e:?}"))?;
        elb.create_listener()
            .load_balancer_arn(&arn)
            .protocol(ProtocolEnum::Tcp)
            .port(port)
            .default_actions(LbAction::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&group_arn).build())
            .send()
            .await
            .map_err(|e| format!("CreateListener: {e:?}"))?;
        Ok((arn, dns))
    }

    async fn delete(&self, arn: &str) -> Result<(), String> {
        let elb = &self.clients.elb;
        let listeners = elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|e| format!("DescribeListeners: {e:?}"))?;
        for listener in listeners.listeners() {
            elb.delete_listener()
                .listener_arn(listener.listener_arn().unwrap_or_default())
                .send()
                .await
                .map_err(|e| format!("DeleteListener: {e:?}"))?;
        }
        let groups = elb
            .describe_target_groups()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|e| format!("DescribeTargetGroups: {e:?}"))?;
        elb.delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|e| format!("DeleteLoadBalancer: {e:?}"))?;
        for group in groups.target_groups() {
            elb.delete_target_group()
                .target_group_arn(group.target_group_arn().unwrap_or_default())
                .send()
                .await
                .map_err(|e| format!("DeleteTargetGroup: {e:?}"))?;
        }
        Ok(())
    }
}
