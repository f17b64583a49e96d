//! `swarm-obs tail`: the `tail -f` of a swarm.

use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use swarm_obs::{Config, Kind, Level, StateRoot, Timestamp};

use crate::tail::render::{ColorChoice, Output, Printer};
use crate::tail::select::{self, Selection};
use crate::tail::{self, Feed, Flow, Tail};

/// Arguments of `swarm-obs tail`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Sources and messages are matched by regular expression, anywhere in the text.

Examples:
  swarm-obs tail -f                          every source, live
  swarm-obs tail -f backend 'worker-\\d+'     two groups of sources
  swarm-obs tail -f -x heartbeat --level warn
  swarm-obs tail --since 10m --grep 'TASK_1\\d+' --exclude-grep retry
  swarm-obs tail -f --kind done,error,alert  outcomes only
  swarm-obs tail -f --session 98717c42       one Claude Code session
  swarm-obs tail -n 100 -o json | jq .msg
  swarm-obs tail -f | head -20

Reads from the collector (`swarm-obs serve`) when one runs, resuming after a restart
with no gap and no repeat; otherwise follows the event files in <state root>/events.")]
pub struct Args {
    /// Show only sources matching one of these regexes (default: every source).
    #[arg(value_name = "SOURCE")]
    sources: Vec<String>,
    /// Hide sources matching this regex (repeatable).
    #[arg(short = 'x', long = "exclude-source", value_name = "REGEX")]
    exclude_sources: Vec<String>,
    /// Keep following: print new events as they arrive.
    #[arg(short, long)]
    follow: bool,
    /// Show only messages matching this regex (repeatable: any may match).
    #[arg(short, long, value_name = "REGEX")]
    grep: Vec<String>,
    /// Hide messages matching this regex (repeatable).
    #[arg(short = 'v', long, value_name = "REGEX")]
    exclude_grep: Vec<String>,
    /// Show only events at or above this level: trace, debug, info, warn, error.
    #[arg(short, long, value_parser = select::parse_level)]
    level: Option<Level>,
    /// Show only these kinds: log, start, progress, done, error, attention,
    /// heartbeat, hook, alert (repeatable or comma-separated).
    #[arg(short, long, value_delimiter = ',', value_parser = select::parse_kind)]
    kind: Vec<Kind>,
    /// Show only this Claude Code session (an id or its first characters).
    #[arg(short, long)]
    session: Option<String>,
    /// Show only events newer than an age (30s, 10m, 2h, 1d, 1h30m) or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// How many past events to show first (default 10; with --since, all of them).
    #[arg(short = 'n', long)]
    lines: Option<usize>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Human)]
    output: Output,
    /// Colour sources and levels: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Read the event files even when a collector runs.
    #[arg(long)]
    files: bool,
    /// Times in UTC instead of the local zone.
    #[arg(long)]
    utc: bool,
    /// State root to read (default: $SWARM_OBS_HOME, else the platform state dir).
    #[arg(long)]
    home: Option<PathBuf>,
}

impl Args {
    /// The selection the arguments describe; bad regexes and times are named.
    fn selection(&self) -> Result<Selection> {
        let compile = |option: &str, patterns: &[String]| -> Result<Vec<regex::Regex>> {
            patterns
                .iter()
                .map(|p| select::regex(option, p).map_err(anyhow::Error::msg))
                .collect()
        };
        Ok(Selection {
            sources: compile("SOURCE", &self.sources)?,
            exclude_sources: compile("--exclude-source", &self.exclude_sources)?,
            grep: compile("--grep", &self.grep)?,
            exclude_grep: compile("--exclude-grep", &self.exclude_grep)?,
            level: self.level,
            kinds: self.kind.clone(),
            session: self.session.clone().filter(|s| !s.is_empty()),
            since: self
                .since
                .as_deref()
                .map(|s| select::parse_since(s, Timestamp::now()))
                .transpose()
                .map_err(anyhow::Error::msg)?,
            states: false,
        })
    }
}

/// Runs `swarm-obs tail`.
pub fn run(args: Args) -> Result<ExitCode> {
    let sel = args.selection()?;
    let root = args
        .home
        .clone()
        .map_or_else(StateRoot::resolve, StateRoot::new);
    let config = Config::load(&root.config_file()).context("cannot use the configuration")?;
    let lines = match (args.lines, &sel.since) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(10),
    };
    let endpoint = (!args.files).then(|| tail::discover(&root, &config));
    let (mut feed, history, notice) = Feed::open(&root, endpoint, &sel, lines, args.follow)?;
    if let Some(n) = notice {
        eprintln!("swarm-obs tail: {n}");
    }
    // Nothing to show is said, with where it was looked for: a silent exit reads
    // as "all is well" when the state root is the wrong one.
    if history.is_empty() && lines != Some(0) {
        if !root.dir().exists() {
            eprintln!(
                "swarm-obs tail: the state root {} does not exist yet: no worker, hook or collector has used it{} (another one is chosen with SWARM_OBS_HOME or --home)",
                root.dir().display(),
                if args.follow {
                    "; waiting for its first events"
                } else {
                    ""
                }
            );
        } else if !args.follow {
            let what = if sel.is_everything() {
                "no events yet"
            } else {
                "no events match the selection"
            };
            eprintln!(
                "swarm-obs tail: {what} in {} (state root {})",
                feed_place(&feed),
                root.dir().display()
            );
        }
    }
    let offset = if args.utc {
        0
    } else {
        swarm_obs::local_offset_secs()
    };
    let stdout = std::io::stdout();
    let printer = Printer::new(
        BufWriter::new(stdout.lock()),
        args.output,
        args.color.enabled(),
        offset,
    );
    let mut tail = Tail::new(sel, printer);
    // A closed output (`| head`) ends the tail quietly, like any Unix filter.
    tail.run(
        &mut feed,
        &history,
        args.follow,
        &mut |_| Flow::Continue,
        &|| false,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Where the events shown come from, for messages.
fn feed_place(feed: &Feed) -> &'static str {
    match feed.describe() {
        "nothing" => "the collector or the event files",
        other => other,
    }
}
