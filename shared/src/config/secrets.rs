//! Secrets come from the environment only, are declared once here and never print:
//! `Debug` shows which are set, never a value.

macro_rules! secrets {
    ($($(#[$doc:meta])* $field:ident = $var:literal;)+) => {
        /// API keys, tokens and signing keys, read from the environment.
        #[derive(Clone, Default)]
        pub struct Secrets {
            $($(#[$doc])* pub $field: Option<String>,)+
        }

        impl Secrets {
            pub fn from_env() -> Self {
                let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
                Self { $($field: var($var),)+ }
            }
        }

        impl std::fmt::Debug for Secrets {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Secrets")
                    $(.field(stringify!($field), &self.$field.as_ref().map(|_| "<redacted>")))+
                    .finish()
            }
        }
    };
}

secrets! {
    /// Verifies Calendly webhook signatures.
    calendly_signing_key = "CALENDLY_WEBHOOK_SIGNING_KEY";
    /// Signs the one-click unsubscribe links so nobody can unsubscribe someone else.
    unsubscribe_key = "CEP_UNSUBSCRIBE_KEY";
    /// Signs the prospect and pitch a booking link carries, so a booking made through
    /// someone else's link, or a hand-made one, is not credited to them.
    booking_link_key = "CEP_BOOKING_LINK_KEY";
    /// Authenticates the inbound-mail endpoint (replies and bounces).
    inbound_token = "CEP_INBOUND_TOKEN";
    /// Google Places API (New) key.
    places_api_key = "GOOGLE_PLACES_API_KEY";
    anthropic_api_key = "ANTHROPIC_API_KEY";
    openai_api_key = "OPENAI_API_KEY";
    firecrawl_api_key = "FIRECRAWL_API_KEY";
    /// The SMTP user's password (the user name is in `config.yaml`).
    smtp_password = "SMTP_PASSWORD";
    twilio_auth_token = "TWILIO_AUTH_TOKEN";
    /// Calendly personal access token, to manage the webhook subscription.
    calendly_api_token = "CALENDLY_API_TOKEN";
    stripe_api_key = "STRIPE_API_KEY";
    /// Verifies `Stripe-Signature` on the Stripe webhook.
    stripe_webhook_secret = "STRIPE_WEBHOOK_SECRET";
    /// OAuth access token for the Google Business Profile APIs.
    gbp_access_token = "GBP_ACCESS_TOKEN";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_a_value() {
        let s = Secrets {
            stripe_api_key: Some("sk_live_very_secret".into()),
            ..Default::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("very_secret"), "{shown}");
        assert!(
            shown.contains("stripe_api_key: Some(\"<redacted>\")"),
            "{shown}"
        );
        assert!(shown.contains("openai_api_key: None"), "{shown}");
    }
}
