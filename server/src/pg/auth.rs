//! Who may connect to the PostgreSQL endpoint: with `[server] pg_password` set, user `doracost`
//! with that password, checked with SCRAM-SHA-256 (the password never crosses the wire); without
//! it, anyone on this machine (the endpoint then listens on loopback only, see [`super::bind`]).
//! Each connection gets a startup handler of its own: pgwire before 0.42 kept the SCRAM state in
//! the handler, so one shared by two connections could mix their exchanges.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::pgwire;
use futures::Sink;
use pgwire::api::ClientInfo;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{
    SCRAM_ITERATIONS, ScramAuth, gen_salted_password, random_nonce,
};
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

/// The one user of the endpoint (DESIGN §5).
pub const USER: &str = "doracost";

/// `[server] pg_password`, resolved at start and kept only salted (SCRAM's stored form).
#[derive(Clone)]
pub struct PgPassword {
    salt: Vec<u8>,
    salted: Vec<u8>,
}

impl Debug for PgPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgPassword(redacted)")
    }
}

impl PgPassword {
    /// The password `secret`, salted with a salt of this process; an empty one is refused.
    pub fn new(secret: &str) -> Option<PgPassword> {
        let secret = secret.trim();
        if secret.is_empty() {
            return None;
        }
        // 18 random bytes, base64: any bytes make a salt.
        let salt = random_nonce().into_bytes();
        Some(PgPassword {
            salted: gen_salted_password(secret, &salt, SCRAM_ITERATIONS),
            salt,
        })
    }
}

/// The stored password of user `doracost`, for SCRAM.
#[derive(Debug)]
struct Users {
    password: PgPassword,
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        if login.user() != Some(USER) {
            // The same words as a wrong password: whether a user exists is not told.
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_owned(),
                "28P01".to_owned(),
                format!(
                    "password authentication failed for user \"{}\" (the user is `{USER}`)",
                    login.user().unwrap_or("")
                ),
            ))));
        }
        Ok(Password::new(
            Some(self.password.salt.clone()),
            self.password.salted.clone(),
        ))
    }
}

/// A connection's startup: SCRAM-SHA-256 with a password, none without; with TLS configured, a
/// client that did not negotiate it is refused before anything else.
pub(super) struct Startup {
    method: Method,
    tls_required: bool,
}

enum Method {
    Scram(Box<SASLAuthStartupHandler<DefaultServerParameterProvider>>),
    Open(Open),
}

/// No password: loopback only.
pub(super) struct Open;

impl NoopStartupHandler for Open {}

impl Startup {
    /// A fresh handler for one connection.
    pub(super) fn new(password: Option<&PgPassword>, tls_required: bool) -> Startup {
        let method = match password {
            None => Method::Open(Open),
            Some(password) => {
                let users = Arc::new(Users {
                    password: password.clone(),
                });
                let mut parameters = DefaultServerParameterProvider::default();
                parameters.is_superuser = false;
                parameters.default_transaction_read_only = true;
                Method::Scram(Box::new(
                    SASLAuthStartupHandler::new(Arc::new(parameters))
                        .with_scram(ScramAuth::new(users)),
                ))
            }
        };
        Startup {
            method,
            tls_required,
        }
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.tls_required && !client.is_secure() {
            // 28000: invalid_authorization_specification, as PostgreSQL answers a `hostssl` miss.
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_owned(),
                "28000".to_owned(),
                "this endpoint accepts TLS connections only: connect with sslmode=require (or verify-full)".to_owned(),
            ))));
        }
        match &self.method {
            Method::Scram(handler) => handler.on_startup(client, message).await,
            Method::Open(handler) => handler.on_startup(client, message).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_kept_salted_and_never_shown() {
        let password = PgPassword::new("s3cret\n").unwrap();
        assert_eq!(format!("{password:?}"), "PgPassword(redacted)");
        assert_ne!(password.salted, b"s3cret");
        assert_eq!(
            password.salted,
            gen_salted_password("s3cret", &password.salt, SCRAM_ITERATIONS)
        );
        assert!(PgPassword::new("  ").is_none());
    }
}
