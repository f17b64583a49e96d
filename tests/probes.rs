//! Health probes in a real collector against real targets: an HTTP server that starts
//! answering 500, a TCP listener that goes away, a process that is killed. Each
//! change becomes an alert, recovery is recorded, and `GET /v1/probes` shows state,
//! transitions and the hourly rollup.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use serde_json::Value;
use swarm_obs::{Event, Kind, Level};
use swarm_obs_suite::{
    ChildGuard, Collector, ListenerMode, TestHome, TestListener, bin, output_retrying_busy,
    system_tests_required,
};

/// Probes check every 100 ms and are down after failing for 500 ms.
const TIMING: &str = "interval_ms=100 grace_ms=500 timeout_ms=2000";

fn alert_of(probe: &'static str, state: &'static str) -> impl Fn(&Event) -> bool {
    move |e| e.kind == Kind::Alert && e.source == probe && e.fields["state"] == state
}

/// Polls `GET /v1/probes` (up to 60 s) until `probe` is in `state`; returns its entry.
/// The states a probe's stored transitions went to, oldest first.
fn states_in_order(probe: &Value) -> Vec<&str> {
    probe["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|t| t["to"].as_str().unwrap())
        .collect()
}

fn wait_for_probe_state(collector: &Collector, probe: &str, state: &str) -> Value {
    for _ in 0..3000 {
        let all = collector.get_json("/v1/probes");
        if let Some(p) = all["probes"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == probe))
            && p["state"] == state
        {
            return p.clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!(
        "probe {probe} never {state}: {}",
        collector.get_json("/v1/probes")
    );
}

/// Waits for late, then down, then (after `recover`) the recovery alert.
fn late_down_recovered(home: &TestHome, probe: &'static str, recover: impl FnOnce()) {
    let late = home.wait_for_event("late alert", alert_of(probe, "late"));
    assert_eq!(late.level, Level::Warn);
    let down = home.wait_for_event("down alert", alert_of(probe, "down"));
    assert_eq!(down.level, Level::Error);
    assert!(late.ts <= down.ts);
    assert!(
        down.fields["failing_ms"].as_u64().unwrap() >= 500,
        "down only after the grace: {down:?}"
    );
    recover();
    let back = home.wait_for_event("recovery alert", alert_of(probe, "alive"));
    assert_eq!(back.fields["recovered"], true);
    assert_eq!(back.fields["previous"], "down");
}

#[test]
fn an_http_server_that_starts_answering_500_is_late_then_down_then_recovers() {
    let home = TestHome::new();
    let server = TestListener::start(ListenerMode::Answer(200));
    let probe = format!("http://{}/health name=web {TIMING}", server.addr());
    let collector = Collector::start_with(&home, &["--probe", &probe]);
    let first = wait_for_probe_state(&collector, "web", "alive");
    assert_eq!(first["kind"], "http");
    assert_eq!(first["last_check"]["detail"], "HTTP 200");
    let request = server
        .next_request(std::time::Duration::from_secs(30))
        .expect("the probe sends a request");
    assert_eq!(request.request_line, "GET /health HTTP/1.1");

    server.set_mode(ListenerMode::Answer(500));
    late_down_recovered(&home, "web", || server.set_mode(ListenerMode::Answer(200)));

    let p = wait_for_probe_state(&collector, "web", "alive");
    let states = states_in_order(&p);
    assert_eq!(states, ["alive", "late", "down", "alive"], "{p}");
    assert_eq!(p["last_transition"]["from"], "down");
    let hour = &p["rollup"][0];
    let (checks, healthy) = (
        hour["checks"].as_i64().unwrap(),
        hour["healthy"].as_i64().unwrap(),
    );
    assert!(checks > healthy && healthy > 0, "{hour}");
    let ratio = p["healthy_ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "{p}");
    assert!(
        collector
            .metrics()
            .contains("swarm_obs_probe_healthy{probe=\"web\"} 1"),
        "{}",
        collector.metrics()
    );
    // Alerts reach the store (and live viewers) like every other event.
    let stored = collector.get_json("/v1/events?source=web&kind=alert");
    assert!(stored["events"].as_array().unwrap().len() >= 3, "{stored}");
}

/// HTTPS probes against a real TLS server with a certificate from a CA made in
/// the test: trusted through `ca_file`, refused without it (the system's roots do
/// not know that CA), accepted by `insecure = true`, which `status` says loudly;
/// a failing status is a failing probe over TLS too.
#[test]
fn https_probes_check_the_certificate_unless_told_not_to() {
    use swarm_obs_suite::tls::{HttpsAnswerer, TestCa};
    let home = TestHome::new();
    let ca = TestCa::new(home.path());
    let leaf = ca.server("service", &["localhost", "127.0.0.1"]);
    let service = HttpsAnswerer::start(&leaf, 200);
    let url = format!("https://localhost:{}/health", service.port());
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[[probe]]\nname = \"trusted\"\nhttp = \"{url}\"\nca_file = {:?}\ninterval_ms = 100\ngrace_ms = 500\n\n\
             [[probe]]\nname = \"untrusted\"\nhttp = \"{url}\"\ninterval_ms = 100\ngrace_ms = 500\n\n\
             [[probe]]\nname = \"insecure\"\nhttp = \"{url}\"\ninsecure = true\ninterval_ms = 100\ngrace_ms = 500\n",
            ca.ca_path()
        ),
    )
    .unwrap();
    let collector = Collector::start(&home);
    let trusted = wait_for_probe_state(&collector, "trusted", "alive");
    assert_eq!(trusted["last_check"]["detail"], "HTTP 200");
    assert_eq!(trusted.get("insecure"), None, "{trusted}");
    let untrusted = wait_for_probe_state(&collector, "untrusted", "down");
    let detail = untrusted["last_check"]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("TLS with localhost:{} failed", service.port()))
            && detail.contains("unknown certificate authority"),
        "{untrusted}"
    );
    let insecure = wait_for_probe_state(&collector, "insecure", "alive");
    assert_eq!(insecure["insecure"], true, "{insecure}");

    let status = home
        .swarm_obs()
        .env("SWARM_OBS_COLLECTOR", collector.addr())
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("INSECURE: probe insecure accepts any certificate"),
        "{text}"
    );

    // A failing answer over TLS fails the probe like one over plain HTTP.
    service.set_status(503);
    let failing = wait_for_probe_state(&collector, "trusted", "down");
    assert_eq!(failing["last_check"]["detail"], "HTTP 503", "{failing}");
    service.set_status(200);
    wait_for_probe_state(&collector, "trusted", "alive");
    assert!(service.requests() > 0);
}

