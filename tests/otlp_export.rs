//! OTLP export against a real receiver (rotel-agent): events posted to swarm-obs
//! arrive with the right attributes, none is lost while the receiver restarts, and
//! a restarted collector resumes from its persisted cursor instead of re-sending.

use std::time::{Duration, Instant};

use swarm_obs::{Event, Kind, Level};
use swarm_obs_suite::{Collector, Rotel, TestHome, metric_value, record_bodies};

const BATCHES: usize = 12;
const PER_BATCH: usize = 50;

fn batch(b: usize) -> Vec<Event> {
    (0..PER_BATCH)
        .map(|i| {
            let n = b * PER_BATCH + i;
            let mut ev = Event::new("otlp-src", Kind::Log, format!("evt-{n:04}"));
            ev.host = Some("host-a".into());
            ev.pid = Some(4242);
            ev.session = Some("sess-otlp".into());
            ev.tool = Some("Bash".into());
            ev.level = if n == 7 { Level::Warn } else { Level::Info };
            ev.fields.insert("rows".into(), serde_json::json!(n));
            ev
        })
        .collect()
}

#[test]
fn events_reach_a_real_otlp_receiver_through_its_restart() {
    let Some(mut rotel) = Rotel::start("events_reach_a_real_otlp_receiver_through_its_restart")
    else {
        return;
    };
    let home = TestHome::new();
    let endpoint = rotel.endpoint();
    let args = [
        "--otlp-endpoint",
        endpoint.as_str(),
        "--otlp-metrics-interval",
        "1",
    ];
    let mut collector = Collector::start_with(&home, &args);

    for b in 0..BATCHES / 3 {
        collector.post_events(&batch(b));
    }
    // The receiver goes away mid-stream; the collector keeps storing and retrying.
    rotel.kill();
    for b in BATCHES / 3..2 * BATCHES / 3 {
        collector.post_events(&batch(b));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while collector.metric("swarm_obs_otlp_export_failures_total") == 0 {
        assert!(
            Instant::now() < deadline,
            "no export failure counted while rotel was down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rotel.restart();
    for b in 2 * BATCHES / 3..BATCHES {
        collector.post_events(&batch(b));
    }

    let total = BATCHES * PER_BATCH;
    rotel.wait_for("every event at the receiver", |log| {
        record_bodies(log, "evt-").len() == total
    });
    let log = rotel.log();
    for needle in [
        "-> service.name: Str(otlp-src)",
        "-> host.name: Str(host-a)",
        "-> process.pid: Int(4242)",
        "-> session.id: Str(sess-otlp)",
        "-> gen_ai.tool.name: Str(Bash)",
        "-> swarm_obs.kind: Str(log)",
        "-> rows: Int(7)",
        "SeverityNumber: SEVERITY_NUMBER_WARN(13)",
        "SeverityNumber: SEVERITY_NUMBER_INFO(9)",
        "InstrumentationScope swarm-obs",
    ] {
        assert!(log.contains(needle), "rotel log lacks {needle:?}");
    }
    // Worker verdicts and counters arrive as metrics.
    rotel.wait_for("collector metrics at the receiver", |log| {
        log.contains("-> Name: swarm_obs.export.exported")
            && log.contains("-> Name: swarm_obs.workers")
            && log.contains("-> Name: swarm_obs.events.ingested")
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = collector.metrics();
        if metric_value(&m, "swarm_obs_otlp_export_lag") == 0
            && metric_value(&m, "swarm_obs_otlp_exported_total") >= total as u64
        {
            assert_eq!(metric_value(&m, "swarm_obs_otlp_export_skipped_total"), 0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "export lag never reached 0:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A collector restart resumes from the persisted cursor: nothing is re-sent.
    let before = rotel.bodies("evt-");
    assert!(collector.terminate().success());
    let collector = Collector::start_with(&home, &args);
    let mut marker = Event::new("otlp-src", Kind::Log, "evt-after-restart");
    marker.host = Some("host-a".into());
    collector.post_events(&[marker]);
    rotel.wait_for("the event posted after the restart", |log| {
        log.contains("Body: Str(evt-after-restart)")
    });
    let mut after = rotel.bodies("evt-");
    assert_eq!(after.remove("evt-after-restart"), Some(1));
    assert_eq!(
        after, before,
        "events were re-sent after a collector restart"
    );
}

/// `--otlp-protocol grpc`: the same delivery over OTLP/gRPC, the connection
/// reopened after the receiver restarts.
#[test]
fn events_reach_a_real_otlp_receiver_over_grpc() {
    let Some(mut rotel) = Rotel::start("events_reach_a_real_otlp_receiver_over_grpc") else {
        return;
    };
    let home = TestHome::new();
    let endpoint = rotel.grpc_endpoint();
    let args = [
        "--otlp-endpoint",
        endpoint.as_str(),
        "--otlp-protocol",
        "grpc",
        "--otlp-metrics-interval",
        "1",
    ];
    let collector = Collector::start_with(&home, &args);
    collector.post_events(&batch(0));
    rotel.wait_for("the first batch over gRPC", |log| {
        record_bodies(log, "evt-").len() == PER_BATCH
    });
    rotel.kill();
    collector.post_events(&batch(1));
    let deadline = Instant::now() + Duration::from_secs(60);
    while collector.metric("swarm_obs_otlp_export_failures_total") == 0 {
        assert!(
            Instant::now() < deadline,
            "no failure counted while rotel was down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rotel.restart();
    collector.post_events(&batch(2));
    rotel.wait_for("every event over gRPC", |log| {
        record_bodies(log, "evt-").len() == 3 * PER_BATCH
    });
    let log = rotel.log();
    for needle in [
        "-> service.name: Str(otlp-src)",
        "-> session.id: Str(sess-otlp)",
        "-> Name: swarm_obs.workers",
    ] {
        assert!(log.contains(needle), "rotel log lacks {needle:?}");
    }
}

/// The library option: a worker built with the `otlp` feature sends its events
/// straight to an OTLP receiver, no collector involved.
#[test]
fn a_worker_exports_without_a_collector() {
    use swarm_obs::otlp::OtlpTarget;
    use swarm_obs::otlp::proto::{AnyValue, ExportLogsServiceRequest};
    use swarm_obs_suite::{ListenerMode, TestListener};
    use tracing_subscriber::layer::SubscriberExt;

    let receiver = TestListener::start(ListenerMode::Answer(200));
    let home = TestHome::new();
    let target = OtlpTarget::new(&format!("http://{}", receiver.addr())).unwrap();
    let (layer, guard) = swarm_obs::init("direct-worker")
        .state_root(swarm_obs::StateRoot::new(home.path()))
        .no_collector()
        .notifications(false)
        .heartbeat(false)
        .otlp(target)
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(rows = 3, "straight to OTLP");
    });
    drop(guard); // flushes the writer and the OTLP sink

    let req = receiver
        .next_request(Duration::from_secs(30))
        .expect("the worker posted to the receiver");
    assert_eq!(req.request_line, "POST /v1/logs HTTP/1.1");
    assert_eq!(req.header("content-type"), Some("application/x-protobuf"));
    let logs = swarm_obs::otlp::Message::decode(req.body.as_slice())
        .map(|r: ExportLogsServiceRequest| r)
        .expect("an OTLP logs request");
    let rl = &logs.resource_logs[0];
    let service = &rl.resource.as_ref().unwrap().attributes[0];
    assert_eq!(service.key, "service.name");
    assert_eq!(service.value, Some(AnyValue::string("direct-worker")));
    let rec = &rl.scope_logs[0].log_records[0];
    assert_eq!(rec.body, Some(AnyValue::string("straight to OTLP")));
    assert_eq!(rec.severity_text, "WARN");
    assert!(
        rec.attributes
            .iter()
            .any(|kv| kv.key == "rows" && kv.value == Some(AnyValue::int(3)))
    );
    // The event log on disk has it too.
    assert!(home.events().iter().any(|e| e.msg == "straight to OTLP"));
}

/// A receiver that refuses a batch for good (4xx other than 429) makes the
/// exporter skip and count it, never loop on it; one that is overloaded (503), or
/// refuses the credentials (401: every batch would be refused alike), is retried
/// and the events wait in the store.
#[test]
fn refusals_are_skipped_and_overload_is_retried() {
    use swarm_obs_suite::{ListenerMode, TestListener};

    let metrics_of = |c: &Collector| {
        let m = c.metrics();
        [
            metric_value(&m, "swarm_obs_otlp_exported_total"),
            metric_value(&m, "swarm_obs_otlp_export_skipped_total"),
            metric_value(&m, "swarm_obs_otlp_export_failures_total"),
            metric_value(&m, "swarm_obs_otlp_export_lag"),
        ]
    };
    let wait = |c: &Collector, what: &str, ok: &dyn Fn([u64; 4]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = metrics_of(c);
            if ok(m) {
                return m;
            }
            assert!(Instant::now() < deadline, "{what}: {m:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    let refusing = TestListener::start(ListenerMode::Answer(400));
    let home = TestHome::new();
    let endpoint = format!("http://{}", refusing.addr());
    let c = Collector::start_with(&home, &["--otlp-endpoint", &endpoint]);
    c.post_events(&batch(0));
    // Skipped, and the cursor moved past it: no lag left.
    let m = wait(&c, "the refused batch skipped", &|m| {
        m[1] == PER_BATCH as u64 && m[3] == 0
    });
    assert_eq!(m[0], 0, "nothing counted as exported");
    let req = std::iter::from_fn(|| refusing.next_request(Duration::from_secs(5)))
        .find(|r| r.request_line.starts_with("POST /v1/logs "))
        .expect("the exporter posted logs");
    assert_eq!(req.header("content-type"), Some("application/x-protobuf"));
    drop(c);

    let busy = TestListener::start(ListenerMode::Answer(503));
    let home = TestHome::new();
    let endpoint = format!("http://{}", busy.addr());
    let c = Collector::start_with(&home, &["--otlp-endpoint", &endpoint]);
    c.post_events(&batch(1));
    let m = wait(&c, "retries of the overloaded receiver", &|m| m[2] >= 3);
    assert_eq!((m[0], m[1]), (0, 0), "nothing exported, nothing skipped");
    assert_eq!(m[3], PER_BATCH as u64, "the events wait in the store");
    drop(c);

    let unauthorised = TestListener::start(ListenerMode::Answer(401));
    let home = TestHome::new();
    let endpoint = format!("http://{}", unauthorised.addr());
    let c = Collector::start_with(&home, &["--otlp-endpoint", &endpoint]);
    c.post_events(&batch(2));
    let m = wait(&c, "retries with refused credentials", &|m| m[2] >= 3);
    assert_eq!((m[0], m[1]), (0, 0), "nothing exported, nothing skipped");
    assert_eq!(m[3], PER_BATCH as u64, "the events wait in the store");
}

/// Where to export comes from `OTEL_EXPORTER_OTLP_*` (headers included), else from
/// `[otlp]` in config.toml.
#[test]
fn the_environment_and_config_name_the_receiver() {
    use swarm_obs_suite::{ListenerMode, TestListener};

    let logs_request = |receiver: &TestListener| {
        std::iter::from_fn(|| receiver.next_request(Duration::from_secs(30)))
            .find(|r| r.request_line.starts_with("POST /v1/logs "))
            .expect("the collector exported logs")
    };

    let from_env = TestListener::start(ListenerMode::Answer(200));
    let home = TestHome::new();
    let endpoint = format!("http://{}", from_env.addr());
    let c = Collector::start_with_env(
        &home,
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cr%20et"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ],
    );
    c.post_events(&batch(0));
    let req = logs_request(&from_env);
    assert_eq!(req.header("x-api-key"), Some("s3cr et"));
    // gzip, as a real `gzip -d` reads it, holding every event of the batch.
    assert_eq!(req.header("content-encoding"), Some("gzip"));
    let mut gunzip = std::process::Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run gzip");
    std::io::Write::write_all(&mut gunzip.stdin.take().unwrap(), &req.body).unwrap();
    let plain = gunzip.wait_with_output().unwrap();
    assert!(plain.status.success(), "gzip -d refused the body");
    use swarm_obs::otlp::Message;
    let logs = swarm_obs::otlp::proto::ExportLogsServiceRequest::decode(&plain.stdout[..])
        .expect("a protobuf logs request inside the gzip");
    let records: usize = logs
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    assert!(records > 0 && records <= PER_BATCH, "{records} records");
    drop(c);

    let from_config = TestListener::start(ListenerMode::Answer(200));
    let home = TestHome::new();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[otlp]\nendpoint = \"http://{}\"\nheaders = {{ \"x-team\" = \"swarm\" }}\n",
            from_config.addr()
        ),
    )
    .unwrap();
    let c = Collector::start(&home);
    c.post_events(&batch(1));
    let req = logs_request(&from_config);
    assert_eq!(req.header("x-team"), Some("swarm"));
}

/// A secret in any field of a posted event (message, task, a field, the payload)
/// is redacted before the collector stores it, so the OTLP receiver never sees it.
#[test]
fn secrets_in_any_field_never_reach_the_receiver() {
    let Some(rotel) = Rotel::start("secrets_in_any_field_never_reach_the_receiver") else {
        return;
    };
    let home = TestHome::new();
    let endpoint = rotel.endpoint();
    let collector = Collector::start_with(&home, &["--otlp-endpoint", endpoint.as_str()]);
    let secrets = [
        "sk-ant-api03-AbCdEf0123456789_xyzXYZ0123",
        "glpat-abcdefghij0123456789",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fw",
    ];
    let mut ev = Event::new("leaky", Kind::Start, format!("run {}", secrets[0]));
    ev.task = Some(format!("deploy {}", secrets[1]));
    ev.fields.insert("note".into(), secrets[2].into());
    ev.payload = Some(serde_json::json!({ "cmd": format!("--token {}", secrets[1]) }));
    collector.post_events(&[ev]);
    rotel.wait_for("the event at the receiver", |log| log.contains("leaky"));
    let log = rotel.log();
    for s in secrets {
        assert!(!log.contains(s), "{s} reached the receiver");
    }
    // The receiver did get the fields (so their absence means something).
    for kept in ["run [REDACTED]", "deploy [REDACTED]"] {
        assert!(log.contains(kept), "{kept:?} not in {log}");
    }
}
