//! Watching the desired-state directory for changes.
//!
//! The directory is watched, recursively, rather than each file: an editor's atomic save
//! (write a temporary file, rename it over the manifest) replaces the file, and a watch on
//! the old file would never hear of the new one. `--poll` uses notify's polling watcher
//! instead, for network mounts where the kernel sends no events.
//!
//! The notify callback runs on notify's own thread. It only filters and `try_send`s into a
//! bounded channel: when the channel is full the event is dropped, which loses nothing
//! because the loop re-reads every manifest on any change anyway.
//!
//! Ignored: access events (reading a manifest emits one, and the daemon reads them all on
//! every change), anything under `.git/`, and editor scratch files (`*.swp`, `*~`, `.#*`,
//! `#*#`, Vim's `4913` probe, JetBrains' `___jb_tmp___`).

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify::{Event, EventHandler, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// One filtered filesystem notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsEvent {
    /// Something under the directory changed; the paths that matter (empty: unknown, rescan).
    Changed(Vec<PathBuf>),
    /// The watcher reported an error (an overflowed kernel queue, a vanished directory).
    Error(String),
}

/// A running watch of the desired-state directory; dropping it stops watching.
pub struct DirWatcher {
    inner: Box<dyn Watcher + Send>,
    dir: PathBuf,
    poll: Option<Duration>,
    sender: mpsc::Sender<FsEvent>,
    /// The real path watched (symbolic links resolved), to notice a swapped link.
    watched: Option<PathBuf>,
}

impl std::fmt::Debug for DirWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatcher")
            .field("dir", &self.dir)
            .field("poll", &self.poll)
            .field("watched", &self.watched)
            .finish_non_exhaustive()
    }
}

impl DirWatcher {
    /// Starts watching `dir` recursively. `poll` selects the polling watcher with that
    /// interval.
    pub fn start(
        dir: &Path,
        poll: Option<Duration>,
        sender: mpsc::Sender<FsEvent>,
    ) -> notify::Result<DirWatcher> {
        let inner = watch(dir, poll, sender.clone())?;
        Ok(DirWatcher {
            inner,
            dir: dir.to_path_buf(),
            poll,
            watched: std::fs::canonicalize(dir).ok(),
            sender,
        })
    }

    /// Watches again when the directory now resolves to another real directory: a
    /// git-sync sidecar publishes each commit by swapping a symbolic link, and a kernel
    /// watch stays on the directory the link pointed to before. Returns whether it did.
    pub fn follow_links(&mut self) -> notify::Result<bool> {
        let Ok(current) = std::fs::canonicalize(&self.dir) else {
            return Ok(false);
        };
        if self.watched.as_ref() == Some(&current) {
            return Ok(false);
        }
        self.inner = watch(&self.dir, self.poll, self.sender.clone())?;
        self.watched = Some(current);
        Ok(true)
    }
}

fn watch(
    dir: &Path,
    poll: Option<Duration>,
    sender: mpsc::Sender<FsEvent>,
) -> notify::Result<Box<dyn Watcher + Send>> {
    let handler = Forwarder {
        root: dir.to_path_buf(),
        sender,
    };
    let mut inner: Box<dyn Watcher + Send> = match poll {
        Some(interval) => Box::new(PollWatcher::new(
            handler,
            notify::Config::default()
                .with_poll_interval(interval)
                .with_compare_contents(true),
        )?),
        None => Box::new(RecommendedWatcher::new(handler, notify::Config::default())?),
    };
    inner.watch(dir, RecursiveMode::Recursive)?;
    Ok(inner)
}

/// The notify callback: filter, then `try_send`.
struct Forwarder {
    root: PathBuf,
    sender: mpsc::Sender<FsEvent>,
}

