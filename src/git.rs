//! The one thing mlreg asks git: the commit the manifests are checked out at, recorded in
//! the audit tags (`mlreg.transition`, `mlreg.alias.<alias>`) so a registry change can be
//! traced to its commit.
//!
//! Through the `git` binary rather than a git library: it honours the user's configuration
//! (safe directories, worktrees, alternates) exactly as `git log` would, and a missing
//! binary or a directory outside any repository simply means "no commit".

use std::path::Path;
use std::process::Stdio;

/// The commit of the checkout `dir` lies in (`HEAD`), when there is one.
pub async fn head_commit(dir: &Path) -> Option<String> {
    let output = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        // Never wait on a prompt, and keep git's complaints out of mlreg's output.
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!commit.is_empty()).then_some(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_commit_outside_a_repository() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(head_commit(dir.path()).await, None);
    }
}
