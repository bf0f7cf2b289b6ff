//! The static rules, one module per concern. Each rule is a plain function over [`Ctx`].

mod annotations;
mod iam_policy;
pub(crate) mod names;
mod network;
mod portainer;
mod secrets;
mod structure;
mod values;

use edgeplan_diag::Span;
use edgeplan_spec::Spanned;

use crate::Ctx;

pub(crate) fn run_all(ctx: &mut Ctx<'_>) {
    names::check(ctx);
    network::check(ctx);
    annotations::check(ctx);
    portainer::check(ctx);
    secrets::check(ctx);
    structure::check(ctx);
    iam_policy::check(ctx);
    values::check(ctx);
}

/// The span of a value, or `None` for a synthetic default (which has nothing to point at).
pub(crate) fn span<T>(value: &Spanned<T>) -> Option<Span> {
    (value.span != Span::default()).then_some(value.span)
}
