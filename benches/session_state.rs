//! What keeping session and agent state costs per ingested event.
//!
//! The collector's writer runs the session book (aggregates and the agent state
//! machine, `swarm_obs_collector::SessionBook` uses the same one) on every event it
//! stores. Measured here per event over a hook-shaped stream of 200 sessions with
//! prompts, tools, permission prompts, subagents and stops, against the work every
//! ingested event pays anyway in the same run: parsing its JSON line. The summary
//! prints the book's cost as a ratio to that parse; the store's own insert (about
//! 10–15 µs per event, `cargo bench --bench scale`) is larger again.

use std::time::{Duration, Instant};

use criterion::{Criterion, black_box};
use swarm_obs::{Event, Kind, Timestamp};
use swarm_obs_collector::SessionBook;

const HOOKS: [(&str, Option<&str>); 8] = [
    ("UserPromptSubmit", None),
    ("PreToolUse", Some("Bash")),
    ("PostToolUse", Some("Bash")),
    ("PermissionRequest", Some("Edit")),
    ("PostToolUse", Some("Edit")),
    ("SubagentStart", None),
    ("SubagentStop", None),
    ("Stop", None),
];

fn stream(n: usize) -> Vec<String> {
    let now = Timestamp::now().unix_ms();
    (0..n)
        .map(|i| {
            let (hook, tool) = HOOKS[(i / 200) % HOOKS.len()];
            let mut ev = Event::new(format!("proj{}", i % 50), Kind::Hook, hook);
            ev.ts = Timestamp::from_unix_ms(now + i as i64);
            ev.session = Some(format!("session-{:04}", i % 200));
            ev.hook = Some(hook.into());
            ev.tool = tool.map(str::to_owned);
            if i % 5 == 0 {
                ev.agent = Some(format!("agent-{}", i % 3));
                ev.agent_type = Some("Explore".into());
            }
            ev.claude_pid = Some(40_000 + (i % 200) as u32);
            ev.payload = Some(serde_json::json!({"hook_event_name": hook, "tool_name": tool}));
            ev.to_json_line()
        })
        .collect()
}

fn main() {
    let lines = stream(20_000);
    let events: Vec<Event> = lines
        .iter()
        .map(|l| Event::from_json(l).expect("a valid line"))
        .collect();
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut per_event = |name: &str, f: &mut dyn FnMut() -> Duration| {
        let mut total = Duration::ZERO;
        let mut rounds = 0u64;
        c.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    spent += f();
                }
                total += spent;
                rounds += iters;
                spent
            })
        });
        total.as_secs_f64() / (rounds.max(1) as f64 * events.len() as f64)
    };
    let parse = per_event("parse 20k event lines (baseline)", &mut || {
        let t = Instant::now();
        for l in &lines {
            black_box(Event::from_json(l).ok());
        }
        t.elapsed()
    });
    let book = per_event("session book: 20k events", &mut || {
        let mut book = SessionBook::default();
        let t = Instant::now();
        for ev in &events {
            book.add(black_box(ev));
        }
        t.elapsed()
    });
    println!(
        "\nsession_state: per event, parse {:.2} µs (1.00×), session and agent state {:.2} µs ({:.2}× the parse)",
        parse * 1e6,
        book * 1e6,
        book / parse
    );
}
