//! `swarm-obs status`: the heartbeat table, with an exit code for scripts.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use swarm_obs::WorkerState;

use crate::display;
use crate::probes::{self, ProbeRow};
use crate::sessions::{self, Session};
use crate::source::{Source, SourceArgs};
use crate::tail::render::ColorChoice;
use crate::workers::WorkersView;
use swarm_obs_collector::api::AgentState;

/// Arguments of `swarm-obs status`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status: 0 when every worker is alive or stopped cleanly, 1 when any is late,
down or dead, a Claude Code session is dead or failed, or a collector's health
probe is late or down (or a heartbeat file
cannot be read, or the workers cannot be listed). Probes run in the collector, so
they are listed only when it answers.

Examples:
  swarm-obs status                    # the table, from the collector or the files
  swarm-obs status --json | jq .      # the same as JSON
  swarm-obs status --watch            # redraw every second until Ctrl-C
  swarm-obs status --collector off    # judge heartbeats/*.json directly
  swarm-obs status >/dev/null || echo 'a worker needs attention'   # in cron")]
pub struct Args {
    #[command(flatten)]
    source: SourceArgs,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Redraw every second until interrupted.
    #[arg(long)]
    watch: bool,
    /// When to colour the state column.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
}

/// Runs `status`.
pub fn run(args: Args) -> Result<ExitCode> {
    let opened = Source::open(&args.source)?;
    if let Some(note) = &opened.note {
        eprintln!("swarm-obs: {note}");
    }
    let color = !args.json && args.color.enabled();
    let mut out = std::io::stdout().lock();
    loop {
        let view = match WorkersView::load(&opened.source) {
            Ok(view) => view,
            // Watching goes on through a collector restart; a one-shot run fails.
            Err(e) if args.watch => {
                write!(
                    out,
                    "\x1b[H\x1b[2Jswarm-obs: {e:#}\n(retrying every second)\n"
                )
                .and_then(|()| out.flush())
                .context("cannot write to standard output")?;
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            Err(e) => return Err(e),
        };
        let sessions = match sessions::load(&opened.source) {
            Ok(s) => s,
            Err(e) if args.watch => {
                eprintln!("swarm-obs: {e:#}");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let probes = match probes::load(&opened.source) {
            Ok(p) => p,
            Err(e) if args.watch => {
                eprintln!("swarm-obs: {e:#}");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let text = if args.json {
            json(&view, &probes, &sessions, &opened.source)
        } else {
            let mut t = table(&view, &opened.source, color);
            t.push_str(&probe_table(&probes, color));
            t.push_str(&session_table(&sessions, color));
            t
        };
        if args.watch {
            // Home and clear, then the whole frame in one write: no flicker.
            write!(out, "\x1b[H\x1b[2J{text}")
        } else {
            write!(out, "{text}")
        }
        .and_then(|()| out.flush())
        .context("cannot write to standard output")?;
        if !args.watch {
            return Ok(if all_fine(&view, &probes, &sessions) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Whether nothing needs a person: no worker or probe in trouble, no session
/// dead or failed.
fn all_fine(view: &WorkersView, probes: &[ProbeRow], sessions: &[Session]) -> bool {
    view.all_fine() && probes::all_fine(probes) && !sessions.iter().any(|s| s.state.is_bad())
}

fn json(view: &WorkersView, probes: &[ProbeRow], sessions: &[Session], source: &Source) -> String {
    let mut v = serde_json::to_value(view).unwrap_or_default();
    v["ok"] = all_fine(view, probes, sessions).into();
    v["probes"] = serde_json::to_value(probes).unwrap_or_default();
    v["sessions"] = serde_json::to_value(sessions).unwrap_or_default();
    v["source"] = source.describe().into();
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// The table, one line per worker, then a summary line.
pub fn table(view: &WorkersView, source: &Source, color: bool) -> String {
    const HEAD: [&str; 8] = [
        "WORKER",
        "STATE",
        "TASK",
        "ACTION",
        "PROGRESS",
        "LAST BEAT",
        "PID",
        "HOST",
    ];
    let rows: Vec<Vec<String>> = view
        .workers
        .iter()
        .map(|w| {
            let hb = &w.heartbeat;
            let text = |s: &Option<String>, max| {
                s.as_deref()
                    .map(|s| display::truncate(&display::one_line(s), max))
                    .unwrap_or_else(|| "-".into())
            };
            [
                display::truncate(&display::one_line(&w.worker), 32),
                display::state_label(w.state, hb.exit_code),
                text(&hb.task, 24),
                text(&hb.action, 40),
                hb.progress
                    .map(|p| format!("{} {}", display::bar(p, 10), display::fraction(p)))
                    .unwrap_or_else(|| "-".into()),
                format!("{} ago", display::age(w.age_ms)),
                hb.pid.to_string(),
                display::truncate(&display::one_line(&w.host), 32),
            ]
            .into()
        })
        .collect();
    let mut out = String::new();
    if view.workers.is_empty() {
        let _ = writeln!(
            out,
            "No workers have written a heartbeat ({}).",
            source.describe()
        );
    } else {
        let states: Vec<_> = view.workers.iter().map(|w| Some(w.state)).collect();
        out.push_str(&grid(&HEAD, &rows, &states, color));
    }
    for u in &view.unreadable {
        let _ = writeln!(out, "unreadable: {}", display::one_line(&u.error));
    }
    use swarm_obs::WorkerState::*;
    let counts: Vec<String> = [Alive, Late, Down, Dead, Failed, Stopped]
        .into_iter()
        .filter_map(|s| {
            let n = view.count(s);
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    if !view.workers.is_empty() {
        let n = view.workers.len();
        let _ = writeln!(
            out,
            "\n{n} {}: {} (from {})",
            if n == 1 { "worker" } else { "workers" },
            counts.join(", "),
            source.describe()
        );
    }
    out
}

/// The ANSI colour of a session state: green working, yellow needs a person,
/// blue waiting, grey ended, red failed or dead, magenta stale.
fn session_ansi(state: AgentState) -> &'static str {
    match state {
        AgentState::Working => "32",
        AgentState::NeedsPermission => "1;33",
        AgentState::Waiting => "34",
        AgentState::Ended => "90",
        AgentState::Failed | AgentState::Dead => "1;31",
        AgentState::Stale => "35",
    }
}

/// Claude Code sessions below the workers: state, agents, what it does, since.
fn session_table(sessions: &[Session], color: bool) -> String {
    if sessions.is_empty() {
        return String::new();
    }
    let now = swarm_obs::Timestamp::now().unix_ms();
    let head = [
        "SESSION", "STATE", "AGENTS", "COST", "DOING", "SINCE", "SOURCE",
    ];
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            let replied = s
                .agents
                .iter()
                .find(|a| a.agent.is_none())
                .and_then(|a| a.last_message.as_ref())
                .filter(|_| s.state == AgentState::Waiting);
            let doing = match (&s.tool, &s.reason, replied, &s.prompt) {
                (Some(tool), _, _, _) => format!("tool {tool}"),
                (None, Some(reason), _, _) => reason.clone(),
                (None, None, Some(said), _) => format!("replied: {said}"),
                (None, None, None, Some(prompt)) => format!("prompt: {prompt}"),
                _ => "-".into(),
            };
            let working = s.agents.iter().filter(|a| a.state.is_live()).count();
            // Claude Code's own telemetry: cost and every token, when it sends any.
            let cost = s.telemetry.map_or_else(
                || "-".to_owned(),
                |t| {
                    format!(
                        "{} · {} tok",
                        display::cost(t.cost_usd),
                        display::count(t.tokens())
                    )
                },
            );
            vec![
                display::truncate(&display::one_line(&s.session), 13),
                s.state.to_string(),
                format!("{working}/{}", s.agents.len()),
                cost,
                display::truncate(&display::one_line(&doing), 48),
                format!("{} ago", display::age(now - s.since.unix_ms())),
                display::truncate(&display::one_line(&s.sources.join(",")), 24),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::from("\n");
    let heads: Vec<String> = head.iter().map(|h| (*h).to_owned()).collect();
    for (r, state) in std::iter::once((&heads, None))
        .chain(rows.iter().zip(sessions.iter().map(|s| Some(s.state))))
    {
        for (i, cell) in r.iter().enumerate() {
            match state {
                Some(state) if i == 1 && color => {
                    let _ = write!(out, "\x1b[{}m{cell}\x1b[0m", session_ansi(state));
                }
                _ => out.push_str(cell),
            }
            if i + 1 < r.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    }
    let bad = sessions.iter().filter(|s| s.state.is_bad()).count();
    let asking = sessions
        .iter()
        .filter(|s| s.state == AgentState::NeedsPermission)
        .count();
    let _ = writeln!(
        out,
        "\n{} {}: {bad} dead or failed, {asking} waiting on a permission prompt",
        sessions.len(),
        if sessions.len() == 1 {
            "session"
        } else {
            "sessions"
        },
    );
    out
}

/// The probes, when the collector runs any: one line per probe.
fn probe_table(probes: &[ProbeRow], color: bool) -> String {
    if probes.is_empty() {
        return String::new();
    }
    const HEAD: [&str; 5] = ["PROBE", "STATE", "TARGET", "LAST CHECK", "HEALTHY"];
    let now = swarm_obs::Timestamp::now().unix_ms();
    let rows: Vec<Vec<String>> = probes
        .iter()
        .map(|p| {
            vec![
                display::truncate(&display::one_line(&p.name), 32),
                p.state
                    .map_or_else(|| "unchecked".into(), |s| s.to_string()),
                display::truncate(&display::one_line(&p.target), 48),
                p.last_check.as_ref().map_or_else(
                    || "-".into(),
                    |c| {
                        format!(
                            "{} ({} ago)",
                            display::truncate(&display::one_line(&c.detail), 32),
                            display::age(now - c.ts.unix_ms())
                        )
                    },
                ),
                p.healthy_ratio
                    .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0)),
            ]
        })
        .collect();
    let states: Vec<_> = probes.iter().map(|p| p.state).collect();
    let mut out = format!("\n{}", grid(&HEAD, &rows, &states, color));
    // Said where it cannot be missed: such a probe's "alive" proves less.
    for p in probes.iter().filter(|p| p.insecure) {
        out.push_str(&format!(
            "INSECURE: probe {} accepts any certificate from {} (insecure = true); anyone on the path could answer for it. Give it a ca_file instead.\n",
            display::one_line(&p.name),
            display::one_line(&p.target),
        ));
    }
    out
}

/// Columns padded to their widest cell; the second column coloured by `states`.
fn grid(
    head: &[&str],
    rows: &[Vec<String>],
    states: &[Option<WorkerState>],
    color: bool,
) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String], state: Option<WorkerState>| {
        for (i, cell) in cells.iter().enumerate() {
            match state {
                Some(state) if i == 1 && color => {
                    let _ = write!(out, "\x1b[{}m{cell}\x1b[0m", display::state_ansi(state));
                }
                _ => out.push_str(cell),
            }
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(
        &head.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>(),
        None,
    );
    for (r, state) in rows.iter().zip(states) {
        line(r, *state);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_table_shows_cost_and_tokens_when_claude_code_sends_them() {
        let at = r#""first_seen":"2026-01-05T14:32:15.000Z","last_seen":"2026-01-05T14:32:15.000Z","state":"waiting","since":"2026-01-05T14:32:15.000Z""#;
        let json = format!(
            r#"{{"sessions":[
                {{"session":"with-cost",{at},"telemetry":{{"cost_usd":0.0123,"input_tokens":4000,"output_tokens":500}}}},
                {{"session":"without",{at}}}]}}"#
        );
        let answer: crate::sessions::SessionsAnswer = serde_json::from_str(&json).unwrap();
        let table = session_table(&answer.sessions, false);
        let line = |id: &str| table.lines().find(|l| l.starts_with(id)).unwrap_or("");
        assert!(table.contains("AGENTS  COST"), "{table}");
        assert!(line("with-cost").contains("$0.0123 · 4.5k tok"), "{table}");
        assert!(line("without").contains(" -  "), "{table}");
    }
}
