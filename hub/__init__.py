"""A multi-user hub for one host: one Docker container per user, routed by Traefik."""

__version__ = "0.1.0"
