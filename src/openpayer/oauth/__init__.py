"""SMART App Launch 2.2 / OpenID Connect authorization server for the Patient Access API."""
