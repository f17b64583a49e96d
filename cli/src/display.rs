//! Text shared by the worker views: safe one-line text, ages, progress bars, and
//! the colour of each worker state.

use std::time::Duration;

use swarm_obs::{Progress, WorkerState};

/// The ANSI colour code a worker state is shown in.
pub fn state_ansi(state: WorkerState) -> &'static str {
    match state {
        WorkerState::Alive => "32",    // green
        WorkerState::Late => "33",     // yellow
        WorkerState::Down => "31",     // red
        WorkerState::Dead => "1;31",   // bold red
        WorkerState::Failed => "1;31", // bold red
        WorkerState::Stopped => "90",  // grey
    }
}

/// A worker's state as shown, with the exit code its final beat gave:
/// `failed (exit 3)`.
pub fn state_label(state: WorkerState, exit_code: Option<i32>) -> String {
    match exit_code {
        Some(code) if state == WorkerState::Failed => format!("{state} (exit {code})"),
        _ => state.to_string(),
    }
}

/// Whether a state is fine for scripts: alive, or shut down cleanly.
pub fn state_is_fine(state: WorkerState) -> bool {
    matches!(state, WorkerState::Alive | WorkerState::Stopped)
}

/// `text` on one line with control characters made harmless, so text from a
/// heartbeat or an event cannot move the cursor or change the terminal.
pub fn one_line(text: &str) -> String {
    swarm_obs::visible::visible(text)
}

/// At most `max` characters of `text`, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A short age: `0.4s`, `12s`, `3m05s`, `2h10m`, `3d4h`.
pub fn age(ms: i64) -> String {
    let ms = ms.max(0) as u64;
    let d = Duration::from_millis(ms);
    let s = d.as_secs();
    match s {
        0..10 => format!("{:.1}s", ms as f64 / 1000.0),
        10..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A progress bar `width` cells wide: `██████░░░░`.
pub fn bar(p: Progress, width: usize) -> String {
    let filled = if p.total == 0 {
        0
    } else {
        ((p.done.min(p.total) as u128 * width as u128) / p.total as u128) as usize
    };
    let mut s = "█".repeat(filled);
    s.push_str(&"░".repeat(width - filled));
    s
}

/// `3/5` with the percentage: `3/5 60%`.
pub fn fraction(p: Progress) -> String {
    let pct = (p.done.min(p.total).saturating_mul(100))
        .checked_div(p.total)
        .unwrap_or(0);
    format!("{}/{} {pct}%", p.done, p.total)
}

/// A cost in US dollars: four decimals under a dollar (`$0.0123`), else two.
pub fn cost(usd: f64) -> String {
    if usd.abs() < 1.0 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

/// The environment that makes Claude Code send its cost and tokens to the
/// collector at `addr`, one variable each.
pub fn telemetry_env(addr: &str) -> [String; 5] {
    [
        "CLAUDE_CODE_ENABLE_TELEMETRY=1".into(),
        "OTEL_METRICS_EXPORTER=otlp".into(),
        "OTEL_LOGS_EXPORTER=otlp".into(),
        "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf".into(),
        format!("OTEL_EXPORTER_OTLP_ENDPOINT=http://{addr}"),
    ]
}

/// A count in thousands or millions: `950`, `12.3k`, `4.1M`.
pub fn count(n: u64) -> String {
    match n {
        0..1000 => n.to_string(),
        1000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_made_safe_and_cut() {
        assert_eq!(one_line("a\nb\x1b[2Jc"), "a⏎b\\x1b[2Jc");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }

    #[test]
    fn ages_bars_counts() {
        assert_eq!(age(-5), "0.0s");
        assert_eq!(age(1_234), "1.2s");
        assert_eq!(age(42_000), "42s");
        assert_eq!(age(185_000), "3m05s");
        assert_eq!(age(7_800_000), "2h10m");
        assert_eq!(age(97_200_000), "1d3h");
        let p = |done, total| Progress { done, total };
        assert_eq!(bar(p(3, 6), 4), "██░░");
        assert_eq!(bar(p(9, 6), 4), "████");
        assert_eq!(bar(p(1, 0), 4), "░░░░");
        assert_eq!(fraction(p(3, 5)), "3/5 60%");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(count(999), "999");
    }
}
