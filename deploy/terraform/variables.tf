# Inputs. Defaults describe a small production deployment; see ../README.md.

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "studybuddy"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}$", var.name))
    error_message = "name: 3..21 characters of [a-z0-9-], starting with a letter."
  }
}

variable "environment" {
  description = "The node's ENV: staging or production (dev is for laptops, never deployed)."
  type        = string
  default     = "production"

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "availability_zones" {
  description = "Zones (of var.region) to spread subnets, tasks, database and Redis over."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 6
    error_message = "Give 2..6 zones (Multi-AZ needs at least two)."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; split into public, app and data subnets per zone."
  type        = string
  default     = "10.40.0.0/16"
}

variable "certificate_arn" {
  description = "ACM certificate of the public host name, for the HTTPS listener."
  type        = string
}

variable "image_tag" {
  description = "Tag of the application image in the ECR repository (tags are immutable)."
  type        = string
}

variable "container_port" {
  description = "PORT of the web process inside the task."
  type        = number
  default     = 8000
}

variable "ws_heartbeat_s" {
  description = "WS_HEARTBEAT_S: seconds between the server's WebSocket pings."
  type        = number
  default     = 20
}

variable "alb_idle_timeout_s" {
  description = "ALB idle timeout; must exceed two heartbeats so idle sockets are never cut."
  type        = number
  default     = 120
}

variable "shutdown_grace_s" {
  description = "SHUTDOWN_GRACE_S: seconds a stopping node spends draining its sockets."
  type        = number
  default     = 10
}

variable "web_cpu" {
  description = "CPU units of a web task (1024 = 1 vCPU); the node is one process."
  type        = number
  default     = 1024
}

variable "web_memory" {
  description = "Memory (MiB) of a web task."
  type        = number
  default     = 2048
}

variable "web_min_count" {
  description = "Fewest web tasks (at least two, in different zones)."
  type        = number
  default     = 2
}

variable "web_max_count" {
  description = "Most web tasks the CPU autoscaling may run."
  type        = number
  default     = 12
}

variable "worker_count" {
  description = "Worker tasks (taskiq worker: webhooks, emails, housekeeping)."
  type        = number
  default     = 2
}

variable "worker_cpu" {
  description = "CPU units of a worker or scheduler task."
  type        = number
  default     = 512
}

variable "worker_memory" {
  description = "Memory (MiB) of a worker or scheduler task."
  type        = number
  default     = 1024
}

variable "db_pool_max" {
  description = "DB_POOL_MAX per process; with the task counts it bounds database connections."
  type        = number
  default     = 20
}

variable "adot_image" {
  description = "AWS Distro for OpenTelemetry collector image, pinned by version tag."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.43.3"
}

variable "cors_origins" {
  description = "CORS_ORIGINS: browser origins allowed for REST and the socket handshake."
  type        = list(string)
  default     = []
}

variable "webhook_allowed_hosts" {
  description = "WEBHOOK_ALLOWED_HOSTS: private hosts or CIDRs webhooks may target anyway."
  type        = list(string)
  default     = []
}

variable "public_web_url" {
  description = "PUBLIC_WEB_URL: base of the links in emails (v1.1)."
  type        = string
  default     = ""
}

variable "mail_from" {
  description = "MAIL_FROM: sender address of emails (v1.1)."
  type        = string
  default     = ""
}

variable "log_level" {
  description = "LOG_LEVEL of every process."
  type        = string
  default     = "INFO"
}

variable "enable_sentry" {
  description = "Pass the SENTRY_DSN secret to the processes (the secret must then hold a value)."
  type        = bool
  default     = false
}

variable "enable_smtp" {
  description = "Pass the SMTP_URL secret to the processes (v1.1; unset writes .eml files)."
  type        = bool
  default     = true
}

variable "db_engine_version" {
  description = "PostgreSQL major version on RDS; minor versions are upgraded automatically."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "RDS instance class of the primary and the replica."
  type        = string
  default     = "db.r6g.large"
}

variable "db_allocated_storage_gb" {
  description = "Initial gp3 storage of the primary (grows up to db_max_storage_gb)."
  type        = number
  default     = 100
}

variable "db_max_storage_gb" {
  description = "Storage autoscaling ceiling."
  type        = number
  default     = 1000
}

variable "db_backup_retention_days" {
  description = "Automated backups and point-in-time recovery window, in days."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be 7..35."
  }
}

variable "db_max_connections_alarm" {
  description = "DatabaseConnections above which the alarm fires."
  type        = number
  default     = 400
}

variable "db_replica_lag_alarm_s" {
  description = "ReplicaLag (seconds) above which the alarm fires."
  type        = number
  default     = 30
}

variable "redis_engine_version" {
  description = "ElastiCache Redis OSS engine version (cluster mode enabled)."
  type        = string
  default     = "7.1"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_shards" {
  description = "Node groups (shards) of the Redis cluster."
  type        = number
  default     = 2
}

variable "redis_replicas_per_shard" {
  description = "Replicas per shard, in other zones than their primary."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_replicas_per_shard >= 1 && var.redis_replicas_per_shard <= 5
    error_message = "Multi-AZ failover needs at least one replica per shard (at most 5)."
  }
}

variable "redis_min_replicas_ack" {
  description = "REDIS_MIN_REPLICAS_ACK (v1.1): replicas that must hold a message before its ack."
  type        = number
  default     = 1
}

variable "redis_auth_token" {
  description = "AUTH token of the Redis cluster (16..128 characters); it ends up in the state."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.redis_auth_token) >= 16 && length(var.redis_auth_token) <= 128
    error_message = "redis_auth_token must be 16..128 characters."
  }
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group."
  type        = number
  default     = 365
}

variable "alarm_email" {
  description = "Address subscribed to the alarm topic (empty: subscribe something else)."
  type        = string
  default     = ""
}

variable "waf_rate_limit_per_5m" {
  description = "Coarse per-IP WAF ceiling per 5 minutes; high because campuses share NAT addresses."
  type        = number
  default     = 20000
}

variable "alb_5xx_alarm_count" {
  description = "5xx answers per minute above which the alarm fires."
  type        = number
  default     = 10
}

variable "alb_p99_latency_alarm_s" {
  description = "p99 target response time (seconds) above which the alarm fires."
  type        = number
  default     = 1
}
