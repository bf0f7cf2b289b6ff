//! `edgeplan edge-key`: placeholder, owned by the edge-key work.

#[derive(Debug, clap::Args)]
pub struct EdgeKeyArgs {}

pub(crate) fn run(_args: EdgeKeyArgs) -> u8 {
    crate::exit::CANNOT_RUN
}
