//! Drawing the dashboard: a header, workers beside sessions, the event pane, and
//! a footer of keys; the detail view on top when open.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row as TableRow, Table, Wrap};
use swarm_obs::{Kind, Level, Timestamp, WorkerState};

use super::app::App;
use super::session_view::{self, Focus};
use crate::display::{self, one_line, truncate};
use crate::sessions::Session;
use swarm_obs_collector::api::AgentState;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let session_lines: usize = app
        .sessions
        .iter()
        .take(8)
        .map(|s| 2 + s.agents.len().min(6) + usize::from(exchange(s).is_some()))
        .sum::<usize>()
        + if no_telemetry(app) { 6 } else { 0 };
    // Probes are rows of the same pane: it is sized for both.
    let worker_lines = app
        .workers
        .as_ref()
        .map_or(1, |w| (w.workers.len() + app.probes.len()).max(1));
    let wanted = (worker_lines + 3).max(session_lines + 2).max(5) as u16;
    let top = wanted.min(area.height.saturating_mul(45) / 100).max(5);
    let [header, panes, events, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(top),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let [workers, sessions] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(panes);
    draw_header(frame, app, header);
    draw_workers(frame, app, workers);
    draw_sessions(frame, app, sessions);
    draw_events(frame, app, events);
    draw_footer(frame, app, footer);
    if app.detail.is_some() {
        draw_detail(frame, app, events.union(panes));
    }
    session_view::draw(frame, app, events.union(panes));
}

fn state_color(state: WorkerState) -> Color {
    match state {
        WorkerState::Alive => Color::Green,
        WorkerState::Late => Color::Yellow,
        WorkerState::Down | WorkerState::Dead | WorkerState::Failed => Color::Red,
        WorkerState::Stopped => Color::DarkGray,
    }
}

