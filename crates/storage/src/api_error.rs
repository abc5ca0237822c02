//! Azure error responses: status, error code, message, and the XML body
//! `<Error><Code>..</Code><Message>..</Message></Error>`.

use hyper::StatusCode;

/// An error the service reports to the client, in Azure's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Azure's error code, also sent as the `x-ms-error-code` header.
    pub code: &'static str,
    pub message: String,
    /// Extra detail for `AuthenticationFailed` (never contains the key).
    pub auth_detail: Option<String>,
}

/// What a SAS lacks for a request it does not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SasLacks {
    /// The service (account SAS `ss`, or another service's token).
    Service,
    /// The resource type (`srt`), or the token's resource is not this one.
    ResourceType,
    /// Every permission letter the operation accepts.
    Permission,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            auth_detail: None,
        }
    }

    pub fn auth_failed(detail: impl Into<String>) -> Self {
        ApiError {
            auth_detail: Some(detail.into()),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
            )
        }
    }

    /// A SAS that does not cover the request: Azure's
    /// `Authorization{Service,ResourceType,Permission}Mismatch`, by what
    /// the token lacks.
    pub fn sas_mismatch(lacks: SasLacks) -> Self {
        let (code, what) = match lacks {
            SasLacks::Service => ("AuthorizationServiceMismatch", "service"),
            SasLacks::ResourceType => ("AuthorizationResourceTypeMismatch", "resource type"),
            SasLacks::Permission => ("AuthorizationPermissionMismatch", "permission"),
        };
        Self::new(
            StatusCode::FORBIDDEN,
            code,
            format!("This request is not authorized to perform this operation using this {what}."),
        )
    }

    pub fn auth_mismatch() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AuthorizationFailure",
            "This request is not authorized to perform this operation.",
        )
    }

    pub fn no_auth() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        )
    }

    pub fn resource_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        )
    }

    pub fn container_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            "The specified container does not exist.",
        )
    }

    pub fn container_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "ContainerAlreadyExists",
            "The specified container already exists.",
        )
    }

    pub fn blob_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BlobNotFound",
            "The specified blob does not exist.",
        )
    }

    pub fn invalid_resource_name() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidResourceName",
            "The specifed resource name contains invalid characters.",
        )
    }

    pub fn out_of_range_input(what: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "OutOfRangeInput",
            format!("One of the request inputs is out of range: {what}."),
        )
    }

    pub fn condition_not_met() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
        )
    }

    pub fn not_modified() -> Self {
        Self::new(
            StatusCode::NOT_MODIFIED,
            "ConditionNotMet",
            "The condition specified using HTTP conditional header(s) is not met.",
        )
    }

    pub fn invalid_header(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidHeaderValue",
            format!("The value for one of the HTTP headers is not in the correct format: {name}."),
        )
    }

    pub fn missing_header(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingRequiredHeader",
            format!("An HTTP header that's mandatory for this request is not specified: {name}."),
        )
    }

    /// 411: Put Blob, Put Block and Append Block need `Content-Length`
    /// (a chunked body is refused, as Azure does).
    pub fn missing_content_length() -> Self {
        Self::new(
            StatusCode::LENGTH_REQUIRED,
            "MissingContentLengthHeader",
            "Content-Length header value must be specified.",
        )
    }

    pub fn invalid_query(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameterValue",
            format!(
                "Value for one of the query parameters specified in the request URI is invalid: {name}."
            ),
        )
    }

    pub fn invalid_xml() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidXmlDocument",
            "XML specified is not syntactically valid.",
        )
    }

    pub fn invalid_metadata() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidMetadata",
            "The metadata specified is invalid. It has characters that are not permitted.",
        )
    }

    /// 405, as Azure answers a verb the resource does not take.
    pub fn unsupported() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnsupportedHttpVerb",
            "The resource doesn't support the specified HTTP verb.",
        )
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "The server encountered an internal error. Please retry the request.",
        )
    }

    /// The XML body: the message carries the request id and time, as Azure's do.
    pub fn xml_body(&self, request_id: &str, time: &str) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>");
        s.push_str(self.code);
        s.push_str("</Code><Message>");
        s.push_str(&crate::xml::escape(&format!(
            "{}\nRequestId:{request_id}\nTime:{time}",
            self.message
        )));
        s.push_str("</Message>");
        if let Some(d) = &self.auth_detail {
            s.push_str("<AuthenticationErrorDetail>");
            s.push_str(&crate::xml::escape(d));
            s.push_str("</AuthenticationErrorDetail>");
        }
        s.push_str("</Error>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_code_message_request_id_and_detail() {
        let e = ApiError::auth_failed(
            "The MAC signature found in the HTTP request 'x' is not the same as any computed signature.",
        );
        let b = e.xml_body("abc", "2026-01-01T00:00:00.0000000Z");
        assert!(b.contains("<Code>AuthenticationFailed</Code>"));
        assert!(b.contains("RequestId:abc\nTime:2026-01-01T00:00:00.0000000Z</Message>"));
        assert!(b.contains(
            "<AuthenticationErrorDetail>The MAC signature found in the HTTP request &apos;x&apos;"
        ));
    }
}
