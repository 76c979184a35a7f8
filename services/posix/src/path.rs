//! Paths as a process names them: joined to its working directory (or a
//! directory descriptor's path) before the VFS, which resolves `.`, `..`
//! and symbolic links, sees them.

use alloc::string::String;

/// `path` joined to the directory `base` (absolute); `path` absolute is
/// taken as it is.
pub fn join(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        return String::from(path);
    }
    let mut out = String::from(base);
    if !out.ends_with('/') {
        out.push('/');
    }
    out.push_str(path);
    out
}

/// `path` (absolute) without `.`, `..` and repeated slashes, lexically:
/// what a working directory is kept as (the VFS checked it exists).
pub fn normalize(path: &str) -> String {
    let mut parts: alloc::vec::Vec<&str> = alloc::vec::Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = String::new();
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_absolute_ones_stand() {
        assert_eq!(join("/", "etc/passwd"), "/etc/passwd");
        assert_eq!(join("/tmp", "a"), "/tmp/a");
        assert_eq!(join("/tmp/", "../a"), "/tmp/../a");
        assert_eq!(join("/tmp", "/bin/sh"), "/bin/sh");
    }

    #[test]
    fn normal_forms() {
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("/tmp/../etc//./x/"), "/etc/x");
        assert_eq!(normalize("/.."), "/");
    }
}
