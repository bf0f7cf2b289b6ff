//! `edgeplan verify SPEC`: the end-to-end check, also run at the end of apply. Exit 0 only
//! when every check passes.

use edgeplan_engine::{Session, VerifyReport};

use crate::args::VerifyArgs;
use crate::engine::{open, print, run};
use crate::exit;

pub(crate) fn run_verify(args: VerifyArgs) -> u8 {
    let session = match open(&args.spec, args.world.as_deref()) {
        Ok(session) => session,
        Err(code) => return code,
    };
    run(&session, verify_and_report(&session)).unwrap_or_else(|code| code)
}

pub(crate) async fn verify_and_report(session: &Session) -> u8 {
    let report = session.verify().await;
    print(&render(&report));
    if report.passed() { exit::OK } else { exit::FINDINGS }
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
