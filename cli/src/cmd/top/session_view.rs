//! A session's story in `top`: Tab moves the focus to the sessions pane, ↑/↓ pick
//! a session, Enter opens it: its agents' lanes (state, tool calls, errors, last
//! message, cost when known) and one page of an agent's conversation, read by the
//! collector from Claude Code's transcript (`GET /v1/sessions/{id}/conversation`).
//! Reading the files, `top` has no collector to read transcripts: the view says so.
//!
//! The keys and the state are here (an `impl App` of their own), the request is
//! made on a thread of its own ([`Fetcher`]), and drawing is [`draw`].

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use ratatui::Frame;
use ratatui::crossterm::event::KeyCode;
use ratatui::layout::{Margin, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use swarm_obs::Timestamp;

use super::ui::cost_span;
use swarm_obs_collector::api::{AgentState, ConversationAnswer, Turn, TurnKind, TurnRole};

use super::app::App;
use crate::display::{self, one_line, truncate};
use crate::sessions::Session;
use crate::source::{CollectorHttp, Source};

/// Turns in a page: one page is fetched at a time.
pub const PAGE_TURNS: usize = 50;
/// Lines of one turn's text shown at most.
const TURN_LINES: usize = 12;
/// Lines a page key scrolls.
const PAGE: u16 = 10;
/// How long reading one page may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// Which pane ↑/↓ and Enter act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Focus {
    /// The event list (the default).
    #[default]
    Events,
    /// The Claude sessions pane.
    Sessions,
}

/// The conversation part of the view.
#[derive(Debug)]
pub enum Conversation {
    /// `top` reads the files: transcripts are read by a running collector only.
    NeedsCollector,
    /// Asked; no answer yet.
    Loading,
    /// The turns held (oldest first), from one or more pages.
    Loaded(Page),
    /// The collector refused or could not be asked: its message.
    Failed(String),
}

/// The turns read so far and what the collector said about them.
#[derive(Debug, Default)]
pub struct Page {
    /// Oldest first.
    pub turns: Vec<Turn>,
    /// Turns in the transcript.
    pub total: u64,
    /// Pass as `before` for older turns.
    pub next_before: Option<u64>,
    /// The transcript read.
    pub path: String,
    /// Lags, a torn last line, skipped lines, said plainly.
    pub notes: Vec<String>,
    /// An `older` page is being read.
    pub loading_older: bool,
}

/// The open session view.
#[derive(Debug)]
pub struct SessionView {
    /// The session.
    pub session: String,
    /// Whose conversation: `None` is the main agent.
    pub agent: Option<String>,
    /// The conversation.
    pub conversation: Conversation,
    /// Lines scrolled down.
    pub scroll: u16,
    /// The newest request made; replies to others are dropped.
    asked: u64,
}

/// A page of a conversation to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Matches the reply to the view.
    pub asked: u64,
    /// The session.
    pub session: String,
    /// `None`: the main agent.
    pub agent: Option<String>,
    /// Turns older than this seq (an `older` page).
    pub before: Option<u64>,
}

impl Request {
    /// The endpoint's path and query.
    pub fn path(&self) -> String {
        let mut p = format!(
            "/v1/sessions/{}/conversation?limit={PAGE_TURNS}",
            encode(&self.session)
        );
        if let Some(a) = &self.agent {
            p.push_str(&format!("&agent={}", encode(a)));
        }
        if let Some(b) = self.before {
            p.push_str(&format!("&before={b}"));
        }
        p
    }
}

/// The answer to a [`Request`].
#[derive(Debug)]
pub struct Reply {
    /// The request's `asked`.
    pub asked: u64,
    /// Whether it was an `older` page.
    pub older: bool,
    /// The page, or the collector's message.
    pub result: Result<ConversationAnswer, String>,
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads conversation pages from the collector, each on a thread of its own so a
/// large transcript never stalls the screen.
pub struct Fetcher {
    http: Option<CollectorHttp>,
    tx: Sender<Reply>,
    rx: Receiver<Reply>,
}

impl Fetcher {
    /// A fetcher for `source` (none is made for the files).
    pub fn new(source: &Source) -> Self {
        let (tx, rx) = channel();
        let http = match source {
            Source::Collector(http) => {
                Some(CollectorHttp::new(http.address().clone(), FETCH_TIMEOUT))
            }
            Source::Files(_) => None,
        };
        Self { http, tx, rx }
    }

