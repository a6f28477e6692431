//! Symbol sources, inline frames and source lines, each checked against what Debian's perf
//! prints for the same recording. Every test builds its own programs (and strips, links or
//! deletes them) in a scratch directory, and gives perf and ruperf a home of its own (perf
//! reads no variable for its build-id cache, only `$HOME/.debug`), so the real `~/.debug` is
//! never touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{have_perf, ruperf, scratch};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed");
}

/// Compiles `src` (C or C++ by `compiler`) into `dir/name`.
fn build(dir: &Path, name: &str, compiler: &str, src: &str, flags: &[&str]) -> PathBuf {
    let ext = if compiler == "g++" { "cc" } else { "c" };
    let file = dir.join(format!("{name}.{ext}"));
    std::fs::write(&file, src).unwrap();
    let out = dir.join(name);
    run(Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&file));
    out
}

fn cache(dir: &Path) -> PathBuf {
    dir.join("home").join(".debug")
}

/// The environment of every perf and ruperf run of a test: its own home.
trait Home {
    fn home(&mut self, dir: &Path) -> &mut Self;
}

impl Home for Command {
    fn home(&mut self, dir: &Path) -> &mut Self {
        // perf fills $HOME/.debug only when $HOME exists.
        let _ = std::fs::create_dir_all(dir.join("home"));
        self.env("HOME", dir.join("home"))
            .env_remove("PERF_BUILDID_DIR")
    }
}

impl Home for assert_cmd::Command {
    fn home(&mut self, dir: &Path) -> &mut Self {
        // perf fills $HOME/.debug only when $HOME exists.
        let _ = std::fs::create_dir_all(dir.join("home"));
        self.env("HOME", dir.join("home"))
            .env_remove("PERF_BUILDID_DIR")
    }
}

