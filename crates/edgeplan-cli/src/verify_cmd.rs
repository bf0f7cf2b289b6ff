//! `edgeplan verify SPEC`: the end-to-end check, also run at the end of apply. Exit 0 only
//! when every check passes.

use std::collections::BTreeMap;
use std::io::Write;

use edgeplan_apply::{VerifyReport, environment_id, kubernetes_probe_path};
use edgeplan_model::{Backend, NodeKind};

use crate::args::VerifyArgs;
use crate::engine::{Stack, WorldFile, load_stack, open_world, runtime};
use crate::exit;

pub(crate) fn run(args: VerifyArgs) -> u8 {
    let stack = match load_stack(&args.spec) {
        Ok(stack) => stack,
        Err(code) => return code,
    };
    let world = match open_world(args.world.as_deref(), &stack.spec) {
        Ok(world) => world,
        Err(code) => return code,
    };
    let runtime = match runtime(&world) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    verify_and_report(&stack, &world, &runtime)
}

pub(crate) fn verify_and_report(stack: &Stack, world: &WorldFile, runtime: &tokio::runtime::Runtime) -> u8 {
    let report = runtime.block_on(check(stack, world));
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(render(&report).as_bytes());
    let _ = out.flush();
    if report.passed() { exit::OK } else { exit::FINDINGS }
}

async fn check(stack: &Stack, backend: &dyn Backend) -> VerifyReport {
    let nodes = stack.nodes();
    let observations = backend.observe(stack.name(), &nodes).await;
    let mut probes = BTreeMap::new();
    for node in nodes.iter().filter(|n| n.kind == NodeKind::PortainerEnvironment) {
        let id = observations
            .iter()
            .find(|o| o.address == node.address)
            .and_then(|o| o.result.as_ref().ok())
            .and_then(environment_id);
        if let Some(id) = id {
            let answer = backend.http_get(&node.scope, &kubernetes_probe_path(id)).await;
            probes.insert(node.address.clone(), answer);
        }
    }
    edgeplan_apply::verify(&stack.graph, &observations, &probes)
}

fn render(report: &VerifyReport) -> String {
    let mut out = String::from("\nVerify:\n");
    for check in &report.checks {
        let mark = if check.passed { "✓" } else { "✗" };
        out.push_str(&format!("  {mark} {}: {}\n      {}\n", check.scope, check.name, check.evidence));
        for cause in &check.causes {
            let verdict = if cause.present { "✗ likely cause" } else { "✓ ruled out  " };
            out.push_str(&format!("        {verdict}  {}: {}\n", cause.cause, cause.evidence));
        }
    }
    let failed = report.checks.iter().filter(|c| !c.passed).count();
    if failed == 0 {
        out.push_str(&format!("Verify passed: {} checks.\n", report.checks.len()));
    } else {
        out.push_str(&format!("Verify failed: {failed} of {} checks.\n", report.checks.len()));
    }
    out
}
