//! The background energy poller against a fake powercap tree: achieved rate and this process's
//! CPU time while it polls at 1 kHz for 2 s (ENERGY_POLL_HZ and ENERGY_POLL_SECS change them).
//!
//! `cargo bench --bench energy_poll` prints one line; the targets are a rate of at least 99% of
//! the requested one and CPU time under 2% of one core.

use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use ruperf::energy::fake::FakeTree;
use ruperf::energy::{parse_selector, EnergySession, RaplSource};

fn cpu_seconds() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let hz = env_or("ENERGY_POLL_HZ", 1000.0);
    let secs = env_or("ENERGY_POLL_SECS", 2.0);
    let t = FakeTree::new("bench-poll");
    t.cpus(&[(0, 0, 0), (1, 1, 0)]);
    for p in 0..2 {
        t.powercap_zone(
            &format!("intel-rapl:{p}"),
            &format!("package-{p}"),
            1,
            262_143_328_850,
        );
        t.powercap_zone(&format!("intel-rapl:{p}:1"), "dram", 1, 262_143_328_850);
    }
    let sel = parse_selector("rapl").expect("energy name").expect("valid");
    let mut session = EnergySession::open(&[sel], &t.sysroot(), None, Some(RaplSource::Powercap))
        .expect("fake powercap session");
    session.set_poll_period(Some(Duration::from_secs_f64(1.0 / hz)));

    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    session.start().expect("start");
    std::thread::sleep(Duration::from_secs_f64(secs));
    let report = session.finish().expect("finish");
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;

    let stats = report.poll.expect("the poller ran");
    let rate = stats.runs as f64 / wall;
    println!(
        "energy poller: {} readings of {} domains in {wall:.3} s = {rate:.1} Hz \
         ({:.2}% of the {hz:.0} Hz asked; {} deadlines missed); CPU {:.3} s = {:.2}% of one core",
        stats.runs,
        report.rows.len(),
        100.0 * rate / hz,
        stats.missed,
        cpu,
        100.0 * cpu / wall
    );
}