/// `perf record ARGS -o dir/perf.data -- PROG`, with the test's own build-id cache.
fn perf_record(dir: &Path, args: &[&str], prog: &[&str]) -> PathBuf {
    let data = dir.join("perf.data");
    let out = Command::new("perf")
        .arg("record")
        .args(args)
        .arg("-o")
        .arg(&data)
        .arg("--")
        .args(prog)
        .home(dir)
        .output()
        .expect("perf record");
    assert!(
        out.status.success(),
        "perf record: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    data
}

fn perf_report(dir: &Path, data: &Path, args: &[&str]) -> String {
    let out = Command::new("perf")
        .args(["report", "--stdio", "-i"])
        .arg(data)
        .args(args)
        .home(dir)
        .output()
        .expect("perf report");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ruperf_report(dir: &Path, data: &Path, args: &[&str]) -> String {
    let out = ruperf()
        .args(["report", "--stdio", "-i"])
        .arg(data)
        .args(args)
        .home(dir)
        .assert()
        .success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

/// Entry lines of a flat report: (first percentage, the line after the percentages).
fn rows(text: &str) -> Vec<(f64, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let toks: Vec<&str> = l.split_whitespace().collect();
            let n = toks.iter().take_while(|t| t.ends_with('%')).count();
            if n == 0 {
                return None;
            }
            let pct = toks[0].trim_end_matches('%').parse().ok()?;
            Some((pct, toks[n..].join(" ")))
        })
        .collect()
}

/// The percentage of the row whose text is `row` exactly.
fn pct_of(text: &str, row: &str) -> Option<f64> {
    rows(text)
        .into_iter()
        .find(|(_, r)| r == row)
        .map(|(p, _)| p)
}

/// Asserts that `row` appears in both reports with percentages within one point.
fn same_row(ours: &str, theirs: &str, our_row: &str, their_row: &str) {
    let p = pct_of(theirs, their_row)
        .unwrap_or_else(|| panic!("perf has no row `{their_row}`:\n{theirs}"));
    let o =
        pct_of(ours, our_row).unwrap_or_else(|| panic!("ruperf has no row `{our_row}`:\n{ours}"));
    assert!(
        (p - o).abs() <= 1.0,
        "`{our_row}`: ruperf {o}% vs perf {p}%"
    );
    assert!(p > 20.0, "the hot row `{their_row}` has only {p}%");
}

const INLINE_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
static inline __attribute__((always_inline)) unsigned mix(unsigned x) {
    for (int i = 0; i < 50; i++) x = x * 2654435761u + (x >> 13);
    return x;
}
static inline __attribute__((always_inline)) unsigned step(unsigned x) {
    return mix(x) ^ mix(x + 1);
}
__attribute__((noinline)) unsigned work(unsigned n) {
    unsigned acc = 0;
    for (unsigned i = 0; i < n; i++) acc += step(i);
    return acc;
}
int main(int argc, char **argv) {
    unsigned n = argc > 1 ? atoi(argv[1]) : 2000000;
    printf("%u\n", work(n));
    return 0;
}
"#;

const HOT_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
static __attribute__((noinline)) unsigned long crunch(unsigned long n) {
    unsigned long x = 1;
    for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + i;
    return x;
}
int main(int argc, char **argv) {
    unsigned long n = argc > 1 ? strtoul(argv[1], 0, 10) : 200000000UL;
    printf("%lu\n", crunch(n));
    return 0;
}
"#;

#[test]
fn inline_frames_and_srclines() {
    require!(have_perf(), "Debian's perf is needed");
    let dir = scratch("sym-inline");
    let prog = build(
        &dir,
        "inl",
        "cc",
        INLINE_C,
        &["-O2", "-g", "-fno-omit-frame-pointer"],
    );
    let data = perf_record(&dir, &["-g"], &[prog.to_str().unwrap()]);
    // Source lines of the samples: perf (through addr2line) and ruperf agree.
    let flat = ["--no-children", "-g", "none", "--sort", "srcline"];
    let theirs = perf_report(&dir, &data, &flat);
    let ours = ruperf_report(&dir, &data, &flat);
    let line = INLINE_C
        .lines()
        .position(|l| l.contains("x = x * 2654435761u"))
        .unwrap()
        + 1;
    let hot_line = format!("inl.c:{line}");
    same_row(&ours, &theirs, &hot_line, &hot_line);
    // perf's -F: the same lines, a Samples column, no Children column.
    let fields = ["-F", "overhead,sample,srcline", "-g", "none"];
    let theirs = perf_report(&dir, &data, &fields);
    let ours = ruperf_report(&dir, &data, &fields);
    assert!(
        !ours.contains("Children") && ours.contains("Samples"),
        "{ours}"
    );
    let hot = |t: &str| rows(t).into_iter().find(|(_, r)| r.ends_with(&hot_line));
    assert_eq!(
        hot(&ours).map(|r| r.1),
        hot(&theirs).map(|r| r.1),
        "{ours}\n{theirs}"
    );
    // The inline chain at the hot address, innermost first, as binutils' addr2line -i
    // (what perf runs) names it: mix, step, then work.
    let tree = ruperf_report(&dir, &data, &["--no-children", "-g", "callee"]);
    let hot = tree
        .split("\n\n")
        .find(|b| b.contains("[.] work"))
        .unwrap_or_else(|| panic!("no work entry:\n{tree}"));
    let mix = hot
        .find("mix (inlined)")
        .expect("mix (inlined) in work's chain");
    let step = hot
        .find("step (inlined)")
        .expect("step (inlined) in work's chain");
    assert!(
        mix < step,
        "callee order puts the innermost inline first:\n{hot}"
    );
    // Children mode gives the inlined functions their own entries, with no Self.
    let children = ruperf_report(&dir, &data, &["-g", "none"]);
    let row = rows(&children)
        .into_iter()
        .find(|(_, r)| r.ends_with("[.] mix (inlined)"))
        .unwrap_or_else(|| panic!("no mix (inlined) entry:\n{children}"));
    assert!(row.0 > 50.0, "{row:?}");
    // --no-inline reads no DWARF and shows none.
    let plain = ruperf_report(&dir, &data, &["--no-inline"]);
    assert!(!plain.contains("(inlined)"), "{plain}");
    // Folded stacks and JSON carry them too.
    let folded = ruperf()
        .args(["report", "--format", "folded", "-i"])
        .arg(&data)
        .assert()
        .success();
    let folded = String::from_utf8_lossy(&folded.get_output().stdout).into_owned();
    assert!(folded.contains(";work;step_[i];mix_[i] "), "{folded}");
    let json = ruperf()
        .args(["report", "--json", "-i"])
        .arg(&data)
        .assert()
        .success();
    let json = String::from_utf8_lossy(&json.get_output().stdout).into_owned();
    assert!(json.contains("\"inlined\": true"), "{json}");
}

#[test]
fn debuglink_beside_the_binary_with_crc() {
    require!(have_perf(), "Debian's perf is needed");
    require!(
        have("objcopy") && have("strip"),
        "binutils (objcopy, strip) are needed"
    );
    let dir = scratch("sym-debuglink");
    let prog = build(&dir, "hot", "cc", HOT_C, &["-O2", "-g"]);
    let dbg = dir.join(".debug").join("hot.debug");
    std::fs::create_dir_all(dbg.parent().unwrap()).unwrap();
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&prog)
        .arg(&dbg));
    run(Command::new("strip").arg("--strip-all").arg(&prog));
    // objcopy finds the file to link by its path; the link itself is the base name.
    run(Command::new("objcopy")
        .arg(format!("--add-gnu-debuglink={}", dbg.display()))
        .arg(&prog));
    let data = perf_record(&dir, &["-N"], &[prog.to_str().unwrap()]);
    let theirs = perf_report(&dir, &data, &[]);
    let ours = ruperf_report(&dir, &data, &[]);
    same_row(&ours, &theirs, "hot hot [.] crunch", "hot hot [.] crunch");
    // With a debug file whose CRC does not match, neither finds the name.
    std::fs::write(&dbg, b"not the debug file").unwrap();
    let ours = ruperf_report(&dir, &data, &[]);
    assert!(!ours.contains("crunch"), "{ours}");
}