    /// Starts reading `req`.
    pub fn ask(&self, req: Request) {
        let Some(http) = self.http.clone() else {
            return;
        };
        let tx = self.tx.clone();
        let _ = std::thread::Builder::new()
            .name("swarm-obs-top-conversation".into())
            .spawn(move || {
                let result = http
                    .get_json::<ConversationAnswer>(&req.path())
                    .map_err(|e| format!("{e:#}"));
                let _ = tx.send(Reply {
                    asked: req.asked,
                    older: req.before.is_some(),
                    result,
                });
            });
    }

    /// A reply that arrived, if any.
    pub fn try_next(&self) -> Option<Reply> {
        self.rx.try_recv().ok()
    }
}

/// What the collector said about a page, plainly.
fn notes(a: &ConversationAnswer) -> Vec<String> {
    let mut out = Vec::new();
    if a.lags {
        out.push(format!(
            "the transcript is behind the events: {}",
            a.lag
                .as_deref()
                .unwrap_or("a turn they report is not written yet")
        ));
    }
    if a.truncated {
        out.push("its last line is not complete yet (being written); skipped".into());
    }
    if a.skipped_lines > 0 {
        out.push(format!("{} unreadable lines skipped", a.skipped_lines));
    }
    if a.oversized_lines > 0 {
        out.push(format!(
            "{} lines over the size cap skipped unread",
            a.oversized_lines
        ));
    }
    out
}

impl App {
    /// Tab: the focus moves between the event list and the sessions pane.
    pub(super) fn toggle_focus(&mut self) {
        self.focus = match self.focus {
            Focus::Events if !self.sessions.is_empty() => {
                if self.selected_session().is_none() {
                    self.session_cursor = self.sessions.first().map(|s| s.session.clone());
                }
                Focus::Sessions
            }
            _ => Focus::Events,
        };
    }

    /// The session the cursor of the sessions pane is on.
    pub fn selected_session(&self) -> Option<&Session> {
        let id = self.session_cursor.as_deref()?;
        self.sessions.iter().find(|s| s.session == id)
    }

    /// Whether `s` is the session picked in a focused sessions pane.
    pub fn is_picked(&self, s: &Session) -> bool {
        self.focus == Focus::Sessions && self.session_cursor.as_deref() == Some(&s.session)
    }

    fn move_session(&mut self, delta: isize) {
        if self.sessions.is_empty() {
            return;
        }
        let at = self
            .session_cursor
            .as_deref()
            .and_then(|id| self.sessions.iter().position(|s| s.session == id));
        let next = match at {
            Some(i) => i.saturating_add_signed(delta).min(self.sessions.len() - 1),
            None => 0,
        };
        self.session_cursor = Some(self.sessions[next].session.clone());
    }

    /// A key while the sessions pane has the focus; false when it is not one of
    /// the pane's (the usual keys then apply).
    pub(super) fn on_sessions_key(&mut self, code: KeyCode) -> bool {
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.move_session(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_session(1),
            KeyCode::Home | KeyCode::Char('g') => self.move_session(isize::MIN),
            KeyCode::End | KeyCode::Char('G') => self.move_session(isize::MAX),
            KeyCode::Enter => self.open_session(),
            KeyCode::Esc => self.focus = Focus::Events,
            _ => return false,
        }
        true
    }

    fn open_session(&mut self) {
        let Some(id) = self.selected_session().map(|s| s.session.clone()) else {
            return;
        };
        let mut view = SessionView {
            session: id,
            agent: None,
            conversation: Conversation::NeedsCollector,
            scroll: 0,
            asked: 0,
        };
        self.ask_conversation(&mut view, None);
        self.session_view = Some(view);
    }

    /// Asks for the newest page (or the one before `before`) of the view's agent.
    fn ask_conversation(&mut self, view: &mut SessionView, before: Option<u64>) {
        if !self.reads_collector {
            view.conversation = Conversation::NeedsCollector;
            return;
        }
        self.asked += 1;
        view.asked = self.asked;
        match (&mut view.conversation, before) {
            (Conversation::Loaded(page), Some(_)) => page.loading_older = true,
            _ => view.conversation = Conversation::Loading,
        }
        self.conversation_request = Some(Request {
            asked: view.asked,
            session: view.session.clone(),
            agent: view.agent.clone(),
            before,
        });
    }

