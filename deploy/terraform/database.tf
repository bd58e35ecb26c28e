# PostgreSQL on RDS: a Multi-AZ primary (synchronous standby in another zone, automatic
# failover), point-in-time recovery from automated backups, and one read replica for the
# lag-tolerant reads of DATABASE_REPLICA_URLS (v1.1).

resource "aws_db_subnet_group" "main" {
  name       = local.prefix
  subnet_ids = aws_subnet.data[*].id
}

resource "aws_db_parameter_group" "postgres" {
  name   = "${local.prefix}-postgres${var.db_engine_version}"
  family = "postgres${var.db_engine_version}"

  parameter {
    name  = "rds.force_ssl" # DATABASE_URL carries ?ssl=require
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement" # milliseconds
    value = "500"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  parameter {
    name  = "idle_in_transaction_session_timeout" # milliseconds
    value = "60000"
  }

  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }

  # On the replica: long history reads are not cancelled by vacuum on the primary.
  parameter {
    name  = "hot_standby_feedback"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "primary" {
  identifier     = "${local.prefix}-primary"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class
  db_name        = "studybuddy"

  # The master password is generated and rotated by RDS in Secrets Manager; it never enters
  # the Terraform state. The application connects as its own role (DATABASE_URL secret).
  username                      = "studybuddy_admin"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.main.arn

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.main.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.postgres.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  # Point-in-time recovery to any second within the retention window.
  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.prefix}-primary-final"

  auto_minor_version_upgrade          = true
  allow_major_version_upgrade         = false
  apply_immediately                   = false
  iam_database_authentication_enabled = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.main.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  depends_on = [aws_cloudwatch_log_group.rds]
}

# The replica streams from the primary asynchronously; ReplicaLag is alarmed below. It is a
# single instance: when it fails, the application's replica routing falls back to the
# primary (v1.1), and RDS replaces it from the primary.
resource "aws_db_instance" "replica" {
  #checkov:skip=CKV_AWS_133:RDS for PostgreSQL read replicas do not support automated backups; backups and point-in-time recovery are the primary's.
  #checkov:skip=CKV_AWS_157:A read replica carries no data of its own: lag-tolerant reads fall back to the Multi-AZ primary while RDS replaces it (DATABASE_REPLICA_URLS, v1.1), so a standby for it would double its cost for no durability.
  identifier          = "${local.prefix}-replica-1"
  replicate_source_db = aws_db_instance.primary.identifier
  instance_class      = var.db_instance_class

  storage_encrypted      = true
  kms_key_id             = aws_kms_key.main.arn
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.postgres.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"
  multi_az               = false

  # Backups and point-in-time recovery are the primary's; a replica is rebuilt from it.
  backup_retention_period = 0
  copy_tags_to_snapshot   = true
  deletion_protection     = true
  skip_final_snapshot     = true

  auto_minor_version_upgrade          = true
  apply_immediately                   = false
  iam_database_authentication_enabled = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.main.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  depends_on = [aws_cloudwatch_log_group.rds]
}

resource "aws_iam_role" "rds_monitoring" {
  name = "${local.prefix}-rds-monitoring"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