#[test]
fn system_debug_files_by_build_id_and_glibc_aliases() {
    require!(have_perf(), "Debian's perf is needed");
    let libc = Path::new("/lib/x86_64-linux-gnu/libc.so.6");
    let has_dbg = std::fs::read_dir("/usr/lib/debug/.build-id").is_ok();
    require!(
        has_dbg && libc.exists(),
        "libc6-dbg (/usr/lib/debug/.build-id) is needed"
    );
    let dir = scratch("sym-libcdbg");
    let src = r#"
#include <unistd.h>
#include <fcntl.h>
int main(void) {
    int fd = open("/dev/null", O_WRONLY);
    char b[1] = {0};
    for (long i = 0; i < 1500000; i++) write(fd, b, 1);
    return 0;
}
"#;
    let prog = build(&dir, "wr", "cc", src, &["-O2"]);
    let data = perf_record(&dir, &["-N"], &[prog.to_str().unwrap()]);
    let theirs = perf_report(&dir, &data, &["--sort", "dso,sym"]);
    let ours = ruperf_report(&dir, &data, &["--sort", "dso,sym"]);
    // glibc's write has five names at one address; perf shows __GI___libc_write (a local
    // of the debug file's .symtab), and so must we.
    let row = "libc.so.6 [.] __GI___libc_write";
    let p = pct_of(&theirs, row).unwrap_or_else(|| panic!("perf: {theirs}"));
    let o = pct_of(&ours, row).unwrap_or_else(|| panic!("ruperf: {ours}"));
    assert!((p - o).abs() <= 1.0, "{row}: ruperf {o}% vs perf {p}%");
}

