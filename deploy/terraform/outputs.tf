output "load_balancer_dns_name" {
  description = "Point the public host name (the certificate's) at this, e.g. with a Route 53 alias."
  value       = aws_lb.main.dns_name
}

output "ecr_repository_url" {
  description = "Push the image here, tagged with image_tag."
  value       = aws_ecr_repository.app.repository_url
}

output "ecs_cluster_name" {
  description = "Cluster of the web, worker and scheduler services."
  value       = aws_ecs_cluster.main.name
}

output "release_task_definition_arn" {
  description = "Run once per deployment before updating the services (alembic upgrade head)."
  value       = aws_ecs_task_definition.background["release"].arn
}

output "release_network_configuration" {
  description = "Subnets and security group for running the release task."
  value = {
    subnets         = aws_subnet.app[*].id
    security_groups = [aws_security_group.app.id]
  }
}

output "database_primary_endpoint" {
  description = "Host:port of the primary, for DATABASE_URL."
  value       = aws_db_instance.primary.endpoint
}

output "database_replica_endpoint" {
  description = "Host:port of the read replica, for DATABASE_REPLICA_URLS."
  value       = aws_db_instance.replica.endpoint
}

output "database_master_secret_arn" {
  description = "Secret (managed by RDS) holding the master user's password, for bootstrapping the application role."
  value       = aws_db_instance.primary.master_user_secret[0].secret_arn
}

output "redis_configuration_endpoint" {
  description = "Cluster configuration endpoint, for REDIS_URL (rediss://)."
  value       = aws_elasticache_replication_group.main.configuration_endpoint_address
}

output "app_secret_arns" {
  description = "Secrets to fill with put-secret-value before the first deployment."
  value       = { for name, secret in aws_secretsmanager_secret.app : name => secret.arn }
}

output "prometheus_workspace_endpoint" {
  description = "Managed Prometheus query endpoint (Grafana data source)."
  value       = aws_prometheus_workspace.main.prometheus_endpoint
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}
