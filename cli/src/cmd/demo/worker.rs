//! The demo's workers: real processes using the swarm-obs library, each with its
//! own ending — one finishes, one fails, one dies without a goodbye.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

/// Which demo worker a process plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Builds, reports progress, finishes.
    Builder,
    /// Runs tests and fails with an error.
    Tester,
    /// Crawls, then is killed mid-task, so its heartbeat stops with no goodbye.
    Crawler,
}

impl Role {
    /// Every role, in the order the demo starts them.
    pub const ALL: [Role; 3] = [Role::Builder, Role::Tester, Role::Crawler];

    /// The source the worker reports as.
    pub fn source(self) -> &'static str {
        match self {
            Role::Builder => "builder",
            Role::Tester => "tester",
            Role::Crawler => "crawler",
        }
    }

    /// The `--worker` value that selects it.
    pub fn arg(self) -> &'static str {
        self.source()
    }
}

/// Time between steps: slow enough to watch, fast enough for a test.
const STEP: Duration = Duration::from_millis(300);

/// Runs one worker to its ending. The state root and collector come from the
/// environment the demo sets.
pub fn run(role: Role) -> Result<ExitCode> {
    let guard = swarm_obs::init(role.source())
        .interval(Duration::from_secs(1))
        .install()
        .with_context(|| format!("demo worker {} could not start swarm-obs", role.source()))?;
    match role {
        Role::Builder => {
            swarm_obs::start!("BUILD_042");
            for s in 1..=5 {
                std::thread::sleep(STEP);
                swarm_obs::progress!(s, 5, "Compiled crate {s} of 5");
            }
            swarm_obs::done!(
                duration_ms = 5 * STEP.as_millis() as u64,
                "Finished BUILD_042"
            );
            Ok(ExitCode::SUCCESS)
        }
        Role::Tester => {
            swarm_obs::start!("TEST_007");
            for s in 1..=3 {
                std::thread::sleep(STEP);
                swarm_obs::progress!(s, 4, "Ran suite {s} of 4");
            }
            std::thread::sleep(STEP);
            tracing::error!(failed = 3, total = 40, "3 of 40 tests failed in suite 4");
            // A clean exit with a failure status: the heartbeat says `stopped`.
            drop(guard);
            Ok(ExitCode::FAILURE)
        }
        Role::Crawler => {
            swarm_obs::start!("CRAWL_913");
            for s in 1..=3 {
                std::thread::sleep(STEP);
                swarm_obs::progress!(s, 10, "Fetched page {s} of 10");
            }
            // What was logged reaches the files; then the process vanishes the way a
            // crash or the OOM killer ends one: no final heartbeat, no goodbye.
            guard.flush();
            // SAFETY: signalling our own pid.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            std::process::abort()
        }
    }
}
