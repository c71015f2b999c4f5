//! Bearer tokens for the write endpoints (DESIGN §5): compared in constant time, never logged.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::error::ServerError;

/// The configured token (`[server] token`, a secret reference resolved at start).
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(redacted)")
    }
}

impl Token {
    /// The token; an empty one is refused (it would match an empty `Bearer`).
    pub fn new(secret: String) -> Option<Token> {
        let secret = secret.trim().to_owned();
        (!secret.is_empty()).then_some(Token(secret))
    }

    /// Whether `presented` is the token, in time that depends on the lengths only.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut difference = expected.len() ^ presented.len();
        for (i, byte) in expected.iter().enumerate() {
            difference |= usize::from(byte ^ presented.get(i).copied().unwrap_or(!byte));
        }
        difference == 0
    }
}

/// Checks the request's `Authorization: Bearer …` against `token`. Without a configured token the
/// server listens on loopback only (see [`crate::bind`]), and writes are open to local callers.
pub fn require(headers: &HeaderMap, token: Option<&Token>) -> Result<(), ServerError> {
    let Some(token) = token else {
        return Ok(());
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .ok_or(ServerError::Unauthorized(
            "this endpoint needs `Authorization: Bearer <token>` ([server] token)",
        ))?;
    if token.matches(presented.trim_ascii()) {
        Ok(())
    } else {
        Err(ServerError::Unauthorized(
            "the bearer token is not the server's",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let token = Token::new("s3cret".into()).unwrap();
        assert!(token.matches(b"s3cret"));
        assert!(!token.matches(b"s3cre"));
        assert!(!token.matches(b"s3crett"));
        assert!(!token.matches(b"S3cret"));
        assert!(!token.matches(b""));
        assert!(Token::new("  ".into()).is_none());
        assert_eq!(format!("{token:?}"), "Token(redacted)");
    }

    #[test]
    fn the_header_must_be_a_bearer_token() {
        let token = Token::new("s3cret".into()).unwrap();
        let mut headers = HeaderMap::new();
        assert!(require(&headers, Some(&token)).is_err());
        assert!(require(&headers, None).is_ok());
        headers.insert(AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(require(&headers, Some(&token)).is_err());
        headers.insert(AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(require(&headers, Some(&token)).is_err());
        headers.insert(AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(require(&headers, Some(&token)).is_ok());
    }
}
