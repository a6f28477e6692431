//! Links GCC's unwinder statically, as `gcc -static-libgcc` does for C programs.
//!
//! Rust's standard library asks for `libgcc_s.so.1` on linux-gnu only for the `_Unwind_*`
//! functions. Taking them from `libgcc_eh.a` instead means one shared library fewer to map and
//! relocate at every start, and no run of libgcc_s's CPU-detection constructor, whose `cpuid`
//! instructions each trap to the hypervisor in a virtual machine (about 5 µs apiece). `ruperf
//! stat` is often run in loops, so its start-up time matters. With the archive linked whole
//! ahead of the standard library, the linker's `--as-needed` then drops libgcc_s.
//!
//! Where the archive cannot be found (another C compiler, a musl or static target), nothing
//! changes and libgcc_s is used as before.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" || static_crt {
        return;
    }
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
