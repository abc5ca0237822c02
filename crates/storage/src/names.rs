//! Azure's naming rules for containers, blobs and metadata.

use crate::api_error::ApiError;

/// Container names: 3–63 characters of lower-case letters, digits and
/// single hyphens, starting and ending with a letter or digit; `$root`,
/// `$logs` and `$web` are reserved names that are allowed.
pub fn check_container(name: &str) -> Result<(), ApiError> {
    if matches!(name, "$root" | "$logs" | "$web") {
        return Ok(());
    }
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_resource_name())
    }
}

/// Table names: 3–63 letters and digits, starting with a letter; `tables`
/// is reserved (any case).
pub fn check_table(name: &str) -> Result<(), ApiError> {
    let chars_ok = name.bytes().all(|b| b.is_ascii_alphanumeric())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if !chars_ok || name.eq_ignore_ascii_case("tables") {
        return Err(ApiError::new(
            hyper::StatusCode::BAD_REQUEST,
            "InvalidResourceName",
            "The specifed resource name contains invalid characters.",
        ));
    }
    if !(3..=63).contains(&name.len()) {
        return Err(ApiError::new(
            hyper::StatusCode::BAD_REQUEST,
            "OutOfRangeInput",
            "The specified resource name length is not within the permissible limits.",
        ));
    }
    Ok(())
}

/// Most `/`-separated path segments a blob name may have.
pub const MAX_BLOB_SEGMENTS: usize = 254;

/// Blob names: 1–1024 characters, at most 254 path segments.
pub fn check_blob(name: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    let segments = name.split('/').filter(|s| !s.is_empty()).count();
    if (1..=1024).contains(&n) && segments <= MAX_BLOB_SEGMENTS {
        Ok(())
    } else {
        Err(ApiError::invalid_resource_name())
    }
}

/// Metadata names are C# identifiers; names and values together stay
/// within 8 KiB.
pub fn check_metadata(pairs: &[(String, String)]) -> Result<(), ApiError> {
    let mut total = 0;
    for (k, v) in pairs {
        let mut chars = k.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ApiError::invalid_metadata());
        }
        total += k.len() + v.len();
    }
    if total > 8 * 1024 {
        return Err(ApiError::new(
            hyper::StatusCode::BAD_REQUEST,
            "MetadataTooLarge",
            "The size of the specified metadata exceeds the maximum size permitted.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names() {
        for good in ["abc", "a-b-c", "0abc", "$root", "$web", &"a".repeat(63)] {
            assert!(check_container(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a--b",
            "a_b",
            "a.b",
            "$other",
            &"a".repeat(64),
        ] {
            assert_eq!(
                check_container(bad).unwrap_err().code,
                "InvalidResourceName",
                "{bad}"
            );
        }
    }

    #[test]
    fn table_names() {
        for good in ["abc", "Orders2024", &"a".repeat(63)] {
            assert!(check_table(good).is_ok(), "{good}");
        }
        for (bad, code) in [
            ("ab", "OutOfRangeInput"),
            (&"a".repeat(64) as &str, "OutOfRangeInput"),
            ("1abc", "InvalidResourceName"),
            ("a-bc", "InvalidResourceName"),
            ("a_bc", "InvalidResourceName"),
            ("Tables", "InvalidResourceName"),
            ("tables", "InvalidResourceName"),
            ("", "InvalidResourceName"),
            ("ab\u{e9}c", "InvalidResourceName"),
        ] {
            assert_eq!(check_table(bad).unwrap_err().code, code, "{bad}");
        }
    }

    #[test]
    fn blob_names() {
        assert!(check_blob("dir/sub/ü file.txt").is_ok());
        assert!(check_blob(&"é".repeat(1024)).is_ok());
        assert!(check_blob(&"a".repeat(1025)).is_err());
        assert!(check_blob("").is_err());
        assert!(check_blob(&"a/".repeat(254)).is_ok());
        assert!(check_blob(&"a/".repeat(255)).is_err());
    }

    #[test]
    fn metadata_names() {
        let m = |k: &str| vec![(k.to_string(), "v".to_string())];
        assert!(check_metadata(&m("Color_2")).is_ok());
        assert!(check_metadata(&m("_x")).is_ok());
        for bad in ["2x", "a-b", "a b", ""] {
            assert_eq!(
                check_metadata(&m(bad)).unwrap_err().code,
                "InvalidMetadata",
                "{bad}"
            );
        }
        assert_eq!(
            check_metadata(&m(&"k".repeat(9000))).unwrap_err().code,
            "MetadataTooLarge"
        );
    }
}
