//! [`SwarmLayer`]: a `tracing` layer that turns events into swarm-obs [`Event`]s.
//!
//! On the caller's thread it gathers fields, redacts, and formats the JSON and human
//! lines into reused buffers; a background thread does the writing (see
//! [`crate::init`]).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, span};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::log_writer::LogQueue;
use crate::{Event, Kind, Level, Progress};

/// Field names the layer reads into the event itself rather than into `fields`.
const KIND: &str = "kind";
const TASK: &str = "task";
const PROGRESS_DONE: &str = "progress.done";
const PROGRESS_TOTAL: &str = "progress.total";
const DURATION_MS: &str = "duration_ms";
const MESSAGE: &str = "message";

/// A `tracing` layer writing human lines to `logs/<source>.log` and events to the
/// event log (through a background writer), built by [`crate::init`].
///
/// Event and span fields land flattened at the root of [`Event::fields`] (inner spans
/// and the event itself win on a name clash). A `kind` field (`"start"`,
/// `"progress"`, `"done"`, …) sets the event's kind; `task`, `progress.done`,
/// `progress.total` and `duration_ms` fill the event's own fields. The macros
/// [`start!`](crate::start), [`progress!`](crate::progress) and [`done!`](crate::done)
/// set them for you.
///
/// It composes with any subscriber built on `tracing_subscriber::registry()`:
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// # let dir = tempfile::tempdir().unwrap();
/// let (layer, guard) = swarm_obs::init("backend")
///     .state_root(swarm_obs::StateRoot::new(dir.path()))
///     .no_collector()
///     .build()
///     .unwrap();
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || tracing::info!(user = 7, "hello"));
/// drop(guard); // flushes
/// ```
pub struct SwarmLayer {
    source: String,
    // Fork leaves no writer thread in the child, so a cached pid is never stale
    // where it is used.
    pid: u32,
    static_fields: Map<String, Value>,
    queue: LogQueue,
}

impl fmt::Debug for SwarmLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwarmLayer")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl SwarmLayer {
    pub(crate) fn new(source: String, static_fields: Map<String, Value>, queue: LogQueue) -> Self {
        Self {
            source,
            pid: std::process::id(),
            static_fields,
            queue,
        }
    }

    /// The source name events carry.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Builds the swarm-obs event for gathered fields.
    fn to_event(&self, level: Level, mut fields: Map<String, Value>, msg: Option<String>) -> Event {
        let kind = match fields.get(KIND) {
            Some(Value::String(k)) => Kind::ALL.iter().copied().find(|x| x.as_str() == k),
            _ => None,
        };
        if kind.is_some() {
            fields.remove(KIND);
        }
        let kind = kind.unwrap_or(if level == Level::Error {
            Kind::Error
        } else {
            Kind::Log
        });
        let msg = msg.unwrap_or_else(|| fields_as_text(&fields));
        let mut ev =
            Event::from_process(self.source.clone(), kind, msg, crate::hostname(), self.pid)
                .with_level(level);
        ev.task = match fields.remove(TASK) {
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        let done = fields.remove(PROGRESS_DONE).and_then(|v| v.as_u64());
        let total = fields.remove(PROGRESS_TOTAL).and_then(|v| v.as_u64());
        if let (Some(done), Some(total)) = (done, total) {
            ev.progress = Some(Progress { done, total });
        }
        if let Some(d) = fields.get(DURATION_MS).and_then(Value::as_u64) {
            fields.remove(DURATION_MS);
            ev.duration_ms = Some(d);
        }
        ev.fields = fields;
        ev
    }
}

fn fields_as_text(fields: &Map<String, Value>) -> String {
    let mut s = String::new();
    for (k, v) in fields {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(k);
        s.push('=');
        match v {
            Value::String(t) => s.push_str(t),
            other => s.push_str(&other.to_string()),
        }
    }
    s
}

fn level_of(level: &tracing::Level) -> Level {
    match *level {
        tracing::Level::TRACE => Level::Trace,
        tracing::Level::DEBUG => Level::Debug,
        tracing::Level::INFO => Level::Info,
        tracing::Level::WARN => Level::Warn,
        tracing::Level::ERROR => Level::Error,
    }
}

impl<S> Layer<S> for SwarmLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Map::new();
        attrs.record(&mut FieldVisitor {
            fields: &mut fields,
            message: None,
        });
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &span::Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
            values.record(&mut FieldVisitor {
                fields,
                message: None,
            });
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = self.static_fields.clone();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(span_fields)) = span.extensions().get::<SpanFields>() {
                    fields.extend(span_fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut visitor = FieldVisitor {
            fields: &mut fields,
            message: None,
        };
        event.record(&mut visitor);
        let message = visitor.message;
        let ev = self.to_event(level_of(event.metadata().level()), fields, message);
        self.queue.push(ev);
    }
}

/// Records tracing fields as JSON values; the `message` field separately.
struct FieldVisitor<'a> {
    fields: &'a mut Map<String, Value>,
    message: Option<String>,
}

impl FieldVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == MESSAGE {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

/// Logs that a task started: kind `start`, the task in the event and the heartbeat.
///
/// ```
/// swarm_obs::start!("TASK_123"); // [START] Started TASK_123
/// swarm_obs::start!("TASK_124", files = 3, "Indexing {} files", 3);
/// ```
#[macro_export]
macro_rules! start {
    ($task:expr) => {{
        let task = &$task;
        $crate::__private::tracing::info!(kind = "start", task = %task, "Started {}", task)
    }};
    ($task:expr, $($arg:tt)+) => {
        $crate::__private::tracing::info!(kind = "start", task = %$task, $($arg)+)
    };
}

/// Logs progress on the current task: kind `progress`, `(done/total)` in the line, and
/// the heartbeat's progress and action updated.
///
/// ```
/// swarm_obs::progress!(3, 5, "Analysing file X"); // [PROGRESS] (3/5) Analysing file X
/// ```
#[macro_export]
macro_rules! progress {
    ($done:expr, $total:expr, $($arg:tt)+) => {
        $crate::__private::tracing::info!(
            kind = "progress",
            progress.done = ($done) as u64,
            progress.total = ($total) as u64,
            $($arg)+
        )
    };
}

/// Logs that the current task is done: kind `done`; the heartbeat turns `idle`.
///
/// ```
/// swarm_obs::done!("Finished TASK_123");
/// swarm_obs::done!(duration_ms = 1200_u64, "Finished {}", "TASK_124");
/// ```
#[macro_export]
macro_rules! done {
    ($($arg:tt)+) => {
        $crate::__private::tracing::info!(kind = "done", $($arg)+)
    };
}
