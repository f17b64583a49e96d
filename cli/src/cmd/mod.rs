//! One module per subcommand.

pub mod demo;
pub mod notify;
pub mod pipe;
pub mod run;
pub mod serve;