#[test]
fn a_tcp_listener_from_config_toml_that_goes_away_is_down_until_it_returns() {
    let home = TestHome::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[notify]\nbackend = \"off\"\n\n[[probe]]\nname = \"db\"\ntcp = \"{addr}\"\ninterval_ms = 100\ngrace_ms = 500\n"
        ),
    )
    .unwrap();
    let collector = Collector::start(&home);
    wait_for_probe_state(&collector, "db", "alive");
    drop(listener);
    let mut back = None;
    late_down_recovered(&home, "db", || {
        back = Some(std::net::TcpListener::bind(addr).expect("bind the same port again"));
    });
    let p = wait_for_probe_state(&collector, "db", "alive");
    assert_eq!(p["target"], format!("tcp:{addr}"));
}

#[test]
fn a_killed_process_named_by_a_pidfile_is_down_until_a_new_one_runs() {
    let home = TestHome::new();
    let pidfile = home.path().join("svc.pid");
    let mut first = ChildGuard::spawn(Command::new("sleep").arg("600"));
    std::fs::write(&pidfile, first.id().to_string()).unwrap();
    let probe = format!("pidfile:{} name=svc {TIMING}", pidfile.display());
    let collector = Collector::start_with(&home, &["--probe", &probe]);
    wait_for_probe_state(&collector, "svc", "alive");
    first.signal(libc::SIGKILL);
    first.wait();
    let second = ChildGuard::spawn(Command::new("sleep").arg("600"));
    late_down_recovered(&home, "svc", || {
        std::fs::write(&pidfile, second.id().to_string()).unwrap();
    });
    let down = home.wait_for_event("down", alert_of("svc", "down"));
    assert!(
        down.msg.contains(&format!("process {} from", first.id())),
        "{}",
        down.msg
    );
}

#[test]
fn a_bad_probe_stops_serve_with_a_clear_error() {
    let home = TestHome::new();
    for (arg, want) in [
        ("ftp:x", "unknown probe kind `ftp`"),
        ("tcp:nohost", "host:port"),
        ("http:ftp://x/", "http:// or https:// URL"),
        ("https://127.0.0.1:1/ insecure=maybe", "true or false"),
        (
            "https://127.0.0.1:1/ ca_file=/no/such/ca.pem",
            "cannot read CA certificate file /no/such/ca.pem",
        ),
    ] {
        let out = Command::new(bin("swarm-obs"))
            .args(["serve", "--addr", "127.0.0.1:0", "--home"])
            .arg(home.path())
            .args(["--probe", arg])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{arg}: {err}");
    }
    std::fs::write(
        home.path().join("config.toml"),
        "[[probe]]\nname = \"x\"\ntcp = \"127.0.0.1:1\"\nhttp = \"http://127.0.0.1/\"\n",
    )
    .unwrap();
    let out = Command::new(bin("swarm-obs"))
        .args(["serve", "--addr", "127.0.0.1:0", "--home"])
        .arg(home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("line 1"), "{err}");
}

/// A `systemctl` stand-in: it records its arguments in `calls`, prints the state
/// its unit's file `<unit>.state` holds (`active`, `inactive`, …) and exits 0 only
/// for `active`, as `systemctl is-active` does; `hang` makes it never answer.
struct FakeSystemctl {
    dir: std::path::PathBuf,
}

