"""The developer documentation site: guides rendered from docs/*.md and the "Try it now" API console."""
