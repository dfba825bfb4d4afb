"""What per-key limits and usage records cost a request, and how fast usage records are written."""
