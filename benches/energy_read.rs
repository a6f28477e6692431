//! Cost of one energy reading per RAPL backend: powercap and MSR on fake trees, and the perf
//! power PMU where this machine has one.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ruperf::energy::fake::FakeTree;
use ruperf::energy::rapl::msr::MsrSource;
use ruperf::energy::rapl::perf_pmu::PerfPmuSource;
use ruperf::energy::rapl::powercap::PowercapSource;
use ruperf::energy::{Accumulator, Source};
use ruperf::sysroot::Sysroot;

const MAX: u64 = 262_143_328_850;

fn powercap_tree() -> FakeTree {
    let t = FakeTree::new("bench-powercap");
    t.cpus(&[(0, 0, 0), (1, 1, 0)]);
    for p in 0..2 {
        t.powercap_zone(&format!("intel-rapl:{p}"), &format!("package-{p}"), 1, MAX);
        t.powercap_zone(&format!("intel-rapl:{p}:0"), "core", 1, MAX);
        t.powercap_zone(&format!("intel-rapl:{p}:1"), "dram", 1, MAX);
    }
    t.powercap_zone("intel-rapl:2", "psys", 1, MAX);
    t
}

fn msr_tree() -> FakeTree {
    let t = FakeTree::new("bench-msr");
    t.cpus(&[(0, 0, 0), (1, 1, 0)]);
    t.cpuinfo("GenuineIntel", 6, 0x55);
    for cpu in 0..2 {
        t.msr(cpu, 0x606, 0x000A_0E03);
        t.msr(cpu, 0x611, 1);
        t.msr(cpu, 0x639, 1);
        t.msr(cpu, 0x619, 1);
    }
    t
}

fn bench_one(c: &mut Criterion, name: &str, source: Box<dyn Source>) {
    let n = source.domains().len();
    let mut acc = Accumulator::new(source);
    c.bench_function(&format!("{name} reading ({n} domains)"), |b| {
        b.iter(|| black_box(acc.read()))
    });
}

fn readings(c: &mut Criterion) {
    let pc = powercap_tree();
    bench_one(
        c,
        "powercap",
        Box::new(PowercapSource::open(&pc.sysroot()).expect("fake powercap")),
    );
    let msr = msr_tree();
    bench_one(
        c,
        "msr",
        Box::new(MsrSource::open(&msr.sysroot()).expect("fake msr")),
    );
    match PerfPmuSource::open(&Sysroot::default()) {
        Ok(src) => bench_one(c, "perf", Box::new(src)),
        Err(why) => {
            eprintln!("perf power PMU: not here ({why}); timing the same read path on msr/tsc/");
            let t = FakeTree::new("bench-perf");
            t.cpus(&[(0, 0, 0)]);
            let ty = std::fs::read_to_string("/sys/bus/event_source/devices/msr/type");
            if let Some(ty) = ty.ok().and_then(|s| s.trim().parse().ok()) {
                t.perf_pmu(
                    "power",
                    ty,
                    "0",
                    &[("energy-pkg", "event=0x00", "1e-9", "Joules")],
                );
                match PerfPmuSource::open(&t.sysroot()) {
                    Ok(src) => bench_one(c, "perf (msr/tsc/ stand-in)", Box::new(src)),
                    Err(why) => eprintln!("perf reading: not measured: {why}"),
                }
            }
        }
    }
}

criterion_group!(benches, readings);
criterion_main!(benches);
