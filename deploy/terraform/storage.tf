# Container images (ECR), uploaded avatars (EFS, the shared MEDIA_DIR) and the load
# balancer's access logs (S3).

resource "aws_ecr_repository" "app" {
  name                 = local.prefix
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.app.name

  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 50 images (rollback targets)"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}

# MEDIA_DIR must be shared by every web task (README: "Running several nodes").
resource "aws_efs_file_system" "media" {
  creation_token   = "${local.prefix}-media"
  encrypted        = true
  kms_key_id       = aws_kms_key.main.arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  tags = { Name = "${local.prefix}-media" }
}

resource "aws_efs_backup_policy" "media" {
  file_system_id = aws_efs_file_system.media.id

  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_mount_target" "media" {
  count           = local.az_count
  file_system_id  = aws_efs_file_system.media.id
  subnet_id       = aws_subnet.data[count.index].id
  security_groups = [aws_security_group.efs.id]
}

# The image runs as uid/gid 10001; the access point maps every client to it and roots it
# in /media, so tasks see nothing else of the file system.
resource "aws_efs_access_point" "media" {
  file_system_id = aws_efs_file_system.media.id

  posix_user {
    uid = 10001
    gid = 10001
  }

  root_directory {
    path = "/media"

    creation_info {
      owner_uid   = 10001
      owner_gid   = 10001
      permissions = "0750"
    }
  }
}

# Only TLS, only through the access point, only the web task role.
resource "aws_efs_file_system_policy" "media" {
  file_system_id = aws_efs_file_system.media.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "*"
        Resource  = aws_efs_file_system.media.arn
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "WebTasksMountThroughAccessPoint"
        Effect    = "Allow"
        Principal = { AWS = aws_iam_role.web_task.arn }
        Action    = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
        Resource  = aws_efs_file_system.media.arn
        Condition = {
          StringEquals = { "elasticfilesystem:AccessPointArn" = aws_efs_access_point.media.arn }
        }
      },
    ]
  })
}

data "aws_elb_service_account" "main" {}

resource "aws_s3_bucket" "alb_logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log bucket itself; logging it to another bucket would only move the question.
  #checkov:skip=CKV_AWS_144:Access logs are diagnostics, not data to recover; cross-region replication would double their cost for nothing.
  #checkov:skip=CKV2_AWS_62:Nothing consumes new log objects as events; they are read on demand (Athena).
  #checkov:skip=CKV_AWS_145:ALB access logging supports only SSE-S3 (AES256) buckets, not SSE-KMS.
  bucket_prefix = "${local.prefix}-alb-logs-"
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  bucket                  = aws_s3_bucket.alb_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  rule {
    id     = "expire"
    status = "Enabled"

    filter {}

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_policy" "alb_logs" {
  bucket = aws_s3_bucket.alb_logs.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.alb_logs.arn, "${aws_s3_bucket.alb_logs.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        # Regions from before August 2022 deliver as the region's ELB account, newer ones
        # as the log delivery service.
        Sid    = "LoadBalancerWritesLogs"
        Effect = "Allow"
        Principal = {
          AWS     = data.aws_elb_service_account.main.arn
          Service = "logdelivery.elasticloadbalancing.amazonaws.com"
        }
        Action   = "s3:PutObject"
        Resource = "${aws_s3_bucket.alb_logs.arn}/alb/AWSLogs/${local.account_id}/*"
      },
    ]
  })
}