    /// Takes in a conversation page (or the collector's refusal).
    pub fn apply_conversation(&mut self, reply: Reply) {
        let Some(view) = &mut self.session_view else {
            return;
        };
        if reply.asked != view.asked {
            return;
        }
        self.dirty = true;
        let answer = match reply.result {
            Ok(a) => a,
            Err(e) => {
                if reply.older
                    && let Conversation::Loaded(page) = &mut view.conversation
                {
                    page.loading_older = false;
                    page.notes.push(format!("older turns: {e}"));
                } else {
                    view.conversation = Conversation::Failed(e);
                }
                return;
            }
        };
        let fresh = Page {
            total: answer.total,
            next_before: answer.next_before,
            path: answer.path.clone(),
            notes: notes(&answer),
            loading_older: false,
            turns: answer.turns,
        };
        match &mut view.conversation {
            Conversation::Loaded(page) if reply.older => {
                let mut turns = fresh.turns;
                turns.retain(|t| page.turns.iter().all(|h| h.seq != t.seq));
                turns.append(&mut page.turns);
                page.turns = turns;
                page.next_before = fresh.next_before;
                page.total = fresh.total;
                page.notes = fresh.notes;
                page.loading_older = false;
                // What was on screen stays there, under the older turns.
                view.scroll = 0;
            }
            _ => view.conversation = Conversation::Loaded(fresh),
        }
    }

    /// A key while the session view is open.
    pub(super) fn on_session_view_key(&mut self, code: KeyCode) {
        let Some(mut view) = self.session_view.take() else {
            return;
        };
        match code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Esc | KeyCode::Backspace => return,
            KeyCode::Down | KeyCode::Char('j') => view.scroll = view.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => view.scroll = view.scroll.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => {
                view.scroll = view.scroll.saturating_add(PAGE)
            }
            KeyCode::PageUp => view.scroll = view.scroll.saturating_sub(PAGE),
            KeyCode::Home => view.scroll = 0,
            KeyCode::Char('o') => {
                if let Conversation::Loaded(page) = &view.conversation
                    && let Some(before) = page.next_before
                    && !page.loading_older
                {
                    self.ask_conversation(&mut view, Some(before));
                }
            }
            KeyCode::Char('a') | KeyCode::Tab => {
                // The next agent of the session: main, then each subagent.
                let agents: Vec<Option<String>> = self
                    .sessions
                    .iter()
                    .find(|s| s.session == view.session)
                    .map(|s| s.agents.iter().map(|a| a.agent.clone()).collect())
                    .unwrap_or_default();
                if agents.len() > 1 {
                    let at = agents.iter().position(|a| *a == view.agent).unwrap_or(0);
                    view.agent = agents[(at + 1) % agents.len()].clone();
                    view.scroll = 0;
                    self.ask_conversation(&mut view, None);
                }
            }
            KeyCode::Char('r') => {
                view.scroll = 0;
                self.ask_conversation(&mut view, None);
            }
            _ => {}
        }
        self.session_view = Some(view);
    }
}

/// The keys the footer lists while the view is open.
pub const VIEW_KEYS: &[(&str, &str)] = &[
    ("↑↓ PgUp PgDn", "scroll"),
    ("a", "next agent"),
    ("o", "older turns"),
    ("r", "reload"),
    ("Esc", "back"),
    ("q", "quit"),
];

/// The keys the footer lists while the sessions pane has the focus.
pub const PANE_KEYS: &[(&str, &str)] = &[
    ("q", "quit"),
    ("↑↓", "pick a session"),
    ("Enter", "open it"),
    ("Tab/Esc", "back to events"),
];

fn state_color(state: AgentState) -> Color {
    match state {
        AgentState::Working => Color::Green,
        AgentState::NeedsPermission => Color::Yellow,
        AgentState::Waiting => Color::Blue,
        AgentState::Ended => Color::DarkGray,
        AgentState::Failed | AgentState::Dead => Color::Red,
        AgentState::Stale => Color::Magenta,
    }
}

