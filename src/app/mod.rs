//! The work of each subcommand: plan, session, loop and typed results. `cmd/X.rs` parses the
//! command line into a plain config, `app::X` does the work, `output::X` renders the result.

pub mod list;
pub mod record;
pub mod report;
pub mod script;
pub mod stat;
pub mod test;
