//! Man pages and completions come from the clap definition; the committed pages must match it.
//!
//! Regenerate the pages with `RUPERF_UPDATE_MAN=1 cargo test --test integration docs::`.

use std::path::Path;

use clap::CommandFactory;
use ruperf::cmd::Cli;

use crate::common::ruperf;

/// (file name, roff text) for ruperf.1 and one page per subcommand.
fn pages() -> Vec<(String, Vec<u8>)> {
    let top = Cli::command();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    clap_mangen::Man::new(top.clone()).render(&mut buf).unwrap();
    out.push(("ruperf.1".to_string(), buf));
    for sub in top.get_subcommands() {
        let name = format!("ruperf-{}", sub.get_name());
        let cmd = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("ruperf {}", sub.get_name()));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf).unwrap();
        out.push((format!("{name}.1"), buf));
    }
    out
}

#[test]
fn man_pages_are_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var("RUPERF_UPDATE_MAN").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, text) in pages() {
        let path = dir.join(&name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&text[..]) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "man pages out of date: {stale:?}; run `RUPERF_UPDATE_MAN=1 cargo test --test integration docs::` and commit man/"
    );
    let subs: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|s| format!("ruperf-{}.1", s.get_name()))
        .collect();
    for s in subs {
        assert!(dir.join(&s).exists(), "{s} missing");
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, needle) in [
        ("bash", "_ruperf()"),
        ("zsh", "#compdef ruperf"),
        ("fish", "complete -c ruperf"),
    ] {
        let out = ruperf().args(["completions", shell]).assert().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(text.contains(needle), "{shell}: {needle} missing");
        assert!(
            text.contains("stat") && text.contains("sysroot"),
            "{shell} lacks subcommands or global options"
        );
    }
    ruperf().args(["completions", "tcsh"]).assert().code(64);
}
