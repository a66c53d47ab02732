"""Server-rendered HTML pages (Jinja2, autoescaped; no JavaScript needed)."""
