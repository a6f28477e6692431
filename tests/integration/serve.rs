//! `stat --serve` and `stat --format openmetrics`, judged by Prometheus itself (Debian's
//! `prometheus` scrapes ruperf and is queried through its HTTP API) and by `promtool check
//! metrics`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{ruperf, ruperf_path, scratch, workload};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 GET: (status line, headers, body), or None when nothing answered.
fn http_get(addr: &str, path: &str, accept: &str) -> Option<(String, String, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    Some((
        status.to_owned(),
        headers.to_owned(),
        raw[split + 4..].to_vec(),
    ))
}

/// Kills (SIGINT, then SIGKILL) and reaps a child when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ruperf stat --serve ADDR ARGS` and waits until it answers.
fn serve(addr: &str, args: &[&str]) -> Reaped {
    let child = Command::new(ruperf_path())
        .args(["stat", "--serve", addr])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ruperf");
    let r = Reaped(child);
    let until = Instant::now() + Duration::from_secs(10);
    while http_get(addr, "/", "*/*").is_none() {
        assert!(
            Instant::now() < until,
            "ruperf --serve {addr} never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    r
}

fn promtool_check(text: &[u8]) -> (bool, String) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    p.stdin.take().unwrap().write_all(text).unwrap();
    let out = p.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), msg)
}

