# Reference AWS deployment of StudyBuddy. Never applied: see ../README.md.

terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80.0, < 6.0.0"
    }
  }

  # State holds resource ids and the Redis auth token (a sensitive variable), so it lives in a
  # versioned, KMS-encrypted S3 bucket with locking, never on a laptop. Partial configuration:
  #   terraform init -backend-config=backend.hcl
  # with bucket, key, region, kms_key_id, encrypt = true and use_lockfile = true (or
  # dynamodb_table on Terraform < 1.10).
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
