# Logs (CloudWatch), metrics (the web tasks' /health/metrics scraped into Amazon Managed
# Prometheus by the collector sidecar in ecs.tf) and alarms (CloudWatch -> SNS).

resource "aws_cloudwatch_log_group" "process" {
  for_each = toset(["web", "metrics", "worker", "scheduler", "release"])

  name              = "/ecs/${local.prefix}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  name              = "/vpc/${local.prefix}/flow-logs"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# WAF requires the aws-waf-logs- prefix.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${local.prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# RDS would create these itself, unencrypted and kept forever.
resource "aws_cloudwatch_log_group" "rds" {
  for_each = toset(flatten([
    for instance in ["${local.prefix}-primary", "${local.prefix}-replica-1"] : [
      for log in ["postgresql", "upgrade"] : "/aws/rds/instance/${instance}/${log}"
    ]
  ]))

  name              = each.key
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "redis" {
  for_each = toset(["slow-log", "engine-log"])

  name              = "/elasticache/${local.prefix}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_prometheus_workspace" "main" {
  alias       = local.prefix
  kms_key_arn = aws_kms_key.main.arn

  logging_configuration {
    log_group_arn = "${aws_cloudwatch_log_group.prometheus.arn}:*"
  }
}

resource "aws_cloudwatch_log_group" "prometheus" {
  name              = "/aps/${local.prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_sns_topic" "alarms" {
  name              = "${local.prefix}-alarms"
  kms_master_key_id = aws_kms_key.main.id
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# ElastiCache events (failovers, node replacements). ElastiCache cannot publish to an
# encrypted topic, and its topic policy must use aws:SourceOwner (AWS: "Event Notifications
# and Amazon SNS"), hence a second topic. The events name clusters and nodes, nothing more.
resource "aws_sns_topic" "redis_events" {
  #checkov:skip=CKV_AWS_26:ElastiCache cannot publish to an encrypted SNS topic; the events carry cluster and node names only.
  name = "${local.prefix}-redis-events"
}

resource "aws_sns_topic_policy" "redis_events" {
  arn = aws_sns_topic.redis_events.arn

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      # SNS's classic default statement, which is what ElastiCache's guide requires.
      Sid       = "AccountResourcesPublish"
      Effect    = "Allow"
      Principal = { AWS = "*" }
      Action    = "SNS:Publish"
      Resource  = aws_sns_topic.redis_events.arn
      Condition = { StringEquals = { "aws:SourceOwner" = local.account_id } }
    }]
  })
}

resource "aws_sns_topic_subscription" "redis_events_email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.redis_events.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
  alb_dimensions = {
    LoadBalancer = aws_lb.main.arn_suffix
  }
  ecs_services = {
    web       = aws_ecs_service.web.name
    worker    = aws_ecs_service.worker.name
    scheduler = aws_ecs_service.scheduler.name
  }
}

# Load balancer: answers and latency.

resource "aws_cloudwatch_metric_alarm" "target_5xx" {
  alarm_name          = "${local.prefix}-target-5xx"
  alarm_description   = "Nodes answer 5xx (INTERNAL_ERROR or SERVICE_UNAVAILABLE): see the web logs and /health/ready."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = local.alb_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.alb_5xx_alarm_count
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "elb_5xx" {
  alarm_name          = "${local.prefix}-elb-5xx"
  alarm_description   = "The load balancer itself answers 5xx (502/503/504): no ready target, or targets failing."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_ELB_5XX_Count"
  dimensions          = local.alb_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.alb_5xx_alarm_count
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "latency_p99" {
  alarm_name          = "${local.prefix}-latency-p99"
  alarm_description   = "p99 of the time to first response byte (REST answers, WebSocket handshakes) is too high."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = local.alb_dimensions
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.alb_p99_latency_alarm_s
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_targets" {
  alarm_name          = "${local.prefix}-unready-web-tasks"
  alarm_description   = "Web tasks fail /health/ready (a dependency is down, or they are stuck)."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = merge(local.alb_dimensions, { TargetGroup = aws_lb_target_group.web.arn_suffix })
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# ECS: CPU and memory per service.

resource "aws_cloudwatch_metric_alarm" "ecs_cpu" {
  for_each = local.ecs_services

  alarm_name          = "${local.prefix}-${each.key}-cpu"
  alarm_description   = "${each.key} tasks average over 85% CPU (web autoscales at 60%: check the ceiling)."
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.main.name, ServiceName = each.value }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 8
  threshold           = 85
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "ecs_memory" {
  for_each = local.ecs_services

  alarm_name          = "${local.prefix}-${each.key}-memory"
  alarm_description   = "${each.key} tasks average over 85% of their memory."
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.main.name, ServiceName = each.value }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 8
  threshold           = 85
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# PostgreSQL.

resource "aws_cloudwatch_metric_alarm" "db_cpu" {
  alarm_name          = "${local.prefix}-db-cpu"
  alarm_description   = "The primary's CPU is over 80%."
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.primary.identifier }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 8
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "db_connections" {
  alarm_name          = "${local.prefix}-db-connections"
  alarm_description   = "Connections to the primary near the limit: every process holds up to DB_POOL_MAX."
  namespace           = "AWS/RDS"
  metric_name         = "DatabaseConnections"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.primary.identifier }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.db_max_connections_alarm
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "db_free_storage" {
  alarm_name          = "${local.prefix}-db-free-storage"
  alarm_description   = "Less than 10 GiB free on the primary (storage autoscaling may be at its ceiling)."
  namespace           = "AWS/RDS"
  metric_name         = "FreeStorageSpace"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.primary.identifier }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 2
  threshold           = 10 * 1024 * 1024 * 1024
  comparison_operator = "LessThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "db_replica_lag" {
  alarm_name          = "${local.prefix}-db-replica-lag"
  alarm_description   = "The read replica is behind the primary: lag-tolerant reads show older data."
  namespace           = "AWS/RDS"
  metric_name         = "ReplicaLag"
  dimensions          = { DBInstanceIdentifier = aws_db_instance.replica.identifier }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = var.db_replica_lag_alarm_s
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching" # no lag figure: the replica is not replicating
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Redis: per node, because ElastiCache reports per node.

resource "aws_cloudwatch_metric_alarm" "redis_memory" {
  for_each = toset(local.redis_nodes)

  alarm_name          = "${each.key}-memory"
  alarm_description   = "Redis node over 75% of maxmemory; with noeviction, writes (and acks) fail at 100%."
  namespace           = "AWS/ElastiCache"
  metric_name         = "DatabaseMemoryUsagePercentage"
  dimensions          = { CacheClusterId = each.key }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 75
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "redis_cpu" {
  for_each = toset(local.redis_nodes)

  alarm_name          = "${each.key}-engine-cpu"
  alarm_description   = "The Redis engine thread is over 80% busy: add shards."
  namespace           = "AWS/ElastiCache"
  metric_name         = "EngineCPUUtilization"
  dimensions          = { CacheClusterId = each.key }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 8
  threshold           = 80
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "redis_replication_lag" {
  for_each = toset(local.redis_nodes)

  alarm_name          = "${each.key}-replication-lag"
  alarm_description   = "A Redis replica is behind its primary: a failover now would lose more than usual."
  namespace           = "AWS/ElastiCache"
  metric_name         = "ReplicationLag"
  dimensions          = { CacheClusterId = each.key }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 1
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching" # primaries report no lag
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
