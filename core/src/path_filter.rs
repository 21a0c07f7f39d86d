//! Partial fetch: which tracked files a clone, checkout, fetch or pull downloads
//! (`dits.fetchInclude`, `dits.fetchExclude`). Both are comma-separated lists of gitignore-style
//! patterns, matched against the path from the top of the repository: `*.mp4` matches at any
//! depth, `footage/day1/*` from the top, and a pattern that names a folder (`textures`,
//! `textures/`) takes everything under it. A file is wanted if it matches an include (or
//! there is none) and no exclude. Matching is git's own (`gix-glob`, already in the tree
//! through gix), so a pattern means here what it means in `.gitignore`.

use gix_glob::pattern::Case;
use gix_glob::wildmatch::Mode;
use gix_glob::Pattern;

#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    include: Vec<(String, Pattern)>,
    exclude: Vec<(String, Pattern)>,
}

fn parse(list: &str) -> Vec<(String, Pattern)> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            Some((
                p.to_owned(),
                Pattern::from_bytes_without_negation(p.as_bytes())?,
            ))
        })
        .collect()
}

/// Whether `pattern` matches `path` or one of the folders it is in.
fn matches(pattern: &Pattern, path: &[u8]) -> bool {
    let path = path.strip_prefix(b"/").unwrap_or(path);
    let basename = |p: &[u8]| p.iter().rposition(|&b| b == b'/').map(|i| i + 1);
    let at = |p: &[u8], is_dir: bool| {
        pattern.matches_repo_relative_path(
            p.into(),
            basename(p),
            Some(is_dir),
            Case::Sensitive,
            Mode::NO_MATCH_SLASH_LITERAL,
        )
    };
    at(path, false)
        || path
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'/')
            .any(|(i, _)| at(&path[..i], true))
}

impl PathFilter {
    /// From the two comma-separated lists (either may be empty).
    pub fn new(include: &str, exclude: &str) -> PathFilter {
        PathFilter {
            include: parse(include),
            exclude: parse(exclude),
        }
    }

    /// Whether every file is wanted (no pattern at all).
    pub fn is_everything(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether the file at `path` (from the top of the repository, `/`-separated) is wanted.
    pub fn wants(&self, path: &[u8]) -> bool {
        (self.include.is_empty() || self.include.iter().any(|(_, p)| matches(p, path)))
            && !self.exclude.iter().any(|(_, p)| matches(p, path))
    }

    /// The patterns, as a user would write them (for messages).
    pub fn describe(&self) -> String {
        let list = |v: &[(String, Pattern)]| {
            v.iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        match (self.include.is_empty(), self.exclude.is_empty()) {
            (true, true) => "every file".into(),
            (false, true) => format!("dits.fetchInclude={}", list(&self.include)),
            (true, false) => format!("dits.fetchExclude={}", list(&self.exclude)),
            (false, false) => format!(
                "dits.fetchInclude={} dits.fetchExclude={}",
                list(&self.include),
                list(&self.exclude)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_mean_what_they_mean_in_gitignore() {
        let f = PathFilter::new("*.mp4, textures, footage/day1/*", "");
        for yes in [
            "a.mp4",
            "deep/down/b.mp4",
            "textures/stone.png",
            "art/textures/wood.png",
            "footage/day1/a.mov",
        ] {
            assert!(f.wants(yes.as_bytes()), "{yes}");
        }
        for no in [
            "a.mov",
            "footage/day2/a.mov",
            "footage/a.mov",
            "texturesx/a.png",
        ] {
            assert!(!f.wants(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn excludes_win_and_an_empty_filter_wants_everything() {
        let f = PathFilter::new("footage/", "*.wav");
        assert!(f.wants(b"footage/a.mov"));
        assert!(!f.wants(b"footage/a.wav"));
        assert!(!f.wants(b"other/a.mov"));
        let only_exclude = PathFilter::new("", "raw/");
        assert!(only_exclude.wants(b"edit/a.mov"));
        assert!(!only_exclude.wants(b"raw/a.mov"));
        assert!(PathFilter::new(" , ", "").is_everything());
        assert!(PathFilter::default().wants(b"anything/at/all"));
        assert_eq!(
            PathFilter::new("a/, *.mp4", "").describe(),
            "dits.fetchInclude=a/,*.mp4"
        );
    }
}
