// The delivery transports' tests live in this target (SMTP client, webhooks).
