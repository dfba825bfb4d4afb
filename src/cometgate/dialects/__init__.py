"""Wire formats and the pure translations between them and the canonical model."""