#[test]
fn prometheus_scrapes_the_exporter_and_has_the_series() {
    require!(have("prometheus"), "Debian's `prometheus` is needed");
    let dir = scratch("serve-prom");
    let addr = format!("127.0.0.1:{}", free_port());
    let _ruperf = serve(&addr, &["-a", "-I", "500", "-e", "task-clock,page-faults"]);
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: ruperf\n    static_configs:\n      - targets: ['{addr}']\n"
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus");
    let _prom = Reaped(prom);
    let query = |q: &str| -> serde_json::Value {
        let path = format!("/api/v1/query?query={q}");
        http_get(&web, &path, "application/json")
            .and_then(|(_, _, body)| serde_json::from_slice(&body).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    let until = Instant::now() + Duration::from_secs(60);
    let result = loop {
        let v = query("ruperf_clock_seconds_total");
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            break v["data"]["result"].clone();
        }
        let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        assert!(
            Instant::now() < until,
            "Prometheus never stored the series:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let s = &result[0];
    assert_eq!(s["metric"]["event"], "task-clock", "{result}");
    assert_eq!(s["metric"]["target"], "system wide", "{result}");
    assert_eq!(s["metric"]["job"], "ruperf", "{result}");
    let secs: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
    assert!(secs > 0.0, "{result}");
    let pf = query("ruperf_events_total%7Bevent%3D%22page-faults%22%7D");
    assert!(!pf["data"]["result"].as_array().unwrap().is_empty(), "{pf}");
    let up = query("up%7Bjob%3D%22ruperf%22%7D");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
}

#[test]
fn promtool_accepts_the_endpoint_and_the_textfile() {
    require!(
        have("promtool"),
        "`promtool` (Debian's prometheus) is needed"
    );
    let addr = format!("127.0.0.1:{}", free_port());
    {
        let _r = serve(
            &addr,
            &["-a", "-I", "200", "-e", "task-clock,page-faults", "-A"],
        );
        std::thread::sleep(Duration::from_millis(500));
        let (status, headers, body) = http_get(&addr, "/metrics", "text/plain").unwrap();
        assert!(status.contains(" 200"), "{status}");
        assert!(headers.contains("text/plain; version=0.0.4"), "{headers}");
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(
                r#"ruperf_events_total{event="page-faults",cpu="0",target="system wide"}"#
            ),
            "{text}"
        );
        let (ok, msg) = promtool_check(&body);
        assert!(ok, "promtool: {msg}\n{text}");
        let (_, headers, body) = http_get(
            &addr,
            "/metrics",
            "application/openmetrics-text;version=1.0.0",
        )
        .unwrap();
        assert!(
            headers.contains("application/openmetrics-text"),
            "{headers}"
        );
        assert!(body.ends_with(b"# EOF\n"));
    }
    let dir = scratch("serve-textfile");
    let file = dir.join("ruperf.prom");
    ruperf()
        .args([
            "stat",
            "-e",
            "task-clock,page-faults",
            "--format",
            "openmetrics",
            "-o",
        ])
        .arg(&file)
        .arg(workload("touch_pages"))
        .arg("2000")
        .assert()
        .success();
    let text = std::fs::read(&file).unwrap();
    let (ok, msg) = promtool_check(&text);
    assert!(ok, "promtool: {msg}");
    let text = String::from_utf8(text).unwrap();
    let faults: f64 = text
        .lines()
        .find(|l| l.starts_with("ruperf_events_total{event=\"page-faults\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!((2000.0..2400.0).contains(&faults), "{text}");
    assert!(
        text.contains("# TYPE ruperf_clock_seconds_total counter"),
        "{text}"
    );
    assert!(text.contains("touch_pages 2000\"}"), "{text}");
    // Nothing but the file is left in its directory.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn a_taken_port_is_one_line_and_exit_71() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = ruperf()
        .args(["stat", "--serve", &addr, "-e", "task-clock", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(71), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&addr) && err.contains("already in use"),
        "{err}"
    );
    // An unwritable textfile fails before anything runs.
    let out = ruperf()
        .args([
            "stat",
            "--format",
            "openmetrics",
            "-o",
            "/nonexistent/dir/x.prom",
            "true",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(73), "{err}");
    assert!(
        err.contains("/nonexistent/dir/x.prom") && err.trim().lines().count() == 1,
        "{err}"
    );
    let out = ruperf()
        .args(["stat", "--serve", "nowhere", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = ruperf()
        .args(["stat", "--serve", "127.0.0.1:0", "-r", "2", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn a_scrape_during_shutdown_never_sees_partial_lines() {
    let addr = format!("127.0.0.1:{}", free_port());
    // The command ends on its own after a second; scrapes keep coming until nothing answers.
    let child = Command::new(ruperf_path())
        .args([
            "stat",
            "--serve",
            &addr,
            "-I",
            "20",
            "-e",
            "task-clock,page-faults",
        ])
        .args(["sleep", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Reaped(child);
    let (mut whole, mut refused) = (0, 0);
    let until = Instant::now() + Duration::from_secs(20);
    let start = Instant::now();
    loop {
        match http_get(
            &addr,
            "/metrics",
            "application/openmetrics-text;version=1.0.0",
        ) {
            // Before the first snapshot ruperf answers 503; the last moments of tiny_http's
            // listener may answer a whole 500.
            Some((status, _, body)) if !status.contains(" 200") => {
                assert!(
                    status.contains(" 500") || status.contains(" 503"),
                    "{status}"
                );
                assert!(
                    !body.windows(7).any(|w| w == b"ruperf_"),
                    "metrics in an error"
                );
                refused += 1;
                if child.0.try_wait().unwrap().is_some() {
                    break;
                }
            }
            Some((_, headers, body)) => {
                let len: usize = headers
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or_else(|| panic!("no Content-Length: {headers}"));
                assert_eq!(body.len(), len, "a short body");
                assert!(
                    body.ends_with(b"# EOF\n"),
                    "{}",
                    String::from_utf8_lossy(&body)
                );
                whole += 1;
            }
            None => {
                refused += 1;
                if child.0.try_wait().unwrap().is_some() {
                    break;
                }
                if start.elapsed() < Duration::from_millis(300) {
                    continue; // not up yet
                }
            }
        }
        assert!(Instant::now() < until, "ruperf did not stop");
    }
    assert!(
        whole > 10,
        "only {whole} scrapes answered ({refused} refused)"
    );
}

#[test]
fn energy_is_exported_in_joules_per_domain_and_package() {
    use ruperf::energy::fake::FakeTree;
    const MAX: u64 = 262_143_328_850;
    let t = FakeTree::at(scratch("serve-energy"));
    t.cpus(&[(0, 0, 0), (1, 1, 0)]);
    t.powercap_zone("intel-rapl:0", "package-0", 5_000_000, MAX);
    t.powercap_zone("intel-rapl:1", "package-1", MAX - 500_000, MAX);
    // The command advances package 0 by 3 J and package 1 by 2 J (across its wrap).
    let script = format!(
        "echo 8000000 > '{}'; echo 1500000 > '{}'",
        t.energy_path("intel-rapl:0").display(),
        t.energy_path("intel-rapl:1").display()
    );
    let out = Command::new(ruperf_path())
        .arg("--sysroot")
        .arg(t.root())
        .args([
            "stat",
            "-e",
            "rapl/pkg",
            "--format",
            "openmetrics",
            "--",
            "sh",
            "-c",
        ])
        .arg(&script)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |package: &str| -> f64 {
        let prefix = format!(
            "ruperf_energy_joules_total{{domain=\"pkg\",package=\"{package}\",source=\"powercap\","
        );
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no package {package} in:\n{text}"))
    };
    assert!((value("0") - 3.0).abs() < 1e-6, "{text}");
    // Across the wrap, to within the counter's rounding.
    assert!((value("1") - 2.0).abs() < 1e-3, "{text}");
    assert!(
        text.contains("# TYPE ruperf_energy_joules_total counter"),
        "{text}"
    );
    if have("promtool") {
        let (ok, msg) = promtool_check(text.as_bytes());
        assert!(ok, "promtool: {msg}");
    }
}

#[test]
fn serve_covers_pids_and_cpu_lists() {
    let bg = crate::common::Background::start("ticker", &[], 100);
    let pid = bg.pid();
    for (args, target) in [
        (
            vec!["-p", pid.as_str()],
            format!("target=\"process id '{pid}'\""),
        ),
        (vec!["-C", "0"], "target=\"CPU(s) 0\"".to_owned()),
    ] {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut all = vec!["-I", "100", "-e", "task-clock,context-switches"];
        all.extend(args.iter().copied());
        let _r = serve(&addr, &all);
        let until = Instant::now() + Duration::from_secs(10);
        let text = loop {
            let (_, _, body) = http_get(&addr, "/metrics", "text/plain").unwrap();
            let text = String::from_utf8_lossy(&body).into_owned();
            if text.contains("ruperf_clock_seconds_total{") {
                break text;
            }
            assert!(Instant::now() < until, "{args:?}: no counts yet:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(text.contains(&target), "{args:?}: {target} not in\n{text}");
    }
}
