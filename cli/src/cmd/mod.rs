//! One module per subcommand.

pub mod completions;
pub mod demo;
pub mod doctor;
pub mod hooks;
pub mod notify;
pub mod pipe;
pub mod run;
pub mod serve;
pub mod status;
pub mod tail;
pub mod top;
