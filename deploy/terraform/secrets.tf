# Secrets Manager holds every secret setting. Terraform creates the secrets but never their
# values, so no secret value is in the Terraform state: an operator writes them once with
#   aws secretsmanager put-secret-value --secret-id <arn> --secret-string '<value>'
# before the first deployment (see ../README.md). ECS injects them as environment variables.

locals {
  # Setting name -> description. Required: the tasks cannot start until each holds a value.
  required_secrets = {
    # Value forms: docs/operations/configuration.md.
    JWT_SECRET            = "HS256 key of access tokens: 32+ random characters"
    DATA_ENCRYPTION_KEY   = "Key material for secrets at rest (TOTP seeds, webhook secrets); never change it without re-encrypting"
    DATABASE_URL          = "postgresql URL of the application role on the primary, with ?ssl=require"
    DATABASE_REPLICA_URLS = "Comma list of replica URLs, same form as DATABASE_URL (v1.1)"
    REDIS_URL             = "rediss URL with the AUTH token, to the cluster configuration endpoint"
  }

  optional_secrets = merge(
    var.enable_sentry ? { SENTRY_DSN = "Sentry DSN (error reports, PII scrubbed)" } : {},
    var.enable_smtp ? { SMTP_URL = "smtp+starttls or smtps URL of the mail relay, with its login (v1.1)" } : {},
  )

  app_secrets = merge(local.required_secrets, local.optional_secrets)
}

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:Rotation needs an application-aware procedure, not a generic Lambda: JWT_SECRET rotates through JWT_KEY_ID/JWT_PREVIOUS_KEYS, DATA_ENCRYPTION_KEY needs a re-encryption, DATABASE_URL follows the database role's password (runbook in docs/operations/configuration.md).
  for_each = local.app_secrets

  name                    = "${local.prefix}/${each.key}"
  description             = each.value
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 30
}
