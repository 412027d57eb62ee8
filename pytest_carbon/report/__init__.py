"""Reports: terminal, JSON, CSV, HTML, Markdown and pandas."""
