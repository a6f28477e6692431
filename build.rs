//! Link-time settings for the `ruperf` binary, both about start-up cost: `ruperf stat` is often
//! run in loops, and a short run's time is mostly its start.
//!
//! 1. GCC's unwinder is linked statically, as `gcc -static-libgcc` does for C programs. Rust's
//!    standard library asks for `libgcc_s.so.1` on linux-gnu only for the `_Unwind_*`
//!    functions. Taking them from `libgcc_eh.a` instead means one shared library fewer to map
//!    and relocate at every start, and no run of libgcc_s's CPU-detection constructor, whose
//!    `cpuid` instructions each trap to the hypervisor in a virtual machine (about 5 µs
//!    apiece). With the archive linked whole ahead of the standard library, the linker's
//!    `--as-needed` then drops libgcc_s. Where the archive cannot be found (another C
//!    compiler, a musl or static target), nothing changes and libgcc_s is used as before.
//!
//! 2. Relative relocations are packed (`-z pack-relative-relocs`, DT_RELR) when the linker
//!    takes it and, for a native build, the C library runs such a program (glibc 2.36 and
//!    later): 48 KB of relocation entries become under 1 KB for the loader to read.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" || static_crt {
        return;
    }
    link_unwinder_statically();
    pack_relative_relocations();
}

fn link_unwinder_statically() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Ok(out) = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // gcc prints the bare name back when it has no such file.
    if !out.status.success() || !path.is_absolute() || !path.is_file() {
        return;
    }
    if let Some(dir) = path.parent() {
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    }
}

fn pack_relative_relocations() {
    let args = ["-Wl,-z,pack-relative-relocs".to_string()];
    if links_and_runs(&args) {
        println!("cargo:rustc-link-arg-bins={}", args[0]);
    }
}

/// Whether an empty program links with `link_args` added, built by the same compiler for the
/// same target with the same flags and linker as this crate, and, when it is built for this
/// machine, runs.
fn links_and_runs(link_args: &[String]) -> bool {
    let (Ok(rustc), Ok(out_dir), Ok(target)) = (
        std::env::var("RUSTC"),
        std::env::var("OUT_DIR"),
        std::env::var("TARGET"),
    ) else {
        return false;
    };
    let dir = PathBuf::from(out_dir);
    let src = dir.join("link_probe.rs");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let mut cmd = Command::new(rustc);
    cmd.arg("--edition=2021")
        .arg("--crate-name=link_probe")
        .arg("--target")
        .arg(&target)
        .arg("-o")
        .arg(dir.join("link_probe"))
        .arg(&src);
    for flag in std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .unwrap_or_default()
        .split('\x1f')
        .filter(|f| !f.is_empty())
    {
        cmd.arg(flag);
    }
    if let Ok(linker) = std::env::var("RUSTC_LINKER") {
        cmd.arg(format!("-Clinker={linker}"));
    }
    for a in link_args {
        cmd.arg(format!("-Clink-arg={a}"));
    }
    let quiet = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !quiet(&mut cmd) {
        return false;
    }
    std::env::var("HOST").ok() != Some(target) || quiet(&mut Command::new(dir.join("link_probe")))
}
