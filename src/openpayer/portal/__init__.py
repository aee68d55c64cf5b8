"""The developer portal's domain: organizations, applications, subscriptions, review and staff roles."""
