//! The dashboard's state and what each key does, apart from drawing, so every
//! key can be tested without a terminal.

use std::collections::VecDeque;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use swarm_obs::{Event, EventId};

use super::feed::Update;
use super::session_view::{Focus, Request, SessionView};
use crate::display::one_line;
use crate::probes::ProbeRow;
use crate::sessions::Session;
use crate::workers::WorkersView;

/// Rows a page key moves.
const PAGE: usize = 10;

/// One event as the event pane shows it.
pub struct Row {
    /// The event.
    pub event: Event,
    /// Its human line, safe for the terminal.
    pub line: String,
    /// What the filter searches, lowercased: the line, tool, hook, session, agent.
    haystack: String,
}

impl Row {
    fn new(event: Event) -> Self {
        let line = one_line(&event.human_line(0));
        let mut haystack = line.to_lowercase();
        for extra in [
            &event.tool,
            &event.hook,
            &event.session,
            &event.agent,
            &event.agent_type,
            &event.task,
        ]
        .into_iter()
        .flatten()
        {
            haystack.push(' ');
            haystack.push_str(&extra.to_lowercase());
        }
        haystack.push(' ');
        haystack.push_str(event.kind.as_str());
        Self {
            event,
            line,
            haystack,
        }
    }
}

/// The event shown in the detail view.
pub struct Detail {
    /// Its human line.
    pub title: String,
    /// The event as pretty JSON.
    pub text: String,
    /// Lines scrolled down.
    pub scroll: u16,
}

/// Everything the dashboard shows and the keys change.
pub struct App {
    /// Where the data comes from.
    pub source: String,
    /// A note from start-up (the collector passed over), shown in the header.
    pub note: Option<String>,
    /// The latest workers view.
    pub workers: Option<WorkersView>,
    /// Why the workers could not be loaded, last time.
    pub workers_error: Option<String>,
    /// The collector's health probes.
    pub probes: Vec<ProbeRow>,
    /// The sessions, most recently active first.
    pub sessions: Vec<Session>,
    /// Why the sessions could not be loaded, last time.
    pub sessions_error: Option<String>,
    /// Why events could not be read, last time (cleared by the next success).
    pub events_error: Option<String>,
    rows: VecDeque<Row>,
    keep: usize,
    /// Events received since start.
    pub received: u64,
    /// The filter text.
    pub filter: String,
    /// Whether keys go into the filter.
    pub editing: bool,
    /// Indexes into `rows` of the events that pass the filter.
    filtered: Vec<usize>,
    /// The selected event; `None` follows the newest.
    selected: Option<EventId>,
    /// The detail view, when open.
    pub detail: Option<Detail>,
    /// Which pane ↑/↓ and Enter act on (Tab moves it).
    pub focus: Focus,
    /// The session picked in the sessions pane, by id.
    pub(super) session_cursor: Option<String>,
    /// The session view, when open.
    pub session_view: Option<SessionView>,
    /// A conversation page to read, for the loop to hand to the fetcher.
    pub conversation_request: Option<Request>,
    /// Whether a collector is read (it alone can read a conversation).
    pub reads_collector: bool,
    /// Conversation requests made, to match their replies.
    pub(super) asked: u64,
    /// Set when a quit key was pressed.
    pub quit: bool,
    /// Set when something shown changed.
    pub dirty: bool,
}

impl App {
    /// An empty dashboard keeping at most `keep` events.
    pub fn new(source: String, note: Option<String>, keep: usize, filter: String) -> Self {
        Self {
            source,
            note,
            workers: None,
            workers_error: None,
            probes: Vec::new(),
            sessions: Vec::new(),
            sessions_error: None,
            events_error: None,
            rows: VecDeque::new(),
            keep: keep.max(1),
            received: 0,
            filter,
            editing: false,
            filtered: Vec::new(),
            selected: None,
            detail: None,
            focus: Focus::Events,
            session_cursor: None,
            session_view: None,
            conversation_request: None,
            reads_collector: false,
            asked: 0,
            quit: false,
            dirty: true,
        }
    }