#[test]
fn minidebuginfo_of_a_stripped_binary() {
    require!(have_perf(), "Debian's perf is needed");
    require!(
        have("objcopy") && have("strip") && have("nm") && have("xz"),
        "binutils and xz-utils are needed"
    );
    let dir = scratch("sym-minidebug");
    let prog = build(&dir, "hot", "cc", HOT_C, &["-O2", "-g"]);
    // perf 6.1 does not read .gnu_debugdata: its answer is the unstripped binary's.
    let data = perf_record(&dir, &["-N"], &[prog.to_str().unwrap()]);
    let theirs = perf_report(&dir, &data, &[]);
    // The MiniDebugInfo recipe of Fedora's find-debuginfo.
    let script = format!(
        "set -e; cd {d}; nm -D hot --format=posix --defined-only | awk '{{print $1}}' | sort > dyn; \
         nm hot --format=posix --defined-only | awk '$2 == \"T\" || $2 == \"t\" {{print $1}}' | sort > fn; \
         comm -13 dyn fn > keep; objcopy --only-keep-debug hot dbg; \
         objcopy -S --remove-section .gdb_index --remove-section .comment --keep-symbols=keep dbg mini; \
         xz -f mini; strip --strip-all hot; objcopy --add-section .gnu_debugdata=mini.xz hot",
        d = dir.display()
    );
    run(Command::new("sh").arg("-c").arg(&script));
    let data = perf_record(&dir, &["-N"], &[prog.to_str().unwrap()]);
    let ours = ruperf_report(&dir, &data, &[]);
    // Two runs, so the shares differ by the machine's noise, not by a point.
    let row = "hot hot [.] crunch";
    let p = pct_of(&theirs, row).unwrap_or_else(|| panic!("perf: {theirs}"));
    let o = pct_of(&ours, row).unwrap_or_else(|| panic!("ruperf: {ours}"));
    assert!(p > 50.0 && o > 50.0, "{row}: ruperf {o}% vs perf {p}%");
    // perf 6.1 reads no MiniDebugInfo: on the stripped binary it shows an address.
    let theirs = perf_report(&dir, &data, &[]);
    assert!(!theirs.contains("crunch"), "{theirs}");
}

