//! A blocking client of the management API, for the CLI.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::token::Token;
use crate::wire::ErrorBody;

/// Talks to one fabric's management API.
pub struct Client {
    base: String,
    token: Token,
    agent: ureq::Agent,
}

impl Client {
    /// `base` is the API's root URL, e.g. `http://127.0.0.1:7070`.
    pub fn new(base: &str, token: Token) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build()
            .new_agent();
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            agent,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .header("authorization", self.bearer())
            .call();
        self.finish(&url, response)
    }

    /// `GET path` answered with text (not JSON).
    pub fn get_text(&self, path: &str) -> Result<String, ApiError> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .header("authorization", self.bearer())
            .call();
        let body = self.body(&url, response)?;
        String::from_utf8(body).map_err(|e| ApiError::Protocol {
            url,
            reason: e.to_string(),
        })
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let url = self.url(path);
        let response = self
            .agent
            .delete(&url)
            .header("authorization", self.bearer())
            .call();
        self.finish(&url, response)
    }

    pub fn put_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let url = self.url(path);
        let json = serde_json::to_vec(body).map_err(|e| ApiError::Protocol {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let response = self
            .agent
            .put(&url)
            .header("authorization", self.bearer())
            .content_type("application/json")
            .send(&json[..]);
        self.finish(&url, response)
    }

    pub fn post_bytes<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> Result<T, ApiError> {
        let url = self.url(path);
        let response = self
            .agent
            .post(&url)
            .header("authorization", self.bearer())
            .content_type("application/octet-stream")
            .send(body);
        self.finish(&url, response)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.secret())
    }

    fn finish<T: DeserializeOwned>(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ApiError> {
        let body = self.body(url, response)?;
        let body = if body.is_empty() { &b"null"[..] } else { &body };
        serde_json::from_slice(body).map_err(|e| ApiError::Protocol {
            url: url.to_owned(),
            reason: e.to_string(),
        })
    }

    /// The body of a 2xx answer; an error answer as its error.
    fn body(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, ApiError> {
        let mut response = response.map_err(|e| ApiError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| ApiError::Protocol {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        if status == 401 {
            return Err(ApiError::Unauthorized {
                url: self.base.clone(),
            });
        }
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => ApiError::Remote {
                    status,
                    code: e.code,
                    message: e.message,
                },
                Err(_) => ApiError::Protocol {
                    url: url.to_owned(),
                    reason: format!("status {status}: {}", String::from_utf8_lossy(&body)),
                },
            });
        }
        Ok(body)
    }
}