    /// Takes in what the feed sent.
    pub fn apply(&mut self, update: Update) {
        self.dirty = true;
        match update {
            Update::Events(events) => {
                self.events_error = None;
                self.received += events.len() as u64;
                self.rows.extend(events.into_iter().map(Row::new));
                let over = self.rows.len().saturating_sub(self.keep);
                self.rows.drain(..over);
                self.refilter();
            }
            Update::EventsFailed(e) => self.events_error = Some(e),
            Update::Workers(Ok(w)) => {
                self.workers = Some(w);
                self.workers_error = None;
            }
            Update::Workers(Err(e)) => self.workers_error = Some(e),
            Update::Probes(Ok(p)) => self.probes = p,
            // A probe list that cannot be read says so through the workers' error.
            Update::Probes(Err(e)) => self.workers_error = Some(e),
            Update::Sessions(Ok(s)) => {
                self.sessions = s;
                self.sessions_error = None;
            }
            Update::Sessions(Err(e)) => self.sessions_error = Some(e),
        }
    }

    fn refilter(&mut self) {
        let words: Vec<String> = self
            .filter
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.filtered = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| words.iter().all(|w| r.haystack.contains(w.as_str())))
            .map(|(i, _)| i)
            .collect();
        if self.selected_position().is_none() {
            self.selected = None;
        }
    }

    /// The events that pass the filter, oldest first.
    pub fn visible(&self) -> impl ExactSizeIterator<Item = &Row> + '_ {
        self.filtered.iter().map(|&i| &self.rows[i])
    }

    /// How many events pass the filter.
    pub fn visible_len(&self) -> usize {
        self.filtered.len()
    }

    /// How many events are kept.
    pub fn kept(&self) -> usize {
        self.rows.len()
    }

    /// The position of the selected event among the visible ones, `None` when
    /// following the newest.
    pub fn selected_position(&self) -> Option<usize> {
        let id = self.selected?;
        self.filtered
            .iter()
            .position(|&i| self.rows[i].event.id == id)
    }

    /// The highlighted position: the selection, or the newest when following.
    pub fn cursor(&self) -> Option<usize> {
        self.selected_position()
            .or_else(|| self.filtered.len().checked_sub(1))
    }

    /// Whether the newest event is followed.
    pub fn following(&self) -> bool {
        self.selected.is_none()
    }

    fn select(&mut self, pos: Option<usize>) {
        let last = self.filtered.len().checked_sub(1);
        self.selected = match (pos, last) {
            (Some(p), Some(l)) if p < l => Some(self.rows[self.filtered[p]].event.id),
            _ => None,
        };
    }

    fn move_by(&mut self, delta: isize) {
        let Some(cur) = self.cursor() else { return };
        self.select(Some(cur.saturating_add_signed(delta)));
    }

    fn open_detail(&mut self) {
        let Some(pos) = self.cursor() else { return };
        let row = &self.rows[self.filtered[pos]];
        let id = row.event.id;
        self.detail = Some(Detail {
            title: row.line.clone(),
            text: serde_json::to_string_pretty(&row.event).unwrap_or_default(),
            scroll: 0,
        });
        // Keep the opened event selected while new ones arrive.
        self.selected = Some(id);
    }

    /// Acts on one key.
    pub fn on_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        self.dirty = true;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c' | 'd')) {
            self.quit = true;
            return;
        }
        if self.session_view.is_some() {
            self.on_session_view_key(key.code);
            return;
        }
        if let Some(detail) = &mut self.detail {
            match key.code {
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace => self.detail = None,
                KeyCode::Down | KeyCode::Char('j') => {
                    detail.scroll = detail.scroll.saturating_add(1)
                }
                KeyCode::Up | KeyCode::Char('k') => detail.scroll = detail.scroll.saturating_sub(1),
                KeyCode::PageDown | KeyCode::Char(' ') => {
                    detail.scroll = detail.scroll.saturating_add(PAGE as u16)
                }
                KeyCode::PageUp => detail.scroll = detail.scroll.saturating_sub(PAGE as u16),
                KeyCode::Home => detail.scroll = 0,
                _ => {}
            }
            return;
        }
        if self.editing {
            match key.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.editing = false;
                    self.filter.clear();
                    self.refilter();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                    self.refilter();
                }
                KeyCode::Char('u') if ctrl => {
                    self.filter.clear();
                    self.refilter();
                }
                KeyCode::Char(c) if !ctrl => {
                    self.filter.push(c);
                    self.refilter();
                }
                KeyCode::Up => self.move_by(-1),
                KeyCode::Down => self.move_by(1),
                _ => {}
            }
            return;
        }
        if self.focus == Focus::Sessions && self.on_sessions_key(key.code) {
            return;
        }
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Tab => self.toggle_focus(),
            KeyCode::Esc if self.filter.is_empty() => self.quit = true,
            KeyCode::Esc => {
                self.filter.clear();
                self.refilter();
            }
            KeyCode::Char('/') => self.editing = true,
            KeyCode::Enter => self.open_detail(),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-(PAGE as isize)),
            KeyCode::PageDown => self.move_by(PAGE as isize),
            KeyCode::Home | KeyCode::Char('g') => self.select(Some(0)),
            KeyCode::End | KeyCode::Char('G') | KeyCode::Char('f') => self.selected = None,
            _ => self.dirty = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_obs::Kind;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
    }

    fn app_with(msgs: &[&str]) -> App {
        let mut app = App::new("files".into(), None, 3, String::new());
        let events = msgs
            .iter()
            .map(|m| Event::new("w", Kind::Log, *m))
            .collect();
        app.apply(Update::Events(events));
        app
    }

    #[test]
    fn keeps_the_newest_and_follows() {
        let mut app = app_with(&["a", "b", "c", "d"]);
        assert_eq!(app.kept(), 3);
        assert_eq!(app.received, 4);
        assert!(app.following());
        assert_eq!(app.cursor(), Some(2));
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.cursor(), Some(1));
        app.apply(Update::Events(vec![Event::new("w", Kind::Log, "e")]));
        // The selection stays on its event as older ones scroll away.
        assert_eq!(app.cursor(), Some(0));
        app.on_key(key(KeyCode::End));
        assert!(app.following());
        app.on_key(key(KeyCode::Down));
        assert!(app.following(), "moving past the end follows again");
    }

    #[test]
    fn filter_as_you_type_then_detail_then_quit() {
        let mut app = app_with(&["alpha one", "beta two", "Alpha three"]);
        app.on_key(key(KeyCode::Char('/')));
        assert!(app.editing);
        type_text(&mut app, "alpha");
        assert_eq!(app.visible_len(), 2);
        type_text(&mut app, " thr");
        assert_eq!(app.visible_len(), 1);
        app.on_key(key(KeyCode::Backspace));
        app.on_key(key(KeyCode::Backspace));
        app.on_key(key(KeyCode::Backspace));
        app.on_key(key(KeyCode::Backspace));
        assert_eq!(app.visible_len(), 2);
        // q while typing is text, not quit.
        type_text(&mut app, "q");
        assert!(!app.quit);
        assert_eq!(app.visible_len(), 0);
        app.on_key(key(KeyCode::Backspace));
        app.on_key(key(KeyCode::Enter));
        assert!(!app.editing);
        app.on_key(key(KeyCode::Enter));
        let d = app.detail.as_ref().expect("detail open");
        assert!(d.text.contains("\"msg\": \"Alpha three\""), "{}", d.text);
        app.on_key(key(KeyCode::Esc));
        assert!(app.detail.is_none());
        // Esc clears the filter first, then quits.
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.visible_len(), 3);
        assert!(!app.quit);
        app.on_key(key(KeyCode::Esc));
        assert!(app.quit);
    }

    #[test]
    fn quit_keys() {
        for k in [
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
            key(KeyCode::Char('q')),
        ] {
            let mut app = app_with(&["a"]);
            app.on_key(key(KeyCode::Enter));
            app.on_key(k);
            assert!(app.quit);
        }
        let mut app = app_with(&[]);
        app.on_key(key(KeyCode::Enter));
        assert!(app.detail.is_none(), "no event, no detail");
        app.on_key(key(KeyCode::Up));
        assert!(app.following());
    }
}