fn plural(n: i64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The view's lines: the session, its lanes, then the conversation.
pub fn lines(app: &App, view: &SessionView, now: Timestamp) -> Vec<Line<'static>> {
    let dim = Style::new().add_modifier(Modifier::DIM);
    let mut out = Vec::new();
    let session = app.sessions.iter().find(|s| s.session == view.session);
    match session {
        Some(s) => {
            let mut head = vec![
                Span::styled(one_line(&s.session), Style::new().bold()),
                Span::styled(
                    format!("  {}", s.state),
                    Style::new().fg(state_color(s.state)).bold(),
                ),
                Span::raw(format!(
                    " · {} · {} · {}",
                    one_line(&s.sources.join(",")),
                    plural(s.events, "event"),
                    plural(s.errors, "error")
                )),
            ];
            if let Some(t) = s.telemetry {
                head.push(cost_span(&t));
            }
            out.push(Line::from(head));
            if let Some(p) = &s.prompt {
                out.push(Line::styled(format!("» {}", one_line(p)), dim));
            }
            out.push(Line::styled("Agents", Style::new().bold().underlined()));
            for a in &s.agents {
                let name = match (&a.agent_type, &a.agent) {
                    (_, None) => "main".to_owned(),
                    (Some(t), Some(id)) => format!("{t} {id}"),
                    (None, Some(id)) => format!("subagent {id}"),
                };
                let current = a.agent == view.agent;
                let mut spans = vec![
                    Span::raw(if current { "▶ " } else { "  " }),
                    Span::styled("● ", Style::new().fg(state_color(a.state))),
                    Span::styled(one_line(&name), Style::new().bold()),
                    Span::styled(
                        format!(
                            " {}{} {}",
                            a.state,
                            a.tool
                                .as_deref()
                                .map(|t| format!(" {}", one_line(t)))
                                .unwrap_or_default(),
                            display::age(now.unix_ms() - a.since.unix_ms())
                        ),
                        Style::new().fg(state_color(a.state)),
                    ),
                    Span::raw(format!(" · {}", plural(a.tool_calls, "tool call"))),
                    Span::styled(
                        format!(" · {}", plural(a.errors, "error")),
                        if a.errors > 0 {
                            Style::new().fg(Color::Red)
                        } else {
                            Style::new()
                        },
                    ),
                ];
                if let Some(t) = a.telemetry {
                    spans.push(cost_span(&t));
                }
                if let Some(r) = &a.reason {
                    spans.push(Span::raw(format!(" · {}", one_line(r))));
                }
                out.push(Line::from(spans));
                if let Some(said) = &a.last_message {
                    out.push(Line::styled(format!("      « {}", one_line(said)), dim));
                }
            }
        }
        None => out.push(Line::styled(
            format!(
                "{} (no longer in the sessions list)",
                one_line(&view.session)
            ),
            Style::new().bold(),
        )),
    }
    out.push(Line::raw(""));
    let whose = view.agent.as_deref().map_or("main".to_owned(), one_line);
    out.push(Line::styled(
        format!("Conversation of {whose}"),
        Style::new().bold().underlined(),
    ));
    match &view.conversation {
        Conversation::NeedsCollector => out.push(Line::styled(
            "The conversation is read from Claude Code's transcript by a running collector; this top reads the files. Start `swarm-obs serve` and run top against it.",
            Style::new().fg(Color::Yellow),
        )),
        Conversation::Loading => out.push(Line::styled("reading the transcript…", dim)),
        Conversation::Failed(e) => out.push(Line::styled(
            format!("No conversation: {}", one_line(e)),
            Style::new().fg(Color::Red),
        )),
        Conversation::Loaded(page) => {
            let first = page.turns.first().map_or(0, |t| t.seq);
            out.push(Line::styled(
                format!(
                    "{} of {} turns · {}",
                    page.turns.len(),
                    page.total,
                    one_line(&page.path)
                ),
                dim,
            ));
            for n in &page.notes {
                out.push(Line::styled(
                    format!("note: {}", one_line(n)),
                    Style::new().fg(Color::Yellow),
                ));
            }
            if page.loading_older {
                out.push(Line::styled("reading older turns…", dim));
            } else if page.next_before.is_some() {
                out.push(Line::styled(
                    format!("… {first} older turns: press o"),
                    Style::new().fg(Color::Cyan),
                ));
            }
            if page.turns.is_empty() {
                out.push(Line::styled("no turns in the transcript yet", dim));
            }
            for t in &page.turns {
                turn_lines(t, now, &mut out);
            }
        }
    }
    out
}

