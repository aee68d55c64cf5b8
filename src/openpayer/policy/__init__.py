"""The inactivity policy: per subscription, notices, escalation and removal after months without use."""
