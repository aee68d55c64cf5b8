"""Page plumbing for every domain that serves pages or browser requests: templates, CSRF, cookies, CORS."""
