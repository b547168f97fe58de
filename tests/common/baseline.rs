//! An older livestreamd to measure against in the same run: built once from
//! a git revision of this repository (a `git archive` of it) into
//! target/latency-baseline/REV, release profile, like the benchmarks' own.

use std::path::{Path, PathBuf};

/// The last build before issue 23's work on the media path: passthrough was
/// `ffmpeg -c:v copy`, the hub waited for the next frame, and every encoder
/// decoded the camera itself.
pub const BEFORE_ISSUE_23: &str = "ee43201";

/// The binary of `rev`, built if it is not there yet.
pub fn build(rev: &str) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/latency-baseline").join(rev);
    let bin = dir.join("target/release/livestreamd");
    if bin.exists() {
        return Ok(bin);
    }
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    eprintln!("building the baseline {rev} in {}", dir.display());
    let archive = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "git -C '{}' archive '{rev}' | tar -x -C '{}'",
            root.display(),
            src.display()
        ))
        .status()
        .map_err(|e| e.to_string())?;
    if !archive.success() {
        return Err(format!("git archive {rev} failed"));
    }
    let built = std::process::Command::new("cargo")
        .args(["build", "--release", "--locked", "--bin", "livestreamd"])
        .arg("--target-dir")
        .arg(dir.join("target"))
        .current_dir(&src)
        .status()
        .map_err(|e| e.to_string())?;
    if !built.success() || !bin.exists() {
        return Err(format!("building {rev} failed"));
    }
    Ok(bin)
}
