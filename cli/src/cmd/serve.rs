//! `swarm-obs serve`: the local collector.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use swarm_obs::otlp::OtlpTarget;
use swarm_obs::{Config, DEFAULT_PORT, OtlpConfig, ProbeConfig, StateRoot, TOKEN_ENV};
use swarm_obs_collector::Options;
use swarm_obs_collector::export::ExportOptions;

/// Arguments of `swarm-obs serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  swarm-obs serve\n  swarm-obs serve --addr 127.0.0.1:0\n  SWARM_OBS_TOKEN=s3cret swarm-obs serve --addr 0.0.0.0:4780\n  swarm-obs serve --probe 'http://127.0.0.1:8080/health expect_status=200' --probe tcp:127.0.0.1:5432\n  swarm-obs serve --otlp-endpoint http://otel-collector:4318\n\nThe address actually bound (and the token, if any) is written to collector.json in the state root, and removed on SIGINT/SIGTERM."
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
    /// Export every stored event (as OTLP logs) and worker states and counters (as
    /// OTLP metrics) to this OTLP/HTTP receiver, e.g. http://127.0.0.1:4318
    /// (default: $OTEL_EXPORTER_OTLP_ENDPOINT, else [otlp] endpoint in config.toml).
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// OTLP protocol: http/protobuf (port 4318, the default) or grpc (port 4317)
    /// (default: $OTEL_EXPORTER_OTLP_PROTOCOL, else [otlp] protocol in config.toml).
    #[arg(long, value_name = "PROTOCOL")]
    otlp_protocol: Option<String>,
    /// Seconds between OTLP metric exports.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    otlp_metrics_interval: u64,
    /// A host name requests may use besides 127.0.0.1, localhost, [::1] and the
    /// bound address (repeatable); requests naming any other host are refused.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// An origin whose pages may call the collector besides its own, e.g.
    /// http://localhost:3000 (repeatable).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// A directory whose Claude Code transcripts a session's conversation may be
    /// read from, besides $CLAUDE_CONFIG_DIR (else ~/.claude) and the roots of
    /// [transcripts] in config.toml (repeatable).
    #[arg(long = "transcript-root", value_name = "DIR")]
    transcript_roots: Vec<PathBuf>,
}

/// A transcript root as written: `~/…` is the home directory; it must then be
/// absolute.
fn transcript_root(dir: &std::path::Path, home: Option<&std::path::Path>) -> Result<PathBuf> {
    let dir = match (dir.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => dir.to_path_buf(),
    };
    if !dir.is_absolute() {
        bail!(
            "transcript root {} is not an absolute path (write it from /, or from ~/)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Whether `target` names the address this collector listens on, which would send
/// every event back to itself (common when the shell exports
/// `OTEL_EXPORTER_OTLP_ENDPOINT` for Claude Code).
fn exports_to_itself(target: &OtlpTarget, addr: SocketAddr) -> bool {
    let ours = |url: &str| {
        let Some(host) = swarm_obs::url::authority(url) else {
            return false;
        };
        let Some((name, port)) = host.rsplit_once(':') else {
            return false;
        };
        let loopback = matches!(name, "localhost" | "127.0.0.1" | "[::1]" | "0.0.0.0")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip == addr.ip());
        port.parse::<u16>().is_ok_and(|p| p == addr.port()) && loopback
    };
    target.urls().any(ours)
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
    options.allow_hosts = args.allow_hosts.clone();
    options.allow_origins = args.allow_origins.clone();
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
    options.redaction = config.redaction.clone();
    let home = std::env::home_dir();
    for dir in &config.transcripts.roots {
        let dir = transcript_root(dir, home.as_deref()).with_context(|| {
            format!("cannot start the collector with {}", config_file.display())
        })?;
        options.transcript_roots.push(dir);
    }
    for dir in &args.transcript_roots {
        let dir = transcript_root(dir, home.as_deref()).context("invalid --transcript-root")?;
        options.transcript_roots.push(dir);
    }
    let flags = OtlpConfig {
        endpoint: args.otlp_endpoint,
        protocol: args.otlp_protocol,
        ..OtlpConfig::default()
    };
    options.export = OtlpTarget::from_env(&flags, &config.otlp)
        .context("cannot start OTLP export")?
        .filter(|target| {
            let own = exports_to_itself(target, args.addr);
            if own {
                eprintln!(
                    "swarm-obs serve: not exporting: the OTLP endpoint is this collector's own address (OTEL_EXPORTER_OTLP_ENDPOINT set for Claude Code?); pass --otlp-endpoint to export elsewhere"
                );
            }
            !own
        })
        .map(|target| {
            let mut export = ExportOptions::new(target);
            export.metrics_interval = Duration::from_secs(args.otlp_metrics_interval.max(1));
            export
        });
    let home = options.root.dir().display().to_string();
    swarm_obs_collector::run(options)
        .with_context(|| format!("collector (state root {home}) failed"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_naming_this_collector_is_recognised() {
        let addr = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT));
        let own = OtlpTarget::new("http://localhost:4780").unwrap();
        assert!(exports_to_itself(&own, addr));
        let own = OtlpTarget::new("http://127.0.0.1:4780/").unwrap();
        assert!(exports_to_itself(&own, addr));
        let other = OtlpTarget::new("http://127.0.0.1:4318").unwrap();
        assert!(!exports_to_itself(&other, addr));
        let remote = OtlpTarget::new("http://otel:4780").unwrap();
        assert!(!exports_to_itself(&remote, addr));
    }

    #[test]
    fn transcript_roots_are_absolute_with_the_home_for_a_tilde() {
        let home = std::path::Path::new("/home/me");
        let root = |d: &str| transcript_root(std::path::Path::new(d), Some(home));
        assert_eq!(
            root("~/claude-b").unwrap(),
            PathBuf::from("/home/me/claude-b")
        );
        assert_eq!(root("/srv/claude").unwrap(), PathBuf::from("/srv/claude"));
        assert!(root("claude").unwrap_err().to_string().contains("absolute"));
    }
}
