# One customer-managed key for data at rest: RDS, ElastiCache, EFS, Secrets Manager, ECR,
# CloudWatch Logs, SNS and Amazon Managed Prometheus. Rotated yearly by AWS.

resource "aws_kms_key" "main" {
  description             = "${local.prefix}: data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.prefix}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:This is a key policy: Resource "*" is this key only, and the root statement is AWS's default delegation to IAM, which then scopes who may use or manage the key.
  #checkov:skip=CKV_AWS_111:Same key policy: AWS's default account delegation; write access is constrained by the account's IAM policies.
  #checkov:skip=CKV_AWS_356:Same key policy: a key policy's Resource can only be "*" (the key it is attached to).
  # The account administers the key through IAM; services below use it through grants made
  # on behalf of IAM principals (RDS, ElastiCache, EFS, Secrets Manager, ECR).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypt"
    resources = ["*"]
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }

  # CloudWatch alarms publish to the encrypted alarm topic.
  statement {
    sid       = "CloudWatchAlarmsPublish"
    resources = ["*"]
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}
