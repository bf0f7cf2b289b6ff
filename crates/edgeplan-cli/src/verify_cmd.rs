//! `edgeplan verify SPEC`: the end-to-end check, also run at the end of apply. Exit 0 only
//! when every check passes.

use crate::args::VerifyArgs;
use crate::engine::{open, print, run};
use crate::exit;
use edgeplan_engine::Session;

pub(crate) fn run_verify(args: VerifyArgs) -> u8 {
    let session = match open(&args.spec, args.world.as_deref()) {
        Ok(session) => session,
        Err(code) => return code,
    };
    run(&session, verify_and_report(&session)).unwrap_or_else(|code| code)
}

pub(crate) async fn verify_and_report(session: &Session) -> u8 {
    let report = session.verify().await;
    // One line per check, then where the path is broken (the report renders itself).
    print(&report.to_string());
    if report.passed() { exit::OK } else { exit::FINDINGS }
}
