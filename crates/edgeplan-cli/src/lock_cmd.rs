//! `edgeplan unlock SPEC --holder ID`: release a stack lock whose holder is gone for good. The
//! lock itself is the engine's (a Lease in the provider cluster, through its backend).

use edgeplan_engine::LockError;

use crate::args::UnlockArgs;
use crate::engine::{open, run};
use crate::exit;

pub(crate) fn run_unlock(args: UnlockArgs) -> u8 {
    let session = match open(&args.spec, args.world.as_deref()) {
        Ok(session) => session,
        Err(code) => return code,
    };
    let stack = session.stack.name.clone();
    let result = run(&session, async {
        let backend = session.provider_backend().await.map_err(LockError::Backend)?;
        edgeplan_engine::lock::force_release(backend, &stack, &args.holder).await
    });
    match result {
        Err(code) => code,
        Ok(Ok(())) => {
            println!("Released the lock of stack `{stack}` held by {}.", args.holder);
            exit::OK
        }
        Ok(Err(LockError::Held(lease))) => {
            eprintln!(
                "error[edgeplan::unlock]: the lock of stack `{stack}` is held by {}, not {}; nothing was released",
                lease.holder, args.holder
            );
            eprintln!(
                "  help: --holder must name the current holder's process exactly, as the refusal printed it: {}",
                lease.process()
            );
            exit::FAILED
        }
        Ok(Err(LockError::Lost(_))) => {
            eprintln!("error[edgeplan::unlock]: stack `{stack}` is not locked");
            eprintln!("  help: --holder must name the current holder exactly, as the refusal printed it");
            exit::FAILED
        }
        Ok(Err(err)) => {
            eprintln!("error[edgeplan::unlock]: {err}");
            eprintln!("  help: the lock is a Lease in the provider cluster; check access to its kube context");
            exit::FAILED
        }
    }
}
