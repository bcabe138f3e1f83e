//! Build script: records the git commit the binary is built from, for `mlreg --version`.
//!
//! The build never depends on git: without a git checkout (a crate tarball, a wheel built
//! from an sdist) or without the `git` program, the commit is simply unknown. `dirty` is
//! added when tracked files differ from the commit.

use std::process::Command;

fn main() {
    // Re-run when the checked-out commit, the index or a source changes (a commit, a
    // checkout, an edit that makes the tree dirty); a changed source rebuilds the crate
    // anyway, so this costs one `git status`.
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .map(|text| text.trim().to_owned())
    };
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=Cargo.toml");
    // The git directory as git resolves it: `.git` is a file in a worktree, and a path
    // that does not exist would make cargo run this script (and rebuild the crate) always.
    for (flag, files) in [
        ("--git-dir", &["HEAD", "index"][..]),
        ("--git-common-dir", &["refs/heads", "packed-refs"][..]),
    ] {
        if let Some(dir) = git(&["rev-parse", flag]) {
            for file in files {
                let path = std::path::Path::new(&dir).join(file);
                if path.exists() {
                    println!("cargo::rerun-if-changed={}", path.display());
                }
            }
        }
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).filter(|commit| !commit.is_empty());
    let described = match commit {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|status| !status.is_empty());
            if dirty {
                format!("{commit}, dirty")
            } else {
                commit
            }
        }
        None => "commit unknown".to_owned(),
    };
    println!(
        "cargo::rustc-env=MLREG_LONG_VERSION={} ({described})",
        env!("CARGO_PKG_VERSION")
    );
}
