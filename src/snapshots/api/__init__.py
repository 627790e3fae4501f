"""The read API (Litestar): routes, error mapping, response schemas."""
