//! The channels: email through SMTP (`lettre`), and a Slack-compatible incoming webhook.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use model::Config;

use super::text::Message;

/// How long one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where alerts go, resolved from `[alerts]` (its secrets read once, never logged).
pub struct Notifier {
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Option<Mailbox>,
    slack: Option<reqwest::Url>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SMTP URL and the webhook URL hold credentials: neither is shown.
        f.debug_struct("Notifier")
            .field("email", &self.smtp.is_some())
            .field("slack", &self.slack.is_some())
            .finish()
    }
}

impl Notifier {
    /// The channels `[alerts]` configures; an error names the key (never the secret's value).
    pub fn from_config(config: &Config) -> Result<Notifier, String> {
        let Some(alerts) = &config.alerts else {
            return Ok(Notifier {
                smtp: None,
                from: None,
                slack: None,
                http: reqwest::Client::new(),
            });
        };
        let smtp = match &alerts.smtp_url {
            None => None,
            Some(secret) => {
                let url = secret
                    .resolve()
                    .map_err(|e| format!("alerts.smtp_url: {e}"))?;
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url).map_err(|e| {
                    format!("alerts.smtp_url: not an SMTP URL such as smtp://host:25, smtp://user:password@host:587?tls=required or smtps://host:465 ({e})")
                })?;
                Some(builder.timeout(Some(SEND_TIMEOUT)).build())
            }
        };
        let from = alerts
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("alerts.from: `{}` is not an address ({e})", alerts.from))?;
        let slack = match &alerts.slack_webhook {
            None => None,
            Some(secret) => {
                let url = secret
                    .resolve()
                    .map_err(|e| format!("alerts.slack_webhook: {e}"))?;
                Some(reqwest::Url::parse(url.trim()).map_err(|_| {
                    "alerts.slack_webhook: the secret is not an http(s) URL".to_owned()
                })?)
            }
        };
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .build()
            .map_err(|e| format!("the webhook client: {e}"))?;
        Ok(Notifier {
            smtp,
            from: Some(from),
            slack,
            http,
        })
    }

    /// Whether email is configured.
    pub fn has_email(&self) -> bool {
        self.smtp.is_some()
    }

    /// Whether a webhook is configured.
    pub fn has_slack(&self) -> bool {
        self.slack.is_some()
    }

    /// Sends `message` to `recipients`: a plain-text part, and an HTML part with its images
    /// inline (`cid:`). `id` (the alert's key) becomes the Message-ID, so a receiving system can
    /// tell a resend from a new alert.
    pub async fn email(
        &self,
        id: &str,
        recipients: &[String],
        message: &Message,
    ) -> Result<(), String> {
        let (Some(smtp), Some(from)) = (&self.smtp, &self.from) else {
            return Err("no SMTP server configured ([alerts] smtp_url)".into());
        };
        let mut builder = lettre::Message::builder()
            .from(from.clone())
            .subject(message.subject.clone())
            .message_id(Some(message_id(id, from)));
        if recipients.is_empty() {
            return Err("no recipient".into());
        }
        for r in recipients {
            let to = r
                .parse::<Mailbox>()
                .map_err(|e| format!("recipient `{r}`: {e}"))?;
            builder = builder.to(to);
        }
        let mut related = MultiPart::related().singlepart(SinglePart::html(message.html.clone()));
        for (cid, png) in &message.images {
            let png_type = ContentType::parse("image/png").map_err(|e| e.to_string())?;
            related =
                related.singlepart(Attachment::new_inline(cid.clone()).body(png.clone(), png_type));
        }
        let body = MultiPart::alternative()
            .singlepart(SinglePart::plain(message.text.clone()))
            .multipart(related);
        let email = builder
            .multipart(body)
            .map_err(|e| format!("building the email: {e}"))?;
        smtp.send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }

    /// Posts `message` to the webhook as `{"text": …}` (Slack, Mattermost, Teams workflows).
    pub async fn slack(&self, message: &Message) -> Result<(), String> {
        let Some(url) = &self.slack else {
            return Err("no webhook configured ([alerts] slack_webhook)".into());
        };
        let body =
            serde_json::json!({ "text": format!("*{}*\n{}", message.subject, message.text) });
        let response = self
            .http
            .post(url.clone())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            // The URL is a secret: reqwest's error would name it.
            .map_err(|e| format!("webhook: {}", e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {status}"))
        }
    }
}

/// `<key-digest@sender-domain>`: the same alert always has the same Message-ID.
fn message_id(key: &str, from: &Mailbox) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("<{hex}.alert@{}>", from.email.domain())
}
