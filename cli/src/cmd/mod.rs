//! One module per subcommand.

pub mod demo;
pub mod notify;
pub mod serve;
pub mod status;
pub mod top;
