"""Page and HTTP plumbing shared by every web-facing domain."""
