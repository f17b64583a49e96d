//! The probes view: the collector's health probes (`GET /v1/probes`), each with its
//! state, last check and healthy ratio. Probes run only inside a collector, so a
//! view from the files has none.

use anyhow::Result;

use crate::display::state_is_fine;
use crate::source::Source;

/// One probe as the collector reports it.
pub use swarm_obs_collector::api::ProbeSummary as ProbeRow;
use swarm_obs_collector::api::ProbesAnswer;

/// Every probe of the collector, or none when reading the files.
pub fn load(source: &Source) -> Result<Vec<ProbeRow>> {
    match source {
        Source::Collector(http) => Ok(http.get_json::<ProbesAnswer>("/v1/probes")?.probes),
        Source::Files(_) => Ok(Vec::new()),
    }
}

/// Whether no probe is late or down (one not checked yet is fine).
pub fn all_fine(probes: &[ProbeRow]) -> bool {
    probes.iter().all(|p| p.state.is_none_or(state_is_fine))
}

#[cfg(test)]
mod tests {
    use swarm_obs::WorkerState;

    use super::*;

    #[test]
    fn the_collectors_shape_parses_and_trouble_is_not_fine() {
        let json = r#"{"probes":[
            {"name":"api","kind":"http","target":"http://127.0.0.1:1/h","state":"alive",
             "interval_ms":1000,"grace_ms":3000,"healthy_ratio":0.5,
             "last_check":{"ts":"2026-11-22T08:00:00.000Z","healthy":true,"detail":"HTTP 200","latency_ms":3}},
            {"name":"db","kind":"tcp","target":"tcp:127.0.0.1:5432","interval_ms":1000,"grace_ms":3000}
        ]}"#;
        let answer: ProbesAnswer = serde_json::from_str(json).unwrap();
        assert_eq!(answer.probes.len(), 2);
        assert!(all_fine(&answer.probes), "unchecked counts as fine");
        let mut down = answer.probes;
        down[1].state = Some(WorkerState::Down);
        assert!(!all_fine(&down));
    }
}
