# Public entry: an Application Load Balancer (HTTPS only) in front of the web tasks. ALBs
# forward WebSocket upgrades on HTTP/HTTPS listeners natively; what matters for sockets is
# the idle timeout, which must be longer than the server's ping interval (WS_HEARTBEAT_S)
# so that an idle but healthy socket always carries a frame before the ALB would cut it.

resource "aws_lb" "main" {
  #checkov:skip=CKV2_AWS_76:The Log4j managed rules (AWSManagedRulesKnownBadInputsRuleSet) are attached; the check also demands AWSManagedRulesAnonymousIpList, which would block students on VPNs, campus proxies and hosted desktops.
  name                       = local.prefix
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  idle_timeout               = var.alb_idle_timeout_s
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  desync_mitigation_mode     = "strictest"

  access_logs {
    bucket  = aws_s3_bucket.alb_logs.id
    prefix  = "alb"
    enabled = true
  }

  lifecycle {
    precondition {
      condition     = var.alb_idle_timeout_s > 2 * var.ws_heartbeat_s
      error_message = "alb_idle_timeout_s must exceed two WebSocket heartbeats (2 x ws_heartbeat_s)."
    }
  }

  depends_on = [aws_s3_bucket_policy.alb_logs]
}

# Readiness decides routing: a node whose PostgreSQL or Redis is down, or that is draining
# on SIGTERM, answers 503 on /health/ready and gets no new connections. Liveness (/health)
# is the container health check in ecs.tf, which replaces a stuck task.
resource "aws_lb_target_group" "web" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the task stays inside the VPC's app subnets, open only to the load balancer's security group.
  name                 = "${local.prefix}-web"
  port                 = var.container_port
  protocol             = "HTTP"
  protocol_version     = "HTTP1" # WebSocket upgrades are HTTP/1.1
  target_type          = "ip"
  vpc_id               = aws_vpc.main.id
  deregistration_delay = var.shutdown_grace_s + 20

  health_check {
    path                = "/health/ready"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

# The metrics endpoint is scraped inside the task by the collector sidecar; from outside
# it answers 404.
resource "aws_lb_listener_rule" "hide_metrics" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      status_code  = "404"
      message_body = "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"Not found\",\"details\":{}}}"
    }
  }

  condition {
    path_pattern {
      values = ["/health/metrics", "/health/metrics/*"]
    }
  }
}

# WAF in front of the load balancer: AWS managed rules plus a coarse per-IP ceiling. The
# application does its own, finer rate limiting (Redis-backed).
resource "aws_wafv2_web_acl" "main" {
  name  = local.prefix
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "aws-common"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"

        # Avatar uploads (2 MiB) and JSON bodies (64 KiB) are larger than this rule's 8 KiB,
        # and chat text may legitimately contain markup (the server escapes it): count these
        # instead of blocking.
        rule_action_override {
          name = "SizeRestrictions_BODY"
          action_to_use {
            count {}
          }
        }

        rule_action_override {
          name = "CrossSiteScripting_BODY"
          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-aws-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-aws-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "per-ip-ceiling"
    priority = 30

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_5m
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-per-ip-ceiling"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.prefix
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "alb" {
  resource_arn = aws_lb.main.arn
  web_acl_arn  = aws_wafv2_web_acl.main.arn
}

# WAF logs, without the credentials that requests carry.
resource "aws_wafv2_web_acl_logging_configuration" "main" {
  resource_arn            = aws_wafv2_web_acl.main.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "cookie"
    }
  }

  redacted_fields {
    single_header {
      name = "x-csrf-token"
    }
  }
}