fn turn_lines(t: &Turn, now: Timestamp, out: &mut Vec<Line<'static>>) {
    let (label, color) = match (t.role, t.kind) {
        (_, TurnKind::Prompt) => ("user prompt", Color::Cyan),
        (TurnRole::Assistant, TurnKind::Text) => ("assistant", Color::Green),
        (TurnRole::User, TurnKind::Text) => ("user", Color::Cyan),
        (_, TurnKind::ToolUse) => ("tool call", Color::Magenta),
        (_, TurnKind::ToolResult) => ("tool result", Color::Blue),
    };
    let mut head = vec![
        Span::styled(
            format!("#{} ", t.seq),
            Style::new().add_modifier(Modifier::DIM),
        ),
        Span::styled(label, Style::new().fg(color).bold()),
    ];
    if let Some(tool) = &t.tool {
        head.push(Span::raw(format!(" {}", one_line(tool))));
    }
    if t.is_error {
        head.push(Span::styled(" ERROR", Style::new().fg(Color::Red).bold()));
    }
    if let Some(ts) = t.ts {
        head.push(Span::styled(
            format!(" · {} ago", display::age(now.unix_ms() - ts.unix_ms())),
            Style::new().add_modifier(Modifier::DIM),
        ));
    }
    out.push(Line::from(head));
    let style = if t.is_error {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    let text: Vec<&str> = t.text.lines().collect();
    for l in text.iter().take(TURN_LINES) {
        out.push(Line::styled(format!("    {}", one_line(l)), style));
    }
    if text.len() > TURN_LINES {
        out.push(Line::styled(
            format!("    … {} more lines", text.len() - TURN_LINES),
            Style::new().add_modifier(Modifier::DIM),
        ));
    }
}

/// Draws the open view over `area`.
pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let Some(view) = &app.session_view else {
        return;
    };
    let popup = area.inner(Margin {
        horizontal: 1,
        vertical: 0,
    });
    frame.render_widget(Clear, popup);
    let title = format!(
        " Session {} ",
        truncate(
            &one_line(&view.session),
            popup.width.saturating_sub(12) as usize
        )
    );
    let para = Paragraph::new(lines(app, view, Timestamp::now()))
        .block(
            Block::bordered()
                .title(title)
                .border_style(Style::new().fg(Color::Cyan)),
        )
        .wrap(Wrap { trim: false })
        .scroll((view.scroll, 0));
    frame.render_widget(para, popup);
}

/// The sessions pane's border: highlighted while it has the focus.
pub fn pane_border(app: &App) -> Style {
    if app.focus == Focus::Sessions {
        Style::new().fg(Color::Cyan).bold()
    } else {
        Style::new()
    }
}

