//! OTLP export over TLS to a real receiver: rotel-agent behind a TLS terminator
//! whose certificates come from a CA made in the test. Over HTTP/protobuf and
//! gRPC, gzipped, with a CA file and with a client certificate (mutual TLS);
//! nothing lost across a receiver restart; a wrong CA, a wrong host name and an
//! expired certificate each named in the collector's log while the events wait
//! in the store.

use std::time::{Duration, Instant};

use swarm_obs::{Event, Kind};
use swarm_obs_suite::tls::{TestCa, TlsTerminator};
use swarm_obs_suite::{Collector, Rotel, TestHome, record_bodies};

fn events(prefix: &str, from: usize, n: usize) -> Vec<Event> {
    (from..from + n)
        .map(|i| Event::new("tls-src", Kind::Log, format!("{prefix}-{i:04}")))
        .collect()
}

/// `host:port` of an `http://host:port` endpoint.
fn upstream(endpoint: &str) -> &str {
    endpoint.strip_prefix("http://").unwrap_or(endpoint)
}

/// Waits until the collector has counted at least one failed export.
fn wait_for_a_failure(collector: &Collector) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while collector.metric("swarm_obs_otlp_export_failures_total") == 0 {
        assert!(
            Instant::now() < deadline,
            "no export failure counted:\n{}",
            collector.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_no_lag(collector: &Collector) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while collector.metric("swarm_obs_otlp_export_lag") != 0 {
        assert!(
            Instant::now() < deadline,
            "export lag never reached 0:\n{}",
            collector.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn https_export_with_a_ca_file_and_gzip_loses_nothing_across_a_receiver_restart() {
    let Some(mut rotel) = Rotel::start(
        "https_export_with_a_ca_file_and_gzip_loses_nothing_across_a_receiver_restart",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let leaf = ca.server("receiver", &["localhost", "127.0.0.1"]);
    let tls = TlsTerminator::start(&leaf, upstream(&rotel.endpoint()));
    let endpoint = format!("https://localhost:{}", tls.port());
    let ca_file = ca.ca_path().to_str().unwrap().to_owned();
    let home = TestHome::new();
    let collector = Collector::start_with_env(
        &home,
        &["--otlp-metrics-interval", "1"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_file.as_str()),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ],
    );

    collector.post_events(&events("https", 0, 100));
    rotel.wait_for("the first 100 events over HTTPS", |log| {
        record_bodies(log, "https-").len() == 100
    });
    // The receiver goes away; the collector stores and retries.
    rotel.kill();
    collector.post_events(&events("https", 100, 100));
    wait_for_a_failure(&collector);
    rotel.restart();
    collector.post_events(&events("https", 200, 100));
    rotel.wait_for("all 300 events after the receiver's restart", |log| {
        record_bodies(log, "https-").len() == 300
    });
    wait_for_no_lag(&collector);
    // Metrics travel the same way.
    rotel.wait_for("the collector's metrics over HTTPS", |log| {
        log.contains("-> Name: swarm_obs.export.exported")
    });
    assert!(tls.accepted() > 0);
    assert_eq!(tls.failed_handshakes(), 0);
    assert_eq!(collector.metric("swarm_obs_otlp_export_skipped_total"), 0);
}

#[test]
fn grpc_over_tls_with_a_client_certificate_from_config_toml() {
    let Some(mut rotel) = Rotel::start("grpc_over_tls_with_a_client_certificate_from_config_toml")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let leaf = ca.server("receiver", &["localhost", "127.0.0.1"]);
    let me = ca.client("exporter");
    let tls = TlsTerminator::start_mtls(&leaf, ca.ca_path(), upstream(&rotel.grpc_endpoint()));
    let home = TestHome::new();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[otlp]\nendpoint = \"https://127.0.0.1:{}\"\nprotocol = \"grpc\"\ncompression = \"gzip\"\ncertificate = {:?}\nclient_certificate = {:?}\nclient_key = {:?}\n",
            tls.port(),
            ca.ca_path(),
            me.cert,
            me.key,
        ),
    )
    .unwrap();
    let collector = Collector::start_with(&home, &["--otlp-metrics-interval", "1"]);
    collector.post_events(&events("grpc", 0, 120));
    rotel.wait_for("120 events over gRPC with TLS", |log| {
        record_bodies(log, "grpc-").len() == 120
    });
    // The receiver restarts behind the terminator: the kept HTTP/2 connection dies,
    // a new one (a new handshake) takes the events that waited.
    rotel.kill();
    collector.post_events(&events("grpc", 120, 60));
    wait_for_a_failure(&collector);
    rotel.restart();
    collector.post_events(&events("grpc", 180, 60));
    rotel.wait_for("all 240 events after the receiver's restart", |log| {
        record_bodies(log, "grpc-").len() == 240
    });
    rotel.wait_for("the collector's metrics over gRPC with TLS", |log| {
        log.contains("-> Name: swarm_obs.events.ingested")
    });
    wait_for_no_lag(&collector);
    assert!(tls.accepted() >= 2, "a new handshake after the restart");
    assert_eq!(tls.failed_handshakes(), 0);
}

/// Each bad certificate is named in the log with the host, nothing is counted as
/// exported, and the events wait in the store: given the right CA, the same
/// collector store delivers them.
#[test]
fn a_wrong_ca_a_wrong_name_and_an_expired_certificate_are_named_and_events_wait() {
    let Some(rotel) = Rotel::start(
        "a_wrong_ca_a_wrong_name_and_an_expired_certificate_are_named_and_events_wait",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let stranger = TestCa::new(other_dir.path());
    let ca_file = ca.ca_path().to_str().unwrap().to_owned();
    let up = upstream(&rotel.endpoint()).to_owned();
    let cases = [
        (
            "unknown-ca",
            stranger.server("receiver", &["localhost"]),
            "signed by an unknown certificate authority",
        ),
        (
            "wrong-name",
            ca.server("elsewhere", &["other.example"]),
            "does not match the host name",
        ),
        (
            "expired",
            ca.expired_server("old", &["localhost"]),
            "has expired",
        ),
    ];
    for (case, leaf, says) in &cases {
        let tls = TlsTerminator::start(leaf, &up);
        let endpoint = format!("https://localhost:{}", tls.port());
        let home = TestHome::new();
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_file.as_str()),
        ];
        let mut collector = Collector::start_with_env(&home, &[], &env);
        let host = format!("TLS with localhost:{} failed", tls.port());
        // Said at start, before any event: the first metrics export fails alike.
        collector.wait_for_stderr(
            &format!("{case}: the failure named before any event"),
            |e| e.contains("OTLP metrics export to") && e.contains(&host) && e.contains(says),
        );
        collector.post_events(&events(case, 0, 20));
        let logs = format!(
            "OTLP export to https://localhost:{}/v1/logs failed",
            tls.port()
        );
        collector.wait_for_stderr(&format!("{case}: the collector names the failure"), |e| {
            e.lines()
                .any(|l| l.contains(&logs) && l.contains(&host) && l.contains(says))
        });
        wait_for_a_failure(&collector);
        assert_eq!(
            collector.metric("swarm_obs_otlp_exported_total"),
            0,
            "{case}"
        );
        assert_eq!(collector.metric("swarm_obs_otlp_export_lag"), 20, "{case}");
        assert!(collector.terminate().success());
        assert!(rotel.bodies(case).is_empty(), "{case} reached the receiver");

        if *case == "unknown-ca" {
            // Trusting the CA that did sign it, the waiting events go out.
            let strangers_ca = stranger.ca_path().to_str().unwrap().to_owned();
            let env = [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", strangers_ca.as_str()),
            ];
            let collector = Collector::start_with_env(&home, &[], &env);
            rotel.wait_for("the 20 waiting events", |log| {
                record_bodies(log, case).len() == 20
            });
            wait_for_no_lag(&collector);
        }
    }
}

/// Without the client certificate a mutual-TLS receiver wants, the log says so.
#[test]
fn a_receiver_that_wants_a_client_certificate_says_so() {
    let Some(rotel) = Rotel::start("a_receiver_that_wants_a_client_certificate_says_so") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let leaf = ca.server("receiver", &["localhost"]);
    let tls = TlsTerminator::start_mtls(&leaf, ca.ca_path(), upstream(&rotel.endpoint()));
    let endpoint = format!("https://localhost:{}", tls.port());
    let ca_file = ca.ca_path().to_str().unwrap().to_owned();
    let home = TestHome::new();
    let collector = Collector::start_with_env(
        &home,
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_file.as_str()),
        ],
    );
    collector.post_events(&events("mtls", 0, 5));
    collector.wait_for_stderr("the collector names the missing client certificate", |e| {
        e.contains("client certificate")
    });
    assert_eq!(collector.metric("swarm_obs_otlp_export_lag"), 5);
}

/// Unusable TLS files stop `serve` at start with the file named.
#[test]
fn unusable_tls_files_stop_serve_with_the_file_named() {
    let home = TestHome::new();
    let missing = home.path().join("no-such-ca.pem");
    let out = home
        .swarm_obs()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:1")
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", &missing)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-ca.pem") && err.contains("CA certificate"),
        "{err}"
    );
}
