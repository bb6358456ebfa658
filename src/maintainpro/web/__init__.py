"""Server-rendered pages: the web shell."""