/// A session's lines in the pane, its first reversed when it is the one picked.
pub fn mark(app: &App, s: &Session, mut lines: Vec<Line<'static>>) -> Vec<Line<'static>> {
    if app.is_picked(s)
        && let Some(first) = lines.first_mut()
    {
        *first = std::mem::take(first).patch_style(Style::new().add_modifier(Modifier::REVERSED));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::top::feed::Update;
    use ratatui::crossterm::event::{KeyEvent, KeyModifiers};
    use swarm_obs_collector::api::SessionsAnswer;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn sessions() -> Vec<Session> {
        let now = Timestamp::now().to_string();
        let json = serde_json::json!({"sessions": [
            {"session": "s-one", "first_seen": now, "last_seen": now, "state": "working", "since": now,
             "agents": [{"first_seen": now, "last_seen": now, "state": "working", "since": now, "tool_calls": 2}]},
            {"session": "s-two", "first_seen": now, "last_seen": now, "state": "ended", "since": now,
             "agents": [
                {"first_seen": now, "last_seen": now, "state": "ended", "since": now, "tool_calls": 3, "errors": 1,
                 "last_message": "All steps done."},
                {"agent": "sub1", "agent_type": "Explore", "first_seen": now, "last_seen": now, "state": "ended", "since": now}
             ]}
        ]});
        serde_json::from_value::<SessionsAnswer>(json)
            .unwrap()
            .sessions
    }

    fn answer(seqs: std::ops::Range<u64>, total: u64) -> ConversationAnswer {
        let turns = seqs
            .clone()
            .map(|seq| Turn {
                seq,
                ts: None,
                role: TurnRole::Assistant,
                kind: TurnKind::ToolUse,
                text: format!("{{\"command\":\"echo {seq}\"}}"),
                full_bytes: None,
                tool: Some("Bash".into()),
                tool_use_id: Some(format!("t{seq}")),
                is_error: seq == 3,
            })
            .collect();
        ConversationAnswer {
            session: "s-two".into(),
            path: "/p.jsonl".into(),
            turns,
            total,
            next_before: Some(seqs.start).filter(|&s| s > 0),
            skipped_lines: 2,
            ..ConversationAnswer::default()
        }
    }

    fn text(app: &App) -> String {
        let view = app.session_view.as_ref().unwrap();
        lines(app, view, Timestamp::now())
            .iter()
            .map(|l| {
                l.spans
                    .iter()
                    .map(|s| s.content.as_ref())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    #[test]
    fn tab_picks_a_session_enter_opens_it_and_pages_back_on_o() {
        let mut app = App::new("collector x".into(), None, 100, String::new());
        app.reads_collector = true;
        app.apply(Update::Sessions(Ok(sessions())));
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Sessions);
        assert_eq!(app.selected_session().unwrap().session, "s-one");
        app.on_key(key(KeyCode::Down));
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.selected_session().unwrap().session, "s-two");
        app.on_key(key(KeyCode::Enter));
        assert!(
            app.detail.is_none(),
            "Enter on a session is not an event's detail"
        );
        let req = app.conversation_request.take().expect("a page asked for");
        assert_eq!(req.path(), "/v1/sessions/s-two/conversation?limit=50");
        assert!(text(&app).contains("reading the transcript"));
        app.apply_conversation(Reply {
            asked: req.asked,
            older: false,
            result: Ok(answer(50..100, 100)),
        });
        let shown = text(&app);
        assert!(shown.contains("main ended"), "{shown}");
        assert!(shown.contains("3 tool calls · 1 error"), "{shown}");
        assert!(shown.contains("« All steps done."), "{shown}");
        assert!(shown.contains("Explore sub1 ended"), "{shown}");
        assert!(shown.contains("50 of 100 turns"), "{shown}");
        assert!(shown.contains("50 older turns: press o"), "{shown}");
        assert!(
            shown.contains("note: 2 unreadable lines skipped"),
            "{shown}"
        );
        assert!(shown.contains("#50 tool call Bash"), "{shown}");
        assert!(shown.contains("    {\"command\":\"echo 50\"}"), "{shown}");

        app.on_key(key(KeyCode::Char('o')));
        let older = app.conversation_request.take().expect("older asked for");
        assert_eq!(older.before, Some(50));
        assert!(older.path().ends_with("&before=50"));
        assert!(text(&app).contains("reading older turns"));
        app.apply_conversation(Reply {
            asked: older.asked,
            older: true,
            result: Ok(answer(0..50, 100)),
        });
        let shown = text(&app);
        assert!(shown.contains("100 of 100 turns"), "{shown}");
        assert!(!shown.contains("press o"), "{shown}");
        assert!(shown.contains("#3 tool call Bash ERROR"), "{shown}");
        let first = shown.find("#0 tool call").unwrap();
        assert!(first < shown.find("#99 tool call").unwrap());

        // The next agent: the subagent's conversation; a refusal says why.
        app.on_key(key(KeyCode::Char('a')));
        let sub = app.conversation_request.take().unwrap();
        assert_eq!(sub.agent.as_deref(), Some("sub1"));
        assert!(sub.path().contains("&agent=sub1"));
        // A late reply to an older request changes nothing.
        app.apply_conversation(Reply {
            asked: older.asked,
            older: false,
            result: Ok(answer(0..1, 1)),
        });
        assert!(text(&app).contains("reading the transcript"));
        app.apply_conversation(Reply {
            asked: sub.asked,
            older: false,
            result: Err("… answered HTTP 404: no transcript".into()),
        });
        assert!(text(&app).contains("No conversation: … answered HTTP 404: no transcript"));

        // Esc goes back to the sessions pane, Esc again to the events.
        app.on_key(key(KeyCode::Esc));
        assert!(app.session_view.is_none());
        assert!(!app.quit);
        assert_eq!(app.focus, Focus::Sessions);
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.focus, Focus::Events);
        assert!(!app.quit);
    }

    #[test]
    fn reading_files_the_view_says_a_collector_is_needed() {
        let mut app = App::new("files in /x".into(), None, 100, String::new());
        app.apply(Update::Sessions(Ok(sessions())));
        app.on_key(key(KeyCode::Tab));
        app.on_key(key(KeyCode::Enter));
        assert!(app.conversation_request.is_none());
        let shown = text(&app);
        assert!(
            shown.contains("needs") || shown.contains("running collector"),
            "{shown}"
        );
        assert!(shown.contains("main working"), "{shown}");
    }

    #[test]
    fn ids_are_encoded_in_the_path() {
        let r = Request {
            asked: 1,
            session: "a b/c".into(),
            agent: Some("x&y".into()),
            before: None,
        };
        assert_eq!(
            r.path(),
            "/v1/sessions/a%20b%2Fc/conversation?limit=50&agent=x%26y"
        );
    }
}
