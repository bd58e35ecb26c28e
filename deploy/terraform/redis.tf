# Redis on ElastiCache, cluster mode enabled (REDIS_CLUSTER=true, v1.1): redis_shards shards,
# each a primary plus redis_replicas_per_shard replicas in other zones.
#
# Durability, honestly: ElastiCache for Redis OSS does not offer AOF. AWS disabled it from
# engine 2.8.22 on (its "Mitigating failures" guide points to Multi-AZ instead), and the
# redis7 parameter family has no appendonly/appendfsync to set. The README's `--appendonly
# yes --appendfsync always` is therefore not reproducible here. What ElastiCache offers:
#   - replication to replicas in other availability zones, asynchronous;
#   - Multi-AZ with automatic failover: a replica is promoted when a primary or its zone
#     fails (typically within a minute), but writes not yet replicated are lost;
#   - daily snapshots (snapshot_retention_limit): a restore goes back up to a day.
# So an acked message survives a primary's failure only if a replica held it before the ack:
# REDIS_MIN_REPLICAS_ACK=1 (v1.1) makes the server WAIT for one replica before acking. A
# total loss of the cluster falls back to PostgreSQL, where messages land within seconds of
# their ack (contract section 5); the messages acked in that last interval are at risk.
# For a stronger guarantee use Amazon MemoryDB (a Multi-AZ transaction log acknowledges each
# write durably); see ../README.md.

resource "aws_elasticache_subnet_group" "main" {
  name       = local.prefix
  subnet_ids = aws_subnet.data[*].id
}

resource "aws_elasticache_parameter_group" "redis" {
  name   = "${local.prefix}-redis7-cluster"
  family = "redis7"

  parameter {
    name  = "cluster-enabled"
    value = "yes"
  }

  # The message log, presence, leases and rate limits must never be evicted to make room:
  # a full Redis refuses writes (the server answers SERVICE_UNAVAILABLE) instead of losing
  # acknowledged messages. Memory is alarmed in observability.tf.
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_elasticache_replication_group" "main" {
  replication_group_id = local.prefix
  description          = "${local.prefix}: bus, message log, presence, rate limits, jobs"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.redis.name
  subnet_group_name    = aws_elasticache_subnet_group.main.name
  security_group_ids   = [aws_security_group.redis.id]

  num_node_groups            = var.redis_shards
  replicas_per_node_group    = var.redis_replicas_per_shard
  automatic_failover_enabled = true
  multi_az_enabled           = true

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  auth_token                 = var.redis_auth_token

  snapshot_retention_limit   = 7
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false
  notification_topic_arn     = aws_sns_topic.redis_events.arn

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis["slow-log"].name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis["engine-log"].name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "engine-log"
  }
}