impl EventHandler for Forwarder {
    fn handle_event(&mut self, event: notify::Result<Event>) {
        let message = match event {
            Ok(event) => match relevant_paths(&event, &self.root) {
                Some(paths) => FsEvent::Changed(paths),
                None => return,
            },
            Err(error) => FsEvent::Error(error.to_string()),
        };
        // Full: a batch is already pending, which is all the loop needs. Closed: the
        // daemon is stopping.
        let _ = self.sender.try_send(message);
    }
}

/// The paths of `event` that may change the desired state, or `None` when the event does
/// not matter. An event without paths (a rescan request) matters, with no paths.
pub fn relevant_paths(event: &Event, root: &Path) -> Option<Vec<PathBuf>> {
    if event.kind.is_access() {
        return None;
    }
    if event.paths.is_empty() || event.need_rescan() {
        return Some(Vec::new());
    }
    let paths: Vec<PathBuf> = event
        .paths
        .iter()
        .filter(|path| !is_ignored(path, root))
        .cloned()
        .collect();
    (!paths.is_empty()).then_some(paths)
}

/// Whether a change of `path` is noise: under `.git/` (below `root`) or an editor's
/// scratch file.
pub fn is_ignored(path: &Path, root: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    if relative
        .components()
        .any(|component| component == Component::Normal(OsStr::new(".git")))
    {
        return true;
    }
    let Some(name) = path.file_name().and_then(OsStr::to_str) else {
        return false;
    };
    name == "4913"
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.ends_with(".kate-swp")
        || name.ends_with('~')
        || name.starts_with(".#")
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
}

#[cfg(test)]
mod tests {
    use notify::EventKind;
    use notify::event::{AccessKind, CreateKind, ModifyKind, RenameMode};

    use super::*;

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths.iter().fold(Event::new(kind), |event, path| {
            event.add_path(PathBuf::from(path))
        })
    }

    #[test]
    fn editor_scratch_files_and_git_are_ignored() {
        let root = Path::new("/repo/desired-state");
        for ignored in [
            "/repo/desired-state/.git/index.lock",
            "/repo/desired-state/team/.git/HEAD",
            "/repo/desired-state/.model.yaml.swp",
            "/repo/desired-state/model.yaml~",
            "/repo/desired-state/.#model.yaml",
            "/repo/desired-state/#model.yaml#",
            "/repo/desired-state/4913",
            "/repo/desired-state/model.yaml___jb_tmp___",
        ] {
            assert!(is_ignored(Path::new(ignored), root), "{ignored}");
        }
        for kept in [
            "/repo/desired-state/model.yaml",
            "/repo/desired-state/team/other.yml",
            "/repo/desired-state/..data",
            "/repo/desired-state/.tmp-save-123",
            // `.git` above the watched directory is not a reason to ignore.
            "/repo/desired-state/sub",
        ] {
            assert!(!is_ignored(Path::new(kept), root), "{kept}");
        }
        assert!(!is_ignored(
            Path::new("/home/.git-tools/desired-state/m.yaml"),
            Path::new("/home/.git-tools/desired-state")
        ));
    }

    #[test]
    fn access_events_are_dropped_and_renames_kept() {
        let root = Path::new("/d");
        assert_eq!(
            relevant_paths(
                &event(EventKind::Access(AccessKind::Any), &["/d/m.yaml"]),
                root
            ),
            None
        );
        assert_eq!(
            relevant_paths(
                &event(EventKind::Create(CreateKind::File), &["/d/.m.yaml.swp"]),
                root
            ),
            None
        );
        // An atomic save: the temporary file is renamed over the manifest.
        assert_eq!(
            relevant_paths(
                &event(
                    EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                    &["/d/m.yaml.tmp", "/d/m.yaml"]
                ),
                root
            ),
            Some(vec![
                PathBuf::from("/d/m.yaml.tmp"),
                PathBuf::from("/d/m.yaml")
            ])
        );
        assert_eq!(
            relevant_paths(&event(EventKind::Other, &[]), root),
            Some(Vec::new())
        );
    }
}
