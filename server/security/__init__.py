"""Security primitives: passwords, tokens, MFA, rate limits, CSRF, sanitising, scanning."""
