//! miette rendering setup, shared by every command that prints diagnostics.

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};

/// Colours only on a terminal and without NO_COLOR; a fixed width off a terminal, so output
/// in CI logs and snapshots is stable.
pub(crate) fn report_handler() -> GraphicalReportHandler {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if colour { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false).with_context_lines(2)
}
