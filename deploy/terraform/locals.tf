data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# Zones by name, so the set never changes under the subnets when AWS adds a zone.
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = var.availability_zones
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == length(var.availability_zones)
      error_message = "Every zone in availability_zones must exist in the region and be available."
    }
  }
}

locals {
  prefix     = "${var.name}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = var.availability_zones # checked against the region by the data source above
  az_count   = length(var.availability_zones)

  tags = {
    Application = var.name
    Environment = var.environment
    ManagedBy   = "terraform"
  }

  # The Procfile's lines, run as they are (deploy/check_iac.py compares the two).
  processes = {
    release   = "alembic upgrade head"
    web       = "python -m server.serve --host 0.0.0.0 --port $PORT"
    worker    = "python -m server.tasks.worker --workers 1"
    scheduler = "python -m server.tasks.scheduler"
  }

  image = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"

  # Cluster-mode node ids are <group>-<shard 0001..>-<node 001..>; known before apply, so the
  # per-node Redis alarms can be planned.
  redis_nodes = flatten([
    for shard in range(1, var.redis_shards + 1) : [
      for node in range(1, var.redis_replicas_per_shard + 2) :
      format("%s-%04d-%03d", local.prefix, shard, node)
    ]
  ])
}
