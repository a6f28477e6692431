//! The fuzz targets' seed corpus (fuzz/seeds/), mutated by a fixed-seed PRNG, through the same
//! entry points the `cargo fuzz` targets call (`ruperf::fuzzing`). This runs in every
//! `cargo test`, needs no nightly features, and is deterministic: a failure names the seed file
//! and the round, which reproduce it exactly. (`cargo fuzz run` explores further by hand; CI
//! also runs each target briefly, see .ci/run.)

use std::path::{Path, PathBuf};

/// xorshift64*: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that sit on the edges length checks get wrong.
const INTERESTING: &[u64] = &[
    0,
    1,
    7,
    8,
    20,
    21,
    0x7f,
    0xff,
    0xffff,
    0x1_0000,
    u32::MAX as u64,
    u64::MAX,
];

/// One mutation in the style of libFuzzer's: flip bits, overwrite a run, write an interesting
/// integer at a random offset, cut, duplicate or splice a block.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    if input.is_empty() {
        input.push(rng.next() as u8);
        return;
    }
    let at = rng.below(input.len());
    match rng.below(6) {
        0 => input[at] ^= 1 << rng.below(8),
        1 => {
            let n = 1 + rng.below(16);
            for b in input.iter_mut().skip(at).take(n) {
                *b = rng.next() as u8;
            }
        }
        2 => {
            let v = INTERESTING[rng.below(INTERESTING.len())];
            let width = [1usize, 2, 4, 8][rng.below(4)];
            let bytes = v.to_le_bytes();
            let n = width.min(input.len() - at);
            input[at..at + n].copy_from_slice(&bytes[..n]);
        }
        3 => input.truncate(at),
        4 => {
            let n = rng.below(64).min(input.len() - at);
            let block = input[at..at + n].to_vec();
            let to = rng.below(input.len());
            input.splice(to..to, block);
        }
        _ => {
            let n = 1 + rng.below(32);
            let end = (at + n).min(input.len());
            input.drain(at..end);
        }
    }
}

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    assert!(v.len() >= 3, "the seed corpus of {target} is missing");
    v
}

/// Feeds every seed, then `rounds` mutants of each (1 to 4 mutations stacked), to `entry`.
fn run(target: &str, rounds: usize, entry: fn(&[u8])) {
    for (i, (path, seed)) in seeds(target).into_iter().enumerate() {
        entry(&seed);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
        for round in 0..rounds {
            let mut m = seed.clone();
            for _ in 0..1 + rng.below(4) {
                mutate(&mut rng, &mut m);
            }
            let ok = std::panic::catch_unwind(|| entry(&m));
            assert!(ok.is_ok(), "{} round {round} panicked", path.display());
        }
    }
}

/// One test, so that the entries' shared scratch directory is removed after both.
#[test]
fn the_mutated_seed_corpus_is_survived_by_the_reader_and_the_event_grammar() {
    run("perf_data", 400, ruperf::fuzzing::perf_data);
    run("event_grammar", 3000, ruperf::fuzzing::event_grammar);
    ruperf::fuzzing::cleanup();
}