impl FakeSystemctl {
    fn install(home: &TestHome) -> Self {
        let dir = home.path().join("fake-bin");
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "#!/bin/sh\n\
             dir='{dir}'\n\
             printf '%s\\n' \"$*\" >> \"$dir/calls\"\n\
             for unit; do :; done\n\
             state=$(cat \"$dir/$unit.state\")\n\
             [ \"$state\" = hang ] && exec sleep 600\n\
             echo \"$state\"\n\
             [ \"$state\" = active ] || exit 3\n",
            dir = dir.display()
        );
        let path = dir.join("systemctl");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let fake = Self { dir };
        // Run once, so no child another test thread forked while the script was
        // being written still holds it open for writing (ETXTBSY) when the
        // collector runs it.
        fake.set("check.service", "active");
        let out =
            output_retrying_busy(Command::new(&path).args(["is-active", "--", "check.service"]));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "active\n", "{out:?}");
        std::fs::remove_file(fake.dir.join("calls")).unwrap();
        fake
    }

    /// Makes `systemctl is-active UNIT` answer `state` from now on (atomically, so
    /// the script never reads a half-written file).
    fn set(&self, unit: &str, state: &str) {
        let tmp = self.dir.join(format!("{unit}.state.tmp"));
        std::fs::write(&tmp, state).unwrap();
        std::fs::rename(&tmp, self.dir.join(format!("{unit}.state"))).unwrap();
    }

    /// `PATH` with the fake first.
    fn path_env(&self) -> String {
        let rest = std::env::var("PATH").unwrap_or_default();
        format!("{}:{rest}", self.dir.display())
    }

    /// The argument lists it was called with, one per call.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn a_systemd_probe_follows_what_systemctl_says_about_the_unit() {
    let home = TestHome::new();
    let fake = FakeSystemctl::install(&home);
    fake.set("app.service", "active");
    fake.set("agent.service", "active");
    let collector = Collector::start_with_env(
        &home,
        &[
            "--probe",
            "systemd:app.service name=app interval_ms=100 grace_ms=500 timeout_ms=1000",
            "--probe",
            &format!("systemd-user:agent.service name=agent {TIMING}"),
        ],
        &[("PATH", &fake.path_env())],
    );
    let first = wait_for_probe_state(&collector, "app", "alive");
    assert_eq!(first["kind"], "systemd");
    assert_eq!(first["last_check"]["detail"], "app.service is active");
    let user = wait_for_probe_state(&collector, "agent", "alive");
    assert_eq!(user["kind"], "systemd-user");
    let calls = fake.calls();
    assert!(
        calls.iter().any(|c| c == "is-active -- app.service"),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c == "--user is-active -- agent.service"),
        "{calls:?}"
    );

    // The unit stops (`inactive`, exit 3): late, then down after the grace, then
    // recovered once it is active again.
    fake.set("app.service", "inactive");
    late_down_recovered(&home, "app", || fake.set("app.service", "active"));
    let down = home.wait_for_event("down", alert_of("app", "down"));
    assert!(down.msg.contains("app.service is inactive"), "{}", down.msg);
    let p = wait_for_probe_state(&collector, "app", "alive");
    let states = states_in_order(&p);
    assert_eq!(states, ["alive", "late", "down", "alive"], "{p}");

    // A systemctl that never answers is killed at the probe's timeout and counts
    // as a failure.
    fake.set("app.service", "hang");
    let p = wait_for_probe_state(&collector, "app", "down");
    assert!(
        p["last_check"]["detail"]
            .as_str()
            .unwrap()
            .contains("did not answer in time"),
        "{p}"
    );
    fake.set("app.service", "active");
    wait_for_probe_state(&collector, "app", "alive");
    // The user unit never changed, so it never alerted.
    let agent_alerts = collector.get_json("/v1/events?source=agent&kind=alert");
    assert_eq!(
        agent_alerts["events"],
        serde_json::json!([]),
        "{agent_alerts}"
    );
}

#[test]
fn a_systemd_unit_probe_asks_systemctl() {
    // Only where systemd runs (a booted systemd host); the test above covers the
    // probe everywhere with a stand-in systemctl.
    if !std::path::Path::new("/run/systemd/system").is_dir() {
        eprintln!(
            "\n!!!!!!!! a_systemd_unit_probe_asks_systemctl: SKIPPED — systemd is not running here (no /run/systemd/system){} !!!!!!!!\n",
            if system_tests_required() {
                "; not required even with SWARM_OBS_REQUIRE_SYSTEM_TESTS=1"
            } else {
                ""
            }
        );
        return;
    }
    let home = TestHome::new();
    let collector = Collector::start_with(
        &home,
        &[
            "--probe",
            &format!("systemd:basic.target name=basic {TIMING}"),
            "--probe",
            &format!("systemd:no-such-unit-swarm-obs.service name=nothing {TIMING}"),
        ],
    );
    wait_for_probe_state(&collector, "basic", "alive");
    let p = wait_for_probe_state(&collector, "nothing", "down");
    assert!(
        p["last_check"]["detail"]
            .as_str()
            .unwrap()
            .contains("inactive"),
        "{p}"
    );
}