#[test]
fn deleted_binary_from_the_build_id_cache_both_ways() {
    require!(have_perf(), "Debian's perf is needed");
    let dir = scratch("sym-deleted");
    let other = scratch("sym-deleted-ruperf");
    let prog = build(&dir, "hot", "cc", HOT_C, &["-O2"]);
    // perf record fills its cache (ruperf reads it), ruperf record fills another (perf
    // reads it); then the binary is deleted.
    let by_perf = perf_record(&dir, &[], &[prog.to_str().unwrap()]);
    let by_ruperf = other.join("perf.data");
    ruperf()
        .args(["record", "-o"])
        .arg(&by_ruperf)
        .arg("--")
        .arg(&prog)
        .home(&other)
        .assert()
        .success();
    std::fs::remove_file(&prog).unwrap();
    let row = "hot hot [.] crunch";
    let theirs = perf_report(&dir, &by_perf, &[]);
    let ours = ruperf_report(&dir, &by_perf, &[]);
    same_row(&ours, &theirs, row, row);
    let theirs = perf_report(&other, &by_ruperf, &[]);
    let ours = ruperf_report(&other, &by_ruperf, &[]);
    same_row(&ours, &theirs, row, row);
    // Without the cache the name is gone and ruperf says why.
    let out = ruperf()
        .args(["report", "--stdio", "-i"])
        .arg(&by_ruperf)
        .home(&other.join("empty"))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(err.contains("is missing"), "{err}");
    // -N leaves the cache alone.
    let before = walk(&cache(&other));
    let prog = build(&other, "hot2", "cc", HOT_C, &["-O2", "-DUNUSED=2"]);
    ruperf()
        .args(["record", "-N", "-o"])
        .arg(other.join("n.data"))
        .arg("--")
        .arg(&prog)
        .arg("1000")
        .home(&other)
        .assert()
        .success();
    assert_eq!(before, walk(&cache(&other)), "-N must not add to the cache");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn jit_map_written_by_the_program() {
    require!(have_perf(), "Debian's perf is needed");
    require!(cfg!(target_arch = "x86_64"), "the JIT stub is x86-64 code");
    let dir = scratch("sym-jit");
    let src = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
/* mov rax,rdi; 1: dec rax; jnz 1b; ret */
static const unsigned char code[] = {0x48,0x89,0xf8, 0x48,0xff,0xc8, 0x75,0xfb, 0xc3};
int main(void) {
    unsigned char *p = mmap(NULL, 4096, PROT_READ|PROT_WRITE|PROT_EXEC,
                            MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 1;
    memcpy(p + 64, code, sizeof code);
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", getpid());
    FILE *f = fopen(path, "w");
    fprintf(f, "%lx %zx jitted_countdown\n", (unsigned long)(p + 64), sizeof code);
    fclose(f);
    long (*fn)(long) = (long (*)(long))(p + 64);
    for (int i = 0; i < 2; i++) fn(400000000L);
    printf("%s\n", path);
    return 0;
}
"#;
    let prog = build(&dir, "jit", "cc", src, &["-O2"]);
    let data = perf_record(&dir, &["-N"], &[prog.to_str().unwrap()]);
    let theirs = perf_report(&dir, &data, &["--sort", "sym"]);
    let ours = ruperf_report(&dir, &data, &["--sort", "sym"]);
    same_row(
        &ours,
        &theirs,
        "[.] jitted_countdown",
        "[.] jitted_countdown",
    );
    // Shown under perf's DSO name for JIT code.
    let full = ruperf_report(&dir, &data, &[]);
    assert!(full.contains("[JIT] tid "), "{full}");
    // ruperf record keeps the anonymous executable map, so both read its file the same way.
    let ours_data = dir.join("ruperf.data");
    ruperf()
        .args(["record", "-N", "-o"])
        .arg(&ours_data)
        .arg("--")
        .arg(&prog)
        .home(&dir)
        .assert()
        .success();
    let theirs = perf_report(&dir, &ours_data, &["--sort", "sym"]);
    let ours = ruperf_report(&dir, &ours_data, &["--sort", "sym"]);
    same_row(
        &ours,
        &theirs,
        "[.] jitted_countdown",
        "[.] jitted_countdown",
    );
    // The map files this test's programs wrote.
    for e in std::fs::read_dir("/tmp").into_iter().flatten().flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("perf-")
            && name.ends_with(".map")
            && std::fs::read_to_string(&p).is_ok_and(|t| t.ends_with(" jitted_countdown\n"))
        {
            let _ = std::fs::remove_file(&p);
        }
    }
}

#[test]
fn plt_stubs_are_named() {
    require!(have_perf(), "Debian's perf is needed");
    let dir = scratch("sym-plt");
    let src = r#"
#include <stdlib.h>
#include <stdio.h>
int main(void) {
    long n = 200000000L, s = 0;
    for (long i = 0; i < n; i++) s += labs(i - n / 2);
    printf("%ld\n", s);
    return 0;
}
"#;
    let prog = build(&dir, "plt", "cc", src, &["-O1", "-fno-builtin"]);
    let data = perf_record(&dir, &["-N"], &[prog.to_str().unwrap()]);
    let theirs = perf_report(&dir, &data, &[]);
    let ours = ruperf_report(&dir, &data, &[]);
    // perf 6.1 names the PLT samples after the last symbol before .plt (`_init`); perf 6.2
    // and later, like ruperf, after the stub: labs@plt. Same samples, same share.
    let p = pct_of(&theirs, "plt plt [.] _init")
        .or_else(|| pct_of(&theirs, "plt plt [.] labs@plt"))
        .unwrap_or_else(|| panic!("perf: {theirs}"));
    let o = pct_of(&ours, "plt plt [.] labs@plt").unwrap_or_else(|| panic!("ruperf: {ours}"));
    assert!((p - o).abs() <= 1.0, "labs@plt: ruperf {o}% vs perf {p}%");
    same_row(
        &ours,
        &theirs,
        "plt libc.so.6 [.] labs",
        "plt libc.so.6 [.] labs",
    );
}

#[test]
fn vdso_saved_at_record_time() {
    require!(have_perf(), "Debian's perf is needed");
    let dir = scratch("sym-vdso");
    let src = r#"
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec ts; long s = 0;
    for (long i = 0; i < 15000000L; i++) { clock_gettime(CLOCK_MONOTONIC, &ts); s += ts.tv_nsec & 1; }
    printf("%ld\n", s);
    return 0;
}
"#;
    let prog = build(&dir, "vd", "cc", src, &["-O2"]);
    let data = dir.join("r.data");
    ruperf()
        .args(["record", "-o"])
        .arg(&data)
        .arg("--")
        .arg(&prog)
        .home(&dir)
        .assert()
        .success();
    assert!(
        walk(&cache(&dir)).iter().any(|p| p.ends_with("vdso")),
        "the vdso image is cached"
    );
    let theirs = perf_report(&dir, &data, &[]);
    let ours = ruperf_report(&dir, &data, &[]);
    same_row(
        &ours,
        &theirs,
        "vd [vdso] [.] __vdso_clock_gettime",
        "vd [vdso] [.] __vdso_clock_gettime",
    );
}

