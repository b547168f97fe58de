//! Names the build in `livestreamd --version`: the commit and the target.
//!
//! The commit comes from `LIVESTREAMD_COMMIT` when set (a Buildroot or Yocto
//! recipe building from a tarball knows it), else from git when this very
//! directory is the top of a git checkout (not when a tarball was unpacked
//! inside some other repository, such as a Buildroot tree), else "unknown".
//!
//! It also records when the source is from (`SOURCE_DATE_EPOCH`, else the
//! commit's time, else now): a clock earlier than that is not a plausible
//! time (src/timekeep.rs).

use std::path::Path;
use std::process::Command;

fn git(dir: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LIVESTREAMD_COMMIT");
    let given = std::env::var("LIVESTREAMD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let ours = git(&dir, &["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        Path::new(&top).canonicalize().ok() == Path::new(&dir).canonicalize().ok()
    });
    let commit = given
        .or_else(|| {
            ours.then(|| git(&dir, &["rev-parse", "--short=12", "HEAD"]))
                .flatten()
        })
        .unwrap_or_else(|| "unknown".into());
    if ours {
        // Built again when HEAD moves: HEAD itself, the branch it names, packed refs.
        let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
        watched.extend(git(&dir, &["symbolic-ref", "-q", "HEAD"]));
        for name in watched {
            if let Some(path) = git(
                &dir,
                &["rev-parse", "--path-format=absolute", "--git-path", &name],
            ) {
                if Path::new(&path).exists() {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
        }
    }
    println!("cargo:rustc-env=LIVESTREAMD_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let built = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or_else(|| {
            ours.then(|| git(&dir, &["log", "-1", "--format=%ct"]))
                .flatten()
                .and_then(|t| t.parse().ok())
        })
        .unwrap_or_else(now);
    println!("cargo:rustc-env=LIVESTREAMD_SOURCE_UNIX={built}");
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    println!("cargo:rustc-env=LIVESTREAMD_TARGET={target}");
}
