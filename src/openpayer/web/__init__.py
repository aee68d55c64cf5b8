"""Page and HTTP plumbing shared by every web-facing domain: templates, CSRF, cookies, CORS, headers."""
