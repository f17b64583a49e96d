//! `swarm-obs serve`: the local collector.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use swarm_obs::{Config, DEFAULT_PORT, ProbeConfig, StateRoot, TOKEN_ENV};
use swarm_obs_collector::Options;

/// Arguments of `swarm-obs serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  swarm-obs serve\n  swarm-obs serve --addr 127.0.0.1:0\n  SWARM_OBS_TOKEN=s3cret swarm-obs serve --addr 0.0.0.0:4780\n  swarm-obs serve --probe 'http:http://127.0.0.1:8080/health expect_status=200' --probe tcp:127.0.0.1:5432\n\nThe address actually bound (and the token, if any) is written to collector.json in the state root, and removed on SIGINT/SIGTERM."
)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port. A non-loopback address needs a token.
    #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    addr: SocketAddr,
    /// Bearer token every request must carry (default: $SWARM_OBS_TOKEN).
    #[arg(long)]
    token: Option<String>,
    /// State root holding the event log, collector.db and collector.json (default: $SWARM_OBS_HOME, else the platform state dir).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Delete events older than this many days.
    #[arg(long, default_value_t = 7)]
    retention_days: u32,
    /// Keep the store under this many MiB by deleting the oldest events.
    #[arg(long, default_value_t = 1024)]
    max_store_mb: u64,
    /// Largest request body accepted, in MiB.
    #[arg(long, default_value_t = 16)]
    max_body_mb: usize,
    /// Milliseconds past a worker's heartbeat interval before it is reported down
    /// (default: twice the interval, at least 10 s).
    #[arg(long)]
    heartbeat_grace_ms: Option<u64>,
    /// A health probe, besides the `[[probe]]` tables of config.toml (repeatable):
    /// `KIND:TARGET [name=N] [expect_status=S] [interval_ms=I] [timeout_ms=T] [grace_ms=G]`
    /// where KIND is http, tcp, pidfile, process, systemd or systemd-user.
    #[arg(long = "probe", value_name = "SPEC")]
    probes: Vec<String>,
}

/// Runs the collector until SIGINT or SIGTERM.
pub fn run(args: Args) -> Result<ExitCode> {
    let root = args.home.map_or_else(StateRoot::resolve, StateRoot::new);
    let config_file = root.config_file();
    let config = Config::load(&config_file)
        .with_context(|| format!("cannot start the collector with {}", config_file.display()))?;
    let mut options = Options::new(root);
    options.notify = config.notify.clone();
    options.addr = args.addr;
    options.token = args
        .token
        .or_else(|| std::env::var(TOKEN_ENV).ok())
        .filter(|t| !t.is_empty());
    options.retention.max_age_ms = i64::from(args.retention_days) * 24 * 3600 * 1000;
    options.retention.max_bytes = args.max_store_mb.saturating_mul(1 << 20);
    options.body_limit = args.max_body_mb.saturating_mul(1 << 20).max(1024);
    options.heartbeat_grace = args.heartbeat_grace_ms.map(Duration::from_millis);
    options.probes = config.probe_specs();
    for text in &args.probes {
        let spec = ProbeConfig::parse_compact(text)
            .and_then(|p| p.spec())
            .map_err(|e| anyhow::anyhow!("invalid --probe: {e}"))?;
        if options.probes.iter().any(|p| p.name == spec.name) {
            bail!(
                "two probes are named `{}` (config.toml and --probe together): add name=… to the --probe",
                spec.name
            );
        }
        options.probes.push(spec);
    }
    let home = options.root.dir().display().to_string();
    swarm_obs_collector::run(options)
        .with_context(|| format!("collector (state root {home}) failed"))?;
    Ok(ExitCode::SUCCESS)
}
