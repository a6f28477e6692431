//! A CPU-bound Rust program for DWARF call stacks, built by the tests with
//! `rustc -C opt-level=3 -C force-frame-pointers=no -g`: generics, closures and an
//! `#[inline(always)]` helper, so only the CFI can unwind it.
//!
//!   dwarf_rust SECONDS    run for about SECONDS of wall time
//!
//! Known shares: `apply_all` (a generic taking a closure) about half, `sum_as::<u32>` and
//! `sum_as::<u16>` (one generic, two instances) most of the rest.

use std::hint::black_box;
use std::time::{Duration, Instant};

#[inline(always)]
fn scramble(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ (x >> 7)
}

#[inline(never)]
fn apply_all<F: Fn(u64) -> u64>(n: u64, f: F) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        acc = acc.wrapping_add(f(black_box(i)));
    }
    acc
}

#[inline(never)]
fn sum_as<T: Copy + Into<u64>>(v: &[T], rounds: u32) -> u64 {
    let mut acc = 0u64;
    for r in 0..rounds {
        for &x in v {
            acc = scramble(acc ^ x.into() ^ u64::from(r));
        }
    }
    acc
}

#[inline(never)]
fn run(seconds: f64) -> u64 {
    let wide: Vec<u32> = (0..4096u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
    let narrow: Vec<u16> = (0..4096u16).map(|i| i.wrapping_mul(40_503)).collect();
    let salt = black_box(3u64);
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut acc = 0u64;
    while Instant::now() < end {
        acc ^= apply_all(400_000, |x| scramble(x ^ salt).wrapping_add(salt));
        acc ^= sum_as(&wide, 50);
        acc ^= sum_as(&narrow, 50);
    }
    acc
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!("result={}", run(seconds));
}