#[test]
fn cpp_names_without_parameters() {
    require!(have_perf(), "Debian's perf is needed");
    require!(have("g++"), "g++ is needed");
    let dir = scratch("sym-cpp");
    let src = r#"
#include <cstdio>
namespace ns {
template <typename T> __attribute__((noinline)) T hot(T x, int n) {
    for (int i = 0; i < n; i++) x = x * 31 + i;
    return x;
}
struct W { __attribute__((noinline)) long run(long n) const; };
long W::run(long n) const { long s = 0; for (long i = 0; i < n; i++) s += hot<long>(i, 100); return s; }
}
int main() { ns::W w; std::printf("%ld\n", w.run(2000000)); }
"#;
    let prog = build(&dir, "cx", "g++", src, &["-O2"]);
    let data = perf_record(&dir, &["-N"], &[prog.to_str().unwrap()]);
    let theirs = perf_report(&dir, &data, &[]);
    let ours = ruperf_report(&dir, &data, &[]);
    same_row(
        &ours,
        &theirs,
        "cx cx [.] ns::hot<long>",
        "cx cx [.] ns::hot<long>",
    );
}

const RUST_INLINE: &str = r#"
use std::hint::black_box;
#[inline(always)]
fn mix(x: u64) -> u64 {
    x.wrapping_mul(6364136223846793005).rotate_left(17) ^ (x >> 7)
}
fn fold<F: Fn(u64) -> u64>(n: u64, f: F) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        acc = acc.wrapping_add(f(black_box(i)));
    }
    acc
}
#[inline(never)]
fn hash_work(n: u64) -> u64 {
    fold(n, |x| mix(mix(x)))
}
fn main() {
    println!("{}", hash_work(black_box(150_000_000u64)));
}
"#;

/// (file offset, size, vaddr) of the PT_LOAD segments, from `readelf -lW`.
fn load_segments(prog: &Path) -> Vec<(u64, u64, u64)> {
    let out = Command::new("readelf")
        .arg("-lW")
        .arg(prog)
        .output()
        .unwrap();
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (hex(c[1]), hex(c[4]), hex(c[2]))
        })
        .collect()
}

/// The inline chains `ruperf report --format script` prints for addresses of `prog`:
/// (file offset, names innermost first, the symbol's own name last).
fn script_chains(data: &Path, prog: &Path) -> Vec<(u64, Vec<String>)> {
    let out = ruperf()
        .args(["report", "--format", "script", "-i"])
        .arg(data)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let own = format!("({})", prog.display());
    let mut chains: Vec<(u64, Vec<String>)> = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('\t')) {
        let t = line.trim();
        let Some((addr, rest)) = t.split_once(' ') else {
            continue;
        };
        let name = |r: &str| r.rsplit_once('+').map(|(n, _)| n.to_owned());
        if let Some(r) = rest.strip_suffix(" (inlined)") {
            cur.extend(name(r));
        } else if !cur.is_empty() {
            if let (Some(r), Ok(a)) = (rest.strip_suffix(&own), u64::from_str_radix(addr, 16)) {
                cur.extend(name(r.trim_end()));
                if !chains.iter().any(|(x, _)| *x == a) {
                    chains.push((a, std::mem::take(&mut cur)));
                }
            }
            cur.clear();
        }
    }
    chains
}

/// Checks ruperf's inline chains against `addr2line -f -i -C` (the program perf runs).
fn chains_match_addr2line(data: &Path, prog: &Path, want_inner: &str) {
    let segs = load_segments(prog);
    let chains = script_chains(data, prog);
    assert!(
        chains.iter().any(|(_, c)| c[0].ends_with(want_inner)),
        "no inline chain starts at {want_inner}: {chains:?}"
    );
    for (off, names) in chains.iter().take(20) {
        let (s, _, v) = segs
            .iter()
            .find(|(s, n, _)| off >= s && *off < s + n)
            .expect("offset in a segment");
        let vaddr = off - s + v;
        let out = Command::new("addr2line")
            .args(["-f", "-i", "-C", "-e"])
            .arg(prog)
            .arg(format!("{vaddr:#x}"))
            .output()
            .unwrap();
        let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .step_by(2)
            .map(str::to_owned)
            .collect();
        // The last name is the symbol table's; the inlined ones must be addr2line's.
        assert_eq!(
            names[..names.len() - 1],
            theirs[..theirs.len().saturating_sub(1)],
            "inline chain at {vaddr:#x}"
        );
    }
}

