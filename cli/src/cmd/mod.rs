//! One module per subcommand.

pub mod demo;
pub mod notify;
pub mod serve;
pub mod tail;
