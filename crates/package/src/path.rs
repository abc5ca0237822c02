//! Safe names: role names and the canonical relative paths stored in a
//! package. Every path that reaches the file system goes through here.

/// Longest accepted role name, in bytes.
pub const MAX_ROLE_NAME: usize = 255;
/// Longest accepted path component, in bytes.
const MAX_COMPONENT: usize = 255;
/// Longest accepted relative path, in bytes.
const MAX_PATH: usize = 4096;

/// Checks that `name` can be a role name: one safe path component made of
/// ASCII letters, digits, `_`, `-` and `.`, not starting with `.`.
pub fn check_role_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_ROLE_NAME {
        return Err("it is longer than 255 bytes");
    }
    if name.starts_with('.') {
        return Err("it starts with `.`");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err("only ASCII letters, digits, `_`, `-` and `.` are allowed");
    }
    Ok(())
}

/// Checks that `path` is a canonical relative path: `/`-separated, no empty,
/// `.` or `..` components, not absolute, no backslash, no Windows drive
/// prefix, no control characters. The reason is phrased to follow the path
/// ("entry x {reason}").
pub fn check_rel_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("has an empty path");
    }
    if path.starts_with('/') {
        return Err("is an absolute path");
    }
    if path.contains('\\') {
        return Err("contains a backslash (a windows path separator)");
    }
    if has_drive_prefix(path) {
        return Err("starts with a windows drive letter");
    }
    if path.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    if path.len() > MAX_PATH {
        return Err("is longer than 4096 bytes");
    }
    for component in path.split('/') {
        match component {
            ".." => return Err("escapes the approot"),
            "" | "." => return Err("is not in canonical form"),
            c if c.len() > MAX_COMPONENT => return Err("has a component longer than 255 bytes"),
            _ => {}
        }
    }
    Ok(())
}

fn has_drive_prefix(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// The lexical normal form of an archive name, used to spot duplicates that
/// differ only by `./`, doubled or trailing slashes. `None` when the name
/// climbs out of its root with `..`.
pub fn normalize(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for component in name.split(['/', '\\']) {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("bin/app", Ok(())),
            ("a", Ok(())),
            ("weird name:with colon", Ok(())),
            ("", Err("has an empty path")),
            ("/etc/passwd", Err("is an absolute path")),
            ("../etc/passwd", Err("escapes the approot")),
            ("a/../../b", Err("escapes the approot")),
            ("a/./b", Err("is not in canonical form")),
            ("a//b", Err("is not in canonical form")),
            ("a/", Err("is not in canonical form")),
            (
                "a\\..\\b",
                Err("contains a backslash (a windows path separator)"),
            ),
            ("C:/Windows", Err("starts with a windows drive letter")),
            ("c:evil", Err("starts with a windows drive letter")),
            ("a\nb", Err("contains a control character")),
        ];
        for (path, expected) in cases {
            assert_eq!(check_rel_path(path), *expected, "{path:?}");
        }
    }

    #[test]
    fn role_names() {
        assert_eq!(check_role_name("WebRole1"), Ok(()));
        assert_eq!(check_role_name("Worker_Role-2.x"), Ok(()));
        assert_eq!(check_role_name(""), Err("it is empty"));
        assert_eq!(check_role_name(".."), Err("it starts with `.`"));
        assert_eq!(
            check_role_name("a/b"),
            Err("only ASCII letters, digits, `_`, `-` and `.` are allowed")
        );
    }

    #[test]
    fn normal_forms() {
        assert_eq!(normalize("a/./b").as_deref(), Some("a/b"));
        assert_eq!(normalize("a//b/").as_deref(), Some("a/b"));
        assert_eq!(normalize("a/x/../b").as_deref(), Some("a/b"));
        assert_eq!(normalize("../b"), None);
    }
}