#[test]
fn inline_chains_match_binutils_addr2line_for_c_and_rust() {
    require!(have_perf(), "Debian's perf is needed");
    require!(have("addr2line") && have("readelf"), "binutils are needed");
    require!(have("rustc"), "rustc is needed");
    let dir = scratch("sym-inline-chains");
    let c = build(
        &dir,
        "inl",
        "cc",
        INLINE_C,
        &["-O2", "-g", "-fno-omit-frame-pointer"],
    );
    let data = perf_record(&dir, &["-g", "-N"], &[c.to_str().unwrap()]);
    chains_match_addr2line(&data, &c, "mix");
    // A Rust release build: generics, a closure and an #[inline(always)] helper.
    let src = dir.join("rsinl.rs");
    std::fs::write(&src, RUST_INLINE).unwrap();
    let rs = dir.join("rsinl");
    run(Command::new("rustc")
        .args([
            "-C",
            "opt-level=3",
            "-g",
            "-C",
            "force-frame-pointers=yes",
            "-o",
        ])
        .arg(&rs)
        .arg(&src));
    let data = perf_record(&dir, &["-g", "-N"], &[rs.to_str().unwrap()]);
    chains_match_addr2line(&data, &rs, "rsinl::mix");
    // Source lines of the hot path equal perf's (which asks addr2line).
    let flat = ["--no-children", "-g", "none", "--sort", "srcline"];
    let theirs = perf_report(&dir, &data, &flat);
    let ours = ruperf_report(&dir, &data, &flat);
    let line = RUST_INLINE
        .lines()
        .position(|l| l.contains("wrapping_mul"))
        .unwrap()
        + 1;
    let row = format!("rsinl.rs:{line}");
    same_row(&ours, &theirs, &row, &row);
}

#[test]
fn symfs_holds_the_recorded_files() {
    require!(have_perf(), "Debian's perf is needed");
    let dir = scratch("sym-symfs");
    let prog = build(&dir, "hot", "cc", HOT_C, &["-O2"]);
    let data = perf_record(&dir, &["-N"], &[prog.to_str().unwrap()]);
    // The binary moves under a root, at its recorded path; the original is gone.
    let root = dir.join("root");
    let moved = root.join(prog.strip_prefix("/").unwrap());
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&prog, &moved).unwrap();
    let symfs = format!("--symfs={}", root.display());
    let theirs = perf_report(&dir, &data, &[&symfs]);
    let ours = ruperf_report(&dir, &data, &[&symfs]);
    let row = "hot hot [.] crunch";
    same_row(&ours, &theirs, row, row);
    let without = ruperf_report(&dir, &data, &[]);
    assert!(!without.contains("crunch"), "{without}");
}

#[test]
fn rebuilt_binary_resolves_from_the_build_id_cache() {
    require!(have_perf(), "Debian's perf is needed");
    let dir = scratch("sym-rebuilt");
    let prog = build(&dir, "hot", "cc", HOT_C, &["-O2"]);
    let data = dir.join("ruperf.data");
    ruperf()
        .args(["record", "-o"])
        .arg(&data)
        .arg("--")
        .arg(&prog)
        .home(&dir)
        .assert()
        .success();
    // Same path, other code (and build id): the recording's addresses mean nothing in it.
    let other = HOT_C.replace("static __attribute__((noinline)) unsigned long crunch", "static unsigned long pad0(void) { return 0; }\nstatic __attribute__((noinline)) unsigned long crunch");
    let other = format!("{other}\nvoid padding(void) {{ }}\n");
    build(&dir, "hot", "cc", &other, &["-O0", "-g"]);
    let row = "hot hot [.] crunch";
    let theirs = perf_report(&dir, &data, &[]);
    let ours = ruperf_report(&dir, &data, &[]);
    same_row(&ours, &theirs, row, row);
    // Without the cache ruperf names the problem instead of showing wrong names.
    let out = ruperf()
        .args(["report", "--stdio", "-i"])
        .arg(&data)
        .home(&dir.join("empty"))
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(err.contains("changed since the recording"), "{err}");
}
