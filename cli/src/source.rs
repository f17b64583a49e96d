//! Where a viewer reads from: the running collector when one answers, else the
//! files under the state root.
//!
//! `status` and `top` both start here, so they agree on which collector is meant
//! (`--collector`, then `SWARM_OBS_COLLECTOR`, `collector.json`, `config.toml`) and
//! on when to fall back to the files.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use swarm_obs::{CollectorAddress, Config, StateRoot};

use crate::tail::remote;

/// How long one request to the collector may take before it counts as not answering.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Command-line options that choose the source, shared by the viewers.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// State root to read (default: $SWARM_OBS_HOME, else the platform state dir).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Collector to ask (`host:port`), or `off` to read the files only (default:
    /// the one named by $SWARM_OBS_COLLECTOR, collector.json or config.toml).
    #[arg(long, value_name = "ADDR")]
    pub collector: Option<String>,
}

/// The collector's HTTP API, as a blocking client with a time limit per request.
#[derive(Debug, Clone)]
pub struct CollectorHttp {
    agent: ureq::Agent,
    address: CollectorAddress,
}

impl CollectorHttp {
    /// A client for `address`; every request gives up after `timeout`.
    pub fn new(address: CollectorAddress, timeout: Duration) -> Self {
        Self {
            agent: remote::agent(Some(timeout)),
            address,
        }
    }

    /// The collector's address.
    pub fn address(&self) -> &CollectorAddress {
        &self.address
    }

    /// `host:port`.
    pub fn host_port(&self) -> &str {
        self.address.host_port()
    }

    /// GETs `path` (with its query) and parses the JSON answer.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        remote::get_json(&self.agent, &self.address, path)
    }
}

/// The place a viewer reads from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A running collector.
    Collector(CollectorHttp),
    /// The files under a state root.
    Files(StateRoot),
}

/// A source chosen, and why the collector was passed over when it was.
#[derive(Debug)]
pub struct Opened {
    /// Where to read.
    pub source: Source,
    /// The state root: its files are read when the collector is away.
    pub root: StateRoot,
    /// Set when a collector was named but did not answer.
    pub note: Option<String>,
}

impl Source {
    /// Chooses the source: an explicit `--collector` must answer; a discovered one
    /// is used when it answers `/healthz`, else the files are read with a note.
    pub fn open(args: &SourceArgs) -> Result<Opened> {
        let root = args
            .home
            .clone()
            .map(StateRoot::new)
            .unwrap_or_else(StateRoot::resolve);
        let files = |note| Opened {
            source: Source::Files(root.clone()),
            root: root.clone(),
            note,
        };
        // Read whatever the source: one policy for a broken config.toml in every
        // command (stop, naming the line and key), not only where it is used.
        let config = Config::load(&root.config_file()).context("cannot use the configuration")?;
        if let Some(named) = &args.collector {
            if named.eq_ignore_ascii_case("off") {
                return Ok(files(None));
            }
            let address = CollectorAddress::parse(named)
                .with_context(|| format!("--collector {named:?} is not an address"))?;
            let address = with_token(&root, address);
            remote::probe(&address)
                .context("the collector named by --collector cannot be used (pass `--collector off` to read the files)")?;
            return Ok(Opened {
                source: Source::Collector(CollectorHttp::new(address, REQUEST_TIMEOUT)),
                root,
                note: None,
            });
        }
        let Some(address) = CollectorAddress::discover(&root, &config) else {
            return Ok(files(None));
        };
        match remote::probe(&address) {
            Ok(_) => Ok(Opened {
                source: Source::Collector(CollectorHttp::new(address, REQUEST_TIMEOUT)),
                root,
                note: None,
            }),
            Err(e) => Ok(files(Some(format!(
                "{e:#}; reading the files under {}",
                root.dir().display()
            )))),
        }
    }

    /// A short description: `collector 127.0.0.1:4780` or `files in /path`.
    pub fn describe(&self) -> String {
        match self {
            Source::Collector(c) => format!("collector {}", c.host_port()),
            // A state root that is not there is named as such: reading "no
            // workers" from the wrong place must not look like an idle swarm.
            Source::Files(root) if !root.dir().exists() => format!(
                "files in {}, which does not exist yet (set SWARM_OBS_HOME or --home to the state root in use)",
                root.dir().display()
            ),
            Source::Files(root) => format!("files in {}", root.dir().display()),
        }
    }

    /// `collector` or `files`, for machine-readable output.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Collector(_) => "collector",
            Source::Files(_) => "files",
        }
    }
}

/// `address` with its token: `SWARM_OBS_TOKEN`, else the one `collector.json` holds
/// when it names the same collector.
fn with_token(root: &StateRoot, mut address: CollectorAddress) -> CollectorAddress {
    address.token = std::env::var(swarm_obs::TOKEN_ENV)
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| {
            swarm_obs::CollectorInfo::read(&root.collector_file())
                .filter(|info| {
                    CollectorAddress::parse(&info.addr)
                        .is_ok_and(|a| a.base_url == address.base_url)
                })
                .and_then(|info| info.token)
        });
    address
}
