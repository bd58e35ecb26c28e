# ECS on Fargate: the Procfile's processes as services (web, worker, scheduler) and the
# release step as a one-off task definition that the pipeline runs before each deployment.

resource "aws_ecs_cluster" "main" {
  name = local.prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

locals {
  media_path = "/mnt/media"

  # Non-secret settings, identical for every process (docs/operations/configuration.md).
  app_environment = [for name, value in {
    ENV                    = var.environment
    LOG_LEVEL              = var.log_level
    CORS_ORIGINS           = join(",", var.cors_origins)
    WEBHOOK_ALLOWED_HOSTS  = join(",", var.webhook_allowed_hosts)
    TRUSTED_PROXIES        = join(",", aws_subnet.public[*].cidr_block) # the ALB's addresses
    DB_POOL_MAX            = tostring(var.db_pool_max)
    WS_HEARTBEAT_S         = tostring(var.ws_heartbeat_s)
    SHUTDOWN_GRACE_S       = tostring(var.shutdown_grace_s)
    MEDIA_DIR              = local.media_path
    REDIS_CLUSTER          = "true"
    REDIS_MIN_REPLICAS_ACK = tostring(var.redis_min_replicas_ack)
    PUBLIC_WEB_URL         = var.public_web_url
    MAIL_FROM              = var.mail_from
    MAIL_DIR               = "/tmp/mail" # only used while SMTP_URL is unset
    } : { name = name, value = value } if value != ""
  ]

  app_secret_refs = [
    for name in sort(keys(local.app_secrets)) :
    { name = name, valueFrom = aws_secretsmanager_secret.app[name].arn }
  ]

  # Shared by every application container: read-only root, no capabilities, an init
  # process (signals reach Python, zombies are reaped), /tmp as task storage.
  app_container = {
    image                  = local.image
    essential              = true
    user                   = "10001:10001"
    readonlyRootFilesystem = true
    secrets                = local.app_secret_refs
    linuxParameters = {
      initProcessEnabled = true
      capabilities       = { drop = ["ALL"] }
    }
    ulimits = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]
  }

  tmp_mount = { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }

  adot_config = {
    extensions = {
      sigv4auth    = { region = var.region, service = "aps" }
      health_check = {}
    }
    receivers = {
      prometheus = {
        config = {
          global = { scrape_interval = "30s", scrape_timeout = "10s" }
          scrape_configs = [{
            job_name       = "studybuddy-web"
            metrics_path   = "/health/metrics"
            static_configs = [{ targets = ["127.0.0.1:${var.container_port}"] }]
          }]
        }
      }
    }
    processors = {
      # Every task scrapes 127.0.0.1: the task's ECS attributes keep the series apart.
      resourcedetection = { detectors = ["env", "ecs"] }
      batch             = {}
    }
    exporters = {
      prometheusremotewrite = {
        endpoint                         = "${aws_prometheus_workspace.main.prometheus_endpoint}api/v1/remote_write"
        auth                             = { authenticator = "sigv4auth" }
        resource_to_telemetry_conversion = { enabled = true }
      }
    }
    service = {
      extensions = ["sigv4auth", "health_check"]
      pipelines = {
        metrics = {
          receivers  = ["prometheus"]
          processors = ["resourcedetection", "batch"]
          exporters  = ["prometheusremotewrite"]
        }
      }
    }
  }
}

