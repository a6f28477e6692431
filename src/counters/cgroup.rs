//! cgroups for `stat -G` and `--for-each-cgroup`, resolved as perf resolves them: a name is a
//! path relative to the cgroup mount perf uses (a v1 hierarchy with the `perf_event`
//! controller if one is mounted, else the cgroup2 mount), found in /proc/self/mountinfo.

use std::fs::File;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::sysroot::Sysroot;

/// The mount point perf would use, from mountinfo text.
pub fn mount_point(mountinfo: &str) -> Option<PathBuf> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mnt = left.split_whitespace().nth(4);
        let mut r = right.split_whitespace();
        let (fstype, _src, opts) = (r.next(), r.next(), r.next().unwrap_or(""));
        match (fstype, mnt) {
            (Some("cgroup"), Some(m)) if opts.split(',').any(|o| o == "perf_event") => {
                return Some(PathBuf::from(m));
            }
            (Some("cgroup2"), Some(m)) if v2.is_none() => v2 = Some(PathBuf::from(m)),
            _ => {}
        }
    }
    v2
}

/// A cgroup opened for counting: its name as given and its directory.
#[derive(Debug)]
pub struct Cgroup {
    /// The name as the user gave it (perf prints it as given).
    pub name: String,
    /// The open directory (its descriptor is perf_event_open's pid).
    pub dir: File,
}

/// Opens cgroup `name` under the mount perf uses.
pub fn open(root: &Sysroot, name: &str) -> Result<Cgroup> {
    let info = std::fs::read_to_string(root.path("/proc/self/mountinfo")).unwrap_or_default();
    let mnt = mount_point(&info).ok_or_else(|| {
        Error::Unavailable(format!(
            "-G {name}: no cgroup2 (or perf_event cgroup v1) mount found in /proc/self/mountinfo; mount one (mount -t cgroup2 none /sys/fs/cgroup)"
        ))
    })?;
    let dir = root.path(mnt.join(name.trim_start_matches('/')));
    let f = File::open(&dir)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_dir()));
    f.map(|dir| Cgroup {
        name: name.to_string(),
        dir,
    })
    .ok_or_else(|| {
        Error::Usage(format!(
            "-G {name}: no access to cgroup {} (list them with `ls {}`)",
            dir.display(),
            root.path(&mnt).display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
";

    #[test]
    fn perf_event_v1_wins_else_cgroup2() {
        assert_eq!(
            mount_point(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let with_v1 = format!(
            "{HYBRID}28 25 0:25 / /sys/fs/cgroup/perf_event rw - cgroup cgroup rw,perf_event\n"
        );
        assert_eq!(
            mount_point(&with_v1),
            Some(PathBuf::from("/sys/fs/cgroup/perf_event"))
        );
        assert_eq!(mount_point("1 2 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn names_resolve_under_the_mount_of_a_sysroot() {
        let t = crate::energy::fake::FakeTree::new("cgroup");
        t.write("/proc/self/mountinfo", HYBRID);
        std::fs::create_dir_all(t.path("/sys/fs/cgroup/unified/app/web")).unwrap();
        let root = t.sysroot();
        assert_eq!(open(&root, "app/web").unwrap().name, "app/web");
        assert!(open(&root, "/").is_ok(), "the root cgroup");
        let e = open(&root, "nope").unwrap_err().to_string();
        assert!(
            e.contains("no access to cgroup") && e.contains("unified/nope"),
            "{e}"
        );
    }
}