fn draw_header(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![
        Span::styled(" swarm-obs top ", Style::new().bold().reversed()),
        Span::raw(format!(" {} ", one_line(&app.source))),
    ];
    const STATES: [WorkerState; 6] = [
        WorkerState::Alive,
        WorkerState::Late,
        WorkerState::Down,
        WorkerState::Dead,
        WorkerState::Failed,
        WorkerState::Stopped,
    ];
    if let Some(w) = &app.workers {
        spans.push(Span::raw("│ workers "));
        if w.workers.is_empty() {
            spans.push(Span::styled("none ", Style::new().fg(Color::DarkGray)));
        }
        for state in STATES {
            let n = w.count(state);
            if n > 0 {
                spans.push(Span::styled(
                    format!("{n} {state} "),
                    Style::new().fg(state_color(state)),
                ));
            }
        }
    }
    if !app.probes.is_empty() {
        spans.push(Span::raw("│ probes "));
        for state in STATES {
            let n = app.probes.iter().filter(|p| p.state == Some(state)).count();
            if n > 0 {
                spans.push(Span::styled(
                    format!("{n} {state} "),
                    Style::new().fg(state_color(state)),
                ));
            }
        }
        let pending = app.probes.iter().filter(|p| p.state.is_none()).count();
        if pending > 0 {
            spans.push(Span::styled(
                format!("{pending} pending "),
                Style::new().fg(Color::DarkGray),
            ));
        }
    }
    spans.push(Span::raw(format!(
        "│ sessions {} │ events {} ",
        app.sessions.len(),
        app.received
    )));
    let problem = app
        .events_error
        .as_ref()
        .or(app.workers_error.as_ref())
        .or(app.sessions_error.as_ref())
        .or(app.note.as_ref());
    if let Some(p) = problem {
        spans.push(Span::styled(
            format!("│ {}", one_line(p)),
            Style::new().fg(Color::Red),
        ));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_workers(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" Workers ");
    let Some(view) = &app.workers else {
        frame.render_widget(Paragraph::new("loading…").block(block), area);
        return;
    };
    if view.workers.is_empty() && app.probes.is_empty() {
        let text = if view.unreadable.is_empty() {
            "no heartbeats yet".to_owned()
        } else {
            format!("{} unreadable heartbeat files", view.unreadable.len())
        };
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let rows = view.workers.iter().map(|w| {
        let hb = &w.heartbeat;
        let progress = hb.progress.map_or_else(String::new, |p| {
            format!("{} {}/{}", display::bar(p, 10), p.done, p.total)
        });
        let doing = match (&hb.task, &hb.action) {
            (Some(t), Some(a)) => format!("{t} · {a}"),
            (Some(t), None) => t.clone(),
            (None, Some(a)) => a.clone(),
            (None, None) => String::new(),
        };
        TableRow::new(vec![
            Cell::from(one_line(&w.worker)),
            Cell::from(display::state_label(w.state, hb.exit_code))
                .style(Style::new().fg(state_color(w.state)).bold()),
            Cell::from(progress).style(Style::new().fg(Color::Cyan)),
            Cell::from(one_line(&doing)),
            Cell::from(display::age(w.age_ms)),
        ])
    });
    // Probes are sources with a state like a worker's: rows of the same table.
    let now = Timestamp::now().unix_ms();
    let probes = app.probes.iter().map(|p| {
        let (state, color) = p
            .state
            .map_or(("-", Color::DarkGray), |s| (s.as_str(), state_color(s)));
        let (detail, age) = p.last_check.as_ref().map_or_else(
            || (String::new(), String::new()),
            |c| (one_line(&c.detail), display::age(now - c.ts.unix_ms())),
        );
        let ratio = p
            .healthy_ratio
            .map_or_else(String::new, |r| format!("{:.0}% healthy", r * 100.0));
        TableRow::new(vec![
            Cell::from(format!("⌁ {}", one_line(&p.name))),
            Cell::from(state).style(Style::new().fg(color).bold()),
            Cell::from(ratio).style(Style::new().fg(Color::Cyan)),
            Cell::from(format!("{} · {detail}", one_line(&p.target))),
            Cell::from(age),
        ])
    });
    let table = Table::new(
        rows.chain(probes),
        [
            Constraint::Max(18),
            Constraint::Length(7),
            Constraint::Length(18),
            Constraint::Fill(1),
            Constraint::Length(6),
        ],
    )
    .header(
        TableRow::new(["WORKER", "STATE", "PROGRESS", "TASK · ACTION", "BEAT"])
            .style(Style::new().add_modifier(Modifier::DIM)),
    )
    .block(block);
    frame.render_widget(table, area);
}

/// The traffic-light colour of a session or agent state.
fn agent_color(state: AgentState) -> Color {
    match state {
        AgentState::Working => Color::Green,
        AgentState::NeedsPermission => Color::Yellow,
        AgentState::Waiting => Color::Blue,
        AgentState::Ended => Color::DarkGray,
        AgentState::Failed | AgentState::Dead => Color::Red,
        AgentState::Stale => Color::Magenta,
    }
}

/// A state as a person reads it, with how long it has lasted and the tool.
fn state_text(state: AgentState, since: Timestamp, tool: Option<&str>, now: Timestamp) -> String {
    let age = display::age(now.unix_ms() - since.unix_ms());
    let tool = tool
        .map(|t| format!(" {}", truncate(&one_line(t), 16)))
        .unwrap_or_default();
    match state {
        AgentState::NeedsPermission => format!("NEEDS PERMISSION{tool} for {age}"),
        AgentState::Working => format!("working{tool} {age}"),
        other => format!("{other} {age}"),
    }
}

fn session_lines(s: &Session, now: Timestamp, width: usize) -> Vec<Line<'static>> {
    let mut state_style = Style::new().fg(agent_color(s.state));
    if s.state == AgentState::NeedsPermission {
        state_style = state_style.bold().add_modifier(Modifier::REVERSED);
    }
    let head = vec![
        Span::styled("● ", Style::new().fg(agent_color(s.state))),
        Span::styled(truncate(&one_line(&s.session), 8), Style::new().bold()),
        Span::raw(" "),
        Span::styled(
            state_text(s.state, s.since, s.tool.as_deref(), now),
            state_style,
        ),
    ];
    let mut detail = vec![Span::raw(format!(
        "  {} · {} ev",
        truncate(&one_line(&s.sources.join(",")), 24),
        s.events
    ))];
    if s.errors > 0 {
        detail.push(Span::styled(
            format!(" · {} err", s.errors),
            Style::new().fg(Color::Red),
        ));
    }
    if let Some(t) = s.telemetry {
        detail.push(Span::styled(
            format!(" · ${:.2} · {} tok", t.cost_usd, display::count(t.tokens())),
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(u) = s.unattributed {
        detail.push(Span::styled(
            format!(
                " ({} · {} tok unattributed)",
                display::cost(u.cost_usd),
                display::count(u.tokens())
            ),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::DIM),
        ));
    }
    detail.push(Span::styled(
        format!(
            " · {} ago",
            display::age(now.unix_ms() - s.last_seen.unix_ms())
        ),
        Style::new().add_modifier(Modifier::DIM),
    ));
    let mut lines = vec![Line::from(head), Line::from(detail)];
    if let Some(text) = exchange(s) {
        lines.push(Line::styled(
            truncate(&format!("  {text}"), width),
            Style::new().add_modifier(Modifier::DIM),
        ));
    }
    let shown = s.agents.len().min(6);
    for (i, a) in s.agents.iter().take(shown).enumerate() {
        let branch = if i + 1 == shown { "  └ " } else { "  ├ " };
        let name = match (&a.agent_type, &a.agent) {
            (_, None) => "main".to_owned(),
            (Some(t), Some(id)) => format!("{t} {}", truncate(id, 8)),
            (None, Some(id)) => format!("subagent {}", truncate(id, 8)),
        };
        let mut spans = vec![
            Span::raw(branch),
            Span::styled("● ", Style::new().fg(agent_color(a.state))),
            Span::styled(
                truncate(&one_line(&name), width.saturating_sub(30).max(8)),
                Style::new().fg(if a.agent.is_some() {
                    Color::Cyan
                } else {
                    Color::Reset
                }),
            ),
            Span::styled(
                format!(" {}", state_text(a.state, a.since, a.tool.as_deref(), now)),
                Style::new().fg(agent_color(a.state)),
            ),
            Span::raw(format!(
                " · {} ev · {} tool{}",
                a.events,
                a.tool_calls,
                if a.tool_calls == 1 { "" } else { "s" }
            )),
        ];
        if a.errors > 0 {
            spans.push(Span::styled(
                format!(" · {} err", a.errors),
                Style::new().fg(Color::Red),
            ));
        }
        if let Some(t) = a.telemetry {
            spans.push(cost_span(&t));
        }
        if let (Some(said), Some(_)) = (&a.last_message, &a.agent) {
            spans.push(Span::styled(
                format!(" · “{}”", one_line(said)),
                Style::new().add_modifier(Modifier::DIM),
            ));
        }
        lines.push(Line::from(spans));
    }
    lines
}

/// An agent's cost and tokens, as its lane ends with them: ` · $0.0123 · 4.5k tok`.
pub(super) fn cost_span(t: &swarm_obs_collector::api::SessionTelemetry) -> Span<'static> {
    Span::styled(
        format!(
            " · {} · {} tok",
            display::cost(t.cost_usd),
            display::count(t.tokens())
        ),
        Style::new().fg(Color::Yellow),
    )
}

/// The session's last prompt and the main agent's last answer, on one line.
fn exchange(s: &Session) -> Option<String> {
    let said = s
        .agents
        .iter()
        .find(|a| a.agent.is_none())
        .and_then(|a| a.last_message.as_deref());
    match (s.prompt.as_deref(), said) {
        (None, None) => None,
        (Some(p), None) => Some(format!("» {}", one_line(p))),
        (None, Some(a)) => Some(format!("« {}", one_line(a))),
        (Some(p), Some(a)) => Some(format!("» {} « {}", one_line(p), one_line(a))),
    }
}

/// Whether there are sessions and none has Claude Code's telemetry: then the
/// sessions pane says, once, how to turn it on.
fn no_telemetry(app: &App) -> bool {
    !app.sessions.is_empty() && app.sessions.iter().all(|s| s.telemetry.is_none())
}

fn draw_sessions(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered()
        .title(" Claude sessions ")
        .border_style(session_view::pane_border(app));
    if app.sessions.is_empty() {
        frame.render_widget(Paragraph::new("no sessions yet").block(block), area);
        return;
    }
    let now = Timestamp::now();
    let width = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = app
        .sessions
        .iter()
        .flat_map(|s| session_view::mark(app, s, session_lines(s, now, width)))
        .collect();
    // Said once, under the sessions: how to get cost and tokens when none has them.
    if no_telemetry(app) {
        let addr = app
            .source
            .strip_prefix("collector ")
            .unwrap_or("127.0.0.1:4780");
        let dim = Style::new().add_modifier(Modifier::DIM);
        lines.push(Line::styled(
            "no cost yet: for cost & tokens per agent run claude with",
            dim,
        ));
        for var in display::telemetry_env(addr) {
            lines.push(Line::styled(truncate(&format!("  {var}"), width), dim));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn level_style(kind: Kind, level: Level) -> Style {
    match (kind, level) {
        (Kind::Error, _) | (_, Level::Error) => Style::new().fg(Color::Red),
        (Kind::Attention | Kind::Alert, _) | (_, Level::Warn) => Style::new().fg(Color::Yellow),
        (Kind::Done, _) => Style::new().fg(Color::Green),
        (Kind::Start, _) => Style::new().fg(Color::Blue),
        (Kind::Progress, _) => Style::new().fg(Color::Cyan),
        (_, Level::Debug | Level::Trace) => Style::new().add_modifier(Modifier::DIM),
        _ => Style::new(),
    }
}

fn draw_events(frame: &mut Frame, app: &App, area: Rect) {
    let mut title = format!(" Events {}/{} ", app.visible_len(), app.kept());
    if !app.filter.is_empty() || app.editing {
        title.push_str(&format!("│ filter: {} ", one_line(&app.filter)));
    }
    if !app.following() {
        title.push_str("│ paused (End follows) ");
    }
    let block = Block::bordered().title(title);
    let height = area.height.saturating_sub(2) as usize;
    let total = app.visible_len();
    let cursor = app.cursor();
    // Show only the rows that fit: the newest when following, else around the cursor.
    let start = match (app.following(), cursor) {
        (false, Some(c)) => c
            .saturating_sub(height / 2)
            .min(total.saturating_sub(height)),
        _ => total.saturating_sub(height),
    };
    let lines: Vec<Line> = app
        .visible()
        .enumerate()
        .skip(start)
        .take(height)
        .map(|(i, row)| {
            let style = level_style(row.event.kind, row.event.level);
            let line = Line::styled(row.line.clone(), style);
            if Some(i) == cursor && !app.following() {
                line.patch_style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let keys: &[(&str, &str)] = if app.session_view.is_some() {
        session_view::VIEW_KEYS
    } else if app.detail.is_some() {
        &[
            ("↑↓ PgUp PgDn", "scroll"),
            ("Esc/Enter", "close"),
            ("q", "quit"),
        ]
    } else if app.editing {
        &[
            ("type", "filter events"),
            ("Enter", "keep filter"),
            ("Esc", "clear filter"),
            ("Ctrl-U", "erase"),
            ("Ctrl-C", "quit"),
        ]
    } else if app.focus == Focus::Sessions {
        session_view::PANE_KEYS
    } else {
        &[
            ("q", "quit"),
            ("/", "filter"),
            ("↑↓ PgUp PgDn", "select"),
            ("Enter", "detail"),
            ("Tab", "sessions"),
            ("End", "follow"),
            ("Esc", "clear filter/quit"),
        ]
    };
    let mut spans = Vec::new();
    for (k, what) in keys {
        spans.push(Span::styled(format!(" {k} "), Style::new().reversed()));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_detail(frame: &mut Frame, app: &App, area: Rect) {
    let Some(d) = &app.detail else { return };
    let popup = area.inner(ratatui::layout::Margin {
        horizontal: 2,
        vertical: 1,
    });
    frame.render_widget(Clear, popup);
    let title = format!(
        " Event detail: {} ",
        truncate(&d.title, popup.width.saturating_sub(20) as usize)
    );
    let para = Paragraph::new(d.text.as_str())
        .block(
            Block::bordered()
                .title(title)
                .border_style(Style::new().fg(Color::Cyan)),
        )
        .wrap(Wrap { trim: false })
        .scroll((d.scroll, 0));
    frame.render_widget(para, popup);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::top::feed::Update;
    use crate::sessions::{Agent, Telemetry};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn session(telemetry: Option<Telemetry>) -> Session {
        let now = Timestamp::now();
        let agent = |agent: Option<&str>| Agent {
            agent: agent.map(str::to_owned),
            agent_type: agent.map(|_| "Explore".to_owned()),
            events: 2,
            tool_calls: 1,
            errors: 0,
            first_seen: now,
            last_seen: now,
            state: AgentState::Working,
            since: now,
            tool: agent.map(|_| "Grep".to_owned()),
            tool_since: None,
            reason: None,
            last_message: agent.map(|_| "found 3 call sites".to_owned()),
            telemetry: None,
        };
        Session {
            session: "5e55i0n-0000".into(),
            sources: vec!["proj".into()],
            events: 4,
            errors: 1,
            agents: vec![agent(None), agent(Some("a1b2c3d4e5"))],
            first_seen: now,
            last_seen: now,
            telemetry,
            tools: Default::default(),
            duration_ms: 0,
            state: AgentState::NeedsPermission,
            since: now,
            reason: None,
            tool: Some("Bash".into()),
            prompt: Some("fix the build".into()),
            host: None,
            claude_pid: None,
            unattributed: None,
        }
    }

    fn render(app: &App) -> String {
        render_sized(app, 120, 40)
    }

    fn render_sized(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, app)).unwrap();
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn sessions_show_agents_and_cost_only_when_known() {
        let mut app = App::new("files in /x".into(), None, 100, String::new());
        app.apply(Update::Sessions(Ok(vec![session(None)])));
        let screen = render(&app);
        assert!(screen.contains("● 5e55i0n…"), "{screen}");
        assert!(
            screen.contains("├ ● main working 0.0s · 2 ev · 1 tool") && !screen.contains("1 tools"),
            "{screen}"
        );
        assert!(
            screen.contains("└ ● Explore a1b2c3d… working Grep 0.0s"),
            "{screen}"
        );
        assert!(
            screen.contains("NEEDS PERMISSION Bash for 0.0s"),
            "{screen}"
        );
        assert!(screen.contains("1 err"), "{screen}");
        assert!(screen.contains("» fix the build"), "{screen}");
        let wide = render_sized(&app, 240, 40);
        assert!(wide.contains("1 tool · “found 3 call sites”"), "{wide}");
        assert!(
            !screen.contains('$') && !screen.contains(" tok "),
            "{screen}"
        );
        // No session has telemetry: how to turn it on, once.
        let two = vec![session(None), session(None)];
        app.apply(Update::Sessions(Ok(two)));
        let screen = render_sized(&app, 240, 80);
        assert_eq!(
            screen.matches("CLAUDE_CODE_ENABLE_TELEMETRY=1").count(),
            1,
            "{screen}"
        );
        assert!(
            screen.contains("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4780"),
            "{screen}"
        );

        let t = Telemetry {
            cost_usd: 1.234,
            input_tokens: 10_000,
            output_tokens: 2_000,
            cache_read_tokens: 300,
            ..Telemetry::default()
        };
        let mut s = session(Some(t));
        s.agents[0].telemetry = Some(Telemetry {
            cost_usd: 0.0123,
            input_tokens: 4_500,
            ..Telemetry::default()
        });
        s.unattributed = Some(Telemetry {
            cost_usd: 0.5,
            input_tokens: 20,
            ..Telemetry::default()
        });
        app.apply(Update::Sessions(Ok(vec![s])));
        let screen = render_sized(&app, 240, 40);
        assert!(screen.contains("$1.23 · 12.3k tok"), "{screen}");
        assert!(
            screen.contains("($0.5000 · 20 tok unattributed)"),
            "{screen}"
        );
        assert!(
            screen.contains("main working 0.0s · 2 ev · 1 tool · $0.0123 · 4.5k tok"),
            "{screen}"
        );
        assert!(!screen.contains("CLAUDE_CODE_ENABLE_TELEMETRY"), "{screen}");
    }

    #[test]
    fn probes_share_the_pane_with_workers_and_the_header_counts_them() {
        let mut app = App::new("collector".into(), None, 100, String::new());
        let workers = (0..6)
            .map(|i| crate::workers::WorkerRow {
                worker: format!("worker-{i}"),
                host: "h".into(),
                state: WorkerState::Alive,
                age_ms: 100,
                via: "file".into(),
                heartbeat: swarm_obs::Heartbeat::new(
                    format!("worker-{i}"),
                    std::time::Duration::from_secs(5),
                ),
            })
            .collect();
        app.apply(Update::Workers(Ok(crate::workers::WorkersView {
            from: "collector",
            workers,
            unreadable: Vec::new(),
        })));
        let probe = |name: &str, state| crate::probes::ProbeRow {
            name: name.into(),
            target: "http://127.0.0.1:1/health".into(),
            state,
            ..Default::default()
        };
        app.apply(Update::Probes(Ok(vec![
            probe("api", Some(WorkerState::Down)),
            probe("db", Some(WorkerState::Alive)),
        ])));
        let screen = render(&app);
        assert!(screen.contains("worker-5"), "{screen}");
        assert!(
            screen.contains("⌁ api") && screen.contains("⌁ db"),
            "{screen}"
        );
        let header = screen.lines().next().unwrap();
        assert!(header.contains("probes 1 alive 1 down"), "{header}");

        // No workers yet: the header says so instead of an empty count.
        let mut empty = App::new("collector".into(), None, 100, String::new());
        empty.apply(Update::Workers(Ok(crate::workers::WorkersView {
            from: "collector",
            workers: Vec::new(),
            unreadable: Vec::new(),
        })));
        let header = render(&empty).lines().next().unwrap().to_owned();
        assert!(header.contains("workers none"), "{header}");
    }

    #[test]
    fn a_tiny_terminal_does_not_panic() {
        let mut app = App::new("x".into(), None, 100, String::new());
        app.apply(Update::Sessions(Ok(vec![session(None)])));
        app.apply(Update::Events(vec![swarm_obs::Event::new(
            "w",
            Kind::Log,
            "hello",
        )]));
        for detail in [false, true] {
            if detail {
                app.on_key(ratatui::crossterm::event::KeyEvent::from(
                    ratatui::crossterm::event::KeyCode::Enter,
                ));
                assert!(app.detail.is_some());
            }
            for (w, h) in [(1, 1), (10, 3), (40, 8), (0, 0)] {
                let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
                terminal.draw(|f| draw(f, &app)).unwrap();
            }
        }
    }
}