resource "aws_ecs_task_definition" "web" {
  family                   = "${local.prefix}-web"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.web_cpu
  memory                   = var.web_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.web_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  volume {
    name = "media"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.media.id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.media.id
        iam             = "ENABLED"
      }
    }
  }

  container_definitions = jsonencode([
    merge(local.app_container, {
      name         = "web"
      command      = ["sh", "-c", "exec ${local.processes.web}"]
      portMappings = [{ containerPort = var.container_port, protocol = "tcp", name = "http" }]
      environment  = concat(local.app_environment, [{ name = "PORT", value = tostring(var.container_port) }])
      mountPoints = [
        local.tmp_mount,
        { sourceVolume = "media", containerPath = local.media_path, readOnly = false },
      ]
      # Liveness: the process answers. Readiness (/health/ready) is the load balancer's.
      healthCheck = {
        command     = ["CMD", "python", "-c", "import os,urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=3)"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }
      # SIGTERM drains sockets for SHUTDOWN_GRACE_S, then uvicorn has 15 s more.
      stopTimeout = var.shutdown_grace_s + 30
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.process["web"].name
          awslogs-region        = var.region
          awslogs-stream-prefix = "web"
        }
      }
    }),
    {
      # Scrapes /health/metrics inside the task and remote-writes to Managed Prometheus.
      name                   = "metrics"
      image                  = var.adot_image
      essential              = false
      readonlyRootFilesystem = true
      linuxParameters        = { capabilities = { drop = ["ALL"] } }
      environment            = [{ name = "AOT_CONFIG_CONTENT", value = yamlencode(local.adot_config) }]
      mountPoints            = [local.tmp_mount]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.process["metrics"].name
          awslogs-region        = var.region
          awslogs-stream-prefix = "metrics"
        }
      }
    },
  ])
}

resource "aws_ecs_task_definition" "background" {
  for_each = toset(["worker", "scheduler", "release"])

  family                   = "${local.prefix}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.app_task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    merge(local.app_container, {
      name        = each.key
      command     = ["sh", "-c", "exec ${local.processes[each.key]}"]
      environment = local.app_environment
      mountPoints = [local.tmp_mount]
      stopTimeout = 60 # lets a running job finish
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.process[each.key].name
          awslogs-region        = var.region
          awslogs-stream-prefix = each.key
        }
      }
    }),
  ])
}

resource "aws_ecs_service" "web" {
  name                               = "web"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.web.arn
  desired_count                      = var.web_min_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  health_check_grace_period_seconds  = 60
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = aws_subnet.app[*].id
    security_groups  = [aws_security_group.web.id, aws_security_group.app.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.web.arn
    container_name   = "web"
    container_port   = var.container_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by the autoscaling below
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_ecs_service" "worker" {
  name                               = "worker"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.background["worker"].arn
  desired_count                      = var.worker_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = aws_subnet.app[*].id
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

# Exactly one scheduler: a deployment stops the old one before starting the new one, so
# two never enqueue the same periodic job.
resource "aws_ecs_service" "scheduler" {
  name                               = "scheduler"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.background["scheduler"].arn
  desired_count                      = 1
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = aws_subnet.app[*].id
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

# Web scales on CPU: sockets are long-lived, so request counts say little about load.
resource "aws_appautoscaling_target" "web" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.web.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.web_min_count
  max_capacity       = var.web_max_count
}

resource "aws_appautoscaling_policy" "web_cpu" {
  name               = "${local.prefix}-web-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.web.service_namespace
  resource_id        = aws_appautoscaling_target.web.resource_id
  scalable_dimension = aws_appautoscaling_target.web.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = 60
    scale_in_cooldown  = 600 # scaling in closes sockets (1001): do it slowly
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# Roles. The execution role is ECS's (pull the image, read secrets, write logs); the task
# roles are the processes' own.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.prefix}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # this action has no resource-level permissions
  }

  statement {
    sid = "PullImage"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.app.arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.process : "${group.arn}:*"]
  }

  statement {
    sid       = "ReadSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [for secret in aws_secretsmanager_secret.app : secret.arn]
  }

  statement {
    sid       = "DecryptSecretsAndImage"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-log-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role" "web_task" {
  name               = "${local.prefix}-web-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "web_task" {
  statement {
    sid       = "RemoteWriteMetrics"
    actions   = ["aps:RemoteWrite"]
    resources = [aws_prometheus_workspace.main.arn]
  }

  statement {
    sid       = "MountMedia"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.media.arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.media.arn]
    }
  }
}

resource "aws_iam_role_policy" "web_task" {
  name   = "metrics-and-media"
  role   = aws_iam_role.web_task.id
  policy = data.aws_iam_policy_document.web_task.json
}

# Worker, scheduler and release call no AWS API: their role has no permissions.
resource "aws_iam_role" "app_task" {
  name               = "${local.prefix}-app-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}
