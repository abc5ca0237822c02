//! Query-string options of table queries: `$top`, `$filter`, `$select`
//! and the continuation tokens (`NextTableName`, `NextPartitionKey`,
//! `NextRowKey`). Pure parsers over the decoded query, fuzzed.

use hyper::StatusCode;

use super::edm::invalid_input;
use super::filter::Filter;
use super::keys::decode_token;
use crate::api_error::ApiError;
use crate::request::Query;

/// Most results one query page returns.
pub const MAX_TOP: usize = 1000;

/// `$top`: 1 to 1000, 1000 when absent.
pub fn top(q: &Query) -> Result<usize, ApiError> {
    match q.get("$top") {
        None => Ok(MAX_TOP),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => Ok(n),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidInput",
                "One of the request inputs is not valid: $top must be between 1 and 1000.",
            )),
        },
    }
}

/// `$filter`, parsed; `None` when absent or blank.
pub fn filter(q: &Query) -> Result<Option<Filter>, ApiError> {
    match q.get("$filter") {
        None => Ok(None),
        Some(f) if f.trim().is_empty() => Ok(None),
        Some(f) => Filter::parse(f).map(Some).map_err(|e| {
            invalid_input(&format!(
                "One of the request inputs is not valid: the $filter does not parse ({}).",
                e.0
            ))
        }),
    }
}

/// `$select`: property names, or `None` for all.
pub fn select(q: &Query) -> Option<Vec<String>> {
    let s = q.get("$select")?.trim();
    if s.is_empty() || s == "*" {
        return None;
    }
    Some(
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
    )
}

/// A continuation token parameter (`NextTableName`, `NextPartitionKey`,
/// `NextRowKey`), decoded; one that does not decode is 400 `InvalidInput`.
pub fn token(q: &Query, name: &str) -> Result<Option<String>, ApiError> {
    match q.get(name) {
        None => Ok(None),
        Some(t) => decode_token(t).map(Some).ok_or_else(|| {
            invalid_input(&format!("One of the request inputs is not valid: {name}."))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_or_get_invalid_input() {
        let q = |s: &str| Query::parse(Some(s));
        assert_eq!(top(&q("")), Ok(1000));
        assert_eq!(top(&q("$top=7")), Ok(7));
        for bad in ["$top=0", "$top=1001", "$top=x", "$top=-1"] {
            assert_eq!(top(&q(bad)).unwrap_err().code, "InvalidInput", "{bad}");
        }
        assert_eq!(
            select(&q("$select=A,%20B,,")),
            Some(vec!["A".into(), "B".into()])
        );
        assert_eq!(select(&q("$select=*")), None);
        assert!(filter(&q("$filter=")).unwrap().is_none());
        assert_eq!(
            filter(&q("$filter=A%20eq")).unwrap_err().code,
            "InvalidInput"
        );
        assert_eq!(
            token(&q("NextTableName=%21%21"), "NextTableName")
                .unwrap_err()
                .code,
            "InvalidInput"
        );
        assert_eq!(token(&q(""), "NextTableName"), Ok(None));
    }
}
